"""The catalog on real databases: SQLite (a temporary file) and PostgreSQL (a throwaway schema)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, inspect, select, text, update

from servewise.catalog import HEAD_REVISION, Catalog, DataKind, load_packaged, open_catalog
from servewise.catalog._db import FINGERPRINT_KEY, TABLES, connect_engine, migrate
from servewise.catalog._schema import Base
from servewise.errors import CatalogError, UnknownNameError
from tests.catalog.test_aliases import MODEL_ID_EXAMPLES


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def catalog(db_url: str) -> Iterator[Catalog]:
    with open_catalog(db_url) as opened:
        yield opened


def _execute(url: str, statement: Any) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(statement)
    finally:
        engine.dispose()


def _count(url: str, kind: DataKind, origin: str | None = None) -> int:
    table = TABLES[kind]
    query = select(func.count()).select_from(table)
    if origin is not None:
        query = query.where(table.c.origin == origin)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def _write(path: Path, text_: str) -> Path:
    path.write_text(text_, encoding="utf-8")
    return path


OFFER_HEADER = (
    "provider,region,instance_type,gpu,gpu_count,vcpus,memory_gb,price_per_hour_usd,spot_price_per_hour_usd,"
    "source,as_of,notes\n"
)


def test_first_use_imports_every_packaged_row(db_url: str) -> None:
    packaged = load_packaged()
    with open_catalog(db_url) as catalog:
        snapshot = catalog.snapshot()
        assert len(snapshot.accelerators) == len(packaged.accelerators)
        assert len(snapshot.models) == len(packaged.models)
        assert len(snapshot.offers) == len(packaged.offers)
        assert len(snapshot.api_prices) == len(packaged.api_prices)
        assert len(snapshot.use_cases) == len(packaged.use_cases)
        assert len(catalog.aliases()) == len(packaged.aliases)
        assert catalog.benchmark_count() == len(packaged.benchmarks) == 2632
        assert snapshot.accelerators == packaged.accelerators
        assert tuple(catalog.benchmarks(limit=5)) == packaged.benchmarks[:5]


def test_reopen_does_not_reimport(db_url: str) -> None:
    open_catalog(db_url).close()
    offers = TABLES[DataKind.offers]
    _execute(
        db_url, update(offers).where(offers.c.instance_type == "p5.48xlarge").values(price_per_hour_usd=1.0)
    )
    with open_catalog(db_url) as catalog:
        (offer,) = [o for o in catalog.offers() if o.instance_type == "p5.48xlarge"]
        assert offer.price_per_hour_usd == 1.0


def test_fingerprint_change_reimports_and_keeps_user_rows(db_url: str, tmp_path: Path) -> None:
    user_offer = OFFER_HEADER + "acme,moon-1,big.8x,H100-SXM,8,,,9.99,,my quote,2026-11-01,\n"
    replaced = OFFER_HEADER + "aws,us-east-1,p5.48xlarge,H100-SXM,8,192,2048,50.0,,negotiated,2026-11-01,\n"
    with open_catalog(db_url) as catalog:
        assert catalog.import_csv("offers", _write(tmp_path / "a.csv", user_offer)) == 1
        assert catalog.import_csv(DataKind.offers, _write(tmp_path / "b.csv", replaced)) == 1
    offers = TABLES[DataKind.offers]
    _execute(
        db_url, update(offers).where(offers.c.instance_type == "p4d.24xlarge").values(price_per_hour_usd=1.0)
    )
    meta = Base.metadata.tables["catalog_meta"]
    _execute(db_url, update(meta).where(meta.c.key == FINGERPRINT_KEY).values(value="stale"))
    with open_catalog(db_url) as catalog:
        by_type = {o.instance_type: o for o in catalog.offers()}
        assert by_type["p4d.24xlarge"].price_per_hour_usd != 1.0  # packaged row re-imported
        assert by_type["big.8x"].price_per_hour_usd == 9.99  # user row kept
        assert by_type["p5.48xlarge"].price_per_hour_usd == 50.0  # user row wins over the packaged one
        assert len(catalog.offers()) == len(load_packaged(benchmarks=False).offers) + 1
    assert _count(db_url, DataKind.offers, "user") == 2


@pytest.mark.parametrize(("name", "expected"), MODEL_ID_EXAMPLES)
def test_model_aliases_resolve(catalog: Catalog, name: str, expected: str) -> None:
    assert catalog.resolve_model(name) == expected
    assert catalog.model(name).name == expected


def test_gpu_aliases_and_families(catalog: Catalog) -> None:
    assert catalog.accelerator("b300_sxm").name == "B300"
    assert catalog.accelerator("gb200").name == "GB200"
    assert catalog.resolve_gpus("H100") == ["H100-SXM", "H100-PCIe", "H100-NVL"]
    assert catalog.resolve_gpus("a100") == ["A100-40GB-SXM", "A100-80GB-SXM", "A100-80GB-PCIe"]
    assert catalog.resolve_gpus("h200_sxm") == ["H200"]
    assert {o.gpu for o in catalog.offers(gpu="h100")} <= {"H100-SXM", "H100-PCIe", "H100-NVL"}
    assert catalog.benchmark_count(gpu="B300") == 255
    assert catalog.benchmark_count(model="Llama-3.1-8B") == 244


def test_unknown_names_suggest(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'H100-SXM'") as gpu_error:
        catalog.accelerator("H100-SMX")
    assert gpu_error.value.suggestions
    with pytest.raises(UnknownNameError, match="names a family"):
        catalog.accelerator("H100")
    with pytest.raises(UnknownNameError, match=r"did you mean 'Llama-3\.1-8B'"):
        catalog.model("Lama-3.1-8B")
    with pytest.raises(UnknownNameError, match="chatbot_conversational"):
        catalog.use_case("chatbot")
    with pytest.raises(UnknownNameError, match="unknown gpu 'Z9000'"):
        catalog.resolve_gpus("Z9000")
    assert catalog.use_case("Chatbot-Conversational").name == "chatbot_conversational"


def test_health_findings(catalog: Catalog, tmp_path: Path) -> None:
    report = catalog.health(date(2026, 11, 25))
    kinds = {f.kind for f in report.findings}
    assert {"undated_price", "model_missing_specs"} <= kinds
    assert not report.errors
    assert not [f for f in report.findings if f.kind.startswith("benchmark_unknown")]
    undated = [f for f in report.findings if f.kind == "undated_price"]
    assert len(undated) == len(
        {o.provider for o in catalog.offers()} | {p.provider for p in catalog.api_prices()}
    )

    catalog.import_csv(
        "offers", _write(tmp_path / "o.csv", OFFER_HEADER + "acme,r,x1,Z9000,1,,,1.0,,q,2026-01-02,\n")
    )
    bench = load_packaged().benchmarks[0]
    header = ",".join(f for f in bench.__dataclass_fields__ if f != "as_of")
    values = {
        **{f: getattr(bench, f) for f in header.split(",")},
        "attention_dp": None,
        "model": "acme/Mystery-9B",
    }
    cells = ["" if v is None else str(v) for v in values.values()]
    row = ",".join(cells)
    catalog.import_csv("benchmarks", _write(tmp_path / "b.csv", f"{header}\n{row}\n{row}\n"))
    catalog.import_csv(
        "aliases", _write(tmp_path / "a.csv", "kind,alias,target,source\ngpu,zz,NoSuchGPU,me\n")
    )
    report = catalog.health(date(2026, 11, 25))
    by_kind = {f.kind: f for f in report.findings}
    assert by_kind["alias_unknown_target"].subject == "zz"
    assert "older than 90 days" in by_kind["stale_price"].message
    assert by_kind["offer_unknown_gpu"].subject == "Z9000"
    assert by_kind["benchmark_unknown_model"].subject == "acme/Mystery-9B"
    assert by_kind["benchmark_unknown_model"].message.startswith("2 benchmark row(s)")


def test_import_rejects_bad_file_and_writes_nothing(catalog: Catalog, db_url: str, tmp_path: Path) -> None:
    before = _count(db_url, DataKind.offers)
    bad = OFFER_HEADER + "acme,r,ok1,H200,1,,,1.0,,q,,\nacme,r,bad,H200,one,,,1.0,,q,,\n"
    with pytest.raises(CatalogError, match=r"bad\.csv:3: column gpu_count: expected a whole number"):
        catalog.import_csv("offers", _write(tmp_path / "bad.csv", bad))
    with pytest.raises(CatalogError, match="cannot read"):
        catalog.import_csv("offers", tmp_path / "missing.csv")
    with pytest.raises(CatalogError, match="unknown catalog kind"):
        catalog.import_csv("prices", tmp_path / "bad.csv")
    assert _count(db_url, DataKind.offers) == before


def test_migration_matches_metadata(db_url: str) -> None:
    engine = connect_engine(db_url)
    try:
        with engine.begin() as connection:
            migrate(connection)
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert diffs == []
    assert version == HEAD_REVISION


def test_head_revision_constant_matches_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", "servewise.catalog:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_connection_errors_are_one_line_and_mask_passwords() -> None:
    with pytest.raises(CatalogError) as refused:
        open_catalog("postgresql+psycopg://bob:s3cret@127.0.0.1:1/nowhere?connect_timeout=2")
    message = str(refused.value)
    assert "cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/nowhere" in message
    assert "s3cret" not in message and "\n" not in message and "SERVEWISE_DB_URL" in message
    with pytest.raises(CatalogError, match="cannot parse"):
        open_catalog("not a url")
    with pytest.raises(CatalogError, match="no database driver"):
        open_catalog("postgresql+nosuchdriver://bob:s3cret@localhost/db")


def test_import_rejects_ints_beyond_the_integer_range_on_every_backend(
    catalog: Catalog, db_url: str, tmp_path: Path
) -> None:
    before = _count(db_url, DataKind.offers)
    big = OFFER_HEADER + "acme,r,huge,H200,1,3000000000,,1.0,,q,,\n"
    with pytest.raises(CatalogError, match=r"big\.csv:2: column vcpus: got '3000000000'.*INTEGER range"):
        catalog.import_csv("offers", _write(tmp_path / "big.csv", big))
    assert _count(db_url, DataKind.offers) == before


def _poison_insert(url: str) -> str:
    """Make the database itself refuse an offer in region ``boom``; returns the text of the bad cell."""
    if url.startswith("sqlite"):
        _execute(
            url,
            text(
                "CREATE TRIGGER no_boom BEFORE INSERT ON cloud_offers WHEN NEW.region = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
            ),
        )
        return "boom"
    return "boom\x00"  # PostgreSQL text cannot hold NUL: psycopg raises DataError, SQLite would accept it


def test_import_database_errors_become_catalog_errors_and_roll_back(
    catalog: Catalog, db_url: str, tmp_path: Path
) -> None:
    region = _poison_insert(db_url)
    before = _count(db_url, DataKind.offers, "packaged")
    rows = OFFER_HEADER + "aws,us-east-1,p5.48xlarge,H100-SXM,8,192,2048,50.0,,negotiated,2026-11-01,\n"
    rows += f"acme,{region},x1,H200,1,,,1.0,,q,,\n"
    with pytest.raises(CatalogError) as raised:
        catalog.import_csv("offers", _write(tmp_path / "poison.csv", rows))
    message = str(raised.value)
    assert "poison.csv" in message and "nothing was imported" in message and "\n" not in message
    assert _count(db_url, DataKind.offers, "user") == 0
    assert _count(db_url, DataKind.offers, "packaged") == before  # the delete of p5.48xlarge rolled back


def test_import_keeps_as_of_text_when_the_first_row_is_dated(catalog: Catalog, tmp_path: Path) -> None:
    header = "provider,model,input_per_1m_usd,output_per_1m_usd,cached_input_per_1m_usd,"
    header += "max_input_tokens,max_output_tokens,source,as_of\n"
    body = "acme,m1,1,2,,,,s,2026-01-02\nacme,m2,1,2,,,,s,litellm==1.0\n"
    assert catalog.import_csv("api-prices", _write(tmp_path / "p.csv", header + body)) == 2
    notes = {p.model: p.notes for p in catalog.api_prices(provider="acme")}
    assert notes == {"m1": "", "m2": "as_of: litellm==1.0"}
    body = "acme,m3,1,2,,,,s,litellm==1.0\nacme,m4,1,2,,,,s,2026-01-02\n"
    assert catalog.import_csv("api-prices", _write(tmp_path / "q.csv", header + body)) == 2


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_interrupted_migration_leaves_nothing_and_the_next_open_succeeds(db_url: str) -> None:
    """Stop the first migration after its CREATE TABLEs, before Alembic records the revision."""

    def interrupt(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ALEMBIC_VERSION"):
            raise RuntimeError("interrupted")

    event.listen(Engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(RuntimeError, match="interrupted"):
            open_catalog(db_url)
    finally:
        event.remove(Engine, "before_cursor_execute", interrupt)
    assert _tables(db_url) == set()
    with open_catalog(db_url) as catalog:
        assert len(catalog.accelerators()) == len(load_packaged(benchmarks=False).accelerators)


def test_interrupted_first_import_rolls_back_the_migration_too(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import servewise.catalog._db as db_module

    def interrupted(*args: Any) -> None:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(db_module, "import_packaged", interrupted)
    with pytest.raises(RuntimeError, match="interrupted"):
        open_catalog(db_url)
    monkeypatch.undo()
    assert "accelerators" not in _tables(db_url)
    with open_catalog(db_url) as catalog:
        assert catalog.benchmark_count() == len(load_packaged().benchmarks)


def test_unknown_name_message_has_a_separator_without_suggestions() -> None:
    assert str(UnknownNameError("gpu", "nosuch", [])) == (
        "unknown gpu 'nosuch'. See `servewise catalog list gpus` for the full list."
    )
    assert str(UnknownNameError("gpu", "H100-SMX", ["H100-SXM"], hint="Try again.")) == (
        "unknown gpu 'H100-SMX'; did you mean 'H100-SXM'? Try again."
    )


def test_database_error_during_first_import_is_one_line_and_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import servewise.catalog._db as db_module
    from servewise.catalog._loader import read_packaged_rows as real

    def duplicated_aliases(kind: DataKind) -> list[dict[str, Any]]:
        rows = real(kind)
        return rows + rows[:1] if kind is DataKind.aliases else rows  # breaks uq_aliases_kind_alias

    monkeypatch.setattr(db_module, "read_packaged_rows", duplicated_aliases)
    with pytest.raises(CatalogError) as raised:
        open_catalog(db_url)
    message = str(raised.value)
    assert message.startswith("cannot prepare the catalog in ") and "nothing was changed" in message
    assert "\n" not in message and "permission" not in message
    monkeypatch.undo()
    assert _tables(db_url) == set()
    open_catalog(db_url).close()


def test_a_sqlite_file_runs_in_wal_mode_with_normal_sync(tmp_path: Path) -> None:
    """One write per gateway request: with the default rollback journal every commit fsyncs the file."""
    engine = connect_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()


def test_window_facts_round_trip_and_a_sliding_model_without_them_is_flagged(
    catalog: Catalog, tmp_path: Path
) -> None:
    oss = catalog.model("gpt-oss-120b")
    assert (oss.sliding_window_tokens, oss.sliding_layers) == (128, 18)
    assert "model_missing_window" not in {f.kind for f in catalog.health(date(2026, 11, 25)).findings}

    base = catalog.model("Llama-3.1-8B")
    fields = [f for f in base.__dataclass_fields__ if f != "as_of"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for name, window, layers in (("Acme-Win-8B", 4096, 16), ("Acme-Nowin-8B", None, None)):
        writer.writerow(
            {**{f: getattr(base, f) for f in fields}, "name": name, "hf_id": f"acme/{name}",
             "attention": "gqa+sliding", "sliding_window_tokens": window, "sliding_layers": layers}
        )  # fmt: skip
    catalog.import_csv("models", _write(tmp_path / "m.csv", out.getvalue()))
    assert catalog.model("Acme-Win-8B").sliding_share == 0.5
    flagged = [f for f in catalog.health(date(2026, 11, 25)).findings if f.kind == "model_missing_window"]
    assert [f.subject for f in flagged] == ["Acme-Nowin-8B"]
    assert "over-estimated" in flagged[0].message
