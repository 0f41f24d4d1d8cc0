"""Right-sizing on real plans (planner and cost model on the packaged catalog): fewer replicas, scale-up, off-peak,
precision / GPU / model alternatives, the long-context gate; and the SLO-risk rule by hand."""

from __future__ import annotations

import dataclasses

import pytest

from servewise.catalog import CatalogSnapshot
from servewise.planner import make_mixed_plan, make_plan, routing_rule
from servewise.watch._observation import Observation, Recommendation, WatchTarget
from servewise.watch._rightsize import current_replicas, recommendations
from servewise.watch._rightsize_cost import Pricing, slo_risk
from servewise.watch._rightsize_observed import observed_workload, planned_workload, sustained_peak_qps
from servewise.watch._rightsize_replan import (
    LONG_POOL_LOCAL_RATIO,
    SIMULATE_TOP,
    Alternatives,
    _long_context,
    _pool_recommendation,
)
from servewise.watch._rightsize_replica import replica_model

from .analysis_support import observation, restricted, samples, snapshot, target

INSTANCE_4XL4_USD_MONTH = 4.00166 * 730
"""One g2-standard-48 (4 x L4) on demand, the plan's placement for one 4xL4 replica (packaged offers)."""


def _capacity(t: WatchTarget, o: Observation) -> float:
    """The deployed replica's capacity at the observed lengths (the planner's number, whatever the calibration)."""
    return replica_model(t, observed_workload(t, o), snapshot()).capacity.qps


def _kinds(recs: tuple[Recommendation, ...]) -> list[str]:
    return [r.kind for r in recs]


def _one(recs: tuple[Recommendation, ...], kind: str) -> Recommendation:
    found = [r for r in recs if r.kind == kind]
    assert len(found) == 1, (kind, recs)
    return found[0]


def test_an_over_provisioned_deployment_drops_replicas_with_the_cost_models_saving():
    t = target()  # 2 x 4xL4 fp8 sized for 5 req/s; capacity ≈ 3.2 req/s per replica
    assert (t.replicas, t.tp) == (2, 4) and t.usd_per_month == pytest.approx(2 * INSTANCE_4XL4_USD_MONTH)
    recs = recommendations(t, observation(qps=2.0, replicas=2), catalog=snapshot())
    drop = _one(recs, "replicas")
    assert drop.title == "drop to 1 replica (from 2)"
    assert drop.saving_usd_per_month == pytest.approx(INSTANCE_4XL4_USD_MONTH)
    # margin 1 − 2/3.2 ≈ 37 %, but one replica carries ≈ 3.2 < the plan's 5 req/s peak over a 2-minute window
    assert drop.slo_risk == "medium" and "a 2-minute window may have missed that peak" in drop.risk_reason
    assert set(drop.predicted_s) == {"ttft_p95", "itl_p95", "e2e_p95"}
    assert all(drop.predicted_s[k] <= t.slo_targets_s[k] for k in drop.predicted_s)
    assert recs[0] is drop  # the largest saving first


def test_a_day_long_window_at_a_safe_margin_is_low_risk():
    t = target(qps=2.0)  # planned for 2 req/s: one replica
    long_window = dataclasses.replace(
        observation(qps=1.0, replicas=2), window_s=86_400.0, samples=samples([1.0] * 12, replicas=2)
    )
    drop = _one(recommendations(t, long_window, catalog=snapshot()), "replicas")
    margin = 1 - 1.0 / _capacity(t, long_window)
    assert drop.slo_risk == "low" and f"{margin:.0%} margin" in drop.risk_reason


def test_missed_slos_ask_for_a_scale_up_first_even_when_the_model_disagrees():
    t = target()
    slow = observation(qps=6.0, replicas=2, ttft=(0.5, 1.2), e2e=(9.0, 12.0))
    recs = recommendations(t, slow, catalog=snapshot())
    up = recs[0]
    assert up.kind == "scale_up" and up.title == "scale up to 3 replicas (from 2)"
    assert up.saving_usd_per_month == pytest.approx(-INSTANCE_4XL4_USD_MONTH)
    assert up.slo_risk == "high" and "under-predicts" in up.risk_reason
    assert "observed ttft_p95 1,200 ms > 150 ms" in up.risk_reason


def test_a_load_beyond_capacity_scales_up_to_the_planners_count():
    t = target()
    busy = observation(qps=9.0, replicas=2)  # 9 / c (≈ 4 req/s) → 3 replicas, SLOs still met in the window
    up = _one(recommendations(t, busy, catalog=snapshot()), "scale_up")
    assert up.title == "scale up to 3 replicas (from 2)" and "under-predicts" not in up.risk_reason
    assert up.saving_usd_per_month == pytest.approx(-INSTANCE_4XL4_USD_MONTH)


