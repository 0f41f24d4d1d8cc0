"""A retry budget: retries may add at most a fixed fraction to the load, so a failing upstream is not hit by a storm.

Token bucket as Finagle's ``RetryBudget`` (https://finagle.github.io/blog/2016/02/08/retry-budgets: 20 % of
requests may be retried on top of a minimum of 10 retries per second; deposits expire after 10 s) and tower's
``retry::budget::Budget``. Over the last ``ttl_s`` seconds::

    balance = min_per_s × ttl_s + ratio × deposits − withdrawals
    a retry may go ahead  ⇔  balance ≥ 1   (it then withdraws 1)

Every request deposits once (``deposit``), every retry withdraws once (``try_withdraw``). Time is kept in whole-second
buckets, so the window is ``ttl_s`` rounded up to seconds; memory is O(ttl_s). Single event loop, no locks.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from servewise.errors import UsageError

__all__ = ["RetryBudget"]


class RetryBudget:
    """``deposit()`` per request, ``try_withdraw()`` before each retry (False: do not retry, answer the error)."""

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_s: float = 10.0,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= ratio <= 10.0:
            raise UsageError(
                f"routing.retry_budget_ratio must be in [0, 10] (got {ratio}); 0.2 = 20 % of requests"
            )
        if min_per_s < 0:
            raise UsageError(f"routing.retry_min_per_s must be >= 0 (got {min_per_s})")
        if not 1.0 <= ttl_s <= 60.0:
            raise UsageError(f"routing.retry_ttl_s must be in [1, 60] seconds (got {ttl_s})")
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.ttl_s = ttl_s
        self._window = math.ceil(ttl_s)
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, deposits, withdrawals], oldest first
        self._deposits = 0
        self._withdrawals = 0

    def _current(self) -> list[int]:
        second = math.floor(self._clock())
        while self._buckets and self._buckets[0][0] <= second - self._window:
            _, deposits, withdrawals = self._buckets.popleft()
            self._deposits -= deposits
            self._withdrawals -= withdrawals
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def balance(self) -> float:
        """Retries available now (may be fractional)."""
        self._current()
        return self.min_per_s * self.ttl_s + self.ratio * self._deposits - self._withdrawals

    def deposit(self) -> None:
        """Count one request (first attempts only)."""
        self._current()[1] += 1
        self._deposits += 1

    def try_withdraw(self) -> bool:
        """Take one retry if the balance allows; False means the budget is spent and the error should be answered."""
        bucket = self._current()
        if self.min_per_s * self.ttl_s + self.ratio * self._deposits - self._withdrawals < 1.0:
            return False
        bucket[2] += 1
        self._withdrawals += 1
        return True
