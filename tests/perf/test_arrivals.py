"""Request streams: arrival statistics, length draws, closed-loop weights, seeds and trace files."""

import math

import numpy as np
import pytest

from servewise.errors import UsageError
from servewise.perf._arrivals import (
    ClosedLoop,
    OpenLoop,
    closed_loop,
    gamma_arrivals,
    load_trace,
    poisson_arrivals,
    sampled_lengths,
    uniform_lengths,
)


def _gaps(workload: OpenLoop) -> np.ndarray:
    return np.diff([r.arrival_s for r in workload.requests])


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_gaps_have_the_asked_rate_and_burstiness(cv):
    workload = gamma_arrivals(20.0, 40_000, uniform_lengths(100, 10), cv=cv, seed=1)
    gaps = _gaps(workload)
    assert workload.requests[0].arrival_s == 0.0
    assert np.all(gaps >= 0)
    assert gaps.mean() == pytest.approx(1 / 20.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)
    assert workload.warmup == 4_000


def test_poisson_is_gamma_with_cv_one():
    lengths = uniform_lengths(500, 100, 0.5)
    assert poisson_arrivals(5.0, 100, lengths, seed=3) == gamma_arrivals(5.0, 100, lengths, cv=1.0, seed=3)


def test_same_seed_same_stream_and_a_new_seed_a_new_one():
    lengths = uniform_lengths(500, 100, 0.5)
    a = poisson_arrivals(5.0, 200, lengths, seed=7)
    assert a == poisson_arrivals(5.0, 200, lengths, seed=7)
    b = poisson_arrivals(5.0, 200, lengths, seed=8)
    assert [r.arrival_s for r in a.requests] != [r.arrival_s for r in b.requests]
    assert [r.prompt_tokens for r in a.requests] != [r.prompt_tokens for r in b.requests]
    assert closed_loop(4, 50, lengths, seed=7) == closed_loop(4, 50, lengths, seed=7)
    assert closed_loop(4, 50, lengths, seed=7) != closed_loop(4, 50, lengths, seed=8)


def test_uniform_lengths_stay_in_the_range_ratio_band():
    rng = np.random.default_rng(0)
    prompts, outputs = uniform_lengths(1000, 200, 0.8)(rng, 5000)
    assert prompts.min() == 800 and prompts.max() == 1000
    assert outputs.min() == 160 and outputs.max() == 200
    fixed_prompts, fixed_outputs = uniform_lengths(1000, 200)(rng, 10)
    assert set(fixed_prompts) == {1000} and set(fixed_outputs) == {200}


def test_sampled_lengths_follow_the_quantile_functions_and_are_at_least_one():
    lengths = sampled_lengths(lambda u: 100 + 900 * u, lambda u: 0.0)
    workload = poisson_arrivals(1.0, 2000, lengths, seed=2)
    prompts = np.array([r.prompt_tokens for r in workload.requests])
    assert prompts.min() >= 100 and prompts.max() <= 1000
    assert prompts.mean() == pytest.approx(550, rel=0.03)
    assert {r.output_tokens for r in workload.requests} == {1}  # a zero draw still asks for one token


def test_closed_loop_weights_sum_to_one_and_weigh_the_first_wave():
    lengths = uniform_lengths(100, 10)
    even = closed_loop(8, 40, lengths)
    assert isinstance(even, ClosedLoop) and even.concurrency == 8
    assert sum(r.weight for r in even.requests) == pytest.approx(1.0)
    assert len({r.weight for r in even.requests}) == 1
    waves = closed_loop(8, 40, lengths, first_wave_weight=0.1)
    weights = [r.weight for r in waves.requests]
    assert sum(weights) == pytest.approx(1.0)
    assert sum(weights[:8]) == pytest.approx(0.1) and sum(weights[8:]) == pytest.approx(0.9)
    small = closed_loop(8, 5, lengths, first_wave_weight=0.1)  # fewer requests than clients: one wave
    assert sum(r.weight for r in small.requests) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rate", "cv"), [(0.0, 1.0), (-1.0, 1.0), (math.inf, 1.0), (math.nan, 1.0), (1.0, 0.0)]
)
def test_bad_rates_and_burstiness_are_usage_errors(rate, cv):
    with pytest.raises(UsageError) as err:
        gamma_arrivals(rate, 10, uniform_lengths(10, 10), cv=cv)
    assert "\n" not in str(err.value)


# -- traces --------------------------------------------------------------------------------------------------


def test_a_trace_loads_in_time_order_with_spaces_and_extra_columns(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(
        "time_s, prompt_tokens, output_tokens, user\n2.5, 100, 20, b\n0, 300, 5, a\n\n1.25, 50, 1, c\n"
    )
    workload = load_trace(path)
    assert [(r.arrival_s, r.prompt_tokens, r.output_tokens) for r in workload.requests] == [
        (0.0, 300, 5),
        (1.25, 50, 1),
        (2.5, 100, 20),
    ]
    assert workload.warmup == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time_s,prompt_tokens,output_tokens\n0,100,10\n1,abc,10\n", ":3: expected a number"),
        ("time_s,prompt_tokens,output_tokens\n0,100,10\n\n1,100\n", ":4: expected a number"),
        ("time_s,prompt_tokens,output_tokens\n0,100.5,10\n", ":2: expected a number"),
        ("time_s,prompt_tokens,output_tokens\n0,0,10\n", ":2: token counts must be >= 1"),
        ("time_s,prompt_tokens,output_tokens\n-1,10,10\n", ":2: token counts must be >= 1 and time_s"),
        (
            "time_s,prompt_tokens,output_tokens\nnan,10,10\n",
            ":2: token counts must be >= 1 and time_s a finite",
        ),
        ("time_s,prompt,output\n0,10,10\n", "the header lacks prompt_tokens, output_tokens"),
        ("time_s,prompt_tokens,output_tokens\n", "the trace has no requests"),
        ("", "the trace has no requests"),
        ("time_s,prompt_tokens,output_tokens\n0," + "9" * 200_000 + ",1\n", "not a CSV text file"),
    ],
    ids=[
        "word",
        "short-row",
        "fraction",
        "zero-tokens",
        "negative-time",
        "nan-time",
        "header",
        "no-rows",
        "empty",
        "huge-field",
    ],
)
def test_a_malformed_trace_is_a_one_line_usage_error(tmp_path, text, message):
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as err:
        load_trace(path)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_an_unreadable_trace_is_a_one_line_usage_error(tmp_path):
    binary = tmp_path / "trace.csv"
    binary.write_bytes(b"time_s,prompt_tokens,output_tokens\n0,\xff\xfe,1\n")
    with pytest.raises(UsageError, match="not a CSV text file") as err:
        load_trace(binary)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="cannot read trace") as err:
        load_trace(tmp_path / "missing.csv")
    assert "\n" not in str(err.value)
