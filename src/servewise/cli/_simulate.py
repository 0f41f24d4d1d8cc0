"""``servewise simulate``: serve an OpenAI-compatible API whose token timing is the scheduler simulation of one
configuration (a plan option, or model/GPU/TP/precision/backend), for load generators and clients to test against.
See docs/simulator.md."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from servewise.errors import UsageError
from servewise.planner import load_plan_document
from servewise.simulator import SimulatorConfig, config_from_plan, serve, simulator_config

from ._predict import Backend

__all__ = ["simulate_command"]


def simulate_command(
    plan: Annotated[
        Path | None, typer.Option("--plan", help="plan JSON (servewise plan -o) to simulate")
    ] = None,
    option: Annotated[int, typer.Option("--option", min=1, help="rank of the plan option (1 = best)")] = 1,
    model: Annotated[str | None, typer.Option("--model", help="model name or Hugging Face id")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="GPU name, e.g. L4")] = None,
    tp: Annotated[int, typer.Option("--tp", min=1, help="tensor-parallel GPUs per replica")] = 1,
    precision: Annotated[
        str | None, typer.Option("--precision", help="weight precision (default: 16-bit)")
    ] = None,
    backend: Annotated[Backend, typer.Option("--backend", help="serving engine")] = Backend.vllm,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port to listen on")] = 8000,
    speed: Annotated[
        float, typer.Option("--speed", help="simulated seconds per wall second (10: ten times faster)")
    ] = 1.0,
    max_waiting: Annotated[
        int | None, typer.Option("--max-waiting", min=0, help="refuse requests with 503 beyond this queue")
    ] = None,
    max_num_seqs: Annotated[
        int | None, typer.Option("--max-num-seqs", min=1, help="engine sequence cap (default: vLLM's)")
    ] = None,
    max_model_len: Annotated[
        int | None, typer.Option("--max-model-len", min=2, help="longest prompt + output (default: model/KV)")
    ] = None,
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", min=1, help="output length when a request sets no max_tokens")
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", help="seed of drawn output lengths")] = 0,
    served_model_name: Annotated[
        str | None,
        typer.Option("--served-model-name", help="model name to serve (default: the Hugging Face id)"),
    ] = None,
    legacy_metrics: Annotated[
        bool,
        typer.Option(
            "--legacy-metrics",
            help="also expose vllm:gpu_cache_usage_perc and vllm:time_per_output_token_seconds (removed in vLLM)",
        ),
    ] = False,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
) -> None:
    """Serve a simulated vLLM replica: OpenAI API, /metrics with vLLM's names, token timing from the simulation."""
    config: SimulatorConfig
    if plan is not None:
        if model or gpu:
            raise UsageError("give either --plan (and --option) or --model/--gpu, not both")
        config = config_from_plan(
            load_plan_document(plan), option, speed=speed, max_waiting=max_waiting, seed=seed, db_url=db_url
        )
    else:
        if not model or not gpu:
            raise UsageError(
                "give --model and --gpu (e.g. --model Llama-3.1-8B --gpu L4), or --plan plan.json"
            )
        config = simulator_config(
            model=model,
            gpu=gpu,
            tp=tp,
            precision=precision,
            backend=str(backend),
            speed=speed,
            max_waiting=max_waiting,
            seed=seed,
            max_num_seqs=max_num_seqs,
            max_model_len=max_model_len,
            output_tokens=output_tokens,
            db_url=db_url,
        )
    config = dataclasses.replace(
        config, served_model=served_model_name or config.served_model, legacy_metrics=legacy_metrics
    )
    engine = config.engine
    typer.echo(
        f"simulating {config.describe()} as {config.served_model!r} at {speed:g}x real time: max_num_seqs "
        f"{engine.max_num_seqs}, token budget {engine.max_num_batched_tokens}, {engine.kv_blocks} KV blocks x "
        f"{engine.block_size}, max_model_len {config.max_model_len}; provenance: {config.provenance}",
        err=True,
    )
    typer.echo(f"OpenAI API at http://{host}:{port}/v1 (Ctrl-C stops)", err=True)
    serve(config, host, port)
