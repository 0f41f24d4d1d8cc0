"""The gateway's FastAPI app: the OpenAI routes, ``/v1/models``, ``/health``, ``/metrics`` and ``/admin``.

Why the services are started in the lifespan (not at import or construction): start-up reconciles the budget
counters with the ledger and must finish before the first request is admitted; shutdown flushes the ledger so a
clean stop loses nothing. Request bodies are read raw and parsed by the proxy, so a malformed body becomes an
OpenAI-format 400 rather than FastAPI's own validation error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ._admin import admin_router
from ._config import GatewayConfig
from ._metrics import PROMETHEUS_CONTENT_TYPE
from ._proxy import Proxy, openai_error
from ._services import GatewayServices, build_services
from ._tenancy import AuthFailure

__all__ = ["create_gateway_app"]


def create_gateway_app(config: GatewayConfig, *, services: GatewayServices | None = None) -> FastAPI:
    """The app for ``config`` (``services`` built from it unless given); serve it with uvicorn."""
    wired = services if services is not None else build_services(config)
    proxy = Proxy(wired)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await wired.start()
        try:
            yield
        finally:
            await wired.close()

    app = FastAPI(
        title="servewise gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.services = wired

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return openai_error(400, f"{where}: {first.get('msg', 'invalid request')}", "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return openai_error(err.status_code, str(err.detail), "invalid_request_error")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await proxy.handle("chat", request)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await proxy.handle("completions", request)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        return await proxy.handle("embeddings", request)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        principal = await wired.keys.authenticate(request.headers.get("authorization"))
        if isinstance(principal, AuthFailure):
            if principal.status == 403:
                return openai_error(403, principal.message, "permission_error", code="key_revoked")
            return openai_error(401, principal.message, "invalid_request_error", code="invalid_api_key")
        names = [m for m in config.client_models if principal.may_use(m)]
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "servewise-gateway"} for m in names]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "routes": list(wired.routes)})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(wired.metrics.render_latest(), media_type=PROMETHEUS_CONTENT_TYPE)

    app.include_router(admin_router(app, wired))
    return app
