"""``servewise predict``: closed loop as a benchmark, open loop at a rate, provenance, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servewise.catalog import DataKind, load_packaged, parse_csv
from servewise.catalog._loader import to_record
from servewise.cli import _calibrate as cli_calibrate
from servewise.cli._predict import Backend
from servewise.perf import ANALYTICAL_PARAMS
from servewise.perf._benchpoint import BACKENDS, setup_for_point, simulate_point
from servewise.perf._calibrate import features_for_rows, fit_table
from servewise.types import Precision

from .conftest import GROUP_A, group_rows, write_csv

POINT = (
    "--model",
    "Llama-3.1-8B",
    "--gpu",
    "H100-SXM",
    "--precision",
    "bf16",
    "--isl",
    "1024",
    "--osl",
    "256",
)


@pytest.fixture
def analytical(monkeypatch: pytest.MonkeyPatch) -> None:
    """No packaged fit: predictions use the analytical defaults."""
    monkeypatch.setattr(cli_calibrate, "load_fitted_table", lambda path=None: None)


def _json(cli, *args: str) -> dict:
    code, out, err = cli("predict", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_backend_choices_are_the_simulated_backends():
    assert tuple(b.value for b in Backend) == BACKENDS


def test_closed_loop_is_the_benchmark_simulation(cli, analytical):
    document = _json(cli, *POINT, "--concurrency", "16")
    data = load_packaged(benchmarks=False)
    model = next(m for m in data.models if m.name == "Llama-3.1-8B")
    gpu = next(g for g in data.accelerators if g.name == "H100-SXM")
    setup = setup_for_point(model, gpu, Precision.bf16, "vllm", tp=1, isl=1024, osl=256, concurrency=16)
    assert not isinstance(setup, str)
    point = simulate_point(setup, ANALYTICAL_PARAMS)
    assert document["latency_ms"]["ttft"]["mean"] == pytest.approx(point.ttft_ms, abs=1e-3)
    assert document["latency_ms"]["tpot"]["mean"] == pytest.approx(point.tpot_ms, abs=1e-3)
    assert document["load"]["mode"] == "closed-loop" and document["load"]["concurrency"] == 16
    assert document["provenance"] == "analytical" and document["basis"] == ANALYTICAL_PARAMS.basis
    assert document["engine"]["max_num_seqs"] == 16
    for metric in ("ttft", "itl", "tpot", "e2e"):
        values = document["latency_ms"][metric]
        assert values["p50"] <= values["p90"] <= values["p95"] <= values["p99"], metric
    assert document["output_tokens_per_s"] > 0 and document["requests_per_s"] > 0
    assert 0 < document["peak_kv_usage"] <= 1 and document["preemptions"] == 0


def test_open_loop_queues_more_at_a_higher_rate(cli, analytical):
    light = _json(cli, *POINT, "--qps", "1")
    heavy = _json(cli, *POINT, "--qps", "60")
    assert light["load"] == light["load"] | {"mode": "open-loop", "qps": 1.0, "requests": 2000}
    assert light["latency_ms"]["ttft"]["p99"] < heavy["latency_ms"]["ttft"]["p99"]
    assert light["latency_ms"]["itl"]["p50"] < heavy["latency_ms"]["itl"]["p50"]
    # At 1 req/s the replica keeps up: it completes about one request per second (over the warmed-up run).
    assert light["requests_per_s"] == pytest.approx(1.0, rel=0.15)
    assert heavy["output_tokens_per_s"] > 10 * light["output_tokens_per_s"]


def test_a_lone_request_waits_the_same_however_it_arrives(cli):
    """With the packaged fit (whose TTFT has per-benchmark-client terms): a request alone in the engine sees the same
    TTFT from one closed-loop client as from a trickle of Poisson arrivals, which have no benchmark clients. Before
    open loop dropped those terms it was charged for max_num_seqs (1024) clients."""
    closed = _json(cli, *POINT, "--concurrency", "1", "--requests", "200")
    trickle = _json(cli, *POINT, "--qps", "0.2", "--requests", "200")
    c, o = closed["latency_ms"]["ttft"]["p50"], trickle["latency_ms"]["ttft"]["p50"]
    assert o == pytest.approx(c, rel=0.1)


def test_seed_and_requests_are_honoured(cli, analytical):
    first = _json(cli, *POINT, "--qps", "10", "--requests", "300", "--seed", "1")
    again = _json(cli, *POINT, "--qps", "10", "--requests", "300", "--seed", "1")
    other = _json(cli, *POINT, "--qps", "10", "--requests", "300", "--seed", "2")
    assert first == again
    assert first["latency_ms"] != other["latency_ms"]
    assert first["load"]["requests"] == 300 and first["completed"] == 300
    closed = _json(cli, *POINT, "--concurrency", "4", "--requests", "40")
    assert closed["load"]["requests"] == 40 and closed["completed"] == 40


def test_table_prints_every_metric_and_the_provenance(cli, analytical):
    code, out, _ = cli("predict", *POINT, "--concurrency", "8")
    assert code == 0
    for label in ("TTFT", "ITL", "TPOT", "E2E", "p50 ms", "p99 ms", "mean ms"):
        assert label in out
    assert "output tokens/s" in out and "preemptions: 0" in out and "peak KV cache use" in out
    assert "provenance: analytical; basis: analytical defaults" in out
    assert "16-bit KV cache" in out
    # fp8 weights: the benchmark rows' fp8 KV cache, and the text says that plan and deploy assume otherwise
    fp8 = [a if a != "bf16" else "fp8" for a in POINT]
    code, out, _ = cli("predict", *fp8, "--concurrency", "8")
    assert code == 0 and "fp8 KV cache (as the measured rows at this precision; plan and deploy assume" in out
    code, out, _ = cli("predict", *POINT, "--qps", "2", "--requests", "40")
    assert code == 0 and "the last requests' drain included" in out and "offered 2 req/s" in out


def test_calibration_table_supplies_the_parameters(cli, tmp_path: Path):
    rows_csv = write_csv(tmp_path / "a.csv", group_rows(GROUP_A))
    rows = [
        to_record(DataKind.benchmarks, v)
        for v in parse_csv(DataKind.benchmarks, rows_csv.read_text(encoding="utf-8"), path="a.csv")
    ]
    data = load_packaged(benchmarks=False)
    features, _ = features_for_rows(rows, data.models, data.accelerators, data.aliases)
    table = fit_table(features, fitted_on="2026-01-02")
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps(table.to_json()), encoding="utf-8")
    args = (
        "--model",
        "MiniMax-M2.5",
        "--gpu",
        "B200",
        "--precision",
        "fp4",
        "--isl",
        "1024",
        "--osl",
        "1024",
    )
    document = _json(cli, *args, "--concurrency", "8", "--calibration", str(fit))
    assert document["provenance"] == "calibrated"
    assert "B200/vllm/fp4" in document["basis"] and "2026-01-02" in document["basis"]
    assert str(fit) in document["calibration"]
    # The table's per-model correction for MiniMax-M2.5 (fitted on these rows) is folded into the prediction and
    # named in its provenance, exactly as `accuracy` applies it
    correction = table.correction_for("MiniMax-M2.5", "vllm")
    assert correction is not None
    assert document["correction"]["step_time_factor"] == pytest.approx(correction.step_time_factor, rel=1e-3)
    assert document["correction"]["prefill_factor"] == pytest.approx(correction.prefill_factor, rel=1e-3)
    assert "per-model correction" in document["basis"]
    other = _json(cli, *POINT, "--concurrency", "8", "--calibration", str(fit))
    assert other["correction"] is None and "per-model correction" not in other["basis"]
    # The same GPU on another backend has no rows in this table: the global fit applies, whose rows include this
    # GPU's on vllm, and the basis says so (not "other GPUs").
    document = _json(cli, *args, "--concurrency", "8", "--calibration", str(fit), "--backend", "sglang")
    assert document["provenance"] == "analytical"
    assert "rows of any GPU and engine, none of B200 on sglang" in document["basis"]


def test_expert_parallel_is_the_calibration_rows_all_to_all(cli, analytical):
    """--expert-parallel predicts what the calibration simulates for a row with moe_ep > 1: the same setup,
    with one all-to-all per MoE layer instead of the tensor-sliced experts."""
    moe = ("--model", "gpt-oss-20b", *POINT[2:], "--tp", "2", "--concurrency", "16")
    split = _json(cli, *moe, "--expert-parallel")
    sliced = _json(cli, *moe)
    assert split["expert_parallel"] is True and sliced["expert_parallel"] is False
    data = load_packaged(benchmarks=False)
    model = next(m for m in data.models if m.name == "gpt-oss-20b")
    gpu = next(g for g in data.accelerators if g.name == "H100-SXM")
    for document, expert_parallel in ((split, True), (sliced, False)):
        setup = setup_for_point(
            model, gpu, Precision.bf16, "vllm", tp=2, isl=1024, osl=256, concurrency=16,
            expert_parallel=expert_parallel,
        )  # fmt: skip
        assert not isinstance(setup, str)
        point = simulate_point(setup, ANALYTICAL_PARAMS)
        assert document["latency_ms"]["tpot"]["mean"] == pytest.approx(point.tpot_ms, abs=1e-3)
    assert split["latency_ms"]["tpot"]["mean"] != sliced["latency_ms"]["tpot"]["mean"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (POINT, "give exactly one of --concurrency"),
        ((*POINT, "--concurrency", "4", "--qps", "2"), "give exactly one of --concurrency"),
        ((*POINT, "--qps", "0"), "--qps must be a positive number"),
        (
            ("--model", "Lama-3.1-8B", *POINT[2:], "--qps", "1"),
            "unknown model 'Lama-3.1-8B'; did you mean 'Llama-3.1-8B'",
        ),
        (
            ("--model", "Llama-3.1-8B", "--gpu", "H300", *POINT[4:], "--qps", "1"),
            "unknown gpu 'H300'; did you mean",
        ),
        (
            ("--model", "Llama-3.1-8B", "--gpu", "T4", "--precision", "fp4", *POINT[6:], "--qps", "1"),
            "T4 has no fp4 tensor cores and no weight-only fp4 kernels",
        ),
        (
            ("--model", "Llama-3.1-405B", "--gpu", "L4", *POINT[4:], "--qps", "1"),
            "does not fit by the memory model: weights need",
        ),
        ((*POINT, "--tp", "3", "--qps", "1"), "--tp 3 does not split Llama-3.1-8B's 32 attention heads"),
        ((*POINT, "--qps", "1", "--backend", "tgi"), "tgi"),
        ((*POINT, "--tp", "2", "--qps", "1", "--expert-parallel"), "Llama-3.1-8B is dense: drop it"),
        (
            ("--model", "gpt-oss-20b", *POINT[2:], "--qps", "1", "--expert-parallel"),
            "--expert-parallel needs more than one GPU per replica",
        ),
        (
            (
                "--model",
                "Mistral-7B-v0.3",
                "--gpu",
                "H100-SXM",
                "--precision",
                "bf16",
                "--isl",
                "32700",
                "--osl",
                "100",
                "--concurrency",
                "1",
            ),
            "Mistral-7B-v0.3's context is 32768 tokens; --isl 32700 + --osl 100 = 32800 do not fit",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, message):
    code, out, err = cli("predict", *args)
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
