"""Backups of the registry while the service runs (DESIGN: Storage, Security and operations).

A backup is a folder: `waketrain.db`, an SQLite online-backup snapshot taken while the service
keeps running; every file that snapshot refers to (clips, projections, job folders, lineage,
known_hosts); and `backup.json`, which says what, when, from which schema, with checksums.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import structlog
from alembic.migration import MigrationContext
from pydantic import BaseModel
from sqlalchemy import create_engine, func, inspect, make_url, select
from sqlalchemy.exc import SQLAlchemyError

from waketrain import __version__
from waketrain.settings import Settings
from waketrain.store.db import make_engine
from waketrain.store.errors import WaketrainError
from waketrain.store.files import (
    TEMP_PREFIX,
    atomic_write_bytes,
    copy_file,
    file_digest,
    fsync_dir,
    fsync_tree,
)
from waketrain.store.layout import Layout
from waketrain.store.models import Base, Clip, Dataset

log = structlog.get_logger(__name__)

MANIFEST_NAME = "backup.json"
DATABASE_NAME = "waketrain.db"
MANIFEST_FORMAT = 1


class BackupError(WaketrainError):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


class DatabaseCopy(BaseModel):
    file: str
    bytes: int
    sha256: str


class CurrentModel(BaseModel):
    job_id: str
    link_target: str  # what models/current pointed at, relative to models/


class BackupManifest(BaseModel):
    """backup.json."""

    format: int
    created_at: datetime
    waketrain_version: str
    schema_revision: str | None
    database: DatabaseCopy
    counts: dict[str, int]  # rows per table in the snapshot
    current_model: CurrentModel | None
    includes_transfers: bool
    total_bytes: int
    files: dict[str, str]  # path relative to the registry root -> sha256
    missing_files: list[str]  # files the snapshot names that the registry had already lost


@dataclass
class BackupReport:
    path: Path
    manifest: BackupManifest


def backup_registry(
    settings: Settings, destination: Path, include_transfers: bool = False
) -> BackupReport:
    """Copy the registry into `destination`, a new folder, while the service keeps running.

    The database is copied first; then the files its rows name. A file written after the
    snapshot may be absent, but no row in the copy lacks its file. The migrations are not
    run: a backup taken before an upgrade keeps the schema it had.
    """
    database = sqlite_database_path(settings, "back up")
    layout = Layout(settings.data_dir.resolve())
    if not database.is_file():
        raise BackupError(
            f"No registry database at {database}: check WAKETRAIN_DATA_DIR ({layout.root})."
        )
    destination = destination.resolve()
    if destination == layout.root or layout.root in destination.parents:
        raise BackupError(
            f"{destination} is inside the registry {layout.root}; put the backup elsewhere "
            "(ideally on another disk), so that it survives the registry."
        )
    if destination.exists() and not (destination.is_dir() and not any(destination.iterdir())):
        raise BackupError(
            f"{destination} already exists and is not empty; name a new folder "
            "(e.g. with the date in its name)."
        )
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        # Built beside the destination and renamed at the end: a failed backup leaves nothing.
        staging = destination.parent / f".{destination.name}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            manifest = _write_backup(settings, layout, staging, include_transfers)
            fsync_tree(staging)
            os.replace(staging, destination)  # also over an empty folder
            fsync_dir(destination.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except (OSError, sqlite3.Error, SQLAlchemyError) as exc:
        raise BackupError(f"Backup to {destination} failed and nothing was kept: {exc}") from exc
    log.info(
        "backup written",
        path=str(destination),
        clips=manifest.counts.get("clips", 0),
        bytes=manifest.total_bytes,
        missing_files=len(manifest.missing_files),
    )
    return BackupReport(destination, manifest)


def _write_backup(
    settings: Settings, layout: Layout, staging: Path, include_transfers: bool
) -> BackupManifest:
    # Read before the snapshot: a job has its row before it is exported, listed in
    # artifacts.json or made current, so whatever these two name is in the snapshot too.
    current = _current_model(layout)
    artifacts_path = layout.root / "artifacts.json"
    artifacts = json.loads(artifacts_path.read_text()) if artifacts_path.is_file() else None

    db_copy = staging / DATABASE_NAME
    _snapshot_database(settings.database_url, db_copy)
    db_sha256, db_bytes = file_digest(db_copy)
    snapshot = _read_snapshot(db_copy)

    files: dict[str, str] = {}
    missing: list[str] = []
    total = db_bytes

    def copy(source: Path, required: bool = False) -> None:
        nonlocal total
        relative = source.relative_to(layout.root).as_posix()
        try:
            files[relative], size = copy_file(source, staging / relative)
        except FileNotFoundError:
            # Optional files (a job's log being rotated, a projection) may come and go;
            # a clip named by a row should not, and the manifest says so if it did.
            if required:
                missing.append(relative)
            return
        total += size

    for dataset_id, clip_id in snapshot.clips:
        copy(layout.clip_path(dataset_id, clip_id), required=True)
    for dataset_id in snapshot.dataset_ids:
        copy(layout.labels_path(dataset_id))
        copy(layout.metrics_path(dataset_id))
        # Captures waiting for review (a reviewed one's audio is its clip's).
        captures = layout.captures_dir(dataset_id)
        for source in sorted(captures.glob("*.wav")) if captures.is_dir() else []:
            copy(source)
    # Every job folder, also of jobs newer than the snapshot or trained by the CLI without a
    # row: extra files are harmless, and an export listed in artifacts.json must not be lost.
    for job_dir in sorted(layout.jobs.iterdir()) if layout.jobs.is_dir() else []:
        if job_dir.is_dir() and not job_dir.is_symlink():
            for source in _regular_files(job_dir):
                copy(source)
    # The negative bank, the board's room audio among it: each set's manifest before its
    # files, and a source is written whole before a manifest names it, so every source the
    # copied manifest names is copied too.
    for set_manifest in sorted(layout.negatives.glob("*/manifest.json")):
        copy(set_manifest)
        for source in _regular_files(set_manifest.parent):
            if source != set_manifest:
                copy(source)
    copy(layout.root / "known_hosts")
    if include_transfers:
        for bundle, checksum in _bundle_pairs(layout.transfers):
            copy(bundle)
            copy(checksum)
    if artifacts is not None:
        artifacts["current"] = current.job_id if current else None
        data = (json.dumps(artifacts, indent=2, sort_keys=True) + "\n").encode()
        atomic_write_bytes(staging / "artifacts.json", data)
        files["artifacts.json"] = hashlib.sha256(data).hexdigest()
        total += len(data)
    if missing:
        log.warning("clip files missing from the registry", count=len(missing), files=missing)

    manifest = BackupManifest(
        format=MANIFEST_FORMAT,
        created_at=datetime.now(timezone.utc),
        waketrain_version=__version__,
        schema_revision=snapshot.revision,
        database=DatabaseCopy(file=DATABASE_NAME, bytes=db_bytes, sha256=db_sha256),
        counts=snapshot.counts,
        current_model=current,
        includes_transfers=include_transfers,
        total_bytes=total,
        files=files,
        missing_files=missing,
    )
    atomic_write_bytes(
        staging / MANIFEST_NAME, (manifest.model_dump_json(indent=2) + "\n").encode()
    )
    return manifest


def sqlite_database_path(settings: Settings, action: str) -> Path:
    """The SQLite file of the registry; PostgreSQL is refused with what to do instead."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise BackupError(
            f"Cannot {action} a {url.get_backend_name()} database: `waketrain backup` and "
            "`restore` handle SQLite only. Back up PostgreSQL with pg_dump (and restore with "
            f"pg_restore), and copy the registry's files ({settings.data_dir}: datasets/, "
            "jobs/, negatives/, artifacts.json, known_hosts, models/current) with your file "
            "backup tool."
        )
    return Path(url.database).resolve()


