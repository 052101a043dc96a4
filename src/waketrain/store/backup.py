"""Backups, restores and clean-up of the registry (DESIGN: Storage, Security and operations).

A backup is a folder: `waketrain.db`, an SQLite online-backup snapshot taken while the service
keeps running; every file that snapshot refers to (clips, projections, job folders, lineage,
known_hosts); and `backup.json`, which says what, when, from which schema, with checksums.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import structlog
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import BaseModel, ValidationError
from sqlalchemy import create_engine, func, inspect, make_url, select
from sqlalchemy.exc import SQLAlchemyError

from waketrain import __version__
from waketrain.settings import Settings
from waketrain.store.captures import expire_captures
from waketrain.store.db import alembic_config, make_engine
from waketrain.store.errors import InvalidInput, WaketrainError
from waketrain.store.files import TEMP_PREFIX, _fsync_dir, atomic_write_bytes
from waketrain.store.layout import Layout
from waketrain.store.models import Base, Clip, Dataset, Deployment
from waketrain.store.recovery import reconcile_registry
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)

MANIFEST_NAME = "backup.json"
DATABASE_NAME = "waketrain.db"
MANIFEST_FORMAT = 1
# What a backup may hold, relative to the registry root; anything else in a manifest is refused.
BACKED_UP = ("datasets", "jobs", "negatives", "transfers", "artifacts.json", "known_hosts")
REPLACED_PREFIX = "pre-restore-"
TRASH_PREFIX = ".trash-"
# deploy.service.ACTIVE: the store sits below deploy in the layering, so it is named here too.
ACTIVE_DEPLOYMENT_STATUSES = ("pending", "transferring", "applying")
BUNDLE_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<model_id>.+)\.tar\.gz$")
CHUNK_BYTES = 1 << 20


class BackupError(WaketrainError):
    """A backup, restore or clean-up that cannot go ahead; the message says why and what to do."""


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


@dataclass
class RestoreReport:
    data_dir: Path
    manifest: BackupManifest
    schema_revision: str | None  # after migrations
    migrated: bool
    replaced_dir: Path | None  # where --force moved the previous contents
    missing_clip_files: list[str]


@dataclass
class GarbageReport:
    dry_run: bool
    removed: list[Path] = field(default_factory=list)  # files, and whole cached sets
    kept_in_use: list[Path] = field(default_factory=list)  # surplus bundles a deploy is using
    files: int = 0
    bytes_freed: int = 0
    expired_captures: int = 0  # unreviewed captures past capture_retention_days


# --- backup -------------------------------------------------------------------------------


def backup_registry(
    settings: Settings, destination: Path, include_transfers: bool = False
) -> BackupReport:
    """Copy the registry into `destination`, a new folder, while the service keeps running.

    The database is copied first; then the files its rows name. A file written after the
    snapshot may be absent, but no row in the copy lacks its file. The migrations are not
    run: a backup taken before an upgrade keeps the schema it had.
    """
    database = _sqlite_database(settings, "back up")
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
            _fsync_tree(staging)
            os.replace(staging, destination)  # also over an empty folder
            _fsync_dir(destination.parent)
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
    db_sha256, db_bytes = _file_digest(db_copy)
    snapshot = _read_snapshot(db_copy)

    files: dict[str, str] = {}
    missing: list[str] = []
    total = db_bytes

    def copy(source: Path, required: bool = False) -> None:
        nonlocal total
        relative = source.relative_to(layout.root).as_posix()
        try:
            files[relative], size = _copy_file(source, staging / relative)
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


def _sqlite_database(settings: Settings, action: str) -> Path:
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


# --- restore ------------------------------------------------------------------------------


def read_backup_manifest(backup_dir: Path) -> BackupManifest:
    """backup.json of `backup_dir`, checked: known format, safe paths, database checksum."""
    path = backup_dir / MANIFEST_NAME
    if not path.is_file():
        raise BackupError(f"{backup_dir} is not a waketrain backup: it has no {MANIFEST_NAME}.")
    try:
        manifest = BackupManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise BackupError(
            f"{path} is damaged or not waketrain's: {exc.errors()[0]['msg']}."
        ) from None
    if manifest.format != MANIFEST_FORMAT:
        raise BackupError(
            f"{path} has format {manifest.format}; this waketrain ({__version__}) reads format "
            f"{MANIFEST_FORMAT}. Restore it with waketrain {manifest.waketrain_version}."
        )
    for name in manifest.files:
        _registry_relative(name)
    database = backup_dir / manifest.database.file
    if manifest.database.file != DATABASE_NAME or not database.is_file():
        raise BackupError(f"{backup_dir} has no {DATABASE_NAME}: the backup is incomplete.")
    if _file_digest(database)[0] != manifest.database.sha256:
        raise BackupError(
            f"{database} does not match the sha256 in {MANIFEST_NAME}: the database copy is "
            "damaged. Nothing was restored; use another backup."
        )
    return manifest


def restore_registry(backup_dir: Path, settings: Settings, force: bool = False) -> RestoreReport:
    """Restore a backup into the settings' data dir; stop the service and workers first.

    The registry is rebuilt in a folder inside the data dir (same file system, so the final
    step is renames), migrated if the backup is older, and its projections rewritten. With
    `force`, what the data dir held before is moved to `pre-restore-<time>/`, not deleted.
    """
    database = _sqlite_database(settings, "restore")
    root = settings.data_dir.resolve()
    if database != root / DATABASE_NAME:
        raise BackupError(
            f"WAKETRAIN_DB_URL points at {database}; restore writes {root / DATABASE_NAME}. "
            "Unset WAKETRAIN_DB_URL, or restore into the data dir and move the database yourself."
        )
    backup_dir = backup_dir.resolve()
    manifest = read_backup_manifest(backup_dir)
    existing = _existing_entries(root)
    if existing and not force:
        names = ", ".join(p.name for p in existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise BackupError(
            f"{root} is not empty ({names}); restoring would replace it. Stop the service and "
            f"workers, then run again with --force: the current contents are moved to "
            f"{root / (REPLACED_PREFIX + '<time>')}/, not deleted."
        )
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    if manifest.schema_revision is not None and manifest.schema_revision not in known:
        raise BackupError(
            f"The backup's database schema ({manifest.schema_revision}) is newer than this "
            f"waketrain ({__version__}) knows; restore it with waketrain "
            f"{manifest.waketrain_version} or later."
        )

    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".restore-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            revision, missing = _build_restore(backup_dir, manifest, settings, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except (OSError, sqlite3.Error, SQLAlchemyError) as exc:
        raise BackupError(f"Restore from {backup_dir} failed; {root} is unchanged: {exc}") from exc

    replaced = None
    try:
        if existing:
            replaced = _move_aside(root, existing)
        for entry in sorted(staging.iterdir()):
            os.rename(entry, root / entry.name)
        staging.rmdir()
        _fsync_dir(root)
    except OSError as exc:
        raise BackupError(
            f"Restore stopped while moving the restored registry into place: {exc}. The "
            f"restored files are in {staging}"
            + (f", the previous ones in {replaced}" if replaced else "")
            + "; move them by hand."
        ) from exc
    log.info(
        "registry restored", data_dir=str(root), backup=str(backup_dir), replaced=str(replaced)
    )
    return RestoreReport(
        data_dir=root,
        manifest=manifest,
        schema_revision=revision,
        migrated=revision != manifest.schema_revision,
        replaced_dir=replaced,
        missing_clip_files=missing,
    )


def _build_restore(
    backup_dir: Path, manifest: BackupManifest, settings: Settings, staging: Path
) -> tuple[str | None, list[str]]:
    """A whole registry in `staging`: files checked against the manifest, migrated, projected."""
    expected = {DATABASE_NAME: manifest.database.sha256} | manifest.files
    for name, sha256 in sorted(expected.items()):
        source = backup_dir / name
        if not source.is_file():
            raise BackupError(f"{source} is missing: the backup is incomplete. Nothing restored.")
        if _copy_file(source, staging / name)[0] != sha256:
            raise BackupError(
                f"{source} does not match its sha256 in {MANIFEST_NAME}: the backup is damaged. "
                "Nothing was restored; use another backup."
            )
    layout = Layout(staging.resolve())
    layout.create()
    if manifest.current_model is not None:
        _link_current(layout, manifest.current_model)
    registry = Registry.open(settings.model_copy(update={"data_dir": staging, "db_url": None}))
    try:
        with registry.engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
        recovery = reconcile_registry(registry)  # rewrites labels.json and metrics.json
    finally:
        registry.close()
    _fsync_tree(staging)
    return revision, recovery.missing_clip_files


def _link_current(layout: Layout, current: CurrentModel) -> None:
    """models/current as the backup recorded it, swapped in atomically as bless does."""
    target = PurePosixPath(current.link_target)
    export = (layout.models / target).resolve()
    if target.is_absolute() or layout.jobs.resolve() not in export.parents:
        raise BackupError(
            f"{MANIFEST_NAME} records models/current -> {target}, outside jobs/: the backup "
            "is damaged. Nothing was restored."
        )
    if not export.is_dir():
        log.warning("current model's export is not in the backup", job_id=current.job_id)
        return
    temporary = layout.models / f".current-{uuid.uuid4().hex}"
    os.symlink(str(target), temporary)
    os.replace(temporary, layout.models / "current")


def _registry_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] not in BACKED_UP:
        raise BackupError(
            f"{MANIFEST_NAME} names {name!r}, which is not a registry file: the backup is damaged "
            "or not waketrain's."
        )
    return path


def _existing_entries(root: Path) -> list[Path]:
    """What a restore would replace; earlier restores' pre-restore folders stay where they are."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(REPLACED_PREFIX))


