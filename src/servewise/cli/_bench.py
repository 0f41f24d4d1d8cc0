"""``servewise bench URL`` and ``servewise bench import FILE``: measure an OpenAI-compatible endpoint, compare it
with a plan's prediction, and keep the measurements in the catalog.

Why a group whose default command is ``run``: ``bench URL`` must work while ``bench import FILE`` is a subcommand;
a Click group cannot take a positional URL *and* subcommands, so the group reads the first word: ``import`` (or
``run``) picks that command, anything else is a URL and goes to ``run``. Both shapes are tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID

from servewise.bench import (
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    DEFINITIONS,
    Endpoint,
    Level,
    LevelResult,
    LoadMode,
    LoadPlan,
    OpenAIStreamClient,
    PlanTarget,
    RequestRecord,
    SystemUnderTest,
    against_mismatch,
    benchmark_csv_rows,
    compare_levels,
    flat_row,
    latency_rows,
    lengths_text,
    level_document,
    level_points,
    list_models,
    model_cards,
    plan_target,
    run_assumptions,
    run_plan,
    save_points,
    summary_keys,
)
from servewise.errors import CatalogError, ServewiseError, UsageError
from servewise.perf._arrivals import LengthSampler, load_trace, sampled_lengths, uniform_lengths
from servewise.perf._benchpoint import RANGE_RATIO
from servewise.planner import load_plan_document
from servewise.workload import LengthDistribution, build_workload, load_workload_file

from ._bench_import import (
    BackendOption,
    DbUrlOption,
    FormatOption,
    GpuOption,
    ModelNameOption,
    PrecisionOption,
    TpOption,
    bench_import_command,
    note,
    reported,
    system_from_flags,
)
from ._groups import default_command_app
from ._output import Column, OutputFormat, render, stderr_progress, stdout_console
from ._predict import Backend

__all__ = ["bench_app"]


bench_app = default_command_app(
    "bench",
    "run",
    "Load-test an OpenAI-compatible endpoint (`servewise bench URL ...`), or import a GuideLLM report "
    "(`servewise bench import FILE`).",
)


# -- parsing ---------------------------------------------------------------------------------------------------


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"{flag} expects whole numbers separated by commas, e.g. 1,8,32 (got {text!r})"
        ) from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"{flag} values must be >= 1 (got {text!r})")
    return values


def _rate_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--rate expects requests per second separated by commas, e.g. 2 or 1,4 (got {text!r})"
        ) from None
    if not values or any(not (v > 0 and v < float("inf")) for v in values):
        raise UsageError(f"--rate values must be positive numbers of requests per second (got {text!r})")
    return values


def _clamped(distribution: LengthDistribution) -> Callable[[float], float]:
    """The length quantile with u kept inside (0, 1), where ``quantile`` is defined."""
    return lambda u: distribution.quantile(min(max(u, 1e-9), 1.0 - 1e-9))


def _levels(concurrency: str | None, rate: str | None, trace: Path | None) -> tuple[Level, ...]:
    if sum(x is not None for x in (concurrency, rate, trace)) != 1:
        raise UsageError(
            "give exactly one load: --concurrency 1,8,32 (closed loop), --rate R (Poisson req/s) or --trace FILE"
        )
    if concurrency is not None:
        return tuple(Level(LoadMode.closed, concurrency=c) for c in _int_list(concurrency, "--concurrency"))
    if rate is not None:
        return tuple(Level(LoadMode.poisson, rate_rps=r) for r in _rate_list(rate))
    return (Level(LoadMode.trace),)


def _lengths(
    isl: int | None, osl: int | None, workload: Path | None, range_ratio: float, trace: bool
) -> tuple[LengthSampler | None, dict[str, Any]]:
    """The length sampler and how the lengths are described in the report."""
    if trace:
        if isl is not None or osl is not None or workload is not None:
            raise UsageError("a trace gives every request's lengths; drop --isl/--osl/--workload")
        return None, {"source": "trace"}
    if not 0 < range_ratio <= 1:
        raise UsageError(f"--range-ratio must be in (0, 1] (got {range_ratio}); 1 sends exactly --isl/--osl")
    if workload is not None:
        if isl is not None or osl is not None:
            raise UsageError("give either --isl/--osl or --workload, not both")
        spec = build_workload(file_data=load_workload_file(workload), source=str(workload))
        prompt, output = spec.traffic.prompt_tokens, spec.traffic.output_tokens
        return sampled_lengths(_clamped(prompt), _clamped(output)), {
            "source": f"workload {workload}",
            "prompt_tokens": prompt.model_dump(),
            "output_tokens": output.model_dump(),
        }
    defaulted = [flag for flag, value in (("--isl", isl), ("--osl", osl)) if value is None]
    isl, osl = isl or DEFAULT_PROMPT_TOKENS, osl or DEFAULT_OUTPUT_TOKENS
    return uniform_lengths(isl, osl, range_ratio), {
        "source": "flags",
        "isl": isl,
        "osl": osl,
        "range_ratio": range_ratio,
        "defaulted": defaulted,
    }


def _plan_lengths(plan: Path) -> tuple[int, int]:
    """The plan workload's mean prompt and output tokens: what ``--against`` measures when no lengths are given (the
    replica it deploys refuses longer requests than the workload's ``max_model_len``)."""
    traffic = load_plan_document(plan)["workload"]["traffic"]
    return (
        max(1, round(float(traffic["prompt_tokens"]["mean"]))),
        max(1, round(float(traffic["output_tokens"]["mean"]))),
    )


