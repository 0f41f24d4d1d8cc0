"""CPU options in plans: a tiny load picks a CPU instance, a big one a GPU; too-slow and too-big CPU candidates are
rejected with the reason; ``constraints.cpu`` switches them on and off."""

from __future__ import annotations

from servewise.planner import make_plan, plan_document
from servewise.planner._executor import InProcessExecutor
from servewise.types import Provenance
from servewise.workload import Workload
from tests.factories import packaged_snapshot


def _workload(qps: float, *, itl_ms: float = 150.0, **constraints: object) -> Workload:
    """256 -> 128 tokens, relaxed SLO (TTFT 2 s, ITL 150 ms): a background summariser, not a chatbot."""
    return Workload.model_validate(
        {
            "traffic": {"qps": qps, "prompt_tokens": 256, "output_tokens": 128},
            "slo": {"ttft_p95_ms": 2000, "itl_p95_ms": itl_ms},
            "constraints": {"models": ["Llama-3.2-1B"], "precisions": ["int4"], **constraints},
        }
    )


def test_a_tiny_load_picks_the_cheapest_cpu_instance_flagged_analytical():
    plan = make_plan(_workload(0.05), packaged_snapshot())
    chosen = plan.chosen_option
    assert chosen is not None
    assert chosen.candidate.cpu == "c7i.2xlarge" and chosen.candidate.vcpus == 8
    assert chosen.candidate.gpu == "c7i.2xlarge (CPU)" and chosen.gpus_total == 0 and chosen.replicas == 1
    assert chosen.perf.provenance is Provenance.analytical
    # one whole c7i.2xlarge on demand: $0.357/h x 730 h = $260.61/month (cheaper than a T4 g4dn.xlarge, $384)
    assert chosen.cost.usd_per_month == 0.357 * 730
    assert all(check.met for check in chosen.slo)
    gpu_options = [o for o in plan.options if o.candidate.cpu is None]
    assert gpu_options and min(o.cost.usd_per_month for o in gpu_options) > chosen.cost.usd_per_month
    assert any("CPU options (analytical" in line for line in plan.assumptions)
    assert "(CPU, 8 vCPU)" in plan.why


def test_a_big_load_picks_a_gpu_because_cpu_replicas_add_up():
    plan = make_plan(_workload(20.0), packaged_snapshot())
    chosen = plan.chosen_option
    assert chosen is not None and chosen.candidate.cpu is None and chosen.gpus_total >= 1
    cpu = [o for o in plan.options if o.candidate.cpu is not None]
    # an 8-vCPU replica sustains under 1 req/s at this SLO (its prefill steps take most of the 150 ms ITL), so
    # 20 req/s needs dozens of them; even the 16-vCPU instance needs several, and one T4 does it all
    small = next(o for o in cpu if o.candidate.cpu == "c7i.2xlarge")
    assert small.perf.max_qps_per_replica < 1 and small.replicas >= 20
    assert min(o.replicas for o in cpu) >= 3
    assert min(o.cost.usd_per_month for o in cpu) > 4 * chosen.cost.usd_per_month


def test_a_tight_itl_rejects_cpus_as_too_slow_and_a_big_model_as_too_big():
    plan = make_plan(
        _workload(0.05, itl_ms=50.0, models=["Llama-3.2-1B", "Qwen3-32B"], cpu=True), packaged_snapshot()
    )
    cpu_rejections = [r for r in plan.rejected if r.gpu.endswith("(CPU)")]
    slow = [r for r in cpu_rejections if r.model == "Llama-3.2-1B" and r.gpu == "c7i.2xlarge (CPU)"]
    assert slow and slow[0].stage == "slo"
    assert slow[0].reason.startswith("too slow on CPU: itl_p95_ms ") and "> 50 ms" in slow[0].reason
    # Qwen3-32B int4 needs ~19.2 GB of weights: over the 16 GB c7i.2xlarge, and too slow where it fits
    big = {r.gpu: r for r in cpu_rejections if r.model == "Qwen3-32B"}
    assert big["c7i.2xlarge (CPU)"].stage == "memory" and "weights need" in big["c7i.2xlarge (CPU)"].reason
    assert big["c7i.4xlarge (CPU)"].stage == "slo"
    # only the 16-vCPU instance, with twice the bandwidth (~37 ms per token), keeps the 1B model under 50 ms
    assert {(o.candidate.model, o.candidate.cpu) for o in plan.options if o.candidate.cpu} == {
        ("Llama-3.2-1B", "c7i.4xlarge")
    }


def test_cpu_constraint_switches_candidates_on_and_off():
    snapshot = packaged_snapshot()
    off = make_plan(_workload(0.05, cpu=False), snapshot)
    assert all(o.candidate.cpu is None for o in off.options)
    assert not any(r.gpu.endswith("(CPU)") for r in off.rejected)
    assert not any("CPU options" in line for line in off.assumptions)
    # by default an 8B model gets no CPU candidates (over 4B active parameters) ...
    auto_8b = make_plan(_workload(0.05, models=["Llama-3.1-8B"]), snapshot)
    assert all(o.candidate.cpu is None for o in auto_8b.options)
    assert not any(r.gpu.endswith("(CPU)") for r in auto_8b.rejected)
    # ... and --cpu forces them (here too slow: 8B int4 streams ~5 GB per token)
    forced = make_plan(_workload(0.05, models=["Llama-3.1-8B"], cpu=True), snapshot)
    assert any(r.gpu.endswith("(CPU)") and r.stage == "slo" for r in forced.rejected)
    # --gpu alone means those GPUs only; with --cpu the CPU instances come back
    gpu_only = make_plan(_workload(0.05, gpus=["L4"]), snapshot)
    assert {o.candidate.gpu for o in gpu_only.options} == {"L4"}
    both = make_plan(_workload(0.05, gpus=["L4"], cpu=True), snapshot)
    assert both.chosen_option is not None and both.chosen_option.candidate.cpu == "c7i.2xlarge"


def test_fp8_is_rejected_per_cpu_instance_and_max_gpus_does_not_limit_cpu_replicas():
    plan = make_plan(_workload(1.5, precisions=["fp8", "int4"], max_gpus=1), packaged_snapshot())
    fp8 = [r for r in plan.rejected if r.gpu.endswith("(CPU)") and r.stage == "precision"]
    assert {r.gpu for r in fp8} == {"c7i.2xlarge (CPU)", "c7i.4xlarge (CPU)", "m7i.2xlarge (CPU)"}
    assert all(r.model == "*" and "no fp8 matrix units" in r.reason for r in fp8)
    cpu = [o for o in plan.options if o.candidate.cpu is not None]
    assert cpu and max(o.replicas for o in cpu) > 1 and all(o.gpus_total == 0 for o in cpu)


def test_spot_pricing_uses_the_cpu_instances_spot_price():
    plan = make_plan(_workload(0.05, pricing="spot"), packaged_snapshot())
    c7i = next(o for o in plan.options if o.candidate.cpu == "c7i.2xlarge")
    assert c7i.cost.usd_per_hour == 0.1299  # the catalog's us-east-1 spot price (on-demand: 0.357)


def test_the_chunked_sweep_gives_the_same_plan_with_cpu_options():
    workload = _workload(
        0.05, models=["Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.1-8B"], precisions=["int4", "fp8"]
    )
    snapshot = packaged_snapshot()
    direct = plan_document(make_plan(workload, snapshot))
    chunked = plan_document(make_plan(workload, snapshot, executor=InProcessExecutor()))
    assert direct == chunked
    assert direct["options"][0]["candidate"]["cpu"] is not None
