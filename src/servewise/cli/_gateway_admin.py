"""``servewise gateway keys create|list|revoke``, ``budgets set|show`` and ``spend --by ...``.

Why these talk to the database directly (not to a running gateway's ``/admin`` API): an operator can create the
first key and budget before any gateway runs, and the gateway picks changes up within its 5 s definition cache.
The database is the config's ``database_url`` (``--config``), else ``--db-url``, else the catalog database.
Budget *counters* live in Redis when the config sets ``redis_url``, so ``budgets show`` reads them there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import Engine

from servewise.errors import UsageError

from ._output import Column, OutputFormat, render, stderr_console

__all__ = ["budgets_app", "keys_app", "spend_command"]

T = TypeVar("T")

keys_app = typer.Typer(
    help="Create, list and revoke client API keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
budgets_app = typer.Typer(
    help="Set and show budgets (org, team, key or end user).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="gateway YAML: its database and Redis")
]
DbUrlOpt = Annotated[
    str | None, typer.Option("--db-url", help="database (default: config, else SERVEWISE_DB_URL)")
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="table, json, csv or markdown")]
OrgOpt = Annotated[str | None, typer.Option("--org", help="organisation id")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="team name inside --org")]

_KEY_COLUMNS = [
    Column("key_id", "key id"),
    Column("org", "org"),
    Column("team", "team"),
    Column("name", "name"),
    Column("end_user", "end user"),
    Column("created_at", "created"),
    Column("revoked_at", "revoked"),
]
_BUDGET_COLUMNS = [
    Column("budget_id", "id", numeric=True),
    Column("scope", "scope"),
    Column("scope_id", "of"),
    Column("window", "window"),
    Column("soft_usd", "soft $", numeric=True),
    Column("hard_usd", "hard $", numeric=True),
    Column("action", "action"),
    Column("spent_usd", "spent $", numeric=True),
    Column("reserved_usd", "reserved $", numeric=True),
    Column("resets_at", "resets"),
]


def _database_url(config: Path | None, db_url: str | None) -> tuple[str | None, Any]:
    from servewise.gateway import load_gateway_config

    if config is None:
        return db_url, None
    loaded = load_gateway_config(config)
    return db_url or loaded.database_url, loaded


@contextmanager
def _engine(config: Path | None, db_url: str | None) -> Iterator[tuple[Engine, Any]]:
    from servewise.gateway import open_gateway_engine

    url, loaded = _database_url(config, db_url)
    engine = open_gateway_engine(url)
    try:
        yield engine, loaded
    finally:
        engine.dispose()


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(make())


def _store(engine: Engine, loaded: Any) -> Any:
    from servewise.gateway import RedisBudgetStore, SqlBudgetStore

    if loaded is not None and loaded.uses_redis:
        return RedisBudgetStore(loaded.redis_url, engine, prefix=loaded.redis_prefix)
    return SqlBudgetStore(engine)


def _key_row(document: dict[str, Any]) -> dict[str, Any]:
    return {
        **document,
        "team": document["team"] or "",
        "end_user": document["end_user"] or "",
        "revoked_at": document["revoked_at"] or "",
    }


def keys_create_command(
    org: Annotated[str, typer.Option("--org", help="organisation id (created on first use)")],
    name: Annotated[str, typer.Option("--name", help="what the key is for, e.g. ci or search-backend")],
    team: TeamOpt = None,
    end_user: Annotated[
        str | None, typer.Option("--end-user", help="default end-user tag of the key")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="allowed model (repeat; default: all)")
    ] = None,
    config: ConfigOpt = None,
    db_url: DbUrlOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Create a key; its secret is printed ONCE (only a hash is stored)."""
    from servewise.gateway import create_key
    from servewise.gateway._admin import key_document

    with _engine(config, db_url) as (engine, _):
        created = create_key(
            engine, org=org, name=name, team=team, end_user=end_user, models=tuple(model) if model else None
        )
    document = {**key_document(created.info), "key": created.plaintext}
    columns = [*_KEY_COLUMNS[:4], Column("key", "key (shown once)")]
    render([_key_row(document)], columns, fmt, title="API key created", json_document=document)
    if fmt is OutputFormat.table:
        stderr_console().print("Store the key now: it cannot be shown again.")


def keys_list_command(
    org: OrgOpt = None, config: ConfigOpt = None, db_url: DbUrlOpt = None, fmt: FormatOpt = OutputFormat.table
) -> None:
    """List keys (ids and owners; never secrets)."""
    from servewise.gateway import list_keys
    from servewise.gateway._admin import key_document

    with _engine(config, db_url) as (engine, _):
        documents = [key_document(k) for k in list_keys(engine, org=org)]
    render([_key_row(d) for d in documents], _KEY_COLUMNS, fmt, title="API keys", json_document=documents)


