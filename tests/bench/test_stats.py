"""Statistics of a level from hand-made request records: the definitions of docs/bench.md, one by one."""

from __future__ import annotations

import numpy as np
import pytest

from servewise.bench import RequestRecord, RequestShape, distribution, summarize

SHAPE = RequestShape(100, 5)


def _record(start: float, times: tuple[float, ...], *, output: int | None = None, prompt: int | None = None,
            error: str | None = None) -> RequestRecord:  # fmt: skip
    end = times[-1] if times else start + 1.0
    return RequestRecord(SHAPE, start, times, end, prompt_tokens=prompt, output_tokens=output, error=error)


def test_distribution_is_numpy_linear_percentiles_in_ms():
    samples = [0.010, 0.020, 0.030, 0.040, 0.100]
    d = distribution(samples)
    expected = np.percentile(np.array(samples) * 1000, [50, 90, 95, 99])
    assert [d.p50_ms, d.p90_ms, d.p95_ms, d.p99_ms] == pytest.approx(expected)
    assert d.mean_ms == pytest.approx(40.0)
    assert d.count == 5
    assert d.as_dict() == {"p50": 30.0, "p90": 76.0, "p95": 88.0, "p99": 97.6, "mean": 40.0}


def test_no_samples_give_none_not_zero():
    d = distribution([])
    assert d.as_dict() == {"p50": None, "p90": None, "p95": None, "p99": None, "mean": None}


def test_ttft_itl_tpot_e2e_follow_the_documented_definitions():
    # Sent at 10.0; three chunks at 10.2, 10.3, 10.6 carrying five tokens (usage says 5).
    record = _record(10.0, (10.2, 10.3, 10.6), output=5, prompt=120)
    stats = summarize([record])
    assert stats.ttft.mean_ms == pytest.approx(200.0)
    assert stats.e2e.mean_ms == pytest.approx(600.0)
    # ITL: one sample per chunk gap (100 ms and 300 ms), not per token.
    assert stats.itl.count == 2
    assert stats.itl.mean_ms == pytest.approx(200.0)
    # TPOT divides by the server's token count less one: (0.6 - 0.2) / 4.
    assert stats.tpot.mean_ms == pytest.approx(100.0)
    assert stats.mean_output_tokens == 5
    assert stats.mean_prompt_tokens == 120


def test_without_usage_the_chunks_are_counted_and_the_requested_prompt_used():
    stats = summarize([_record(0.0, (0.1, 0.2, 0.3))])
    assert stats.mean_output_tokens == 3
    assert stats.tpot.mean_ms == pytest.approx(100.0)
    assert stats.mean_prompt_tokens == SHAPE.prompt_tokens


def test_failed_requests_count_in_the_window_and_errors_but_not_in_latencies():
    ok = [_record(0.0, (0.5, 1.0), output=2), _record(1.0, (1.5, 2.0), output=2)]
    failed = [
        _record(2.0, (), error="HTTP 500: engine died"),
        _record(2.5, (), error="HTTP 500: engine died"),
    ]
    stats = summarize([*ok, *failed])
    assert (stats.requests, stats.completed, stats.failed) == (4, 2, 2)
    assert stats.duration_s == pytest.approx(3.5)  # first send 0.0 to the last failure at 3.5
    assert stats.requests_per_s == pytest.approx(2 / 3.5)
    assert stats.output_tokens_per_s == pytest.approx(4 / 3.5)
    assert stats.total_tokens_per_s == pytest.approx((4 + 2 * SHAPE.prompt_tokens) / 3.5)
    assert stats.ttft.count == 2
    assert stats.errors == (("HTTP 500: engine died", 2),)


def test_one_token_requests_have_no_tpot_and_no_itl():
    stats = summarize([_record(0.0, (0.25,), output=1)])
    assert stats.ttft.mean_ms == pytest.approx(250.0)
    assert stats.tpot.count == 0 and stats.itl.count == 0


def test_an_empty_level_has_zero_throughput():
    stats = summarize([])
    assert stats.requests_per_s == 0.0 and stats.completed == 0 and stats.ttft.mean_ms is None
