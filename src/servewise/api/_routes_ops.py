"""``/api/v1/deploy`` (a plan option rendered and validated, as a zip or JSON) and the read-only gateway views."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from . import _services
from ._deps import DbUrl
from ._errors import ERROR_RESPONSES
from ._models import DeployRequest, DeployResponse

__all__ = ["router"]

router = APIRouter(responses=ERROR_RESPONSES)

_ZIP_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the bundle as a zip (files under servewise-deploy/); the validation report in the "
        "X-Servewise-Check header (JSON: ok, notes, results); with ?format=json the files as JSON instead",
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": DeployResponse.model_json_schema()},
        },
    }
}


@router.post(
    "/deploy",
    tags=["deploy"],
    summary="Render a plan option as a deploy bundle",
    responses=_ZIP_DOC,
    response_model=None,
)
def deploy(
    body: DeployRequest,
    format: Annotated[  # the query parameter's name
        Literal["zip", "json"], Query(description="zip (default) or json")
    ] = "zip",
) -> Response | DeployResponse:
    """Kubernetes/KServe/Helm manifests, autoscaling, alerts and budget Terraform for one plan option, validated
    against the Kubernetes schemas. Rendering never writes files on the server and never applies anything."""
    if format == "json":
        files, meta = _services.deploy_bundle(
            body.plan, option=body.option, target=str(body.target), namespace=body.namespace
        )
        return DeployResponse.model_validate(
            {**meta, "files": [{"path": path, "text": text} for path, text in files]}
        )
    data, meta = _services.deploy_zip(
        body.plan, option=body.option, target=str(body.target), namespace=body.namespace
    )
    check = meta["check"]
    header = json.dumps({"ok": check["ok"], "target": meta["target"]}, separators=(",", ":"))
    return Response(
        content=data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="servewise-deploy-{meta["target"]}.zip"',
            "X-Servewise-Check": header,
        },
    )


_BY = Literal["tenant", "org", "team", "key", "end_user", "route", "model", "decision", "status"]


@router.get("/gateway/spend", tags=["gateway"], summary="Gateway spend grouped by one dimension")
def spend(
    db_url: DbUrl,
    by: Annotated[_BY, Query(description="group by this column")] = "tenant",
    since: Annotated[datetime | None, Query(description="from this time (UTC unless given)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
) -> dict[str, Any]:
    """Requests, tokens and dollars from the gateway ledger (read-only; empty when the database has no gateway
    tables). Keys and budgets are written through the gateway's own admin API or ``servewise gateway``."""
    return {"by": by, "rows": _services.spend_rows(by=by, since=since, until=until, db_url=db_url)}


@router.get("/gateway/budgets", tags=["gateway"], summary="Gateway budgets with current spend")
def budgets(db_url: DbUrl) -> dict[str, Any]:
    """Every budget with its current window's spend, reservations and reset time (read-only)."""
    return {"budgets": _services.budget_rows(db_url)}
