"""Where chunked work runs: in this process, or on a Ray cluster (``--executor ray [--address …]``).

Why a one-method protocol: a plan sweep and a Monte Carlo run split their work into chunks that depend only on
their inputs (never on which worker runs them or in which order), so any executor that returns the chunk results
in input order gives the same answer; the caller never knows where the chunks ran. Ray is an optional extra
(``pip install servewise[ray]``); nothing imports it until a ``RayExecutor`` is used.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar, cast

from servewise.errors import ServewiseError, UsageError

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorName",
    "InProcessExecutor",
    "RayExecutor",
    "make_executor",
    "open_executor",
]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int], None]
"""Called with the number of chunks just finished."""


class Executor(Protocol):
    """Runs ``fn(shared, item)`` for every item and returns the results in the order of ``items``."""

    name: str

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_done: Progress | None = None,
    ) -> list[R]: ...


class InProcessExecutor:
    """One chunk after the other, in this process: the default, and the reference the others must match."""

    name = "inprocess"

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_done: Progress | None = None,
    ) -> list[R]:
        results = []
        for item in items:
            results.append(fn(shared, item))
            if on_done is not None:
                on_done(1)
        return results


@dataclass(frozen=True, slots=True)
class _Raised:
    """A user error raised in a task, carried back as a value: Ray cannot rebuild exceptions whose constructor
    takes more than the message (``UnknownNameError``), and a traceback must never replace the one-line error."""

    kind: type[ServewiseError]
    message: str

    def rebuilt(self) -> ServewiseError:
        """The same class when its constructor takes the message, else the nearest base that does."""
        for cls in self.kind.__mro__:
            if issubclass(cls, ServewiseError):
                try:
                    return cls(self.message)
                except TypeError:
                    continue
        return ServewiseError(self.message)


def _guarded(fn: Callable[[S, T], R], shared: S, item: T) -> R | _Raised:
    try:
        return fn(shared, item)
    except ServewiseError as err:
        return _Raised(type(err), str(err))


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError as err:
        raise UsageError(
            "--executor ray needs Ray: pip install 'servewise[ray]' (or use --executor inprocess)"
        ) from err


CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a Ray head to accept a TCP connection before saying it is unreachable; Ray's own retry
loop waits minutes on an address where nothing listens."""


def _require_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, in one line, when nothing listens at a ``host:port`` or ``ray://host:port`` address."""
    if address == "auto" or ":" not in address.removeprefix("ray://"):
        return  # "auto" and bare names are resolved by Ray itself
    host, _, port_text = address.removeprefix("ray://").rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(
            f"--address {address!r}: the port is not a number; give ray://host:10001, host:6379 or auto"
        ) from None
    try:
        socket.create_connection((host.strip("[]"), port), timeout=timeout_s).close()
    except OSError as err:
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({err.strerror or type(err).__name__} within "
            f"{timeout_s:g} s); check --address or use --executor inprocess"
        ) from None


class RayExecutor:
    """Chunks as Ray tasks. ``address`` is a running cluster (``ray://host:10001`` or ``auto``); without one, a
    local Ray is started (``num_cpus`` caps it) and shut down again by ``close``. The shared inputs are put in the
    object store once, not shipped with every chunk."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._started = False

    def _ensure_started(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if self.address:
                _require_reachable(self.address)
                kwargs["address"] = self.address
            elif self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise UsageError(
                    f"cannot start {where}: {str(err).splitlines()[0] if str(err) else type(err).__name__}; "
                    "check --address or use --executor inprocess"
                ) from err
            self._started = True
        return ray

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_done: Progress | None = None,
    ) -> list[R]:
        if not items:
            return []
        ray = self._ensure_started()
        task = ray.remote(_guarded)
        shared_ref = ray.put(shared)
        refs = [task.remote(fn, shared_ref, item) for item in items]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            if on_done is not None:
                on_done(len(done))
        results: list[R | _Raised] = list(ray.get(refs))
        for result in results:
            if isinstance(result, _Raised):
                raise result.rebuilt()
        return cast(list[R], results)

    def close(self) -> None:
        """Shut down the local Ray this executor started (a cluster it joined keeps running)."""
        if self._started:
            _ray().shutdown()
            self._started = False


class ExecutorName(StrEnum):
    inprocess = "inprocess"
    ray = "ray"


EXECUTORS = tuple(str(e) for e in ExecutorName)


def make_executor(name: str, address: str | None = None) -> InProcessExecutor | RayExecutor:
    """The executor a ``--executor`` flag names; ``--address`` only means something for Ray."""
    if name == ExecutorName.inprocess:
        if address:
            raise UsageError("--address needs --executor ray (the in-process executor runs here)")
        return InProcessExecutor()
    if name == ExecutorName.ray:
        _ray()  # fail now, with the install hint, rather than after the sweep has started
        return RayExecutor(address)
    raise UsageError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


@contextmanager
def open_executor(name: str, address: str | None = None) -> Iterator[InProcessExecutor | RayExecutor]:
    """``make_executor``, and a local Ray it started shut down afterwards, whatever happens."""
    executor = make_executor(name, address)
    try:
        yield executor
    finally:
        if isinstance(executor, RayExecutor):
            executor.close()