# -- running ---------------------------------------------------------------------------------------------------


class _ProgressView:
    """One Rich progress bar per level on stderr (stdout stays the document)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def level(self, level: Level, warmup: int, measured: int | None) -> None:
        total = None if measured is None else warmup + measured
        self._task = self._progress.add_task(f"{level.label}", total=total)

    def done(self, _: RequestRecord) -> None:
        if self._task is not None:
            self._progress.advance(self._task, 1)


async def _measure(
    url: str, client_options: dict[str, Any], model: str | None, plan: LoadPlan
) -> tuple[str, list[LevelResult]]:
    api_key = client_options["api_key"]
    if model is None:
        models = await list_models(url, api_key=api_key)
        if not models:
            raise UsageError(f"{url}/v1/models lists no model; name one with --model")
        model = models[0]
    with stderr_progress() as progress:
        view = _ProgressView(progress)
        async with OpenAIStreamClient(url, model=model, **client_options) as client:
            results = await run_plan(plan, client, on_level=view.level, on_done=view.done)
    return model, results


# -- output ----------------------------------------------------------------------------------------------------

_LATENCY_COLUMNS = (
    Column("metric", "metric"),
    Column("p50", "p50 ms", numeric=True),
    Column("p90", "p90 ms", numeric=True),
    Column("p95", "p95 ms", numeric=True),
    Column("p99", "p99 ms", numeric=True),
    Column("mean", "mean ms", numeric=True),
)
_COMPARISON_COLUMNS = (
    Column("metric", "metric"),
    Column("predicted", "predicted", numeric=True),
    Column("measured", "measured", numeric=True),
    Column("error_pct", "error %", numeric=True),
)
_COMPARISON_CSV_COLUMNS = (Column("label", "level"), Column("key", "key"), *_COMPARISON_COLUMNS[1:])


def _print(document: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _LATENCY_COLUMNS, fmt, json_document=document)
        return
    comparisons = document.get("comparison")
    if fmt is OutputFormat.csv:
        if comparisons:
            rows = [{"label": c["label"], **row} for c in comparisons for row in c["rows"]]
            render(rows, _COMPARISON_CSV_COLUMNS, fmt)
        else:
            keys = summary_keys()
            render([flat_row(level) for level in document["levels"]], [Column(k, k) for k in keys], fmt)
        return
    markdown = fmt is OutputFormat.markdown
    console = stdout_console()

    def say(line: str, style: str = "dim") -> None:
        if markdown:
            print(f"\n{line}")
        else:
            console.print(escape(line), style=style, highlight=False)

    say(f"{document['model']} at {document['url']} ({document['endpoint']}): {lengths_text(document['lengths'])}",
        "bold")  # fmt: skip
    for index, level in enumerate(document["levels"]):
        title = (
            f"{level['label']}: {level['completed']} of {level['requests']} requests ok in "
            f"{level['duration_s'] or 0:.1f} s"
        )
        render(latency_rows(level), _LATENCY_COLUMNS, fmt, title=title)
        say(
            f"throughput: {level['requests_per_s'] or 0:.3g} requests/s, {level['output_tokens_per_s'] or 0:,.0f} "
            f"output tokens/s, {level['total_tokens_per_s'] or 0:,.0f} total tokens/s; mean lengths "
            f"{level['mean_prompt_tokens']} -> {level['mean_output_tokens']} tokens"
        )
        if level["errors"]:
            say("errors: " + "; ".join(f"{e['count']} x {e['message']}" for e in level["errors"]), "bold red")
        if comparisons:
            comparison = comparisons[index]
            render(
                comparison["rows"],
                _COMPARISON_COLUMNS,
                fmt,
                title=f"predicted vs measured, {level['label']}",
                caption=f"{comparison['predicted_for']}; error % = (predicted - measured) / measured",
            )
    say(f"definitions: {document['definitions']}")
    for assumption in document["assumptions"]:
        say(f"assumption: {assumption}")


# -- commands --------------------------------------------------------------------------------------------------


def bench_run_command(
    url: Annotated[
        str, typer.Argument(help="base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000")
    ],
    concurrency: Annotated[
        str | None, typer.Option("--concurrency", "-c", help="closed loop: clients per level, e.g. 1,8,32")
    ] = None,
    rate: Annotated[
        str | None, typer.Option("--rate", help="open loop: Poisson requests/s per level, e.g. 2 or 1,4")
    ] = None,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="open loop: CSV of time_s,prompt_tokens,output_tokens rows")
    ] = None,
    isl: Annotated[
        int | None,
        typer.Option("--isl", min=1, help=f"prompt tokens per request (default {DEFAULT_PROMPT_TOKENS})"),
    ] = None,
    osl: Annotated[
        int | None,
        typer.Option("--osl", min=1, help=f"output tokens per request (default {DEFAULT_OUTPUT_TOKENS})"),
    ] = None,
    workload: Annotated[
        Path | None,
        typer.Option("--workload", help="workload YAML/JSON: lengths from its traffic distributions"),
    ] = None,
    range_ratio: Annotated[
        float,
        typer.Option("--range-ratio", help="lengths uniform in [ratio x len, len]; 1 = exactly --isl/--osl"),
    ] = RANGE_RATIO,
    requests: Annotated[
        int | None, typer.Option("--requests", min=1, help="measured requests per level")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0.001, help="seconds per level (stop issuing after)")
    ] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="unmeasured requests before each level")] = 1,
    model: Annotated[
        str | None, typer.Option("--model", help="model to request (default: first of GET /v1/models)")
    ] = None,
    endpoint: Annotated[
        Endpoint, typer.Option("--endpoint", help="completions or chat")
    ] = Endpoint.completions,
    ignore_eos: Annotated[
        bool, typer.Option("--ignore-eos/--no-ignore-eos", help="send vLLM's ignore_eos and min_tokens")
    ] = True,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="OPENAI_API_KEY", help="bearer token", show_default=False),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="seconds per request")] = 600.0,
    seed: Annotated[int, typer.Option("--seed", help="seed of the request lengths and arrivals")] = 0,
    against: Annotated[
        Path | None,
        typer.Option("--against", help="plan.json: print its prediction next to each measurement"),
    ] = None,
    option: Annotated[
        int | None,
        typer.Option("--option", min=1, help="plan option rank to compare (default: the chosen one)"),
    ] = None,
    save: Annotated[
        bool, typer.Option("--save", help="add closed-loop levels to the catalog's benchmarks")
    ] = False,
    model_name: ModelNameOption = None,
    gpu: GpuOption = None,
    tp: TpOption = 1,
    precision: PrecisionOption = None,
    backend: BackendOption = Backend.vllm,
    fmt: FormatOption = OutputFormat.table,
    db_url: DbUrlOption = None,
) -> None:
    """Load-test URL: closed loop (--concurrency) or open loop (--rate, --trace); TTFT/ITL/TPOT/E2E percentiles,
    throughput and errors per level."""
    with reported():
        levels = _levels(concurrency, rate, trace)
        from_plan = (
            against is not None
            and levels[0].mode is LoadMode.closed
            and isl is None
            and osl is None
            and workload is None
        )
        if from_plan and against is not None:
            isl, osl = _plan_lengths(against)
        sampler, lengths = _lengths(isl, osl, workload, range_ratio, trace is not None)
        if from_plan:
            lengths["from_plan"] = str(against)
        trace_requests = load_trace(trace).requests if trace is not None else ()
        closed = levels[0].mode is LoadMode.closed
        target: PlanTarget | None = None
        if against is not None:
            if not closed:
                raise UsageError("--against compares closed-loop levels; use --concurrency")
            target = plan_target(against, option, db_url=db_url)
        elif option is not None:
            raise UsageError("--option picks an option of --against plan.json; give --against too")
        system: SystemUnderTest | None = None
        if save:
            if not closed or lengths.get("source") != "flags":
                raise UsageError(
                    "--save records closed-loop points of fixed nominal lengths: use --concurrency with --isl/--osl"
                )
            if lengths["range_ratio"] != RANGE_RATIO:
                raise UsageError(
                    f"--save writes rows that calibration simulates with lengths uniform in [{RANGE_RATIO:g} x len, "
                    f"len]; run with --range-ratio {RANGE_RATIO:g} (the default)"
                )
            system = system_from_flags("--save", model_name, gpu, tp, precision, backend, db_url)
        plan = LoadPlan(
            levels=levels,
            sampler=sampler,
            trace=tuple(trace_requests),
            requests=requests,
            duration_s=duration,
            warmup=warmup,
            seed=seed,
        )
        client_options = {
            "endpoint": endpoint,
            "ignore_eos": ignore_eos,
            "api_key": api_key,
            "timeout_s": timeout,
        }
        served, results = asyncio.run(_measure(url, client_options, model, plan))
        documents = [level_document(r.level, r.stats) for r in results]
        if all(r.stats.completed == 0 for r in results):
            first = next(
                (d["errors"][0]["message"] for d in documents if d["errors"]), "no request completed"
            )
            raise UsageError(
                f"no request to {url} succeeded ({first}); check the URL, --model and --endpoint"
            )
        document: dict[str, Any] = {
            "url": url,
            "model": served,
            "endpoint": str(endpoint),
            "lengths": lengths,
            "warmup_requests": warmup,
            "seed": seed,
            "definitions": DEFINITIONS,
            "assumptions": run_assumptions(plan, lengths, ignore_eos=ignore_eos),
            "levels": documents,
        }
        if target is not None:
            document["comparison"] = compare_levels(target, results, documents, lengths, seed=seed)
            cards = asyncio.run(model_cards(url, api_key=api_key))
            mismatch = against_mismatch(target, served, cards)
            document["comparison_warning"] = mismatch
            if mismatch is not None:
                note(f"warning: {mismatch}")
        failed_save: ServewiseError | None = None
        if system is not None:
            try:
                document["saved_rows"] = _save(system, results, lengths, url, db_url)
            except ServewiseError as err:  # the measurements are printed all the same: nothing is lost
                failed_save = err
        _print(document, fmt)
        if failed_save is not None:
            raise failed_save
        if system is not None:
            note(f"saved {document['saved_rows']} measured row(s) to the catalog's benchmarks (origin: user)")


def _save(system: SystemUnderTest, results: Sequence[LevelResult], lengths: dict[str, Any], url: str,
          db_url: str | None) -> int:  # fmt: skip
    now = datetime.now(UTC)
    points = level_points(results, isl=int(lengths["isl"]), osl=int(lengths["osl"]), stamp=now)
    if not points:
        raise UsageError(
            "nothing to save: no level has a TTFT and a TPOT (every request failed or had one token)"
        )
    rows = benchmark_csv_rows(system, points, source=f"servewise bench {url} {now.date().isoformat()}",
                              measured_on=now.date())  # fmt: skip
    try:
        return save_points(rows, db_url=db_url)
    except CatalogError as err:
        raise CatalogError(f"cannot save the measured rows: {err}") from None


bench_app.command("run")(bench_run_command)
bench_app.command("import")(bench_import_command)