def keys_revoke_command(
    key_id: Annotated[str, typer.Argument(help="the key id (sk-sw-<id>-…)")],
    config: ConfigOpt = None,
    db_url: DbUrlOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Revoke a key: requests with it get 403 (within 5 s on running gateways)."""
    from servewise.gateway import revoke_key
    from servewise.gateway._admin import key_document

    with _engine(config, db_url) as (engine, _):
        document = key_document(revoke_key(engine, key_id))
    render([_key_row(document)], _KEY_COLUMNS, fmt, title="API key revoked", json_document=document)


def _scope(org: str | None, team: str | None, key: str | None, end_user: str | None) -> tuple[str, str]:
    if key is not None:
        if org or team or end_user:
            raise UsageError("--key names a budget on its own; drop --org/--team/--end-user")
        return "key", key
    if org is None:
        raise UsageError("say whose budget: --org ORG [--team TEAM | --end-user TAG], or --key KEY_ID")
    if team is not None and end_user is not None:
        raise UsageError("give --team or --end-user, not both")
    if team is not None:
        return "team", f"{org}/{team}"
    if end_user is not None:
        return "end_user", f"{org}/{end_user}"
    return "org", org


def budgets_set_command(
    window: Annotated[
        str, typer.Option("--window", help="daily, weekly or monthly (calendar, in --timezone)")
    ],
    org: OrgOpt = None,
    team: TeamOpt = None,
    key: Annotated[str | None, typer.Option("--key", help="key id (a per-key budget)")] = None,
    end_user: Annotated[str | None, typer.Option("--end-user", help="end-user tag inside --org")] = None,
    hard: Annotated[
        float | None, typer.Option("--hard", help="hard limit in $ (requests over it get 429)")
    ] = None,
    soft: Annotated[float | None, typer.Option("--soft", help="soft limit in $ (alert only)")] = None,
    action: Annotated[
        str, typer.Option("--action", help="reject or downgrade (to a cheaper route)")
    ] = "reject",
    downgrade_route: Annotated[
        str | None, typer.Option("--downgrade-route", help="route for downgrade")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA zone (default: config, else UTC)")
    ] = None,
    config: ConfigOpt = None,
    db_url: DbUrlOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Create or change a budget (one per scope and window)."""
    from servewise.gateway import usd_to_micro_round
    from servewise.gateway._admin import budget_document

    scope, scope_id = _scope(org, team, key, end_user)
    if hard is None and soft is None:
        raise UsageError("give --hard and/or --soft (dollars per window)")
    with _engine(config, db_url) as (engine, loaded):
        zone = timezone or (loaded.timezone if loaded is not None else "UTC")
        store = _store(engine, loaded)

        async def put() -> Any:
            try:
                return await store.set_budget(
                    scope=scope,
                    scope_id=scope_id,
                    window=window,
                    soft_micro_usd=None if soft is None else usd_to_micro_round(soft),
                    hard_micro_usd=None if hard is None else usd_to_micro_round(hard),
                    action=action,
                    downgrade_route=downgrade_route,
                    timezone=zone,
                )
            finally:
                await store.close()

        document = budget_document(_run(put))
    render([_dollars_shown(document)], _BUDGET_COLUMNS[:7], fmt, title="budget set", json_document=document)


def budgets_show_command(
    config: ConfigOpt = None, db_url: DbUrlOpt = None, fmt: FormatOpt = OutputFormat.table
) -> None:
    """Every budget with its current window's spend and reservations, and when it resets."""
    from servewise.gateway._admin import budget_usage_documents

    with _engine(config, db_url) as (engine, loaded):
        store = _store(engine, loaded)

        async def read() -> list[dict[str, Any]]:
            try:
                return await budget_usage_documents(store)
            finally:
                await store.close()

        documents = _run(read)
    rows = [_dollars_shown(d) for d in documents]
    render(rows, _BUDGET_COLUMNS, fmt, title="budgets", json_document=documents)


def usd_text(usd: float | None) -> str:
    """Dollars for a table cell: ``1,234.50`` at a dollar or more; below that, as many decimals as it takes
    (up to micro-dollars) — never ``2e-05``. Empty for ``None`` (no limit)."""
    if usd is None:
        return ""
    if usd == 0 or abs(usd) >= 1:
        return f"{usd:,.2f}"
    return f"{usd:.6f}".rstrip("0").ljust(4, "0")


def _dollars_shown(document: dict[str, Any]) -> dict[str, Any]:
    """A budget document with its dollar fields as readable text (tables, CSV, markdown; JSON keeps numbers)."""
    shown = dict(document)
    for name in ("soft_usd", "hard_usd", "spent_usd", "reserved_usd"):
        if name in shown:
            shown[name] = usd_text(shown[name])
    return shown


def _day(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise UsageError(f"{flag} expects a date or time such as 2026-11-01 (got {text!r})") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def spend_command(
    by: Annotated[
        str, typer.Option("--by", help="tenant, team, key, end_user, route, model or decision")
    ] = "tenant",
    since: Annotated[
        str | None, typer.Option("--since", help="from this date/time (UTC unless given)")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="before this date/time")] = None,
    config: ConfigOpt = None,
    db_url: DbUrlOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Spend from the ledger grouped by one dimension: requests, tokens and dollars (self-hosted and API alike)."""
    from servewise.gateway import spend_report

    with _engine(config, db_url) as (engine, _):
        rows = spend_report(engine, by=by, since=_day(since, "--since"), until=_day(until, "--until"))
    keys = [k for k in (list(rows[0]) if rows else [by, "requests", "usd"]) if k != "micro_usd"]
    columns = [Column(k, "$" if k == "usd" else k.replace("_", " "), numeric=k != by) for k in keys]
    shown = [{**r, by: r[by] if r[by] is not None else "(none)", "usd": usd_text(r["usd"])} for r in rows]
    render(shown, columns, fmt, title=f"spend by {by}", json_document={"by": by, "rows": rows})


keys_app.command("create")(keys_create_command)
keys_app.command("list")(keys_list_command)
keys_app.command("revoke")(keys_revoke_command)
budgets_app.command("set")(budgets_set_command)
budgets_app.command("show")(budgets_show_command)
