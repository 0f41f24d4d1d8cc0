"""Engine, migrations and the packaged-data import: everything ``open_catalog`` does before the first query.

Why the fast path: ``servewise plan`` opens the catalog on every run, so when ``alembic_version`` already
holds ``HEAD_REVISION`` and ``catalog_meta`` holds the current packaged fingerprint, opening costs two small
queries and no Alembic import. Otherwise: ``alembic upgrade head`` (programmatic, no ``alembic.ini``), then
the packaged rows are replaced in one transaction, keeping every ``origin='user'`` row (a user row also wins
over a packaged row with the same natural key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, delete, insert, inspect, select, text
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
    ModelRow,
    UseCaseRow,
)

__all__ = [
    "FINGERPRINT_KEY",
    "HEAD_REVISION",
    "ORIGIN_PACKAGED",
    "ORIGIN_USER",
    "TABLES",
    "connect_engine",
    "current_revision",
    "ensure_ready",
    "import_packaged",
    "mask_url",
    "migrate",
]

HEAD_REVISION = "0001_initial"
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
}
TABLES: dict[DataKind, Table] = {kind: cast(Table, orm.__table__) for kind, orm in _ORM.items()}
_META = cast(Table, CatalogMetaRow.__table__)

_ENV_HINT = "check SERVEWISE_DB_URL (or --db-url), or unset it to use the embedded SQLite file"


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``: safe for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparsable database URL>"
    return parsed.render_as_string(hide_password=True)


def _first_line(err: BaseException) -> str:
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
    try:
        engine = create_engine(parsed)
    except (NoSuchModuleError, ImportError) as err:
        extra = " (pip install 'servewise[pg]')" if parsed.get_backend_name() == "postgresql" else ""
        raise CatalogError(
            f"no database driver for {mask_url(parsed)}: {_first_line(err)}; "
            f"install the driver{extra} or {_ENV_HINT}"
        ) from None
    except (ArgumentError, TypeError) as err:
        raise CatalogError(
            f"bad catalog database URL {mask_url(parsed)}: {_first_line(err)}; {_ENV_HINT}"
        ) from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (DBAPIError, SQLAlchemyError) as err:
        engine.dispose()
        raise CatalogError(f"cannot connect to {mask_url(parsed)}: {_first_line(err)}; {_ENV_HINT}") from None
    return engine


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
            f"cannot migrate the catalog database: {_first_line(err)}; it may have been created by a newer "
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


def ensure_ready(engine: Engine) -> None:
    """Migrate to head and import the packaged data when needed; a no-op (two queries) when up to date."""
    url = mask_url(engine.url)
    try:
        with engine.begin() as connection:
            if current_revision(connection) != HEAD_REVISION:
                migrate(connection)
        fingerprint = packaged_fingerprint()
        with engine.begin() as connection:
            if _stored_fingerprint(connection) != fingerprint:
                import_packaged(connection, fingerprint)
    except CatalogError:
        raise
    except (DBAPIError, SQLAlchemyError) as err:
        raise CatalogError(
            f"cannot prepare the catalog in {url}: {_first_line(err)}; "
            f"check that the database user may create tables, or {_ENV_HINT}"
        ) from None
