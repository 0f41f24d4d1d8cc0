"""Organisations → teams → API keys, and the checks that turn an ``Authorization`` header into a tenant.

Why this key format (``sk-sw-<id>-<secret>``): the 12-character public id finds the row with one indexed lookup,
and only ``sha256(secret)`` is stored, compared with ``hmac.compare_digest``; the plaintext is returned once, at
creation, and never stored or logged. A SHA-256 of a 256-bit random secret needs no slow password hash: there is
nothing to brute-force. Admin calls use a separate key read from an environment variable (``admin_key_env``).

Why a short cache in ``KeyAuthenticator``: the key lookup would otherwise cost a database round trip per request;
entries live ``cache_ttl_s`` (5 s), so a revocation through another process takes effect within that time, and at
once in the process that revoked it (``forget``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from servewise.errors import UsageError

from ._tables import ApiKeyRow, OrgRow, TeamRow

__all__ = [
    "KEY_PREFIX",
    "ApiKeyInfo",
    "AuthFailure",
    "CreatedKey",
    "KeyAuthenticator",
    "Principal",
    "admin_key_matches",
    "create_key",
    "ensure_org",
    "ensure_team",
    "hash_secret",
    "list_keys",
    "parse_key",
    "revoke_key",
]

KEY_PREFIX = "sk-sw-"
_ID_CHARS = 12
_KEYS = cast(Table, ApiKeyRow.__table__)
_ORGS = cast(Table, OrgRow.__table__)
_TEAMS = cast(Table, TeamRow.__table__)
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and the tenancy levels its budgets apply to."""

    key_id: str
    org_id: str
    team_id: str | None
    end_user: str | None
    models: tuple[str, ...] | None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request was not admitted: 401 (no or unknown key) or 403 (revoked)."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    key_id: str
    org_id: str
    team_id: str | None
    name: str
    end_user: str | None
    models: tuple[str, ...] | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``plaintext`` is shown once and cannot be recovered later."""

    info: ApiKeyInfo
    plaintext: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, ``None`` otherwise."""
    if not token.startswith(KEY_PREFIX):
        return None
    rest = token[len(KEY_PREFIX) :]
    key_id, dash, secret = rest[:_ID_CHARS], rest[_ID_CHARS : _ID_CHARS + 1], rest[_ID_CHARS + 1 :]
    if dash != "-" or len(key_id) != _ID_CHARS or not secret:
        return None
    return key_id, secret


def admin_key_matches(provided: str | None, expected: str | None) -> bool:
    """Constant-time check of an admin key; never true when no admin key is configured."""
    if not provided or not expected:
        return False
    return hmac.compare_digest(provided.encode(), expected.encode())


def _slug(kind: str, value: str) -> str:
    if not _SLUG.match(value):
        raise UsageError(
            f"{kind} name {value!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-' (starting with a "
            "letter or digit)"
        )
    return value


def ensure_org(engine: Engine, org: str) -> str:
    """The organisation's id (its name), created on first use."""
    _slug("organisation", org)
    with engine.begin() as connection:
        if connection.execute(select(_ORGS.c.id).where(_ORGS.c.id == org)).first() is None:
            connection.execute(insert(_ORGS).values(id=org, name=org, created_at=datetime.now(UTC)))
    return org


def ensure_team(engine: Engine, org: str, team: str) -> str:
    """The team's id (``org/team``), created with its organisation on first use."""
    ensure_org(engine, org)
    _slug("team", team)
    team_id = f"{org}/{team}"
    with engine.begin() as connection:
        if connection.execute(select(_TEAMS.c.id).where(_TEAMS.c.id == team_id)).first() is None:
            connection.execute(
                insert(_TEAMS).values(id=team_id, org_id=org, name=team, created_at=datetime.now(UTC))
            )
    return team_id


