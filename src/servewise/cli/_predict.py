"""``servewise predict``: latency percentiles and throughput of one configuration under one load.

Closed loop (``--concurrency C``): C clients each send their next request when the previous one completes, as a
benchmark (and every measured row) does; without ``--requests`` the run is the benchmark's own (the set-up
``accuracy`` and ``calibrate`` simulate). Open loop (``--qps Q``): Poisson arrivals at Q requests/s, the first 10 %
of the requests warm the engine up and are left out of the percentiles. Both replay the scheduler simulation with
the step model's efficiencies for (GPU, backend, precision) from the calibration table, or the analytical defaults.
"""

from __future__ import annotations

import dataclasses
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape

from servewise.catalog import ModelSpec, open_catalog
from servewise.errors import UsageError
from servewise.perf import ANALYTICAL_PARAMS, StepParams, default_engine_settings
from servewise.perf._arrivals import closed_loop, poisson_arrivals, uniform_lengths
from servewise.perf._benchpoint import RANGE_RATIO, BenchmarkSetup, setup_for_point, step_model_for
from servewise.perf._scheduler import SimResult, simulate
from servewise.types import Precision

from ._calibrate import load_calibration
from ._output import Column, OutputFormat, render, stdout_console

__all__ = ["Backend", "predict_command", "tp_reason"]

DEFAULT_OPEN_LOOP_REQUESTS = 2000
QUANTILES = (50, 90, 95, 99)
METRICS = (("ttft", "TTFT"), ("itl", "ITL"), ("tpot", "TPOT"), ("e2e", "E2E"))


class Backend(StrEnum):
    """Serving engines the simulation sets up (``perf._benchpoint.BACKENDS``)."""

    vllm = "vllm"
    sglang = "sglang"
    trtllm = "trtllm"


def tp_reason(model: ModelSpec, tp: int) -> str | None:
    """Why ``tp`` cannot serve ``model`` (vLLM splits attention heads evenly and splits or replicates KV heads;
    MLA keeps one latent per rank), or None."""
    kv = model.num_kv_heads
    if model.num_attention_heads % tp == 0 and (model.is_mla or kv % tp == 0 or tp % kv == 0):
        return None
    valid = [t for t in (1, 2, 4, 8, 16) if tp_reason(model, t) is None]
    return (
        f"--tp {tp} does not split {model.name}'s {model.num_attention_heads} attention heads and {kv} KV heads "
        f"evenly; valid: {', '.join(map(str, valid))}"
    )


def _placement(tp: int, dp: int, gpu: str) -> str:
    return f"{tp}x{gpu}" + (f" x dp{dp}" if dp > 1 else "")


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    if values.size == 0 or float(weights.sum()) <= 0:
        return math.nan
    return float(np.average(values, weights=weights))


def _latency(result: SimResult) -> dict[str, dict[str, float | None]]:
    """p50/p90/p95/p99 and mean of each metric, in ms (None where no request produced one)."""

    def ms(seconds: float) -> float | None:
        return round(seconds * 1000.0, 3) if math.isfinite(seconds) else None

    out: dict[str, dict[str, float | None]] = {}
    for metric, _ in METRICS:
        values = {f"p{q}": ms(result.percentile(metric, q)) for q in QUANTILES}
        mean = _weighted_mean(result.itl_s, result.itl_weight) if metric == "itl" else result.mean(metric)
        values["mean"] = ms(mean)
        out[metric] = values
    return out


def _params_for(setup: BenchmarkSetup, calibration: Path | None) -> tuple[StepParams, str]:
    table, label = load_calibration(calibration)
    if table is None:
        return ANALYTICAL_PARAMS, label
    return table.params_for(setup.gpu.name, setup.backend, str(setup.precision)), label


def _document(
    setup: BenchmarkSetup,
    result: SimResult,
    params: StepParams,
    calibration: str,
    load: dict[str, Any],
) -> dict[str, Any]:
    dp = setup.dp
    return {
        "model": setup.model.name,
        "gpu": setup.gpu.name,
        "tp": setup.tp,
        "dp": dp,
        "precision": str(setup.precision),
        "backend": setup.backend,
        "load": load,
        "latency_ms": _latency(result),
        "output_tokens_per_s": round(result.output_tokens_per_s * dp, 2),
        "requests_per_s": round(result.requests_per_s * dp, 4),
        "completed": result.completed,
        "preemptions": result.preemptions,
        "dropped": result.dropped,
        "peak_kv_usage": round(result.peak_kv_blocks / result.kv_blocks, 4) if result.kv_blocks else None,
        "engine": {
            "max_num_seqs": setup.engine.max_num_seqs,
            "max_num_batched_tokens": setup.engine.max_num_batched_tokens,
            "kv_blocks": setup.engine.kv_blocks,
            "block_size": setup.engine.block_size,
            "kv_cache_bytes_per_element": setup.kv_bytes,
        },
        "provenance": str(params.provenance),
        "basis": params.basis,
        "calibration": calibration,
    }


_COLUMNS = (
    Column("metric", "metric"),
    *(Column(f"p{q}", f"p{q} ms", numeric=True) for q in QUANTILES),
    Column("mean", "mean ms", numeric=True),
)


