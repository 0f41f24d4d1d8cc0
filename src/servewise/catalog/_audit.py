"""The deploy audit log: one row per ``servewise deploy --apply`` in the catalog database (table ``deploy_audit``).

Why in the catalog database: it is the one database every Servewise user already has (SQLite by default, a shared
PostgreSQL for a team), so "who applied what, when" lands where the team's catalog lives without a new service.
Rows are only ever added; nothing in Servewise updates or deletes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from servewise.errors import CatalogError

from ._db import first_line, mask_url, write_transaction
from ._schema import DeployAuditRow

__all__ = ["DeployAuditEntry", "read_deploy_audit", "record_deploy_audit"]

_TABLE = cast(Table, DeployAuditRow.__table__)


@dataclass(frozen=True, slots=True)
class DeployAuditEntry:
    """One apply: who (OS user, kube context user), what (plan file hash, option, target, objects), when (UTC),
    whether it was a server-side dry run, and how it ended (``result`` = ``ok`` or ``failed`` + ``message``)."""

    applied_at: datetime
    os_user: str
    kube_user: str | None
    kube_context: str | None
    cluster: str | None
    plan_path: str
    plan_sha256: str
    option_rank: int
    target: str
    namespace: str
    objects: tuple[dict[str, str], ...]
    dry_run: bool
    result: str
    message: str = ""
    id: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "applied_at": self.applied_at.astimezone(UTC),
            "os_user": self.os_user,
            "kube_user": self.kube_user,
            "kube_context": self.kube_context,
            "cluster": self.cluster,
            "plan_path": self.plan_path,
            "plan_sha256": self.plan_sha256,
            "option_rank": self.option_rank,
            "target": self.target,
            "namespace": self.namespace,
            "objects": json.dumps(list(self.objects), sort_keys=True),
            "object_count": len(self.objects),
            "dry_run": self.dry_run,
            "result": self.result,
            "message": self.message,
        }


def _entry(row: Any) -> DeployAuditEntry:
    applied_at: datetime = row["applied_at"]
    if applied_at.tzinfo is None:  # SQLite returns naive datetimes; they were written in UTC
        applied_at = applied_at.replace(tzinfo=UTC)
    return DeployAuditEntry(
        applied_at=applied_at,
        os_user=row["os_user"],
        kube_user=row["kube_user"],
        kube_context=row["kube_context"],
        cluster=row["cluster"],
        plan_path=row["plan_path"],
        plan_sha256=row["plan_sha256"],
        option_rank=row["option_rank"],
        target=row["target"],
        namespace=row["namespace"],
        objects=tuple(json.loads(row["objects"])),
        dry_run=bool(row["dry_run"]),
        result=row["result"],
        message=row["message"],
        id=row["id"],
    )


def record_deploy_audit(engine: Engine, entry: DeployAuditEntry) -> int:
    """Append ``entry``; returns its id. A database error is a one-line ``CatalogError``."""
    try:
        with write_transaction(engine) as connection:
            result = connection.execute(insert(_TABLE).returning(_TABLE.c.id), [entry.row()])
            return int(result.scalar_one())
    except (DBAPIError, SQLAlchemyError) as err:
        raise CatalogError(
            f"cannot write the deploy audit log to {mask_url(engine.url)}: {first_line(err)}; check that the "
            "database user may write rows (SERVEWISE_DB_URL)"
        ) from None


def read_deploy_audit(engine: Engine, *, limit: int = 20) -> list[DeployAuditEntry]:
    """The ``limit`` most recent applies, newest first."""
    query = select(_TABLE).order_by(_TABLE.c.applied_at.desc(), _TABLE.c.id.desc()).limit(limit)
    try:
        with engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query).mappings()]
    except (DBAPIError, SQLAlchemyError) as err:
        raise CatalogError(
            f"cannot read the deploy audit log from {mask_url(engine.url)}: {first_line(err)}"
        ) from None
