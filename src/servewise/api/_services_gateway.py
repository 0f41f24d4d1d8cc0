"""The gateway's ledger and budgets, read-only, for the REST API and the web pages (re-exported by
``_services``, the one module they call).

Why read-only and lazy: the planner's users need not run a gateway, so a database without the gateway's tables
answers ``[]`` and is never given them, and ``servewise.gateway`` is imported only when a view is asked for.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, inspect, select

from servewise.errors import UsageError

__all__ = ["budget_rows", "spend_daily", "spend_rows"]


def _gateway_engine(db_url: str | None) -> Engine | None:
    """An engine on the gateway database, or None when it has no gateway tables: a read never creates them."""
    from servewise.catalog._db import connect_engine
    from servewise.settings import Settings

    engine = connect_engine(db_url if db_url is not None else Settings().db_url)
    try:
        present = inspect(engine).has_table("gw_spend") and inspect(engine).has_table("gw_budgets")
    except Exception:
        engine.dispose()
        raise
    if not present:
        engine.dispose()
        return None
    return engine


def spend_rows(
    *,
    by: str = "tenant",
    since: datetime | None = None,
    until: datetime | None = None,
    db_url: str | None = None,
) -> list[dict[str, Any]]:
    """The gateway ledger grouped by ``by`` (tenant, team, key, end_user, route, model, decision or status), most
    dollars first; naive times are UTC; ``[]`` when the database has no gateway tables."""
    from servewise.gateway import REPORT_BY, spend_report

    if by not in REPORT_BY:
        raise UsageError(f"spend: cannot group by {by!r}; use one of {', '.join(REPORT_BY)}")
    engine = _gateway_engine(db_url)
    if engine is None:
        return []
    try:
        return spend_report(engine, by=by, since=_utc(since), until=_utc(until))
    finally:
        engine.dispose()


def spend_daily(
    *,
    by: str = "tenant",
    since: datetime | None = None,
    until: datetime | None = None,
    db_url: str | None = None,
) -> list[dict[str, Any]]:
    """Spend per UTC day and ``by`` value: ``{"day": "YYYY-MM-DD", by: value, "requests", "usd"}`` rows sorted by
    day then value; ``[]`` when the database has no gateway tables."""
    from servewise.gateway import REPORT_BY
    from servewise.gateway._tables import SpendRowRecord

    if by not in REPORT_BY:
        raise UsageError(f"spend: cannot group by {by!r}; use one of {', '.join(REPORT_BY)}")
    engine = _gateway_engine(db_url)
    if engine is None:
        return []
    table = cast(Table, SpendRowRecord.__table__)
    column = table.c[REPORT_BY[by]]
    query = select(table.c.at, column, table.c.micro_usd)
    start, end = _utc(since), _utc(until)
    if start is not None:
        query = query.where(table.c.at >= start.astimezone(UTC))
    if end is not None:
        query = query.where(table.c.at < end.astimezone(UTC))
    totals: dict[tuple[str, str | None], list[int]] = {}
    try:
        with engine.connect() as connection:
            for at, value, micro in connection.execute(query):
                moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
                key = (moment.astimezone(UTC).date().isoformat(), None if value is None else str(value))
                entry = totals.setdefault(key, [0, 0])
                entry[0] += 1
                entry[1] += int(micro or 0)
    finally:
        engine.dispose()
    return [
        {"day": day, by: value, "requests": count, "usd": micro / 1e6}
        for (day, value), (count, micro) in sorted(totals.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
    ]


def budget_rows(db_url: str | None = None) -> list[dict[str, Any]]:
    """Every gateway budget with its current window's spend and reservations (the database's counters; a gateway
    configured with Redis keeps live counters there: see `servewise gateway budgets show -c`); ``[]`` when the
    database has no gateway tables."""
    from servewise.gateway import SqlBudgetStore
    from servewise.gateway._admin import budget_usage_documents

    engine = _gateway_engine(db_url)
    if engine is None:
        return []
    store = SqlBudgetStore(engine)

    async def read() -> list[dict[str, Any]]:
        try:
            return await budget_usage_documents(store)
        finally:
            await store.close()

    try:
        return asyncio.run(read())
    finally:
        engine.dispose()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
