"""What routes share: the app's catalog URL, and the admin-key check for any write endpoint."""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, HTTPException, Request

__all__ = ["ADMIN_KEY_ENV", "DbUrl", "require_admin"]

ADMIN_KEY_ENV = "SERVEWISE_ADMIN_KEY"


def _db_url(request: Request) -> str | None:
    url: str | None = request.app.state.db_url
    return url


DbUrl = Annotated[str | None, Depends(_db_url)]
"""The catalog (and gateway) database of this app: ``create_app(db_url=...)``, else ``SERVEWISE_DB_URL``."""


def require_admin(request: Request) -> None:
    """Bearer ``SERVEWISE_ADMIN_KEY``; every write endpoint depends on it (the API has none today: the gateway's
    own ``/admin`` API and ``servewise gateway`` write keys and budgets)."""
    expected = os.environ.get(ADMIN_KEY_ENV)
    if not expected:
        raise HTTPException(403, f"writes are disabled: set {ADMIN_KEY_ENV} on the server to enable them")
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise HTTPException(401, "give the admin key: Authorization: Bearer $SERVEWISE_ADMIN_KEY")
