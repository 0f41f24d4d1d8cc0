"""The REST API (``/api/v1``) and the app that also serves the web UI: ``create_app`` for ``servewise serve``.

Routes translate HTTP only; every computation goes through ``servewise.api._services`` (shared with the web
pages), so the API, the pages and the CLI give the same numbers.
"""

from ._app import create_app

__all__ = ["create_app"]