def _move_aside(root: Path, entries: list[Path]) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = root / f"{REPLACED_PREFIX}{stamp}"
    if aside.exists():
        aside = root / f"{REPLACED_PREFIX}{stamp}-{uuid.uuid4().hex[:4]}"
    aside.mkdir()
    for entry in entries:
        os.rename(entry, aside / entry.name)
    return aside


# --- clean-up -----------------------------------------------------------------------------


def collect_garbage(
    registry: Registry,
    scratch_max_age_days: float | None = None,
    keep_transfers: int | None = None,
    dry_run: bool = False,
) -> GarbageReport:
    """Delete stale caches in scratch/ and surplus deploy bundles in transfers/.

    Defaults come from the settings. A cached file is stale when neither written nor read
    for `scratch_max_age_days`; a cached set with a manifest.json goes only as a whole. Per
    model, the newest `keep_transfers` bundles stay, and any a running deployment uses.
    """
    settings = registry.settings
    max_age = scratch_max_age_days
    if max_age is None:
        max_age = settings.scratch_max_age_days
    keep = settings.keep_transfers if keep_transfers is None else keep_transfers
    if max_age < 0 or keep < 1:
        raise InvalidInput(
            f"Clean-up needs a scratch age of 0 days or more (got {max_age}) and keeps at least "
            f"1 bundle per model (got {keep})."
        )
    report = GarbageReport(dry_run=dry_run)
    _collect_scratch(registry.layout.scratch, time.time() - max_age * 86400, report)
    _collect_transfers(registry, keep, report)
    if not dry_run:
        report.expired_captures = expire_captures(registry)
    return report


