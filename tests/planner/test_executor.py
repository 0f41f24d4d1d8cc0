"""Executors: in-process and Ray give the same plan and the same Monte Carlo numbers for the same seed."""

import importlib

import pytest

from servewise.errors import InfeasibleError, UnknownNameError, UsageError
from servewise.planner import (
    InProcessExecutor,
    RayExecutor,
    make_executor,
    make_plan,
    monte_carlo,
    open_executor,
    plan_document,
)
from servewise.planner._executor import _guarded, _require_reachable
from servewise.planner._search import TP_SIZES, calibrated_params
from servewise.planner._sweep import plan_in_chunks
from servewise.workload import build_workload
from tests.factories import packaged_snapshot

SWEEP = {"gpus": ["L4", "H100-SXM", "A100-80GB-SXM"], "precisions": ["bf16", "fp8", "int4"]}
"""Three GPUs and every model: several model chunks, rejections of every stage."""


def _workload(**overrides):
    template = next(u for u in packaged_snapshot().use_cases if u.name == "chatbot_conversational")
    return build_workload(
        template=template, overrides={"traffic": {"qps": 20}, "constraints": SWEEP} | overrides
    )


@pytest.fixture(scope="module")
def reference():
    workload = _workload(budget_usd_month=4000)
    return workload, make_plan(workload, packaged_snapshot())


def _square(shared, item):
    return shared * item * item


def test_in_process_map_keeps_order_and_reports_progress():
    done = []
    assert InProcessExecutor().map(_square, 2, [1, 2, 3], on_done=done.append) == [2, 8, 18]
    assert done == [1, 1, 1]


@pytest.mark.parametrize("models_per_chunk", [1, 100])
def test_a_chunked_sweep_is_the_plan_whatever_the_chunking(reference, models_per_chunk):
    workload, plan = reference
    chunked = plan_in_chunks(
        workload,
        packaged_snapshot(),
        InProcessExecutor(),
        params_for=calibrated_params,
        tp_sizes=TP_SIZES,
        simulate_top=5,
        models_per_chunk=models_per_chunk,
    )
    assert plan_document(chunked) == plan_document(plan)
    assert {r.stage for r in plan.rejected} >= {"memory", "budget", "quality"}


def test_a_chunked_sweep_keeps_cpu_candidates_in_sweep_order():
    small = ["Llama-3.2-1B", "Llama-3.2-3B", "Qwen3-4B", "Llama-3.1-8B"]
    workload = _workload(
        traffic={"qps": 0.5},
        constraints={"min_params_b": 0, "cpu": True, "models": small, "precisions": ["bf16", "int4"]},
    )
    plan = make_plan(workload, packaged_snapshot())
    assert any(r.gpu.endswith("(CPU)") for r in plan.rejected)  # CPU instances were swept too
    chunked = plan_in_chunks(
        workload,
        packaged_snapshot(),
        InProcessExecutor(),
        params_for=calibrated_params,
        tp_sizes=TP_SIZES,
        simulate_top=5,
        models_per_chunk=1,
    )
    assert plan_document(chunked) == plan_document(plan)


def test_executor_errors_are_one_line():
    with pytest.raises(UsageError, match="--address needs --executor ray"):
        make_executor("inprocess", "ray://head:10001")
    with pytest.raises(UsageError, match="unknown executor 'dask'; choose one of inprocess, ray"):
        make_executor("dask")


def test_an_address_where_nothing_listens_fails_fast_in_one_line():
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UsageError, match=rf"cannot reach the Ray cluster at ray://127.0.0.1:{port} "):
        _require_reachable(f"ray://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(UsageError, match="the port is not a number"):
        _require_reachable("ray://head:port")
    _require_reachable("auto")  # left to Ray


def test_a_user_error_from_a_task_is_rebuilt_as_the_nearest_class_that_takes_the_message():
    err = UnknownNameError("provider", "awz", ["aws"])
    rebuilt = _guarded(_raise, err, None).rebuilt()
    assert type(rebuilt) is UsageError and str(rebuilt) == str(
        err
    )  # UnknownNameError needs (kind, name, known)
    infeasible = _guarded(_raise, InfeasibleError("no option"), None).rebuilt()
    assert type(infeasible) is InfeasibleError
    assert _guarded(_square, 3, 2) == 12  # results pass through


def _raise(err, _item):
    raise err


def test_without_ray_installed_the_error_says_how_to_install(monkeypatch):
    real = importlib.import_module

    def no_ray(name, *args):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_ray)
    with pytest.raises(UsageError, match=r"pip install 'servewise\[ray\]'"):
        make_executor("ray")


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (2 CPUs, as CI runners have), shut down afterwards."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'servewise[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_plan_is_the_in_process_plan(ray_session, reference):
    workload, plan = reference
    with open_executor("ray") as executor:
        assert isinstance(executor, RayExecutor)
        on_ray = make_plan(workload, packaged_snapshot(), executor=executor)
    assert plan_document(on_ray) == plan_document(plan)
    assert ray_session.is_initialized()  # a Ray the executor did not start is left running


def test_ray_monte_carlo_matches_in_process_for_the_same_seed(ray_session, reference):
    _, plan = reference
    done = []
    kwargs = {"samples": 450, "top_k": 3, "seed": 5}
    in_process = monte_carlo(plan, packaged_snapshot(), **kwargs)
    on_ray = monte_carlo(plan, packaged_snapshot(), executor=RayExecutor(), on_done=done.append, **kwargs)
    assert on_ray.options == in_process.options
    assert (on_ray.executor, in_process.executor) == ("ray", "inprocess")
    assert sum(done) == 5  # ⌈450 / 100⌉ chunks


def test_a_user_error_inside_a_ray_task_stays_a_one_line_error(ray_session):
    workload = _workload()
    bad = workload.model_copy(
        update={"constraints": workload.constraints.model_copy(update={"providers": ["awz"]})}
    )
    # the same one line as in-process (as a UsageError: Ray cannot rebuild UnknownNameError's constructor)
    with pytest.raises(UsageError, match="unknown provider 'awz'; did you mean 'aws'"):
        make_plan(bad, packaged_snapshot(), executor=RayExecutor())
