"""Organisations, teams and API keys on a real database: keys stored hashed, 401/403 decided right."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text

from servewise.catalog._db import connect_engine, ensure_ready
from servewise.errors import UsageError
from servewise.gateway import (
    AuthFailure,
    KeyAuthenticator,
    Principal,
    admin_key_matches,
    create_key,
    list_keys,
    parse_key,
    revoke_key,
)
from servewise.gateway._tables import ApiKeyRow


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = connect_engine(url)
    ensure_ready(engine)
    yield engine
    engine.dispose()


def _auth(authenticator: KeyAuthenticator, header: str | None) -> Principal | AuthFailure:
    return asyncio.run(authenticator.authenticate(header))


def test_a_key_is_shown_once_and_only_its_hash_is_stored(engine: Engine) -> None:
    created = create_key(
        engine, org="acme", team="search", name="ci", end_user="u1", models=("Llama-3.1-8B",)
    )
    key_id, secret = parse_key(created.plaintext) or ("", "")
    assert created.plaintext.startswith("sk-sw-") and key_id == created.info.key_id and len(secret) >= 40
    with engine.connect() as connection:
        row = connection.execute(select(ApiKeyRow.__table__)).one()
        dump = " ".join(str(v) for v in connection.execute(text("SELECT * FROM gw_api_keys")).one())
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dump
    assert (row.org_id, row.team_id, row.models) == ("acme", "acme/search", "Llama-3.1-8B")
    listed = list_keys(engine)
    assert [k.key_id for k in listed] == [key_id] and listed[0].revoked_at is None


def test_authentication_decides_401_and_403(engine: Engine) -> None:
    authenticator = KeyAuthenticator(engine)
    created = create_key(engine, org="acme", name="app")
    good = _auth(authenticator, f"Bearer {created.plaintext}")
    assert good == Principal(created.info.key_id, "acme", None, None, None)

    for header in (None, "", "Basic abc", "Bearer sk-other", f"Bearer {created.plaintext[:-1]}x"):
        failure = _auth(authenticator, header)
        assert isinstance(failure, AuthFailure) and failure.status == 401, header
    unknown = f"sk-sw-{'a' * 12}-{'b' * 43}"
    failure = _auth(authenticator, f"Bearer {unknown}")
    assert isinstance(failure, AuthFailure) and failure.status == 401 and "unknown API key" in failure.message

    revoke_key(engine, created.info.key_id)
    authenticator.forget(created.info.key_id)
    revoked = _auth(authenticator, f"Bearer {created.plaintext}")
    assert isinstance(revoked, AuthFailure) and revoked.status == 403 and "revoked" in revoked.message
    assert created.plaintext not in revoked.message


def test_revocation_reaches_other_processes_within_the_cache_ttl(engine: Engine) -> None:
    authenticator = KeyAuthenticator(engine, cache_ttl_s=0.0)  # another process: no shared cache
    created = create_key(engine, org="acme", name="app")
    assert isinstance(_auth(authenticator, f"Bearer {created.plaintext}"), Principal)
    revoke_key(engine, created.info.key_id)
    assert isinstance(_auth(authenticator, f"Bearer {created.plaintext}"), AuthFailure)


def test_allowed_models_and_bad_names(engine: Engine) -> None:
    created = create_key(engine, org="acme", name="limited", models=("a", "b"))
    principal = _auth(KeyAuthenticator(engine), f"Bearer {created.plaintext}")
    assert isinstance(principal, Principal)
    assert principal.may_use("a") and not principal.may_use("c")
    with pytest.raises(UsageError, match="organisation name 'ac me' is not allowed"):
        create_key(engine, org="ac me", name="x")
    with pytest.raises(UsageError, match="no API key with id 'nope'; see `servewise gateway keys list`"):
        revoke_key(engine, "nope")


def test_admin_key_check() -> None:
    assert admin_key_matches("s3cret", "s3cret")
    assert not admin_key_matches("s3cret", "other")
    assert not admin_key_matches("", "")  # no admin key configured: admin API off
    assert not admin_key_matches(None, "s3cret")
