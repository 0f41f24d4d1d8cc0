"""``/api/v1/watch``: watch a running deployment against its plan for a short window, and render a report as HTML.

Why the window is capped (``WINDOW_MAX_S``): the request stays open while the replicas are scraped; longer windows
and CI gates belong to ``servewise watch``, whose JSON output ``/watch/render`` accepts. The server fetches the
given URLs itself, so only expose ``servewise serve`` where its users may make it reach those replicas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from servewise.watch._html import render_html

from . import _services_watch as watch
from ._deps import DbUrl
from ._errors import ERROR_RESPONSES

__all__ = ["WatchRequest", "router"]

router = APIRouter(tags=["watch"], responses=ERROR_RESPONSES)


class WatchRequest(BaseModel):
    """A live watch: the plan, which of its options is deployed, the replicas' metrics URLs and the window."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plan": {"schema_version": "1", "options": ["…the document `servewise plan` writes…"]},
                    "endpoints": ["http://10.0.0.5:8000/metrics", "http://10.0.0.6:8000/metrics"],
                    "window_s": 60,
                    "interval_s": 5,
                }
            ]
        },
    )

    plan: dict[str, Any] = Field(description="the plan document (`servewise plan --format json`)")
    option: int | None = Field(
        default=None, ge=1, description="rank of the deployed option; default the chosen"
    )
    endpoints: list[str] = Field(
        min_length=1,
        max_length=watch.ENDPOINTS_MAX,
        description="each replica's Prometheus metrics URL (vLLM `/metrics`)",
    )
    gateway: str | None = Field(default=None, description="the Servewise gateway's /metrics URL, for spend")
    window_s: float = Field(
        default=30.0, ge=watch.WINDOW_MIN_S, le=watch.WINDOW_MAX_S, description="seconds to watch"
    )
    interval_s: float | None = Field(
        default=None,
        ge=watch.INTERVAL_MIN_S,
        le=watch.WINDOW_MAX_S,
        description="seconds between scrapes (at most the window); default min(5, window_s / 2)",
    )
    drift_threshold_pct: float = Field(
        default=25.0,
        gt=0,
        le=1000,
        description="|predicted − observed| ÷ observed above which it has drifted",
    )


_REPORT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the watch report document (docs/watch.md), or with ?format=html the self-contained HTML "
        "report (charts inline, nothing fetched)",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/watch", summary="Watch a deployment against its plan", responses=_REPORT_DOC, response_model=None
)
async def watch_live(
    body: WatchRequest,
    db_url: DbUrl,
    format: Annotated[Literal["json", "html"], Query(description="json (default) or html")] = "json",
) -> Response:
    """Scrape the replicas every ``interval_s`` for ``window_s`` (≤ 120 s; the answer comes after the window),
    then report SLO compliance with burn rates, the validation gates, the efficiency score, right-sizing
    recommendations and drift against the plan's option. ``passed`` in the answer is false when a gate failed.
    Nothing is written to the catalog."""
    report = await watch.live_report(
        body.plan,
        plan_path="api:plan",
        option=body.option,
        endpoints=body.endpoints,
        window_s=body.window_s,
        interval_s=watch.default_interval_s(body.window_s) if body.interval_s is None else body.interval_s,
        gateway=body.gateway,
        drift_threshold_pct=body.drift_threshold_pct,
        db_url=db_url,
    )
    if format == "html":
        return HTMLResponse(render_html(report))
    return JSONResponse(watch.report_document(report))


@router.post(
    "/watch/render",
    summary="Render a watch report as HTML",
    response_class=HTMLResponse,
    responses={200: {"description": "the self-contained HTML report", "content": {"text/html": {}}}},
)
def watch_render(
    document: Annotated[
        dict[str, Any], Body(description="the report document `servewise watch --format json` writes")
    ],
) -> HTMLResponse:
    """The HTML report (summary, compliance, gates, efficiency, recommendations, drift and three charts) of a
    report document, as one file with plotly.js inline: the same as ``servewise watch --html FILE``."""
    return HTMLResponse(render_html(watch.report_from_json(document)))