def _snapshot_database(url: str, target: Path) -> None:
    """SQLite's online backup of the live database into `target`, through the engine."""
    engine = make_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            source = raw.driver_connection
            if not isinstance(source, sqlite3.Connection):
                raise BackupError(f"The database driver of {url} is not Python's sqlite3.")
            with contextlib.closing(sqlite3.connect(target)) as copy:
                # One step (pages=-1): the copy is the database as of one read transaction,
                # and in WAL mode the service keeps writing meanwhile.
                source.backup(copy)
                # A self-contained file, with no -wal beside it.
                copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            raw.close()
    finally:
        engine.dispose()
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class _Snapshot:
    revision: str | None
    counts: dict[str, int]
    dataset_ids: list[str]
    clips: list[tuple[str, str]]  # (dataset id, clip id)


def _read_snapshot(db_copy: Path) -> _Snapshot:
    """What the database copy holds, read with the models (the copy is always SQLite)."""
    engine = create_engine(f"sqlite:///{db_copy}")
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            present = set(inspect(connection).get_table_names())
            counts = {
                name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in sorted(Base.metadata.tables.items())
                if name in present
            }
            dataset_ids = list(connection.scalars(select(Dataset.id).order_by(Dataset.id)))
            clips = [
                (str(dataset_id), str(clip_id))
                for dataset_id, clip_id in connection.execute(
                    select(Clip.dataset_id, Clip.id).order_by(Clip.dataset_id, Clip.id)
                )
            ]
    finally:
        engine.dispose()
    return _Snapshot(revision, counts, dataset_ids, clips)


def _current_model(layout: Layout) -> CurrentModel | None:
    link = layout.models / "current"
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    export = (layout.models / target).resolve()
    if not export.is_dir():
        log.warning("models/current points at nothing; not recorded", target=target)
        return None
    return CurrentModel(job_id=export.parent.name, link_target=target)


def _regular_files(folder: Path) -> list[Path]:
    """Plain files under `folder`, without temp files of writes still in progress."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(TEMP_PREFIX) and path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def _bundle_pairs(transfers: Path) -> list[tuple[Path, Path]]:
    """Deploy bundles with their .sha256; a bundle still without one is being written."""
    pairs = []
    for bundle in sorted(transfers.glob("*.tar.gz")) if transfers.is_dir() else []:
        checksum = bundle.with_name(bundle.name + ".sha256")
        if checksum.is_file():
            pairs.append((bundle, checksum))
    return pairs
