"""Value ranges every catalog row must satisfy, packaged or imported, checked when a CSV is parsed.

Why at parse time and not in the math: one imported GPU with ``memory_bw_gbps = 0`` would make every later plan
divide by zero, and an offer priced at 0 would break the cost ranking, long after the import that caused it.
Checked here, the error names the file, line, column, value and rule, and nothing is written.

Rules (an empty optional cell is not checked):

- accelerators: ``memory_gb``, ``memory_bw_gbps``, ``intra_node_bw_gbps`` and every ``*_tflops`` / ``*_tops``
  > 0; ``max_per_node`` ≥ 1.
- models: ``params_b``, ``active_params_b``, ``num_layers``, ``hidden_size``, ``num_attention_heads``,
  ``num_kv_heads``, ``vocab_size``, ``max_context``, ``kv_bytes_per_token_fp16`` > 0;
  ``active_params_b`` ≤ ``params_b``; ``moe_top_k`` ≤ ``moe_num_experts``; ``sliding_window_tokens`` and
  ``sliding_layers`` ≥ 1, given together, and ``sliding_layers`` ≤ ``num_layers``.
- cloud offers: ``gpu_count`` ≥ 0 (CPU-only instances); ``price_per_hour_usd`` and ``spot_price_per_hour_usd``
  > 0.
- CPU specs: ``vcpus``, ``physical_cores``, ``socket_cores`` ≥ 1; bandwidths, ``bf16_tflops``, ``int8_tops`` > 0;
  ``physical_cores`` ≤ ``socket_cores`` and ``memory_bw_gbps`` ≤ ``socket_memory_bw_gbps``.
- API prices: every ``*_per_1m_usd`` ≥ 0 (free tiers exist).
- benchmarks: ``ttft_ms``, ``tpot_ms`` > 0; ``tp``, ``isl``, ``osl``, ``concurrency`` ≥ 1.
- use cases: every number > 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._records import Accelerator, ApiPrice, BenchmarkRow, CloudOffer, CpuSpec, ModelSpec, UseCaseTemplate

__all__ = ["INT_MAX", "INT_MIN", "range_problems"]

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
"""The range of an SQL ``INTEGER`` column on PostgreSQL; SQLite would store more, so both reject the same files."""


@dataclass(frozen=True, slots=True)
class _Bound:
    low: float
    inclusive: bool

    def holds(self, value: float) -> bool:
        return value >= self.low if self.inclusive else value > self.low

    def __str__(self) -> str:
        return f"must be {'>=' if self.inclusive else '>'} {self.low:g}"


_POSITIVE = _Bound(0, inclusive=False)
_NON_NEGATIVE = _Bound(0, inclusive=True)
_AT_LEAST_ONE = _Bound(1, inclusive=True)


def _all(bound: _Bound, *columns: str) -> dict[str, _Bound]:
    return dict.fromkeys(columns, bound)


_BOUNDS: dict[type[Any], dict[str, _Bound]] = {
    Accelerator: {
        **_all(_POSITIVE, "memory_gb", "memory_bw_gbps", "intra_node_bw_gbps"),
        **_all(_POSITIVE, "fp16_tflops", "bf16_tflops", "fp8_tflops", "int8_tops", "fp4_tflops"),
        "max_per_node": _AT_LEAST_ONE,
    },
    ModelSpec: {
        **_all(
            _POSITIVE,
            "params_b",
            "active_params_b",
            "num_layers",
            "hidden_size",
            "num_attention_heads",
            "num_kv_heads",
            "vocab_size",
            "max_context",
            "kv_bytes_per_token_fp16",
        ),
        **_all(_AT_LEAST_ONE, "sliding_window_tokens", "sliding_layers"),
    },
    CloudOffer: {
        "gpu_count": _NON_NEGATIVE,
        **_all(_POSITIVE, "price_per_hour_usd", "spot_price_per_hour_usd"),
    },
    CpuSpec: {
        **_all(_AT_LEAST_ONE, "vcpus", "physical_cores", "socket_cores"),
        **_all(_POSITIVE, "socket_memory_bw_gbps", "memory_bw_gbps", "bf16_tflops", "int8_tops"),
    },
    ApiPrice: _all(_NON_NEGATIVE, "input_per_1m_usd", "output_per_1m_usd", "cached_input_per_1m_usd"),
    BenchmarkRow: {
        **_all(_POSITIVE, "ttft_ms", "tpot_ms"),
        **_all(_AT_LEAST_ONE, "tp", "isl", "osl", "concurrency"),
    },
    UseCaseTemplate: _all(
        _POSITIVE, "prompt_tokens", "output_tokens", "ttft_p95_ms", "itl_p95_ms", "e2e_p95_ms", "min_params_b"
    ),
}

_NOT_ABOVE: dict[type[Any], tuple[tuple[str, str], ...]] = {
    ModelSpec: (
        ("active_params_b", "params_b"),
        ("moe_top_k", "moe_num_experts"),
        ("sliding_layers", "num_layers"),
    ),
    CpuSpec: (("physical_cores", "socket_cores"), ("memory_bw_gbps", "socket_memory_bw_gbps")),
}
"""(column, limit column): the column's value may not exceed the limit column's value in the same row."""

_TOGETHER: dict[type[Any], tuple[tuple[str, str], ...]] = {
    ModelSpec: (("sliding_window_tokens", "sliding_layers"),),
}
"""Columns that mean nothing alone: a row gives both or neither."""


def range_problems(record: type[Any], values: Mapping[str, Any], cells: Mapping[str, Any]) -> list[str]:
    """``column X: got '0', must be > 0`` for each value of one parsed row that breaks a rule.

    ``values`` are the typed cells (a column that failed to parse is absent), ``cells`` the row's text as read,
    so the message quotes what the file says.
    """
    problems = []
    for column, bound in _BOUNDS.get(record, {}).items():
        value = values.get(column)
        if value is not None and not bound.holds(value):
            problems.append(f"column {column}: got {_text(cells, column)!r}, {bound}")
    for column, limit in _NOT_ABOVE.get(record, ()):
        value, ceiling = values.get(column), values.get(limit)
        if value is not None and ceiling is not None and value > ceiling:
            problems.append(
                f"column {column}: got {_text(cells, column)!r}, must be <= {limit} ({_text(cells, limit)})"
            )
    for first, second in _TOGETHER.get(record, ()):
        if (values.get(first) is None) != (values.get(second) is None):
            given, missing = (first, second) if values.get(first) is not None else (second, first)
            problems.append(
                f"column {missing}: a value is required when {given} is given ({_text(cells, given)})"
            )
    return problems


def _text(cells: Mapping[str, Any], column: str) -> str:
    return str(cells.get(column) or "").strip()
