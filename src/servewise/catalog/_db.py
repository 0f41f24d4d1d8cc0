"""Engine, migrations and the packaged-data import: everything ``open_catalog`` does before the first query.

Why the fast path: ``servewise plan`` opens the catalog on every run, so when ``alembic_version`` already
holds ``HEAD_REVISION`` and ``catalog_meta`` holds the current packaged fingerprint, opening costs two small
queries and no Alembic import. Otherwise: ``alembic upgrade head`` (programmatic, no ``alembic.ini``) and the
replacement of the packaged rows, keeping every ``origin='user'`` row (a user row also wins over a packaged row
with the same natural key), all in one transaction: an interrupted first use leaves nothing behind.

Why a write lock: several processes may open a fresh or outdated catalog at the same moment (parallel
``servewise`` runs, a team on one PostgreSQL). The migrate-and-import transaction first takes the catalog's
write lock (``write_transaction``), then checks the revision and the fingerprint again, so the first process
does the work and the others wait and find nothing left to do. On PostgreSQL the lock is
``pg_advisory_xact_lock`` (released at commit or rollback); on SQLite it is ``BEGIN IMMEDIATE`` and waiters
retry for ``SQLITE_BUSY_TIMEOUT_S``.

Why the SQLite connection hooks: pysqlite by default opens transactions itself and runs DDL outside them, so
``CREATE TABLE`` would commit on its own. Following SQLAlchemy's documented recipe ("Serializable isolation /
Savepoints / Transactional DDL" in the pysqlite dialect docs), ``connect`` turns pysqlite's handling off
(``isolation_level = None``) and ``begin`` emits ``BEGIN`` (``BEGIN IMMEDIATE`` for a write transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, insert, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from servewise.errors import CatalogError

from ._loader import DataKind, natural_key, packaged_fingerprint, read_packaged_rows
from ._schema import (
    AcceleratorRow,
    AliasRow,
    ApiPriceRow,
    Base,
    BenchmarkRowRow,
    CatalogMetaRow,
    CloudOfferRow,
    CpuRow,
    ModelRow,
    UseCaseRow,
)

__all__ = [
    "FINGERPRINT_KEY",
    "HEAD_REVISION",
    "ORIGIN_PACKAGED",
    "ORIGIN_USER",
    "SQLITE_BUSY_TIMEOUT_S",
    "TABLES",
    "connect_engine",
    "current_revision",
    "ensure_ready",
    "first_line",
    "import_packaged",
    "mask_url",
    "migrate",
    "write_transaction",
]

HEAD_REVISION = "0005_sliding_window"
"""The newest file in ``migrations/versions``; a test checks it against Alembic's script directory."""

FINGERPRINT_KEY = "packaged_fingerprint"
ORIGIN_PACKAGED = "packaged"
ORIGIN_USER = "user"

_ORM: dict[DataKind, type[Base]] = {
    DataKind.gpus: AcceleratorRow,
    DataKind.models: ModelRow,
    DataKind.offers: CloudOfferRow,
    DataKind.api_prices: ApiPriceRow,
    DataKind.benchmarks: BenchmarkRowRow,
    DataKind.use_cases: UseCaseRow,
    DataKind.aliases: AliasRow,
    DataKind.cpus: CpuRow,
}
TABLES: dict[DataKind, Table] = {kind: cast(Table, orm.__table__) for kind, orm in _ORM.items()}
_META = cast(Table, CatalogMetaRow.__table__)

SQLITE_BUSY_TIMEOUT_S = 60.0
"""How long a SQLite connection waits for another process's write lock (a first-use import takes seconds)."""

_LOCK_CLASS = 0x53574354
"""First key of the PostgreSQL advisory lock ('SWCT'); the second is a hash of the schema, so catalogs in
different schemas of one database do not wait for each other."""
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(coalesce(current_schema(), '')))")
_WRITE_OPTION = "servewise_write"
"""Execution option marking a write transaction: the SQLite ``begin`` hook then emits ``BEGIN IMMEDIATE``."""

_ENV_HINT = "check SERVEWISE_DB_URL (or --db-url), or unset it to use the embedded SQLite file"


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``: safe for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparsable database URL>"
    return parsed.render_as_string(hide_password=True)