def test_a_quiet_half_window_suggests_fewer_replicas_off_peak():
    t = target()
    # 12 intervals at 0.5 req/s then 12 at 5 req/s (10 s each), capacity c ≈ 4 req/s per replica. One-minute
    # loads: 16 samples need 1 replica (the 16th at (2 × 0.5 + 4 × 5) / 6 = 3.5 ≤ c, the 17th at 4.25 > c),
    # 8 need 2 → (2 − 1) × 16/24 replica saved on average
    o = observation(series=[0.5] * 12 + [5.0] * 12, replicas=2)
    capacity = _capacity(t, o)
    assert 3.5 < capacity < 4.25
    recs = recommendations(t, o, catalog=snapshot())
    off = _one(recs, "off_peak_replicas")
    assert off.title == f"drop to 1 replica off-peak (below {capacity:.3g} req/s)"
    assert off.saving_usd_per_month == pytest.approx(16 / 24 * INSTANCE_4XL4_USD_MONTH)
    assert off.slo_risk in {"medium", "high"} and "replicas" not in _kinds(recs)


def test_off_peak_risk_names_the_autoscaler_lag_when_the_margin_is_safe():
    t = target(qps=2.0)
    o = dataclasses.replace(
        observation(series=[0.2] * 12 + [30.0] * 12, replicas=2), window_s=86_400.0
    )  # one replica covers the quiet half (0.2 req/s) with a wide margin; the first busy minute ((5 × 0.2 + 30) / 6
    # = 5.2 req/s) needs more
    off = _one(recommendations(t, o, catalog=snapshot()), "off_peak_replicas")
    assert off.slo_risk == "medium" and "cold start 10 min" in off.risk_reason


def test_an_idle_window_offers_one_replica_at_high_risk():
    t = target()
    recs = recommendations(t, observation(qps=0.0, replicas=2), catalog=snapshot())
    assert _kinds(recs) == ["replicas"]
    assert recs[0].slo_risk == "high" and recs[0].saving_usd_per_month == pytest.approx(
        INSTANCE_4XL4_USD_MONTH
    )
    single = recommendations(t, observation(qps=0.0, replicas=1), catalog=snapshot())
    assert single == ()


def test_a_right_sized_deployment_gets_no_replica_change():
    t = target()
    recs = recommendations(t, observation(qps=5.0, replicas=2), catalog=snapshot())
    assert not {"replicas", "scale_up", "off_peak_replicas"} & set(_kinds(recs))


def test_fp8_on_the_same_gpus_when_the_plan_now_allows_it():
    bf16 = target(precisions=["bf16"], qps=10.0)  # enough load that fp8's faster steps save a whole instance
    assert bf16.precision == "bf16"
    t = restricted(bf16, precisions=["bf16", "fp8"])
    o = observation(qps=10.0, replicas=bf16.replicas)
    recs = recommendations(t, o, catalog=snapshot())
    switch = _one(recs, "precision")
    assert switch.title.startswith("switch to fp8 on the same GPUs")
    plan = make_plan(observed_workload(t, o), snapshot())
    cheapest_fp8 = min(
        (p for p in plan.options if str(p.candidate.precision) == "fp8"), key=lambda p: p.cost.usd_per_month
    )
    now = Pricing(snapshot(), observed_workload(t, o), t).usd_per_month(t.gpu, t.tp, bf16.replicas)
    assert now is not None
    assert switch.saving_usd_per_month == pytest.approx(now - cheapest_fp8.cost.usd_per_month)
    assert "check quality" in switch.detail


def test_another_gpu_the_plan_allowed_when_it_is_cheaper():
    t = restricted(target(), gpus=["L4", "L40S"])
    recs = recommendations(t, observation(qps=2.0, replicas=2), catalog=snapshot())
    move = _one(recs, "gpu")
    assert "L40S" in move.title and move.saving_usd_per_month > _one(recs, "replicas").saving_usd_per_month
    assert move.predicted_s["itl_p95"] <= t.slo_targets_s["itl_p95"]


def test_no_alternative_sweep_beyond_what_the_plan_allowed():
    t = target()  # the plan named one model and one GPU
    recs = recommendations(t, observation(qps=2.0, replicas=2), catalog=snapshot())
    assert not {"model", "long_context_pool"} & set(_kinds(recs))
    assert all("L4" in r.title or r.kind in {"replicas", "off_peak_replicas"} for r in recs)


def test_another_model_on_the_same_gpu():
    t = restricted(target(), models=["Llama-3.1-8B", "Llama-3.2-1B"])
    model = _one(recommendations(t, observation(qps=2.0, replicas=2), catalog=snapshot()), "model")
    assert "Llama-3.2-1B" in model.title and "L4" in model.title and "check quality" in model.detail


