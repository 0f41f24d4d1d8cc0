"""One OpenAI request through the gateway: auth → parse → cache → route → reserve → forward → settle → ledger.

Order and why:

1. **auth** (401 missing/unknown key, 403 revoked key or a model the key may not use) before reading the body;
2. **parse** (400 in OpenAI's error format) and the prompt's token estimate; 404 for a model no route serves;
3. **cache** lookup: a hit is answered at $0 and recorded as ``cache_hit``;
4. **route**: the policy picks a route from the ones serving the model (queue depth, local share, budget left);
5. **reserve** the worst case (prompt × input price + ``max_tokens`` × output price) on every budget level at
   once; a refusal is a 429 naming the budget and its reset, with ``Retry-After`` — or, when that budget's action
   is ``downgrade``, one more try on the cheaper route;
6. **forward**, with fallbacks on connect errors/429/5xx *before the first byte* (each retry needs a token from
   the retry budget; a pricier fallback re-reserves its own worst case);
7. **settle** through the ledger (``LedgerWriter.add(row, reservation)``: the row and the counter update commit
   together): the upstream's ``usage`` when given, else the counted tokens; an error before any token releases
   the reservation (a row with $0 and status ``error``); a cancelled stream pays for the chunks delivered.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from servewise.errors import UsageError

from ._budgets import BudgetRef, Refusal, Reservation
from ._cache import CachedResponse, StreamAssembler, cache_key, replay_sse, storable
from ._ledger import SpendRow
from ._metrics import OverheadTimer
from ._parse import BadRequest, Endpoint, ParsedRequest, parse_request
from ._routing import PRIORITY_HEADER, NoRouteError, RequestFacts, RouteDecision, RoutingState, parse_priority
from ._schema_checks import SchemaCheck, check_content, message_contents, schema_check_for
from ._services import GatewayServices, Route
from ._stream import MeteredStreamingResponse, StreamMeter, metered_events
from ._tenancy import AuthFailure, Principal
from ._upstream import UpstreamError, UpstreamReply, UpstreamStream

__all__ = ["Proxy", "openai_error"]

log = logging.getLogger("servewise.gateway.proxy")

OVER_RESERVATION_LOG_EVERY_S = 60.0
"""A settlement above its reservation is logged at most this often per route (each one is counted in metrics)."""


def openai_error(
    status: int,
    message: str,
    kind: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error body as OpenAI sends it: ``{"error": {message, type, param, code}}``."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(slots=True)
class _Call:
    """Everything known about one admitted request while it is forwarded and settled."""

    principal: Principal
    parsed: ParsedRequest
    end_user: str | None
    request_id: str
    now: datetime
    timer: OverheadTimer
    started_s: float
    decision: RouteDecision
    label: str
    cache_key: str | None = None
    reservation: Reservation | None = None
    """The hold currently covering the request (it changes when a pricier fallback re-reserves)."""
    sent: bool = False
    """An upstream may have received the request: an unexplained failure from here on is billed its worst case."""
    recorded: bool = False
    schema_check: SchemaCheck | None = None
    """The JSON check the request's ``response_format`` asks for (``_schema_checks.py``); ``None``: no work."""