def _collect_scratch(scratch: Path, cutoff: float, report: GarbageReport) -> None:
    if not scratch.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(scratch):
        folder = Path(dirpath)
        if folder.name.startswith(TRASH_PREFIX):
            # An earlier clean-up was interrupted after the rename: finish it, whatever its age.
            dirnames.clear()
            _remove_folder(folder, report, already_trash=True)
            continue
        if folder != scratch and (folder / "manifest.json").is_file():
            # A cached set is only valid whole: readers check its manifest and trust the rest.
            dirnames.clear()
            if _last_used(folder) < cutoff:
                _remove_folder(folder, report)
            continue
        for name in filenames:
            path = folder / name
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                # atime too: under relatime a read marks a file used at least once a day.
                if max(st.st_mtime, st.st_atime) < cutoff:
                    _remove_file(path, st.st_size, report)
    if report.dry_run:
        return
    # Empty folders below scratch/<cache>/ go once they too have been idle that long; a
    # folder emptied just now waits for the next run, so a writer that has just created it
    # does not lose it.
    for dirpath, _, _ in os.walk(scratch, topdown=False):
        folder = Path(dirpath)
        if folder.parent != scratch and folder != scratch:
            with contextlib.suppress(OSError):  # not empty, or gone
                if folder.stat().st_mtime < cutoff:
                    folder.rmdir()


