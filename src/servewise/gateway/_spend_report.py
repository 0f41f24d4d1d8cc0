"""The spend report: ledger rows grouped by tenant, team, key, route, model, decision or status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, case, func, select

from servewise.errors import UsageError

from ._tables import SpendRowRecord

__all__ = ["REPORT_BY", "spend_report"]


REPORT_BY = {
    "tenant": "org_id",
    "org": "org_id",
    "team": "team_id",
    "key": "key_id",
    "end_user": "end_user",
    "route": "route",
    "model": "model",
    "decision": "decision",
    "status": "status",
}


def spend_report(
    engine: Engine, *, by: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Spend grouped by one dimension, most dollars first: requests, refused, cache hits, tokens, dollars."""
    if by not in REPORT_BY:
        raise UsageError(f"spend report: cannot group by {by!r}; use one of {', '.join(REPORT_BY)}")
    table = cast(Table, SpendRowRecord.__table__)
    column = table.c[REPORT_BY[by]]
    query = select(
        column,
        func.count(),
        func.sum(case((table.c.status == "rejected", 1), else_=0)),
        func.sum(case((table.c.cached.is_(True), 1), else_=0)),
        func.coalesce(func.sum(table.c.prompt_tokens), 0),
        func.coalesce(func.sum(table.c.completion_tokens), 0),
        func.coalesce(func.sum(table.c.micro_usd), 0),
    ).group_by(column)
    if since is not None:
        query = query.where(table.c.at >= since.astimezone(UTC))
    if until is not None:
        query = query.where(table.c.at < until.astimezone(UTC))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    report = [
        {
            by: value,
            "requests": int(requests),
            "rejected": int(rejected or 0),
            "cache_hits": int(cache_hits or 0),
            "prompt_tokens": int(prompt),
            "completion_tokens": int(completion),
            "micro_usd": int(micro),
            "usd": int(micro) / 1e6,
        }
        for value, requests, rejected, cache_hits, prompt, completion, micro in rows
    ]
    return sorted(report, key=lambda r: (-r["micro_usd"], str(r[by])))
