"""``servewise predict``: latency percentiles and throughput of one configuration under one load.

Closed loop (``--concurrency C``): C clients each send their next request when the previous one completes, as a
benchmark (and every measured row) does; without ``--requests`` the run is the benchmark's own (the set-up
``accuracy`` and ``calibrate`` simulate). Open loop (``--qps Q``): Poisson arrivals at Q requests/s, the first 10 %
of the requests warm the engine up and are left out of the percentiles. Both replay the scheduler simulation with
the step model's efficiencies for (GPU, backend, precision) from the calibration table, or the analytical defaults.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.catalog import open_catalog
from servewise.perf import (
    DEFAULT_OPEN_LOOP_REQUESTS,
    PREDICT_METRICS,
    PREDICT_QUANTILES,
    placement_text,
    predict_point,
    tp_reason,
)
from servewise.types import Precision

from ._calibrate import load_calibration
from ._output import Column, OutputFormat, render, stdout_console

__all__ = ["Backend", "predict_command", "tp_reason"]


class Backend(StrEnum):
    """Serving engines the simulation sets up (``perf._benchpoint.BACKENDS``)."""

    vllm = "vllm"
    sglang = "sglang"
    trtllm = "trtllm"


_COLUMNS = (
    Column("metric", "metric"),
    *(Column(f"p{q}", f"p{q} ms", numeric=True) for q in PREDICT_QUANTILES),
    Column("mean", "mean ms", numeric=True),
)


def _print(document: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _COLUMNS, fmt, json_document=document)
        return
    rows = [{"metric": label, **document["latency_ms"][metric]} for metric, label in PREDICT_METRICS]
    load = document["load"]
    shape = f"{load['isl']}->{load['osl']} tokens"
    how = (
        f"{load['concurrency']} concurrent clients"
        if load["mode"] == "closed-loop"
        else f"{load['qps']:g} req/s Poisson"
    )
    title = (
        f"{document['model']} {document['precision']} on "
        f"{placement_text(document['tp'], document['dp'], document['gpu'])}"
        f" ({document['backend']}{', expert-parallel' if document['expert_parallel'] else ''}): {how}, {shape}"
    )
    render(rows, _COLUMNS, fmt, title=title)
    if fmt is OutputFormat.csv:
        return
    engine = document["engine"]
    peak = document["peak_kv_usage"]
    lines = [
        f"throughput: {document['output_tokens_per_s']:,.0f} output tokens/s, "
        f"{document['requests_per_s']:.3g} requests/s ({document['completed']} requests completed"
        + (
            "; over the whole run, the last requests' drain included, as `vllm bench serve` counts: below the "
            f"offered {load['qps']:g} req/s even when the replica keeps up)"
            if load["mode"] == "open-loop"
            else ")"
        ),
        f"preemptions: {document['preemptions']}; peak KV cache use: "
        f"{'n/a' if peak is None else f'{peak:.0%}'} of {engine['kv_blocks']:,} blocks x {engine['block_size']} "
        f"tokens; dropped (longer than the cache): {document['dropped']}",
        f"engine (per data-parallel rank): max_num_seqs {engine['max_num_seqs']}, token budget "
        f"{engine['max_num_batched_tokens']}, "
        + (
            "fp8 KV cache (as the measured rows at this precision; plan and deploy assume vLLM's default 16-bit)"
            if engine["kv_cache_bytes_per_element"] == 1
            else "16-bit KV cache"
        ),
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
    expert_parallel: Annotated[
        bool,
        typer.Option(
            "--expert-parallel",
            help="MoE: split the experts by expert over the replica's GPUs (all-to-all), not by tensor",
        ),
    ] = False,
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
    with open_catalog(db_url) as catalog:
        spec = catalog.model(model)
        accelerator = catalog.accelerator(gpu)
    document = predict_point(
        spec,
        accelerator,
        precision,
        str(backend),
        isl=isl,
        osl=osl,
        tp=tp,
        dp=dp,
        concurrency=concurrency,
        qps=qps,
        requests=requests,
        max_num_seqs=max_num_seqs,
        seed=seed,
        calibration=load_calibration(calibration),
        expert_parallel=expert_parallel,
    )
    _print(document, fmt)