def _last_used(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):
                st = (Path(dirpath) / name).lstat()
                newest = max(newest, st.st_mtime, st.st_atime)
    return newest


def _collect_transfers(registry: Registry, keep: int, report: GarbageReport) -> None:
    transfers = registry.layout.transfers
    if not transfers.is_dir():
        return
    with registry.sessions() as session:
        in_use = set(
            session.scalars(
                select(Deployment.bundle).where(
                    Deployment.status.in_(ACTIVE_DEPLOYMENT_STATUSES),
                    Deployment.bundle.is_not(None),
                )
            )
        )
    by_model: dict[str, list[Path]] = {}
    for bundle in transfers.glob("*.tar.gz"):
        match = BUNDLE_NAME.match(bundle.name)
        if match:  # a file someone put here by hand is theirs to remove
            by_model.setdefault(match["model_id"], []).append(bundle)
    for bundles in by_model.values():
        # Same model, so the names differ only in their UTC stamps: newest first.
        for bundle in sorted(bundles, key=lambda p: p.name, reverse=True)[keep:]:
            if bundle.name in in_use:
                report.kept_in_use.append(bundle)
                continue
            # The bundle first: a .sha256 left alone by a crash is removed next time, while
            # a bundle without one is never shipped (load_bundle refuses it).
            for path in (bundle, bundle.with_name(bundle.name + ".sha256")):
                with contextlib.suppress(FileNotFoundError):
                    _remove_file(path, path.stat().st_size, report)
    for checksum in transfers.glob("*.tar.gz.sha256"):
        if not checksum.with_name(checksum.name.removesuffix(".sha256")).exists():
            with contextlib.suppress(FileNotFoundError):
                _remove_file(checksum, checksum.stat().st_size, report)


def _remove_file(path: Path, size: int, report: GarbageReport) -> None:
    if not report.dry_run:
        path.unlink(missing_ok=True)
    report.removed.append(path)
    report.files += 1
    report.bytes_freed += size


def _remove_folder(folder: Path, report: GarbageReport, already_trash: bool = False) -> None:
    files, size = 0, 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):
                size += (Path(dirpath) / name).lstat().st_size
                files += 1
    if not report.dry_run:
        # Renamed first, so a reader sees the whole set or none of it, never half.
        trash = folder
        if not already_trash:
            trash = folder.parent / f"{TRASH_PREFIX}{uuid.uuid4().hex[:8]}"
            os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
    report.removed.append(folder)
    report.files += files
    report.bytes_freed += size


# --- files --------------------------------------------------------------------------------


def _copy_file(source: Path, target: Path) -> tuple[str, int]:
    """Copy and fsync one file; returns the sha256 and size of the bytes copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as reader, target.open("xb") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copymode(source, target)
    return digest.hexdigest(), size


def _file_digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_tree(root: Path) -> None:
    """Make the folder entries durable (the files were fsynced as they were written)."""
    for dirpath, _, _ in os.walk(root, topdown=False):
        _fsync_dir(Path(dirpath))
