"""Prometheus scrape endpoint (behind a bearer token, like every route but /healthz)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import current_principal
from waketrain.api.metrics import ServiceMetrics

router = APIRouter(tags=["status"], dependencies=[Depends(current_principal)])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Requests, uploads, clips per dataset, jobs, stage durations, deploys, GPU load."""
    service_metrics: ServiceMetrics = request.app.state.metrics
    body = await run_in_threadpool(service_metrics.render)  # reads the database
    return Response(body, media_type=CONTENT_TYPE_LATEST)
