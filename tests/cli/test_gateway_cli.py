"""``servewise gateway``: keys, budgets and the spend report from the command line; ``--config`` serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from servewise.gateway import SpendRow, create_key, open_gateway_engine
from tests.cli.conftest import CliResult

Cli = Callable[..., CliResult]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gw.db'}"


def test_keys_create_list_revoke(cli: Cli, db: str) -> None:
    code, out, err = cli(
        "gateway",
        "keys",
        "create",
        "--org",
        "acme",
        "--team",
        "search",
        "--name",
        "ci",
        "--db-url",
        db,
        "--format",
        "json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["key"].startswith(f"sk-sw-{created['key_id']}-") and created["team"] == "acme/search"

    code, out, _ = cli("gateway", "keys", "list", "--db-url", db, "--format", "json")
    (listed,) = json.loads(out)
    assert listed["key_id"] == created["key_id"] and "key" not in listed  # a secret is never listed
    assert created["key"] not in out

    code, out, _ = cli("gateway", "keys", "revoke", created["key_id"], "--db-url", db, "--format", "json")
    assert code == 0 and json.loads(out)["revoked_at"]
    code, _, err = cli("gateway", "keys", "revoke", "nope", "--db-url", db)
    assert code == 2 and err.count("\n") == 1 and "no API key with id 'nope'" in err


def test_budgets_set_and_show(cli: Cli, db: str) -> None:
    code, out, err = cli(
        "gateway",
        "budgets",
        "set",
        "--org",
        "acme",
        "--team",
        "search",
        "--window",
        "monthly",
        "--hard",
        "500",
        "--soft",
        "400",
        "--timezone",
        "Europe/Berlin",
        "--db-url",
        db,
        "--format",
        "json",
    )
    assert code == 0, err
    budget = json.loads(out)
    assert (budget["scope"], budget["scope_id"], budget["hard_usd"], budget["soft_usd"]) == (
        "team",
        "acme/search",
        500.0,
        400.0,
    )
    code, out, _ = cli("gateway", "budgets", "show", "--db-url", db, "--format", "json")
    (shown,) = json.loads(out)
    assert shown["spent_usd"] == 0 and shown["timezone"] == "Europe/Berlin"
    resets = datetime.fromisoformat(shown["resets_at"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (resets.day, resets.hour, resets.minute) == (1, 0, 0)  # a calendar month, in the budget's zone
    code, out, _ = cli("gateway", "budgets", "show", "--db-url", db)
    assert "acme/search" in out and "500.00" in out
    tiny = ("--org", "acme", "--window", "daily", "--hard", "0.00004", "--db-url", db)
    code, out, err = cli("gateway", "budgets", "set", *tiny)
    assert code == 0, err
    assert "0.00004" in out and "e-05" not in out  # small dollar amounts stay readable
    code, _, err = cli("gateway", "budgets", "set", "--window", "monthly", "--hard", "1", "--db-url", db)
    assert code == 2 and "say whose budget" in err


def test_spend_report_by_tenant(cli: Cli, db: str) -> None:
    import asyncio
    from datetime import UTC

    from servewise.gateway import LedgerWriter

    engine = open_gateway_engine(db)
    key = create_key(engine, org="acme", name="k").info.key_id

    def row(i: int, org: str, micro: int, status: str = "ok") -> SpendRow:
        return SpendRow(
            f"r{i}",
            datetime.now(UTC),
            org,
            None,
            key,
            None,
            "local",
            "m",
            "local",
            10,
            5,
            micro,
            status,
            1.0,
            False,
        )

    async def write() -> None:
        writer = LedgerWriter(engine)
        await writer.start()
        for i, (org, micro) in enumerate([("acme", 1_500_000), ("acme", 500_000), ("beta", 250_000)]):
            writer.add(row(i, org, micro))
        writer.add(row(9, "beta", 0, "rejected"))
        await writer.close()

    asyncio.run(write())
    engine.dispose()
    code, out, err = cli("gateway", "spend", "--by", "tenant", "--db-url", db, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [(r["tenant"], r["usd"], r["requests"], r["rejected"]) for r in report["rows"]] == [
        ("acme", 2.0, 2, 0),
        ("beta", 0.25, 2, 1),
    ]
    code, out, _ = cli("gateway", "spend", "--by", "tenant", "--db-url", db)
    assert code == 0 and "acme" in out and "spend by tenant" in out
    code, _, err = cli("gateway", "spend", "--by", "planet", "--db-url", db)
    assert code == 2 and "cannot group by 'planet'" in err


def test_serve_reports_a_bad_config_in_one_line(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("gateway", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "bad.yaml").write_text("pools: []\n", encoding="utf-8")
    code, _, err = cli("gateway", "--config", str(tmp_path / "bad.yaml"))
    assert code == 2 and "no routes" in err
    code, out, _ = cli("gateway", "--help")
    assert code == 0 and "keys" in out and "budgets" in out and "spend" in out