def _print(document: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _COLUMNS, fmt, json_document=document)
        return
    rows = [{"metric": label, **document["latency_ms"][metric]} for metric, label in METRICS]
    load = document["load"]
    shape = f"{load['isl']}->{load['osl']} tokens"
    how = (
        f"{load['concurrency']} concurrent clients"
        if load["mode"] == "closed-loop"
        else f"{load['qps']:g} req/s Poisson"
    )
    title = (
        f"{document['model']} {document['precision']} on {_placement(document['tp'], document['dp'], document['gpu'])}"
        f" ({document['backend']}): {how}, {shape}"
    )
    render(rows, _COLUMNS, fmt, title=title)
    if fmt is OutputFormat.csv:
        return
    engine = document["engine"]
    peak = document["peak_kv_usage"]
    lines = [
        f"throughput: {document['output_tokens_per_s']:,.0f} output tokens/s, "
        f"{document['requests_per_s']:.3g} requests/s ({document['completed']} requests completed)",
        f"preemptions: {document['preemptions']}; peak KV cache use: "
        f"{'n/a' if peak is None else f'{peak:.0%}'} of {engine['kv_blocks']:,} blocks x {engine['block_size']} "
        f"tokens; dropped (longer than the cache): {document['dropped']}",
        f"engine (per data-parallel rank): max_num_seqs {engine['max_num_seqs']}, token budget "
        f"{engine['max_num_batched_tokens']}, {'fp8' if engine['kv_cache_bytes_per_element'] == 1 else '16-bit'} "
        "KV cache",
        f"load: {load['requests']} requests simulated"
        + (f" on one of {document['dp']} data-parallel ranks" if document["dp"] > 1 else "")
        + f", seed {load['seed']}"
        + ("; the first 10% warm up and are left out" if load["mode"] == "open-loop" else ""),
        f"provenance: {document['provenance']}; basis: {document['basis']}",
        f"calibration: {document['calibration']}",
    ]
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(escape(line), style="bold" if line.startswith("provenance") else "dim", highlight=False)


def predict_command(
    model: Annotated[str, typer.Option("--model", help="model name or Hugging Face id")],
    gpu: Annotated[str, typer.Option("--gpu", help="GPU name, e.g. H100-SXM")],
    precision: Annotated[Precision, typer.Option("--precision", help="weight precision")],
    isl: Annotated[int, typer.Option("--isl", min=1, help="prompt tokens (each request: 80-100% of it)")],
    osl: Annotated[int, typer.Option("--osl", min=1, help="output tokens (each request: 80-100% of it)")],
    tp: Annotated[int, typer.Option("--tp", min=1, help="tensor-parallel GPUs per replica")] = 1,
    dp: Annotated[int, typer.Option("--dp", min=1, help="attention data-parallel ranks")] = 1,
    backend: Annotated[Backend, typer.Option("--backend", help="serving engine")] = Backend.vllm,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="closed loop: concurrent clients")
    ] = None,
    qps: Annotated[float | None, typer.Option("--qps", help="open loop: Poisson requests per second")] = None,
    requests: Annotated[
        int | None,
        typer.Option(
            "--requests",
            min=1,
            help=f"requests to simulate (open loop default {DEFAULT_OPEN_LOOP_REQUESTS}; closed loop: "
            "the benchmark's run)",
        ),
    ] = None,
    max_num_seqs: Annotated[
        int | None,
        typer.Option("--max-num-seqs", min=1, help="engine sequence cap per rank (default: the engine's)"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="random seed of the request lengths and arrivals")] = 0,
    calibration: Annotated[
        Path | None,
        typer.Option("--calibration", help="calibration table JSON (default: the packaged fit)"),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
) -> None:
    """Predict TTFT/ITL/TPOT/E2E percentiles and throughput of one configuration at a concurrency or a rate."""
    if (concurrency is None) == (qps is None):
        raise UsageError(
            "give exactly one of --concurrency (closed loop, as a benchmark) or --qps (open loop, Poisson)"
        )
    if qps is not None and not (qps > 0 and math.isfinite(qps)):
        raise UsageError(f"--qps must be a positive number of requests per second (got {qps})")
    with open_catalog(db_url) as catalog:
        spec = catalog.model(model)
        accelerator = catalog.accelerator(gpu)
    reason = tp_reason(spec, tp)
    if reason:
        raise UsageError(reason)
    if concurrency is None:
        # Open loop: the engine's own sequence cap (vLLM's default for this GPU), per data-parallel rank.
        clients = (max_num_seqs or default_engine_settings(accelerator).max_num_seqs) * dp
    else:
        clients = concurrency
    setup = setup_for_point(
        spec,
        accelerator,
        precision,
        str(backend),
        tp=tp,
        dp=dp,
        isl=isl,
        osl=osl,
        concurrency=clients,
        max_num_seqs=max_num_seqs,
        seed=seed,
    )
    if isinstance(setup, str):
        raise UsageError(f"{spec.name} {precision} on {_placement(tp, dp, accelerator.name)}: {setup}")
    if qps is not None:
        # The fitted per-client frontend terms describe a benchmark's pool of concurrent clients; an open-loop rate
        # has none, as in the planner's open-loop capacity.
        setup = dataclasses.replace(setup, clients=0)
    params, calibration_label = _params_for(setup, calibration)
    lengths = uniform_lengths(isl, osl, RANGE_RATIO)
    workload: Any
    if qps is not None:
        n = requests or DEFAULT_OPEN_LOOP_REQUESTS
        workload = poisson_arrivals(qps / dp, n, lengths, seed=seed)
        load: dict[str, Any] = {"mode": "open-loop", "qps": qps, "concurrency": None}
    else:
        workload = setup.workload
        if requests is not None:
            workload = closed_loop(setup.workload.concurrency, requests, lengths, seed=seed)
        n = len(workload.requests)
        load = {"mode": "closed-loop", "qps": None, "concurrency": concurrency}
    load |= {"isl": isl, "osl": osl, "requests": n, "seed": seed, "range_ratio": RANGE_RATIO}
    result = simulate(step_model_for(setup, params), setup.engine, workload)
    _print(_document(setup, result, params, calibration_label, load), fmt)
