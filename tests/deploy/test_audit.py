"""The deploy audit log in the catalog database: rows are appended and read back newest first, on a migrated
SQLite catalog (the migration 0003 that creates the table is compared with the ORM in tests/catalog)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from servewise.catalog import DeployAuditEntry, open_catalog


def _entry(minutes: int, result: str = "ok") -> DeployAuditEntry:
    return DeployAuditEntry(
        applied_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes),
        os_user="bob",
        kube_user="alice",
        kube_context="prod",
        cluster="https://k8s.example:6443",
        plan_path="/plans/plan.json",
        plan_sha256="ab" * 32,
        option_rank=2,
        target="kserve",
        namespace="servewise",
        objects=(
            {"kind": "InferenceService", "namespace": "servewise", "name": "qwen", "action": "created"},
        ),
        dry_run=minutes % 2 == 1,
        result=result,
        message="" if result == "ok" else "HTTP 403: forbidden",
    )


def test_audit_rows_round_trip_newest_first(sqlite_url):
    with open_catalog(sqlite_url) as catalog:
        ids = [catalog.record_deploy(_entry(m, "ok" if m else "failed")) for m in (0, 5, 1)]
        assert ids == [1, 2, 3]
        entries = catalog.deploy_audit()
    assert [e.id for e in entries] == [2, 3, 1]  # by applied_at, newest first
    latest = entries[0]
    assert latest.applied_at == datetime(2026, 11, 25, 12, 5, tzinfo=UTC)
    assert latest == replace(_entry(5), id=2)  # every field survives the database
    assert latest.objects[0]["action"] == "created" and latest.option_rank == 2 and latest.dry_run is True
    assert entries[-1].result == "failed" and entries[-1].message == "HTTP 403: forbidden"


def test_audit_limit_and_persistence_across_opens(sqlite_url):
    with open_catalog(sqlite_url) as catalog:
        for minutes in range(5):
            catalog.record_deploy(_entry(minutes))
    with open_catalog(sqlite_url) as catalog:
        assert [e.applied_at.minute for e in catalog.deploy_audit(limit=2)] == [4, 3]
        assert len(catalog.deploy_audit(limit=50)) == 5
