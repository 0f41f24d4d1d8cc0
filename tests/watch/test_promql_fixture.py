"""The PromQL path without a Prometheus binary: a real local HTTP server answers the HTTP API with the answers a
real Prometheus 2.42 gave (``data/promql_recording.json``, recorded by test_promql_prometheus.py while it scraped two
simulated replicas under load), so the query parameters we send and the JSON we parse are both checked. The gateway
queries (no gateway ran in the recording) are answered with hand-written vectors in the same format.

Why the recording and not hand-written answers throughout: the format details (``resultType``, ``[ts, "value"]``
pairs, ``"+Inf"`` bounds, empty results for absent series) are Prometheus's, not our reading of its docs.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest

from servewise.errors import UsageError
from servewise.watch._exposition import histogram_quantile
from servewise.watch._promql import prometheus_observation, promql_duration
from tests.cli_runner import run_cli

RECORDING = json.loads((Path(__file__).parent / "data" / "promql_recording.json").read_text())
END = datetime.fromtimestamp(RECORDING["end_s"], UTC)
WINDOW_S, STEP_S = RECORDING["window_s"], RECORDING["step_s"]


def _vector(rows: list[tuple[dict[str, str], float]]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [RECORDING["end_s"], repr(value)]} for labels, value in rows]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


W = promql_duration(WINDOW_S)


def _after(series: str, by: str = "") -> str:
    grouping = f"sum by ({by})" if by else "sum"
    return f"{grouping} (last_over_time({series}[{W}]))"


def _before(series: str, by: str = "") -> str:
    grouping = f"sum by ({by})" if by else "sum"
    return f"{grouping} (({series} offset {W} and last_over_time({series}[{W}])) or min_over_time({series}[{W}]))"


def _increase(series: str, by: str = "") -> str:
    grouping = f"sum by ({by})" if by else "sum"
    return f"{grouping} (increase({series}[{W}]))"


def _resets(*counters: str) -> str:
    return " + ".join(f"(sum(resets({c}[{W}])) or vector(0))" for c in counters)


REQUESTS, SPEND, CHECKS = (
    "servewise_gateway_requests_total",
    "servewise_gateway_spend_usd_total",
    "servewise_gateway_schema_checks_total",
)
ROUTE = "route, decision, status"
LOCAL_OK = {"route": "pool-a", "decision": "local", "status": "ok"}
CLOUD_OK = {"route": "openai", "decision": "queue_cloud", "status": "ok"}
LOCAL_ERROR = {"route": "pool-a", "decision": "local", "status": "error"}
CACHE_HIT = {"route": "cache", "decision": "cache", "status": "cache_hit"}
GATEWAY = {
    # no restart: exact deltas (after − before)
    _resets(REQUESTS, SPEND, CHECKS): _vector([({}, 0.0)]),
    _after(REQUESTS, ROUTE): _vector(
        [(LOCAL_OK, 180.0), (CLOUD_OK, 10.0), (LOCAL_ERROR, 5.0), (CACHE_HIT, 5.0)]
    ),
    _before(REQUESTS, ROUTE): _vector(
        [(LOCAL_OK, 100.0)]
    ),  # the other routes' series were born in the window
    _after(SPEND): _vector([({}, 2.5)]),
    _before(SPEND): _vector([({}, 2.0)]),
    _after(CHECKS, "result"): _vector([({"result": "valid"}, 99.0), ({"result": "invalid"}, 1.0)]),
    _before(CHECKS, "result"): _vector([]),
    f"count by (pool) (last_over_time(servewise_gateway_pool_up[{W}]))": _vector([({"pool": "pool-a"}, 1.0)]),
}
RESTARTED = {
    # a gateway restarted in the window: Prometheus's increase() instead
    _resets(REQUESTS, SPEND, CHECKS): _vector([({}, 1.0)]),
    _increase(REQUESTS, ROUTE): _vector([(LOCAL_OK, 40.0), (CLOUD_OK, 10.0)]),
    _increase(SPEND): _vector([({}, 0.25)]),
    _increase(CHECKS, "result"): _vector([]),
    f"count by (pool) (last_over_time(servewise_gateway_pool_up[{W}]))": _vector([({"pool": "pool-a"}, 1.0)]),
}


def _key(path: str, params: dict[str, str]) -> str:
    return json.dumps([path, sorted(params.items())])


class _Handler(BaseHTTPRequestHandler):
    """``/api/v1/…``: the recording (or the gateway vectors under ``/gateway``); unknown queries get Prometheus's
    400 ``bad_data`` error; ``/empty`` answers every query with no series; ``/html`` is not an API at all."""

    answers: ClassVar[dict[str, dict[str, Any]]] = {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        prefix, _, api_path = url.path.partition("/api/")
        api_path = "/api/" + api_path
        if prefix == "/html":
            self._send(200, b"<html>not prometheus</html>", "text/html")
            return
        if prefix == "/empty":
            kind = "matrix" if api_path.endswith("query_range") else "vector"
            body: dict[str, Any] = {"status": "success", "data": {"resultType": kind, "result": []}}
        elif prefix == "/gateway" and params.get("query") in GATEWAY:
            body = GATEWAY[params["query"]]
        elif prefix == "/restarted" and params.get("query") in RESTARTED:
            body = RESTARTED[params["query"]]
        else:
            found = self.answers.get(_key(api_path, params))
            if found is None:
                error = {"status": "error", "errorType": "bad_data", "error": f"unexpected query {params}"}
                self._send(400, json.dumps(error).encode(), "application/json")
                return
            body = found
        self._send(200, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, payload: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    _Handler.answers = {_key(a["path"], a["params"]): a["body"] for a in RECORDING["answers"]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _recorded(query: str) -> list[dict[str, Any]]:
    answer = next(a for a in RECORDING["answers"] if a["params"]["query"] == query)
    return list(answer["body"]["data"]["result"])


def _by(query: str, label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in _recorded(query)}


def test_the_recorded_answers_become_the_observation(api: str) -> None:
    o = prometheus_observation(api, window_s=WINDOW_S, step_s=STEP_S, end=END)
    success = "vllm:request_success_total"
    after, before = (
        _by(_after(success, "finished_reason"), "finished_reason"),
        _by(_before(success, "finished_reason"), "finished_reason"),
    )
    finished = sum(value - before.get(reason, 0.0) for reason, value in after.items())
    assert finished > 0 and o.requests == finished and o.qps == pytest.approx(finished / WINDOW_S)
    assert o.replicas == 2 and len(o.samples) == int(WINDOW_S / STEP_S)
    assert [s.t_s for s in o.samples] == [STEP_S * (i + 1) for i in range(len(o.samples))]
    assert o.model_name == RECORDING["served_model"]
    bucket = "vllm:time_to_first_token_seconds_bucket"
    ends, starts = _by(_after(bucket, "le"), "le"), _by(_before(bucket, "le"), "le")
    buckets = {math.inf if le == "+Inf" else float(le): n - starts.get(le, 0.0) for le, n in ends.items()}
    assert o.histograms["ttft"] == buckets
    for q, theirs in RECORDING["prometheus_ttft_quantiles"].items():
        assert histogram_quantile(float(q), buckets) == pytest.approx(
            theirs, rel=1e-9
        )  # Prometheus's own answer
    assert o.ttft_s[0.95] == pytest.approx(RECORDING["prometheus_ttft_quantiles"]["0.95"], rel=1e-9)
    assert o.prompt_tokens_p95 is not None and o.output_tokens_mean is not None
    assert o.fallback_share is None and any("no gateway metrics" in w for w in o.warnings)


def test_gateway_counters_become_shares_and_spend(api: str) -> None:
    o = prometheus_observation(f"{api}/gateway", window_s=WINDOW_S, step_s=STEP_S, end=END)
    # in the window: 80 local ok, 10 cloud, 5 local errors, 5 cache hits = 100; routed (not cache) = 95
    assert o.errors == 5 and o.error_rate == pytest.approx(0.05)
    assert o.local_ratio == pytest.approx(85 / 95) and o.fallback_share == pytest.approx(10 / 95)
    assert o.schema_valid_ratio == pytest.approx(0.99)
    assert o.spend_usd == pytest.approx(0.5) and o.spend_usd_per_hour == pytest.approx(0.5 * 3600 / WINDOW_S)
    restarted = prometheus_observation(f"{api}/restarted", window_s=WINDOW_S, step_s=STEP_S, end=END)
    assert restarted.local_ratio == pytest.approx(0.8) and restarted.spend_usd == pytest.approx(0.25)
    assert any("restarted in the window" in w for w in restarted.warnings)


def test_what_prometheus_refuses_or_lacks_is_one_line(api: str) -> None:
    with pytest.raises(UsageError, match=r"rejected `.*job=\"nope\".*bad_data|unexpected query") as caught:
        prometheus_observation(api, window_s=WINDOW_S, step_s=STEP_S, end=END, selector='job="nope"')
    assert "check --selector" in str(caught.value)
    with pytest.raises(UsageError, match='no vllm:\\* series match \\{job="x"\\}'):
        prometheus_observation(
            f"{api}/empty", window_s=WINDOW_S, step_s=STEP_S, end=END, selector='{job="x"}'
        )
    with pytest.raises(UsageError, match=r"without JSON; is .* a Prometheus server"):
        prometheus_observation(f"{api}/html", window_s=WINDOW_S, step_s=STEP_S, end=END)
    with pytest.raises(UsageError, match=r"cannot reach Prometheus at http://127\.0\.0\.1:9"):
        prometheus_observation("http://127.0.0.1:9", window_s=WINDOW_S, step_s=STEP_S, end=END)
    with pytest.raises(UsageError, match="points per series"):
        prometheus_observation(api, window_s=86400.0, step_s=1.0, end=END)
    with pytest.raises(UsageError, match="not an http"):
        prometheus_observation("prometheus:9090", window_s=WINDOW_S, step_s=STEP_S, end=END)


def test_durations_in_promql() -> None:
    assert (promql_duration(60.0), promql_duration(1.5), promql_duration(0.0001)) == ("60s", "1500ms", "1ms")


def test_the_command_reads_a_past_window_from_prometheus(
    api: str,
    watch_plan_file: Path,
    watch_catalog_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SERVEWISE_DB_URL", watch_catalog_url)
    args = ["watch", "--plan", str(watch_plan_file), "--prometheus", api, "--window", f"{WINDOW_S:g}s",
            "--interval", f"{STEP_S:g}s", "--end", END.isoformat(), "--format", "json"]  # fmt: skip
    code, out, err = run_cli(capsys, *args)
    document = json.loads(out)
    assert code == (0 if document["passed"] else 1), err
    assert document["observation"]["source"] == "prometheus" and document["observation"]["replicas"] == 2
    assert document["observation"]["ended_at"] == END.isoformat(timespec="seconds")
