"""Runtime settings from the environment (prefix ``SERVEWISE_``).

Why settings are an object and not module globals: tests and the API build their own (``Settings(db_url=...)``)
and nothing is read from the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_db_url"]


def default_db_url() -> str:
    """SQLite file in the user data dir: the embedded default, no service to run."""
    data_dir = Path(platformdirs.user_data_dir("servewise", appauthor=False))
    return f"sqlite:///{data_dir / 'catalog.db'}"


class Settings(BaseSettings):
    """``SERVEWISE_DB_URL`` selects the catalog database (``postgresql+psycopg://…`` for the team setup)."""

    model_config = SettingsConfigDict(env_prefix="SERVEWISE_", extra="ignore")

    db_url: str = Field(default_factory=default_db_url)
