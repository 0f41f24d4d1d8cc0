"""A STAND-IN for a Kubernetes API server, because no real one can run on this machine (no cluster, no container
runtime): a real uvicorn server on 127.0.0.1 implementing only what ``servewise deploy --apply`` calls — ``GET
/version``, and ``GET`` / server-side-apply ``PATCH`` of namespaced objects under ``/api/v1`` and ``/apis/G/V``.
The ``kubernetes`` client talks to it for real over HTTP. It stores objects in memory, answers ``201`` for a
created object and ``200`` otherwise, bumps ``resourceVersion`` only when the applied object differs, honours
``dryRun=All`` (nothing stored) and records every request so tests can assert the headers and query parameters.
It does no schema validation, no merging of field ownership, and serves every group unless told otherwise."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class KubeStub:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    unserved_groups: set[str] = field(default_factory=set)
    forbidden_names: set[str] = field(default_factory=set)
    url: str = ""


def _status(code: int, message: str) -> JSONResponse:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    return JSONResponse(body, status_code=code)


def make_app(stub: KubeStub) -> FastAPI:
    app = FastAPI()

    @app.get("/version")
    def version() -> dict[str, str]:
        return {"major": "1", "minor": "33", "gitVersion": "v1.33.0-servewise-stub"}

    @app.api_route("/{path:path}", methods=["GET", "PATCH"])
    async def resource(path: str, request: Request) -> JSONResponse:
        body = await request.body()
        stub.requests.append(
            {
                "method": request.method,
                "path": "/" + path,
                "query": dict(request.query_params),
                "content_type": request.headers.get("content-type"),
                "authorization": request.headers.get("authorization"),
            }
        )
        parts = path.split("/")
        group = parts[1] if parts[0] == "apis" else ""
        if group in stub.unserved_groups:
            return _status(404, f"the server could not find the requested resource (group {group})")
        if parts[-1] in stub.forbidden_names:
            return _status(403, f'forbidden: User "alice" cannot patch resource "{parts[-2]}"')
        key = "/" + path
        if request.method == "GET":
            if key not in stub.objects:
                return _status(404, f'{parts[-2]} "{parts[-1]}" not found')
            return JSONResponse(stub.objects[key])
        applied = json.loads(body)
        current = stub.objects.get(key)
        new = copy.deepcopy(applied)
        metadata = new.setdefault("metadata", {})
        if current is not None and _content(current) == _content(new):
            result = current
        else:
            version = int(current["metadata"]["resourceVersion"]) + 1 if current else 1
            metadata["resourceVersion"] = str(version)
            metadata["managedFields"] = [
                {"manager": request.query_params.get("fieldManager"), "operation": "Apply"}
            ]
            result = new
        if request.query_params.get("dryRun") != "All":
            stub.objects[key] = result
        return JSONResponse(result, status_code=200 if current is not None else 201)

    return app


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for key in ("resourceVersion", "managedFields"):
        out.get("metadata", {}).pop(key, None)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_stub() -> Iterator[KubeStub]:
    stub = KubeStub()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(stub), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the stand-in API server did not start")
        time.sleep(0.01)
    stub.url = f"http://127.0.0.1:{port}"
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def write_kubeconfig(path: Path, server: str, *, context: str = "stub", user: str = "alice") -> Path:
    """A kubeconfig with one context pointing at ``server`` (token auth)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": "stub-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": user}}],
        "current-context": context,
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path
