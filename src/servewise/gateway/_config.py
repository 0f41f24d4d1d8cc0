"""The gateway's configuration file (``servewise gateway --config gateway.yaml``): listen address, databases,
upstream routes (local pools and hosted APIs), routing, alerts and cache.

Why one frozen pydantic model: the file is read once at start-up; every problem (missing file, bad YAML, an unknown
key, a route named twice, a price given two ways) becomes one ``GatewayConfigError`` line naming the field path,
before a socket is opened. Relative paths (a pool's ``plan``) are resolved against the config file's folder, so
the gateway runs the same from any working directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from servewise.errors import UsageError
from servewise.workload import validation_message

__all__ = [
    "AlertsConfig",
    "ApiConfig",
    "CacheConfig",
    "GatewayConfig",
    "GatewayConfigError",
    "ListenConfig",
    "PoolConfig",
    "RoutingConfig",
    "load_gateway_config",
]


class GatewayConfigError(UsageError):
    """The gateway config file is missing, unreadable or invalid (one line: file, field path, what to do)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ListenConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)


class PoolConfig(_Frozen):
    """A local, vLLM-compatible pool. Price: a plan option's ``usd_per_1m_tokens`` (``plan`` + ``option``), or
    ``usd_per_hour`` spread over ``tokens_per_s`` of planned throughput (docs/gateway.md, "Pricing")."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    served_model: str | None = None
    plan: Path | None = None
    option: int | None = Field(default=None, ge=1)
    usd_per_hour: float | None = Field(default=None, ge=0)
    tokens_per_s: float | None = Field(default=None, gt=0)
    max_context_tokens: int | None = Field(default=None, ge=1)
    api_key_env: str | None = None

    @model_validator(mode="after")
    def _one_price(self) -> PoolConfig:
        by_plan = self.plan is not None
        by_hand = self.usd_per_hour is not None or self.tokens_per_s is not None
        if by_plan == by_hand:
            raise ValueError(
                "give the price one way: `plan` (+ `option`), or `usd_per_hour` and `tokens_per_s`"
            )
        if by_hand and (self.usd_per_hour is None or self.tokens_per_s is None):
            raise ValueError("`usd_per_hour` needs `tokens_per_s` (the planned throughput) and vice versa")
        if self.option is not None and not by_plan:
            raise ValueError("`option` only applies with `plan`")
        return self

    @property
    def upstream_model(self) -> str:
        """The model name the pool itself serves (sent upstream): ``served_model`` or the first alias."""
        return self.served_model or self.models[0]


class ApiConfig(_Frozen):
    """A hosted OpenAI-compatible API. Price: the catalog's row for ``model`` unless both per-1M prices are given.
    ``models``: the names clients ask for that this route may serve (default: ``model`` itself); list a local
    model here to let the router overflow or fall back to this API."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    base_url: str = Field(min_length=1)
    api_key_env: str | None = None
    model: str = Field(min_length=1)
    models: tuple[str, ...] = ()
    usd_per_1m_input: float | None = Field(default=None, ge=0)
    usd_per_1m_output: float | None = Field(default=None, ge=0)
    max_context_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _both_prices(self) -> ApiConfig:
        if (self.usd_per_1m_input is None) != (self.usd_per_1m_output is None):
            raise ValueError(
                "give both `usd_per_1m_input` and `usd_per_1m_output`, or neither (catalog price)"
            )
        return self

    @property
    def client_models(self) -> tuple[str, ...]:
        return self.models or (self.model,)


class RoutingConfig(_Frozen):
    long_context_tokens: int = Field(default=4096, ge=1)
    long_context_route: str | None = None
    local_ratio_target: float = Field(default=0.98, ge=0, le=1)
    queue_threshold: float = Field(default=8, ge=0)
    poll_interval_s: float = Field(default=2.0, gt=0)
    poll_timeout_s: float = Field(default=1.0, gt=0)
    stale_after_s: float | None = Field(default=None, gt=0)
    downgrade_below_fraction: float = Field(default=0.1, ge=0, le=1)
    max_retries: int = Field(default=2, ge=0)
    retry_budget_ratio: float = Field(default=0.2, ge=0)
    retry_min_per_s: float = Field(default=10.0, ge=0)
    retry_ttl_s: float = Field(default=10.0, gt=0)


