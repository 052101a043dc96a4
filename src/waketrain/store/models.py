"""SQLAlchemy models: the database is the registry's source of truth."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite drops the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime written to the database")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy's own class attribute)
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthToken(Base):
    """A browser session or an API token; only the SHA-256 of the secret is stored."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # session | api | board
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    # A board token may only add captures to this dataset (NULL: a user's full rights).
    scope_dataset_id: Mapped[str | None] = mapped_column(String(63))


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    phrase: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


class Clip(Base):
    __tablename__ = "clips"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    label: Mapped[str] = mapped_column(String(16), index=True)
    speaker: Mapped[str | None] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    original_format: Mapped[str] = mapped_column(String(16))
    original_sample_rate: Mapped[int] = mapped_column(Integer)
    original_channels: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The client's Idempotency-Key: the same upload sent again is this clip, not another.
    upload_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    # Quality metrics arrive after ingest (computed off the request path); NULL = pending.
    analyzed_at: Mapped[datetime | None]
    quality_score: Mapped[int | None] = mapped_column(Integer, index=True)
    quality_reasons: Mapped[list[str] | None]
    peak_dbfs: Mapped[float | None] = mapped_column(Float)
    rms_dbfs: Mapped[float | None] = mapped_column(Float)
    clipping_ratio: Mapped[float | None] = mapped_column(Float)
    snr_db: Mapped[float | None] = mapped_column(Float)
    speech_seconds: Mapped[float | None] = mapped_column(Float)
    speech_start_seconds: Mapped[float | None] = mapped_column(Float)
    speech_end_seconds: Mapped[float | None] = mapped_column(Float)
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(64))


class Job(Base):
    """A training job: queued by the API, claimed and run by one worker."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued|running|succeeded|...
    stage: Mapped[str | None] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    config: Mapped[dict[str, Any]]
    init_from: Mapped[str | None] = mapped_column(String(36))
    worker_id: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None]
    export_dir: Mapped[str | None] = mapped_column(String(512))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Worker(Base):
    """A running worker process; alive while it beats (/healthz counts these)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid, as jobs.worker_id
    heartbeat_at: Mapped[datetime]


# A deployment still under way: the board may be receiving or applying it.
ACTIVE_DEPLOYMENT_STATUSES = ("pending", "transferring", "applying")


class Deployment(Base):
    """One attempt to ship a job's model to the board and apply it there."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(String(63))
    target: Mapped[str] = mapped_column(String(512), index=True)
    # pending|transferring|applying|succeeded|rolled_back|failed|cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # SSH connections tried
    # Run by a worker like a training job: claimed, kept alive by a heartbeat, requeued once
    # when its worker dies (`runs` counts the claims), cancellable until the board applies it.
    worker_id: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bundle: Mapped[str | None] = mapped_column(String(512))
    log: Mapped[str] = mapped_column(Text, default="")
    remote_stdout: Mapped[str | None] = mapped_column(Text)
    remote_stderr: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    # The stored board it ships to; None: the board of the DEPLOY_* settings.
    board_id: Mapped[str | None] = mapped_column(String(36))


class Board(Base):
    """A deploy target: how to reach a board over SSH and what runs the model there."""

    __tablename__ = "boards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    user: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(512))
    profile: Mapped[str] = mapped_column(String(16))  # detector|tars-compose
    post_command: Mapped[str | None] = mapped_column(Text)
    health_command: Mapped[str | None] = mapped_column(Text)
    keep_releases: Mapped[int] = mapped_column(Integer)
    # The client key (OpenSSH private key text): written, never sent back by the API or CLI.
    private_key: Mapped[str] = mapped_column(Text)
    # The board's host key as the operator confirmed it ("ssh-ed25519 AAAA..."), or None.
    host_key: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Capture(Base):
    """A detection or near miss the board recorded and sent back for review."""

    __tablename__ = "captures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the board's capture id
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # unreviewed|reviewed|discarded
    kind: Mapped[str] = mapped_column(String(16))  # what the detector thought: wake | near_miss
    model_id: Mapped[str] = mapped_column(String(128))
    threshold: Mapped[float] = mapped_column(Float)
    peak_score: Mapped[float] = mapped_column(Float)
    scores: Mapped[list[float]] = mapped_column(JSON)
    hop_seconds: Mapped[float] = mapped_column(Float)
    board: Mapped[str] = mapped_column(String(128))
    captured_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    duration_seconds: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(16))  # positive | negative
    clip_id: Mapped[str | None] = mapped_column(String(36))  # the clip a verdict made
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None]


class Event(Base):
    """Append-only change feed; the WebSocket streams it from a client's last seen id."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str | None] = mapped_column(String(63), index=True)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
