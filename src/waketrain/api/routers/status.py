"""Health, the event feed (HTTP and WebSocket) and the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from waketrain import __version__
from waketrain.api.deps import authenticate_connection, current_principal, get_registry
from waketrain.jobs.liveness import ServiceHealth, service_health
from waketrain.store.errors import AuthenticationFailed, Forbidden
from waketrain.store.events import (
    AuditRecord,
    EventRecord,
    audit_trail,
    events_after,
    latest_event_id,
)
from waketrain.store.registry import Registry

router = APIRouter(tags=["status"])
RegistryDep = Annotated[Registry, Depends(get_registry)]
POLL_SECONDS = 0.5
BATCH_SIZE = 500


class Health(ServiceHealth):
    version: str


@router.get("/healthz")
def healthz(registry: RegistryDep) -> Health:
    """Health; the only route that needs no credentials.

    200 either way: "degraded", with its reason, while no worker is alive (the API serves;
    jobs wait). A 503 would mark a split deployment's API unhealthy, and the compose file
    starts its worker only once the API is healthy.
    """
    return Health(**service_health(registry).model_dump(), version=__version__)


@router.get("/events", response_model=list[EventRecord], dependencies=[Depends(current_principal)])
def list_events(
    registry: RegistryDep,
    after: Annotated[int, Query(ge=0, description="Last event id the client has seen.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    type_: Annotated[
        list[str] | None,
        Query(alias="type", description="Only these event types, e.g. job.succeeded (repeat)."),
    ] = None,
    newest: Annotated[
        bool, Query(description="The newest `limit` events, newest first, instead of the oldest.")
    ] = False,
) -> list[EventRecord]:
    return events_after(registry, after, limit, type_, newest_first=newest)


@router.get("/audit", response_model=list[AuditRecord], dependencies=[Depends(current_principal)])
def list_audit(
    registry: RegistryDep,
    object_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditRecord]:
    """Who created, uploaded, deleted, restored and relabelled what; newest first."""
    return audit_trail(registry, object_id, limit)


@router.websocket("/status")
async def status_stream(websocket: WebSocket, after: int = 0) -> None:
    """Stream events with id > `after` as JSON, then new ones as they are written.

    `after=-1` starts from now: a page that has just loaded its state needs no history.

    The database is the feed, so events from other processes (workers, the CLI) arrive too,
    and a client that reconnects with its last seen id misses nothing.
    """
    registry: Registry = websocket.app.state.registry
    # "Now" is fixed before the handshake completes, so whatever the client does once
    # connected (create a dataset, submit a job) is sent to it, never taken for history.
    last_id = after if after >= 0 else await run_in_threadpool(latest_event_id, registry)
    await websocket.accept()
    try:
        authenticate_connection(websocket)
    except AuthenticationFailed as exc:
        # Accept-then-close lets a browser read why (a refused handshake hides the reason).
        await websocket.close(code=4401, reason=str(exc)[:120])
        return
    except Forbidden as exc:  # a board token
        await websocket.close(code=4403, reason=str(exc)[:120])
        return
    try:
        while True:
            batch = await run_in_threadpool(events_after, registry, last_id, BATCH_SIZE)
            for event in batch:
                await websocket.send_json(event.model_dump(mode="json"))
                last_id = event.id
            if len(batch) == BATCH_SIZE:
                continue  # a backlog: keep sending before waiting
            # Any client message is ignored; receiving is how a disconnect is noticed.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(websocket.receive_text(), timeout=POLL_SECONDS)
    except WebSocketDisconnect:
        return
