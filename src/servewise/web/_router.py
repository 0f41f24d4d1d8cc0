"""What every web page shares: the Jinja2 environment with its number filters, and the plan store of the app.

Why here: W3's pages (Describe, Plan, Compare) and W4's (Deploy, Catalog, Spend) must format numbers the same way
and read the same plans, so both import ``templates`` and ``plan_store`` from this module rather than building
their own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from servewise.web._store import PlanStore

__all__ = ["TEMPLATES_DIR", "db_url", "fmt_number", "fmt_usd", "plan_store", "templates"]

TEMPLATES_DIR = Path(__file__).with_name("templates")


def fmt_number(value: Any, decimals: int = 0, unit: str = "") -> str:
    """``12345.6 → "12,346"``; ``decimals`` digits after the point; ``unit`` appended after a thin space.

    ``None`` and non-finite values show as an em dash so a missing number never reads as zero.
    """
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "—"
    text = f"{number:,.{decimals}f}"
    return f"{text}\u202f{unit}" if unit else text


def fmt_usd(value: Any, decimals: int = 0) -> str:
    """``8000 → "$8,000"``; negative amounts as ``-$1,234``."""
    text = fmt_number(value, decimals)
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not digits[:1].isdigit():
        return text  # "—", or a value that is not a number, shown as given
    return f"-${digits}" if negative else f"${digits}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["num"] = fmt_number
templates.env.filters["usd"] = fmt_usd


def plan_store(request: Request) -> PlanStore:
    """The app's plan store (created by ``install_web``); one per app, so tests with two apps do not share plans."""
    store = getattr(request.app.state, "plan_store", None)
    if not isinstance(store, PlanStore):
        store = PlanStore()
        request.app.state.plan_store = store
    return store


def db_url(request: Request) -> str | None:
    """The catalog URL the app was created with (``create_app(db_url=...)``); None means ``SERVEWISE_DB_URL``."""
    value = getattr(request.app.state, "db_url", None)
    return value if isinstance(value, str) else None
