"""Alembic environment for the catalog: always run programmatically by ``servewise.catalog._db``.

Why no ``alembic.ini`` and no URL here: users never run Alembic; ``_db.migrate`` passes an open connection in
``config.attributes["connection"]`` so the same transaction, URL handling and error messages apply.
"""

from __future__ import annotations

from alembic import context

from servewise.catalog._schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running the alembic CLI by hand
    raise RuntimeError("run catalog migrations through servewise.catalog (it passes the connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
