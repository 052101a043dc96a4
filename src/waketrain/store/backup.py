"""Backups of the registry while the service runs (DESIGN: Storage, Security and operations).

A backup is a folder: a consistent copy of the database taken while the service keeps running
(`waketrain.db`, an SQLite online backup, or `waketrain.pgdump`, pg_dump of a PostgreSQL
snapshot; see database_copy); every file that copy refers to (clips, projections, job
folders, lineage, known_hosts); and `backup.json`, which says what, when, from which schema
and database engine, with checksums.
"""

from __future__ import annotations

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
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from waketrain import __version__
from waketrain.settings import Settings
from waketrain.store.database_copy import (
    DatabaseEngine,
    copy_database,
    database_engine,
    sqlite_file,
)
from waketrain.store.errors import BackupError
from waketrain.store.files import (
    TEMP_PREFIX,
    atomic_write_bytes,
    copy_file,
    file_digest,
    fsync_dir,
    fsync_tree,
)
from waketrain.store.layout import Layout
from waketrain.store.pg_client import pg_program

log = structlog.get_logger(__name__)

MANIFEST_NAME = "backup.json"
MANIFEST_FORMAT = 1


class DatabaseCopy(BaseModel):
    # Manifests written before PostgreSQL could be backed up have no engine: SQLite.
    engine: DatabaseEngine = "sqlite"
    file: str  # waketrain.db or waketrain.pgdump, as database_copy.DATABASE_FILES says
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
    layout = Layout(settings.data_dir.resolve())
    _check_registry(settings, layout)
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
    except (OSError, sqlite3.Error, SQLAlchemyError, BackupError) as exc:
        raise BackupError(f"Backup to {destination} failed and nothing was kept: {exc}") from exc
    log.info(
        "backup written",
        path=str(destination),
        clips=manifest.counts.get("clips", 0),
        bytes=manifest.total_bytes,
        missing_files=len(manifest.missing_files),
    )
    return BackupReport(destination, manifest)


def _check_registry(settings: Settings, layout: Layout) -> None:
    """Refuse a registry that is not there, or a missing pg_dump, before writing anything."""
    if database_engine(settings.database_url) == "sqlite":
        database = sqlite_file(settings.database_url)
        if not database.is_file():
            raise BackupError(
                f"No registry database at {database}: check WAKETRAIN_DATA_DIR ({layout.root})."
            )
        return
    if not layout.root.is_dir():
        raise BackupError(
            f"No registry at {layout.root}: check WAKETRAIN_DATA_DIR (the clips, jobs and "
            "models live there, beside the PostgreSQL database)."
        )
    pg_program("pg_dump")


def _write_backup(
    settings: Settings, layout: Layout, staging: Path, include_transfers: bool
) -> BackupManifest:
    # Read before the snapshot: a job has its row before it is exported, listed in
    # artifacts.json or made current, so whatever these two name is in the snapshot too.
    current = _current_model(layout)
    artifacts_path = layout.root / "artifacts.json"
    artifacts = json.loads(artifacts_path.read_text()) if artifacts_path.is_file() else None

    db_copy, snapshot = copy_database(settings.database_url, staging)
    db_sha256, db_bytes = file_digest(db_copy)

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
        database=DatabaseCopy(
            engine=database_engine(settings.database_url),
            file=db_copy.name,
            bytes=db_bytes,
            sha256=db_sha256,
        ),
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
