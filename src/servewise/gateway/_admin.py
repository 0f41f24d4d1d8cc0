"""The admin API (``/admin/...``): keys, budgets and spend, behind a separate admin key.

Why a separate key from an environment variable (``admin_key_env``, default ``SERVEWISE_ADMIN_KEY``): a client
key must never manage keys or budgets, and the admin secret stays out of the config file. No admin key set means
the admin API is off (403 on every call). Missing ``Authorization`` → 401, a wrong key → 403; the check is
constant-time. Database calls run in a thread so the event loop keeps serving requests.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from servewise.errors import ServewiseError

from ._budgets import BudgetRef, BudgetStore, usd_to_micro_round
from ._services import GatewayServices
from ._spend_report import spend_report
from ._tenancy import ApiKeyInfo, admin_key_matches, create_key, list_keys, revoke_key

__all__ = ["AdminError", "admin_router"]


class AdminError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str
    name: str
    team: str | None = None
    end_user: str | None = None
    models: list[str] | None = None


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str
    scope_id: str
    window: str
    soft_usd: float | None = Field(default=None, ge=0)
    hard_usd: float | None = Field(default=None, ge=0)
    action: str = "reject"
    downgrade_route: str | None = None
    timezone: str | None = None


def key_document(info: ApiKeyInfo) -> dict[str, Any]:
    return {
        "key_id": info.key_id,
        "org": info.org_id,
        "team": info.team_id,
        "name": info.name,
        "end_user": info.end_user,
        "models": list(info.models) if info.models is not None else None,
        "created_at": info.created_at.isoformat(),
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
    }


def budget_document(ref: BudgetRef) -> dict[str, Any]:
    return {
        "budget_id": ref.budget_id,
        "scope": ref.scope,
        "scope_id": ref.scope_id,
        "window": ref.window,
        "timezone": ref.timezone,
        "soft_usd": None if ref.soft_micro_usd is None else ref.soft_micro_usd / 1e6,
        "hard_usd": None if ref.hard_micro_usd is None else ref.hard_micro_usd / 1e6,
        "action": ref.action,
        "downgrade_route": ref.downgrade_route,
    }


async def budget_usage_documents(store: BudgetStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every budget with its current window's spend and reservations in dollars, and when the window resets: what
    ``GET /admin/budgets``, ``servewise gateway budgets show`` and the web/REST budget views all show."""
    refs = await store.list_budgets()
    return [
        {
            **budget_document(u.budget),
            "window_start": u.window_start.isoformat(),
            "resets_at": u.resets_at.isoformat(),
            "spent_usd": round(u.spent_micro_usd / 1e6, 6),
            "reserved_usd": round(u.reserved_micro_usd / 1e6, 6),
        }
        for u in await store.usage(refs, now or datetime.now(UTC))
    ]


def _error_response(err: AdminError) -> JSONResponse:
    body = {"error": {"message": err.message, "type": err.kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=err.status)


def admin_router(app: FastAPI, services: GatewayServices) -> APIRouter:
    """The ``/admin`` routes for ``services``; registers the error handlers on ``app``."""

    def require_admin(request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise AdminError(
                401, "missing admin key: send `Authorization: Bearer <admin key>`", "authentication_error"
            )
        scheme, _, token = header.partition(" ")
        if services.admin_key is None:
            raise AdminError(
                403,
                f"the admin API is off: set {services.config.admin_key_env} for the gateway",
                "permission_error",
            )
        if scheme.lower() != "bearer" or not admin_key_matches(token.strip(), services.admin_key):
            raise AdminError(403, "wrong admin key", "permission_error")

    async def on_admin_error(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, AdminError)
        return _error_response(err)

    app.add_exception_handler(AdminError, on_admin_error)
    router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

    async def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ServewiseError as err:
            raise AdminError(400, str(err)) from None

    @router.post("/keys", status_code=201)
    async def new_key(body: KeyIn) -> dict[str, Any]:
        models = tuple(body.models) if body.models else None
        created = await guarded(
            create_key,
            services.engine,
            org=body.org,
            name=body.name,
            team=body.team,
            end_user=body.end_user,
            models=models,
        )
        return {**key_document(created.info), "key": created.plaintext}

    @router.get("/keys")
    async def keys(org: str | None = None) -> dict[str, Any]:
        found = await guarded(list_keys, services.engine, org=org)
        return {"keys": [key_document(k) for k in found]}

    @router.post("/keys/{key_id}/revoke")
    async def revoke(key_id: str) -> dict[str, Any]:
        info = await guarded(revoke_key, services.engine, key_id)
        services.keys.forget(key_id)
        return key_document(info)

    @router.put("/budgets")
    async def set_budget(body: BudgetIn) -> dict[str, Any]:
        try:
            ref = await services.store.set_budget(
                scope=body.scope,
                scope_id=body.scope_id,
                window=body.window,
                soft_micro_usd=None if body.soft_usd is None else usd_to_micro_round(body.soft_usd),
                hard_micro_usd=None if body.hard_usd is None else usd_to_micro_round(body.hard_usd),
                action=body.action,
                downgrade_route=body.downgrade_route,
                timezone=body.timezone or services.config.timezone,
            )
        except ServewiseError as err:
            raise AdminError(400, str(err)) from None
        return budget_document(ref)

    @router.get("/budgets")
    async def budgets() -> dict[str, Any]:
        return {"budgets": await budget_usage_documents(services.store)}

    @router.get("/spend")
    async def spend(
        by: str = "tenant", since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        rows = await guarded(spend_report, services.engine, by=by, since=since, until=until)
        return {"by": by, "rows": rows}

    return router