class AlertsConfig(_Frozen):
    webhook_url: str | None = None
    levels_pct: tuple[int, ...] = (80, 95, 100)
    anomaly_factor: float = Field(default=1.5, gt=1)


class CacheConfig(_Frozen):
    """``sampled_models``: requested model names whose temperature > 0 answers may be cached too. ``semantic``
    must stay null: no offline embedding model installs here without torch (docs/gateway.md, "Cache")."""

    exact: bool = True
    max_entries: int = Field(default=10_000, ge=1)
    ttl_s: float = Field(default=3600.0, gt=0)
    sampled_models: tuple[str, ...] = ()
    semantic: None = None

    @field_validator("semantic", mode="before")
    @classmethod
    def _no_semantic(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "the semantic cache is not available in this build (it needs a local embedding model, which "
                "needs torch); remove `semantic` or set it to null"
            )
        return None


class GatewayConfig(_Frozen):
    listen: ListenConfig = ListenConfig()
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = Field(default="servewise", min_length=1)
    timezone: str = "UTC"
    admin_key_env: str = "SERVEWISE_ADMIN_KEY"
    budget_backend: Literal["auto", "sql", "redis"] = "auto"
    default_max_tokens: int = Field(default=4096, ge=1)
    """Sent upstream when a request gives no ``max_tokens``, so its reservation is a true worst case."""
    pools: tuple[PoolConfig, ...] = ()
    apis: tuple[ApiConfig, ...] = ()
    routing: RoutingConfig = RoutingConfig()
    alerts: AlertsConfig = AlertsConfig()
    cache: CacheConfig = CacheConfig()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _routes_fit(self) -> GatewayConfig:
        names = [p.name for p in self.pools] + [a.name for a in self.apis]
        if not names:
            raise ValueError("no routes: add at least one entry under `pools` or `apis`")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"route name(s) {', '.join(twice)} used twice; every pool and API needs its own name"
            )
        wanted = self.routing.long_context_route
        if wanted is not None and wanted not in names:
            raise ValueError(
                f"routing.long_context_route {wanted!r} is not a pool or API; use one of {names}"
            )
        if self.budget_backend == "redis" and not self.redis_url:
            raise ValueError("budget_backend `redis` needs `redis_url`")
        return self

    @property
    def route_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.pools) + tuple(a.name for a in self.apis)

    @property
    def client_models(self) -> tuple[str, ...]:
        """Every model name clients may ask for, in config order, once each."""
        seen: dict[str, None] = {}
        for pool in self.pools:
            seen.update(dict.fromkeys(pool.models))
        for api in self.apis:
            seen.update(dict.fromkeys(api.client_models))
        return tuple(seen)

    @property
    def uses_redis(self) -> bool:
        return self.budget_backend != "sql" and self.redis_url is not None


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GatewayConfigError(
            f"gateway config {path} does not exist; write one (see docs/gateway.md) and pass --config PATH"
        ) from None
    except IsADirectoryError:
        raise GatewayConfigError(f"gateway config {path} is a folder; pass the YAML file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise GatewayConfigError(
            f"cannot read gateway config {path} ({err}); check the path and permissions"
        ) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(err, "problem", None) or getattr(err, "msg", None) or "syntax error"
        raise GatewayConfigError(f"{path}:{where} malformed YAML: {problem}; fix the file") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise GatewayConfigError(
            f"{path} is {kind}; it must hold a mapping of gateway settings (docs/gateway.md)"
        )
    return data


def _resolve_plans(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    pools = data.get("pools")
    if not isinstance(pools, list):
        return data
    resolved = []
    for pool in pools:
        if isinstance(pool, dict) and isinstance(pool.get("plan"), str):
            plan = Path(pool["plan"]).expanduser()
            pool = {**pool, "plan": str(plan if plan.is_absolute() else folder / plan)}
        resolved.append(pool)
    return {**data, "pools": resolved}


def load_gateway_config(path: Path | str) -> GatewayConfig:
    """The validated config at ``path``; ``GatewayConfigError`` (one line with the field path) otherwise."""
    path = Path(path)
    data = _resolve_plans(_read(path), path.resolve().parent)
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as err:
        raise GatewayConfigError(
            f"{validation_message(err, prefix=str(path))}; see docs/gateway.md"
        ) from None