def _models(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(m for m in text.split(",") if m)


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.id,
        org_id=row.org_id,
        team_id=row.team_id,
        name=row.name,
        end_user=row.end_user,
        models=_models(row.models),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_key(
    engine: Engine,
    *,
    org: str,
    name: str,
    team: str | None = None,
    end_user: str | None = None,
    models: tuple[str, ...] | None = None,
) -> CreatedKey:
    """A new key for ``org`` (and ``team``), creating them on first use; only the secret's hash is stored."""
    team_id: str | None = None
    if team:
        team_id = ensure_team(engine, org, team)
    else:
        ensure_org(engine, org)
    secret = secrets.token_urlsafe(32)
    for _ in range(3):  # a 60-bit id collides practically never; retry rather than fail if it does
        key_id = base64.b32encode(secrets.token_bytes(8)).decode().lower()[:_ID_CHARS]
        values: dict[str, Any] = {
            "id": key_id,
            "org_id": org,
            "team_id": team_id,
            "name": name,
            "end_user": end_user,
            "models": ",".join(models) if models else None,
            "secret_sha256": hash_secret(secret),
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        try:
            with engine.begin() as connection:
                connection.execute(insert(_KEYS).values(**values))
        except IntegrityError:
            continue
        info = ApiKeyInfo(key_id, org, team_id, name, end_user, models or None, values["created_at"], None)
        return CreatedKey(info, f"{KEY_PREFIX}{key_id}-{secret}")
    raise UsageError("could not create a unique key id; try again")  # pragma: no cover - 3 collisions in 2^60


def list_keys(engine: Engine, *, org: str | None = None) -> list[ApiKeyInfo]:
    query = select(_KEYS).order_by(_KEYS.c.org_id, _KEYS.c.created_at)
    if org is not None:
        query = query.where(_KEYS.c.org_id == org)
    with engine.connect() as connection:
        return [_info(row) for row in connection.execute(query)]


def revoke_key(engine: Engine, key_id: str) -> ApiKeyInfo:
    """Mark the key revoked (idempotent: an already revoked key keeps its first revocation time)."""
    with engine.begin() as connection:
        connection.execute(
            update(_KEYS)
            .where(_KEYS.c.id == key_id, _KEYS.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        row = connection.execute(select(_KEYS).where(_KEYS.c.id == key_id)).first()
    if row is None:
        raise UsageError(f"no API key with id {key_id!r}; see `servewise gateway keys list`")
    return _info(row)


class KeyAuthenticator:
    """``Authorization: Bearer sk-sw-…`` → ``Principal`` or ``AuthFailure``; rows cached ``cache_ttl_s``."""

    def __init__(self, engine: Engine, *, cache_ttl_s: float = 5.0) -> None:
        self._engine = engine
        self._ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Any]] = {}

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    def _row(self, key_id: str) -> Any:
        with self._engine.connect() as connection:
            return connection.execute(select(_KEYS).where(_KEYS.c.id == key_id)).first()

    async def authenticate(self, authorization: str | None) -> Principal | AuthFailure:
        if not authorization:
            return AuthFailure(401, "missing API key: send `Authorization: Bearer sk-sw-…`")
        scheme, _, token = authorization.partition(" ")
        parsed = parse_key(token.strip()) if scheme.lower() == "bearer" else None
        if parsed is None:
            return AuthFailure(
                401, "invalid API key format: expected `Authorization: Bearer sk-sw-<id>-<secret>`"
            )
        key_id, secret = parsed
        cached = self._cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            row = cached[1]
        else:
            row = await asyncio.to_thread(self._row, key_id)
            self._cache[key_id] = (time.monotonic(), row)
        if row is None or not hmac.compare_digest(row.secret_sha256, hash_secret(secret)):
            return AuthFailure(
                401, "unknown API key: check the key or create one with `servewise gateway keys create`"
            )
        if row.revoked_at is not None:
            return AuthFailure(403, f"API key {key_id} was revoked; ask an admin for a new key")
        return Principal(row.id, row.org_id, row.team_id, row.end_user, _models(row.models))
