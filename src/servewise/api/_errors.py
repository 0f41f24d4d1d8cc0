"""One error body for every failure: ``{"error": {"code", "message", "field", "suggestions"?}}``.

Why one shape: a client (and the web pages) can show any error the same way, next to the field it names. Status:
400 bad input (``UsageError``; ``InfeasibleError`` is valid input no option satisfies, code ``infeasible``), 404 an
unknown name (``UnknownNameError``, with ``suggestions``) or path, 422 a body or query that does not match the
schema (the first error's field path), 503 a catalog database that cannot be used. 500 only for a bug: its body
says so, without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from servewise.errors import CatalogError, InfeasibleError, ServewiseError, UnknownNameError

__all__ = ["ERROR_RESPONSES", "error_response", "install_error_handlers"]

_LOG = logging.getLogger("servewise.api")

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "suggestions": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}


def _doc(description: str, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    example = {"error": {"code": code, "message": message, "field": field}}
    return {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_SCHEMA, "example": example}},
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("bad input", "bad_request", "--qps must be a positive number of requests per second (got -1)"),
    404: _doc(
        "unknown name",
        "not_found",
        "unknown gpu 'H100'; did you mean 'H100-SXM', 'H100-NVL', 'H100-PCIe'?",
    ),
    422: _doc("body or query does not match the schema", "validation_error", "Input should be > 0", "top"),
}
"""The documented error responses of every API route (OpenAPI ``responses``)."""


def error_response(
    status: int, code: str, message: str, field: str | None = None, **extra: Any
) -> JSONResponse:
    """A JSON error in the one shape."""
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message, "field": field, **extra}}
    )


def _field(loc: Any) -> str | None:
    """``("body", "workload", "traffic", "qps")`` → ``workload.traffic.qps``; query/path parameters by name."""
    parts = [str(p) for p in (loc or ()) if not str(p).startswith("function-")]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error body (see the module docstring)."""

    async def on_validation(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        errors = list(err.errors())
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        field = _field(first.get("loc", ()))
        more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        shown = f"{field}: {message}{more}" if field else f"{message}{more}"
        return error_response(422, "validation_error", shown, field)

    async def on_servewise(_: Request, err: Exception) -> JSONResponse:
        if isinstance(err, UnknownNameError):
            return error_response(404, "not_found", str(err), None, suggestions=list(err.suggestions))
        if isinstance(err, InfeasibleError):
            return error_response(400, "infeasible", str(err))
        if isinstance(err, CatalogError):
            return error_response(503, "catalog_unavailable", str(err))
        return error_response(400, "bad_request", str(err))

    async def on_http(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        response = error_response(err.status_code, codes.get(err.status_code, "http_error"), str(err.detail))
        for name, value in (err.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_bug(_: Request, err: Exception) -> JSONResponse:
        _LOG.exception("unhandled error", exc_info=err)
        return error_response(
            500,
            "internal_error",
            "an internal error occurred; it is a bug: please report it with the request",
        )

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ServewiseError, on_servewise)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)