class Proxy:
    """The request flow over the wired ``GatewayServices`` (one per app)."""

    def __init__(self, services: GatewayServices) -> None:
        self._s = services
        self._over_logged_s: dict[str, float] = {}
        """Route → when an over-reservation was last logged: once a minute per route (the metric counts each)."""

    async def handle(self, endpoint: Endpoint, request: Request) -> Response:
        timer = OverheadTimer()
        started_s = time.perf_counter()
        principal = await self._s.keys.authenticate(request.headers.get("authorization"))
        if isinstance(principal, AuthFailure):
            # OpenAI's own 401 body: type invalid_request_error, code invalid_api_key
            kind, code = ("invalid_request_error", "invalid_api_key")
            if principal.status == 403:
                kind, code = ("permission_error", "key_revoked")
            return openai_error(principal.status, principal.message, kind, code=code)
        try:
            parsed = parse_request(
                endpoint, await request.body(), default_max_tokens=self._s.default_max_tokens
            )
            priority = parse_priority(request.headers.get(PRIORITY_HEADER))
            check = schema_check_for(parsed.body) if endpoint == "chat" else None
        except BadRequest as err:
            return openai_error(400, err.message, "invalid_request_error", param=err.param)
        except UsageError as err:
            return openai_error(400, str(err), "invalid_request_error")
        routes = self._s.routes_for(parsed.model)
        if not routes:
            return openai_error(
                404,
                f"The model `{parsed.model}` does not exist on this gateway; GET /v1/models lists the models served",
                "invalid_request_error",
                code="model_not_found",
                param="model",
            )
        if not principal.may_use(parsed.model):
            return openai_error(
                403,
                f"API key {principal.key_id} may not use model `{parsed.model}`; ask an admin for access",
                "permission_error",
                code="model_not_allowed",
                param="model",
            )
        end_user = parsed.user or principal.end_user
        request_id = uuid.uuid4().hex
        key = self._cache_key(parsed, principal)
        if key is not None:
            cached = await self._s.cache.get(key) if self._s.cache is not None else None
            self._s.metrics.observe_cache(hit=cached is not None)
            if cached is not None:
                return self._answer_from_cache(
                    principal, parsed, end_user, request_id, cached, timer, started_s
                )
        budgets = await self._s.store.budgets_for(
            principal.org_id, principal.team_id, principal.key_id, end_user
        )
        now = datetime.now(UTC)
        left = await self._left_fraction(budgets, now)
        facts = RequestFacts(
            parsed.model, parsed.prompt_tokens, parsed.max_tokens, priority, left, parsed.stream
        )
        state = RoutingState(queue_depth=self._s.queue_depths(), local_share=self._s.share.share())
        try:
            decision = self._s.policy.decide(facts, [r.info for r in routes], state)
        except NoRouteError as err:
            return openai_error(400, str(err), "invalid_request_error", code="context_length_exceeded")
        call = _Call(
            principal, parsed, end_user, request_id, now, timer, started_s, decision, decision.label, key
        )
        call.schema_check = check
        route = self._s.routes[decision.route]
        amount = self._worst_case(route, parsed)
        result = await self._s.store.reserve(
            request_id, budgets, amount, now, meta=self._meta(call, route.info.name)
        )
        if isinstance(result, Refusal):
            cheaper = self._downgrade_route(result.budget, routes, route, parsed)
            if cheaper is not None:
                amount = self._worst_case(cheaper, parsed)
                call.label = "budget_cloud"
                retried = await self._s.store.reserve(
                    request_id, budgets, amount, now, meta=self._meta(call, cheaper.info.name)
                )
                if isinstance(retried, Reservation):
                    call.decision = replace(decision, route=cheaper.info.name, fallbacks=())
                    return await self._guarded(call, budgets, cheaper, retried)
                call.label = decision.label
            return self._refuse(call, route, result)
        return await self._guarded(call, budgets, route, result)

    async def _guarded(
        self, call: _Call, budgets: list[BudgetRef], route: Route, reservation: Reservation
    ) -> Response:
        """``_forward`` that never leaves a reservation behind: whatever escapes it (a bug, a cancellation at
        shutdown) still gets a ledger row — $0 when no upstream can have seen the request, else the worst case,
        because the upstream may have served it."""
        call.reservation = reservation
        try:
            return await self._forward(call, budgets, route, reservation)
        except BaseException as err:
            if not call.recorded and call.reservation is not None:
                held = call.reservation
                charge = held.amount_micro_usd if call.sent else 0
                log.error(
                    "request %s failed inside the gateway (%s); billed $%.6f (%s)",
                    call.request_id,
                    type(err).__name__,
                    charge / 1e6,
                    "worst case: the upstream may have served it" if call.sent else "nothing was sent",
                )
                try:
                    self._record(
                        call, call.decision.route, prompt=0, completion=0, micro_usd=charge, status="error",
                        res=held,
                    )  # fmt: skip
                except Exception:  # ledger closed: the reservation stays open; reconcile charges it
                    log.exception("could not record request %s", call.request_id)
            raise

    @staticmethod
    def _worst_case(route: Route, parsed: ParsedRequest) -> int:
        return route.price.worst_case_micro_usd(parsed.prompt_tokens, parsed.worst_completion_tokens)

    @staticmethod
    def _meta(call: _Call, route: str) -> dict[str, Any]:
        """Who and what a reservation is for: reconciliation bills an orphan to this tenant (``orphan_row``)."""
        return {
            "at": call.now.isoformat(),
            "org_id": call.principal.org_id,
            "team_id": call.principal.team_id,
            "key_id": call.principal.key_id,
            "end_user": call.end_user,
            "route": route,
            "model": call.parsed.model,
            "decision": call.label,
        }

    # --- admission helpers -------------------------------------------------------------------------------------

    def _cache_key(self, parsed: ParsedRequest, principal: Principal) -> str | None:
        if self._s.cache is None:
            return None
        return cache_key(
            f"/v1/{parsed.path}",
            parsed.body,
            namespace=principal.org_id,
            sampled_models=self._s.cache_sampled_models,
        )

    async def _left_fraction(self, budgets: list[BudgetRef], now: datetime) -> float | None:
        if not any(b.hard_micro_usd for b in budgets):
            return None
        fractions = [u.left_fraction for u in await self._s.store.usage(budgets, now)]
        known = [f for f in fractions if f is not None]
        return min(known) if known else None

    def _downgrade_route(
        self, budget: BudgetRef, routes: list[Route], current: Route, parsed: ParsedRequest
    ) -> Route | None:
        """The route a ``downgrade`` budget sends a refused request to: its named route if it serves the model,
        else the cheapest one; ``None`` when the budget rejects or nothing is cheaper."""
        if budget.action != "downgrade":
            return None

        def cost(route: Route) -> int:
            return self._worst_case(route, parsed)

        named = [r for r in routes if r.info.name == budget.downgrade_route]
        candidates = named or sorted(routes, key=cost)
        best = candidates[0] if candidates else None
        if best is None or best.info.name == current.info.name or cost(best) >= cost(current):
            return None
        return best

    def _refuse(self, call: _Call, route: Route, refusal: Refusal) -> Response:
        self._record(call, route.info.name, prompt=0, completion=0, micro_usd=0, status="rejected")
        return openai_error(
            429,
            refusal.message(),
            "budget_exceeded",
            code="budget_exceeded",
            headers={
                "Retry-After": str(refusal.retry_after_s(call.now)),
                **self._headers(call, route.info.name),
            },
        )

    # --- forwarding ----------------------------------------------------------------------------------------------

    def _upstream_body(self, call: _Call, route: Route) -> dict[str, Any]:
        body = {**call.parsed.body, "model": route.upstream_model}
        if call.parsed.stream:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return body

    async def _forward(
        self, call: _Call, budgets: list[BudgetRef], route: Route, reservation: Reservation
    ) -> Response:
        self._s.retry.deposit()
        order = [route.info.name, *call.decision.fallbacks]
        last: UpstreamError | None = None
        for attempt, name in enumerate(order):
            if attempt > 0:
                if attempt > self._s.max_retries:  # the per-request cap, not the retry budget: not a denial
                    break
                allowed = self._s.retry.try_withdraw()
                self._s.metrics.observe_retry(route=name, allowed=allowed)
                if not allowed:
                    break
                self._s.metrics.observe_fallback(from_route=route.info.name, to_route=name)
                next_route = self._s.routes[name]
                needed = self._worst_case(next_route, call.parsed)
                if needed > reservation.amount_micro_usd:
                    moved = await self._s.store.reserve(
                        f"{call.request_id}-{attempt}",
                        budgets,
                        needed,
                        call.now,
                        meta={**self._meta(call, name), "decision": "fallback"},
                    )
                    if isinstance(moved, Refusal):
                        continue
                    call.reservation = moved
                    await self._s.store.release(reservation)
                    reservation = moved
                    call.request_id = moved.request_id
                route = next_route
                call.label = "fallback"
            try:
                call.sent = True
                if call.parsed.stream:
                    with call.timer.upstream():
                        stream = await route.upstream.open_stream(
                            call.parsed.path, self._upstream_body(call, route)
                        )
                    return self._stream(call, route, reservation, stream)
                with call.timer.upstream():
                    reply = await route.upstream.post(call.parsed.path, self._upstream_body(call, route))
                return await self._whole(call, route, reservation, reply)
            except UpstreamError as err:
                last = err
                call.sent = (
                    False  # an UpstreamError is classified: only `maybe_served` can have cost anything
                )
                kind = "lost_answer" if err.maybe_served else str(err.status or "connect")
                self._s.metrics.observe_upstream_error(route=route.info.name, kind=kind)
                if not err.retryable:
                    break
        lost = last is not None and last.maybe_served
        self._record(
            call,
            route.info.name,
            prompt=0,
            completion=0,
            micro_usd=reservation.amount_micro_usd if lost else 0,
            status="error",
            res=reservation,
        )
        headers = self._headers(call, route.info.name)
        if last is not None and last.status is not None and last.body:
            media = "application/json" if last.body.lstrip().startswith(b"{") else "text/plain"
            return Response(last.body, status_code=last.status, media_type=media, headers=headers)
        reason = str(last) if last is not None else "no route left within the retry budget"
        return openai_error(
            502,
            f"no upstream answered: {reason}; retry later",
            "upstream_error",
            code="upstream_error",
            headers=headers,
        )

    async def _whole(
        self, call: _Call, route: Route, reservation: Reservation, reply: UpstreamReply
    ) -> Response:
        headers = self._headers(call, route.info.name)
        if (
            reply.status != 200
        ):  # the client's own mistake (4xx other than 429): nothing served, nothing billed
            self._record(
                call, route.info.name, prompt=0, completion=0, micro_usd=0, status="error", res=reservation
            )
            return Response(
                reply.body, status_code=reply.status, media_type=reply.content_type, headers=headers
            )
        try:
            data = json.loads(reply.body)
        except json.JSONDecodeError:
            data = {}
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        prompt = int(usage.get("prompt_tokens") or call.parsed.prompt_tokens)
        completion = int(usage.get("completion_tokens") or 0)
        if not usage and call.parsed.endpoint != "embeddings":
            completion = call.parsed.worst_completion_tokens  # no usage reported: bill the worst case
        micro = route.price.cost_micro_usd(prompt, completion)
        self._record(
            call,
            route.info.name,
            prompt=prompt,
            completion=completion,
            micro_usd=micro,
            status="ok",
            res=reservation,
        )
        if isinstance(data, dict):
            if call.schema_check is not None:
                self._check_schema(call, route, message_contents(data))
            await self._store(call, route, data)
        return Response(reply.body, status_code=200, media_type=reply.content_type, headers=headers)

    def _stream(
        self, call: _Call, route: Route, reservation: Reservation, stream: UpstreamStream
    ) -> Response:
        meter = StreamMeter(
            assembler=StreamAssembler() if call.cache_key is not None else None,
            content={} if call.schema_check is not None else None,
        )
        events = metered_events(stream, meter, call.timer, client_wants_usage=call.parsed.include_usage)

        async def settle() -> None:
            await stream.aclose()
            usage = meter.usage or {}
            prompt = int(usage.get("prompt_tokens") or call.parsed.prompt_tokens)
            if meter.outcome == "ok" and usage.get("completion_tokens") is not None:
                completion = int(usage["completion_tokens"])
            else:
                completion = meter.delivered_tokens
            micro = route.price.cost_micro_usd(prompt, completion)
            self._record(
                call,
                route.info.name,
                prompt=prompt,
                completion=completion,
                micro_usd=micro,
                status=meter.outcome,
                res=reservation,
            )
            if meter.outcome == "ok" and meter.content is not None:
                streamed = ["".join(meter.content[index]) for index in sorted(meter.content)]
                self._check_schema(call, route, streamed or [""])
            assembled = meter.assembler.result() if meter.assembler is not None else None
            if meter.outcome == "ok" and assembled is not None:
                await self._store(call, route, assembled)

        return MeteredStreamingResponse(events, settle, self._headers(call, route.info.name))

    def _check_schema(self, call: _Call, route: Route, contents: Sequence[object]) -> None:
        """Count each choice of a complete answer as valid or invalid JSON for its ``response_format``; the answer
        is unchanged."""
        if call.schema_check is None:
            return
        for content in contents:
            valid = check_content(call.schema_check, content)
            if valid is not None:
                self._s.metrics.observe_schema_check(
                    org=call.principal.org_id, team=call.principal.team_id, route=route.info.name, valid=valid
                )

    async def _store(self, call: _Call, route: Route, body: dict[str, Any]) -> None:
        """Keep a complete answer in the cache (when the request is cacheable at all)."""
        if call.cache_key is None or self._s.cache is None or not storable(f"/v1/{call.parsed.path}", body):
            return
        await self._s.cache.put(call.cache_key, CachedResponse(body, route.info.name, time.time()))

    def _answer_from_cache(
        self,
        principal: Principal,
        parsed: ParsedRequest,
        end_user: str | None,
        request_id: str,
        cached: CachedResponse,
        timer: OverheadTimer,
        started_s: float,
    ) -> Response:
        decision = RouteDecision(route="cache", label="cache", fallbacks=(), reason="exact-match cache hit")
        call = _Call(
            principal, parsed, end_user, request_id, datetime.now(UTC), timer, started_s, decision, "cache"
        )
        stored = cached.body.get("usage")
        usage: dict[str, Any] = stored if isinstance(stored, dict) else {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self._record(call, "cache", prompt=prompt, completion=completion, micro_usd=0, status="cache_hit")
        headers = self._headers(call, "cache")
        if parsed.stream:
            chunks = replay_sse(cached.body, include_usage=parsed.include_usage)
            return StreamingResponse(iter(chunks), media_type="text/event-stream", headers=headers)
        return JSONResponse(cached.body, headers=headers)

    # --- recording ---------------------------------------------------------------------------------------------

    def _headers(self, call: _Call, route: str) -> dict[str, str]:
        return {
            "x-servewise-request-id": call.request_id,
            "x-servewise-route": route,
            "x-servewise-decision": call.label,
        }

    def _record(
        self,
        call: _Call,
        route: str,
        *,
        prompt: int,
        completion: int,
        micro_usd: int,
        status: str,
        res: Reservation | None = None,
    ) -> None:
        """Ledger row (with its reservation: settled or, at $0, released, in the ledger's flush) and metrics.

        A cost above the reservation (the upstream counted more prompt tokens than the estimate) is recorded in
        full — the ledger holds what was spent, even when that takes a budget past its hard limit — and logged."""
        call.recorded = True
        if res is not None and micro_usd > res.amount_micro_usd:
            now_s = time.monotonic()
            if now_s - self._over_logged_s.get(route, -math.inf) >= OVER_RESERVATION_LOG_EVERY_S:
                self._over_logged_s[route] = now_s
                log.warning(
                    "request %s on %s cost $%.6f, more than its reservation $%.6f (prompt estimate too low); "
                    "recorded in full (logged once a minute per route; "
                    "servewise_gateway_over_reservation_usd_total counts every case)",
                    call.request_id,
                    route,
                    micro_usd / 1e6,
                    res.amount_micro_usd / 1e6,
                )
            self._s.metrics.observe_over_reservation(
                route=route, usd=(micro_usd - res.amount_micro_usd) / 1e6
            )
        latency_ms = (time.perf_counter() - call.started_s) * 1000.0
        row = SpendRow(
            request_id=call.request_id,
            at=call.now,
            org_id=call.principal.org_id,
            team_id=call.principal.team_id,
            key_id=call.principal.key_id,
            end_user=call.end_user,
            route=route,
            model=call.parsed.model,
            decision=call.label,
            prompt_tokens=prompt,
            completion_tokens=completion,
            micro_usd=micro_usd,
            status=status,
            latency_ms=latency_ms,
            cached=status == "cache_hit",
        )
        self._s.ledger.add(row, res)
        if status in ("ok", "cancelled") and route in self._s.routes:
            self._s.share.record(self._s.routes[route].info.kind)
        self._s.metrics.observe_request(
            org=call.principal.org_id,
            team=call.principal.team_id,
            route=route,
            decision=call.label,
            status=status,
            prompt_tokens=prompt,
            completion_tokens=completion,
            usd=micro_usd / 1e6,
            overhead_s=call.timer.overhead_s(),
        )