def first_line(err: BaseException) -> str:
    """The first line of a (database) error's message, for one-line ``CatalogError`` texts."""
    original = getattr(err, "orig", None) or err
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def connect_engine(url: str) -> Engine:
    """An engine for ``url`` that has answered one query; ``CatalogError`` with a one-line fix otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(
            f"cannot parse the catalog database URL {mask_url(url)!r}; expected e.g. "
            f"sqlite:////path/catalog.db or postgresql+psycopg://user@host/db; {_ENV_HINT}"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CatalogError(
                f"cannot create the folder for {parsed.database}: {err.strerror}; {_ENV_HINT}"
            ) from None
    sqlite = parsed.get_backend_name() == "sqlite"
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S} if sqlite and "timeout" not in parsed.query else {}
    try:
        engine = create_engine(parsed, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as err:
        extra = " (pip install 'servewise[pg]')" if parsed.get_backend_name() == "postgresql" else ""
        raise CatalogError(
            f"no database driver for {mask_url(parsed)}: {first_line(err)}; "
            f"install the driver{extra} or {_ENV_HINT}"
        ) from None
    except (ArgumentError, TypeError) as err:
        raise CatalogError(
            f"bad catalog database URL {mask_url(parsed)}: {first_line(err)}; {_ENV_HINT}"
        ) from None
    if sqlite:
        _make_sqlite_transactional(engine)
        if parsed.database not in (None, "", ":memory:"):
            event.listen(engine, "connect", _sqlite_wal)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (DBAPIError, SQLAlchemyError) as err:
        engine.dispose()
        raise CatalogError(f"cannot connect to {mask_url(parsed)}: {first_line(err)}; {_ENV_HINT}") from None
    return engine


def _no_pysqlite_transactions(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_wal(dbapi_connection: Any, connection_record: Any) -> None:
    """Write-ahead log with ``synchronous=NORMAL``: a commit no longer waits for an fsync of the whole database
    (~200 → >100,000 small writes/s here), readers never block the writer, and a killed process loses nothing
    committed (only a power loss can drop the last commits). The gateway's budget reservations are one write per
    request, so the embedded default needs this to carry more than ~100 requests/s."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _make_sqlite_transactional(engine: Engine) -> None:
    """SQLAlchemy's pysqlite recipe: transactions (DDL included) begin and end exactly where SQLAlchemy says."""
    event.listen(engine, "connect", _no_pysqlite_transactions)
    event.listen(engine, "begin", _begin_sqlite)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction holding the catalog's write lock until it commits or rolls back; other writers wait.

    PostgreSQL: ``pg_advisory_xact_lock``. SQLite: ``BEGIN IMMEDIATE`` (waits up to the busy timeout).
    """
    with engine.execution_options(**{_WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(_PG_LOCK, {"lock_class": _LOCK_CLASS})
        yield connection


def current_revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at, ``None`` for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(connection: Connection, revision: str = "head") -> None:
    """``alembic upgrade`` on ``connection`` with the package's migration scripts (no ``alembic.ini``)."""
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, revision)
    except CommandError as err:
        raise CatalogError(
            f"cannot migrate the catalog database: {first_line(err)}; it may have been created by a newer "
            f"servewise — upgrade servewise, or {_ENV_HINT}"
        ) from None


def _stored_fingerprint(connection: Connection) -> str | None:
    return connection.execute(select(_META.c.value).where(_META.c.key == FINGERPRINT_KEY)).scalar()


def _user_keys(connection: Connection, kind: DataKind) -> set[tuple[Any, ...]]:
    table = TABLES[kind]
    rows = connection.execute(select(table).where(table.c.origin == ORIGIN_USER)).mappings()
    return {key for row in rows if (key := natural_key(kind, row)) is not None}


def import_packaged(connection: Connection, fingerprint: str) -> None:
    """Replace every packaged row with the packaged files' rows; user rows and their keys are kept."""
    for kind, table in TABLES.items():
        connection.execute(delete(table).where(table.c.origin == ORIGIN_PACKAGED))
        held_by_user = _user_keys(connection, kind)
        rows = [
            {**values, "origin": ORIGIN_PACKAGED}
            for values in read_packaged_rows(kind)
            if natural_key(kind, values) not in held_by_user or natural_key(kind, values) is None
        ]
        if rows:
            connection.execute(insert(table), rows)
    connection.execute(delete(_META).where(_META.c.key == FINGERPRINT_KEY))
    connection.execute(insert(_META), [{"key": FINGERPRINT_KEY, "value": fingerprint}])


def _up_to_date(connection: Connection, fingerprint: str) -> bool:
    if current_revision(connection) != HEAD_REVISION:
        return False
    return _stored_fingerprint(connection) == fingerprint


def ensure_ready(engine: Engine) -> None:
    """Migrate to head and import the packaged data when needed; a no-op (two queries) when up to date.

    Migration and import run in one transaction under the write lock, and are skipped when another process
    finished them while this one waited; a database error rolls both back and becomes a ``CatalogError``.
    """
    url = mask_url(engine.url)
    fingerprint = packaged_fingerprint()
    try:
        with engine.connect() as connection:
            if _up_to_date(connection, fingerprint):
                return
        with write_transaction(engine) as connection:
            if current_revision(connection) != HEAD_REVISION:
                migrate(connection)
            if _stored_fingerprint(connection) != fingerprint:
                import_packaged(connection, fingerprint)
    except CatalogError:
        raise
    except (DBAPIError, SQLAlchemyError) as err:
        raise CatalogError(
            f"cannot prepare the catalog in {url}: {first_line(err)}; nothing was changed (migration and "
            f"import roll back together); run the command again, check that the database user may create "
            f"tables and write rows, or {_ENV_HINT}"
        ) from None
