"""Append-only events (the live feed) and the audit trail (who did what)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waketrain.store.db import MAX_SQL_INTEGER
from waketrain.store.models import AuditEntry, Event
from waketrain.store.registry import Registry

# PostgreSQL numbers an event when it is inserted, not when it commits: a feed reading "after
# id N" would pass over an id whose transaction commits after a higher one. Event writers
# take turns on this transaction-scoped lock (held until commit), so ids appear in order.
# SQLite needs none: it has one writer at a time.
EVENT_ORDER_LOCK = 0x77616B65


class EventRecord(BaseModel):
    id: int
    type: str
    dataset_id: str | None
    payload: dict[str, Any]
    created_at: datetime


class AuditRecord(BaseModel):
    id: int
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
    created_at: datetime


def record_event(
    session: Session, type_: str, payload: dict[str, Any], dataset_id: str | None = None
) -> None:
    """Add an event to the caller's transaction, so it commits with the change it describes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(EVENT_ORDER_LOCK)))
    session.add(Event(type=type_, dataset_id=dataset_id, payload=payload))


def record_audit(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail or {},
        )
    )


def events_after(
    registry: Registry,
    after_id: int,
    limit: int = 500,
    types: Sequence[str] | None = None,
    newest_first: bool = False,
) -> list[EventRecord]:
    """Events with an id above `after_id`, oldest first, optionally only of some `types`.

    `newest_first`: the newest `limit` of them, newest first (what a page that was just
    opened needs to rebuild its recent notifications, without reading the whole log).
    """
    if after_id >= MAX_SQL_INTEGER:
        return []  # no id is larger (and the driver could not bind the number)
    query = select(Event).where(Event.id > after_id)
    if types:
        query = query.where(Event.type.in_(list(types)))
    query = query.order_by(Event.id.desc() if newest_first else Event.id).limit(limit)
    with registry.sessions() as session:
        return [
            EventRecord.model_validate(row, from_attributes=True) for row in session.scalars(query)
        ]


def latest_event_id(registry: Registry) -> int:
    """The newest event's id (0 when there is none): where a feed "from now" starts."""
    with registry.sessions() as session:
        return session.scalar(select(func.max(Event.id))) or 0


def audit_trail(
    registry: Registry, object_id: str | None = None, limit: int = 200
) -> list[AuditRecord]:
    """Newest audit entries first, optionally for one object."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    with registry.sessions() as session:
        return [
            AuditRecord.model_validate(row, from_attributes=True) for row in session.scalars(query)
        ]