RAG_SLO_MS = {"ttft_p95_ms": 1500.0, "itl_p95_ms": 60.0, "e2e_p95_ms": 60000.0}


def _alternatives(t: WatchTarget, o: Observation) -> Alternatives:
    w = observed_workload(t, o)
    pricing = Pricing(snapshot(), w, t)
    now = pricing.usd_per_month(t.gpu, t.tp, current_replicas(t, o))
    assert now is not None
    return Alternatives(t, o, w, snapshot(), now, now, sustained_peak_qps(o))


def test_no_long_context_pool_without_a_long_tail():
    t = target()
    plain = observation(
        qps=2.0, prompt_mean=512.0, prompt_p95=975.0
    )  # a constant 512 read through the buckets
    assert _long_context(_alternatives(t, plain)) == []


def test_a_long_context_pool_is_recommended_only_when_the_planner_finds_the_split_cheaper():
    t = target(
        prompt={"mean": 1500, "kind": "lognormal", "cv": 1.2},
        output=300,
        slo=RAG_SLO_MS,
        gpus=["L40S"],
        qps=10.0,
    )
    tail = observation(
        qps=10.0, prompt_mean=1500.0, prompt_p95=5000.0, output_mean=300.0, replicas=t.replicas
    )
    alt = _alternatives(t, tail)
    recs = _long_context(alt)
    workload = alt.restricted([t.model], ["L40S"])
    rule = routing_rule(workload, local_ratio=LONG_POOL_LOCAL_RATIO)
    mixed = make_mixed_plan(
        workload, snapshot(), rule, plan_maker=lambda w, s: make_plan(w, s, simulate_top=SIMULATE_TOP)
    )
    pure = next(m for m in mixed.options if m.name == "pure")
    split = next(m for m in mixed.options if m.name == "bulk + long-context pool")
    assert pure.usd_per_month is not None and split.usd_per_month is not None
    assert bool(recs) == (split.usd_per_month < 0.99 * pure.usd_per_month)
    # what the recommendation says when it is made: the split's pools, priced against the current deployment
    rec = _pool_recommendation(alt, split, pure.usd_per_month, rule.threshold_tokens)
    assert rec.kind == "long_context_pool" and f"over {rule.threshold_tokens:,} tokens" in rec.title
    assert rec.saving_usd_per_month == pytest.approx(alt.current_usd - split.usd_per_month)
    assert (
        "bulk pool" in rec.detail
        and "long pool" in rec.detail
        and f"${pure.usd_per_month:,.0f}" in rec.detail
    )
    assert rec.slo_risk in {"low", "medium", "high"} and rec.risk_reason.split(" pool:")[0] in {
        "bulk",
        "long",
    }


def test_current_replicas_prefers_what_the_window_saw():
    t = target()
    assert current_replicas(t, observation(replicas=3)) == 3
    bare = dataclasses.replace(observation(replicas=3), samples=(), replicas=0)
    assert current_replicas(t, bare) == t.replicas


def test_pricing_falls_back_to_the_plans_price_without_an_offer():
    t = target()
    empty = CatalogSnapshot(accelerators=snapshot().accelerators, models=snapshot().models, offers=())
    pricing = Pricing(empty, planned_workload(t), t)
    assert pricing.usd_per_month(t.gpu, t.tp, 3) == pytest.approx(t.usd_per_month / t.replicas * 3)
    assert pricing.usd_per_month("H100-SXM", 1, 1) is None and pricing.usd_per_month(t.gpu, t.tp, 0) == 0.0


@pytest.mark.parametrize(
    ("peak", "capacity", "predicted", "plan_peak", "window_s", "risk"),
    [
        (6.0, 4.0, 0.1, 8.0, 86_400.0, "low"),  # load 3 of 4: margin 25 %, exactly the medium bound
        (6.4, 4.0, 0.1, 8.0, 86_400.0, "medium"),  # margin 20 %
        (7.8, 4.0, 0.1, 8.0, 86_400.0, "high"),  # margin 2.5 %
        (4.0, 4.0, 0.2, 8.0, 86_400.0, "high"),  # predicted TTFT p95 200 ms over the 150 ms target
        (4.0, 4.0, 0.1, 9.0, 600.0, "medium"),  # 2 × 4 = 8 < the plan's 9 req/s peak, 10-minute window
        (4.0, 4.0, 0.1, 9.0, 86_400.0, "low"),  # the same over a day: the window saw the day's peak
    ],
)
def test_slo_risk_by_hand(peak, capacity, predicted, plan_peak, window_s, risk):
    level, reason = slo_risk(
        peak_qps=peak,
        replicas=2,
        capacity_qps=capacity,
        predicted_s={"ttft_p95": predicted},
        targets_s={"ttft_p95": 0.15},
        plan_peak_qps=plan_peak,
        window_s=window_s,
    )
    assert level == risk and "margin" in reason
