"""Restoring a backup folder written by `backup_registry` into the data dir (DESIGN: Storage).

The registry is rebuilt beside the old one, checked against the manifest, migrated and
re-projected, and only then moved into place; with --force the old contents are moved aside.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import structlog
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from waketrain import __version__
from waketrain.settings import Settings
from waketrain.store.backup import (
    DATABASE_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    BackupError,
    BackupManifest,
    CurrentModel,
    sqlite_database_path,
)
from waketrain.store.db import alembic_config
from waketrain.store.files import copy_file, file_digest, fsync_dir, fsync_tree
from waketrain.store.holds import exclusive
from waketrain.store.layout import Layout
from waketrain.store.recovery import reconcile_registry
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)

REPLACED_PREFIX = "pre-restore-"
# What a backup may hold, relative to the registry root; anything else in a manifest is refused.
BACKED_UP = ("datasets", "jobs", "negatives", "transfers", "artifacts.json", "known_hosts")


@dataclass
class RestoreReport:
    data_dir: Path
    manifest: BackupManifest
    schema_revision: str | None  # after migrations
    migrated: bool
    replaced_dir: Path | None  # where --force moved the previous contents
    missing_clip_files: list[str]


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
    if file_digest(database)[0] != manifest.database.sha256:
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
    database = sqlite_database_path(settings, "restore")
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
    with exclusive(Layout(root).locks):  # no server or worker writes into it meanwhile
        return _restore(backup_dir, manifest, settings, root)


def _restore(
    backup_dir: Path, manifest: BackupManifest, settings: Settings, root: Path
) -> RestoreReport:
    existing = _existing_entries(root)
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
        shutil.rmtree(Layout(staging).locks, ignore_errors=True)  # the staging registry's own
        for entry in sorted(staging.iterdir()):
            os.rename(entry, root / entry.name)
        staging.rmdir()
        fsync_dir(root)
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
        if copy_file(source, staging / name)[0] != sha256:
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
    fsync_tree(staging)
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
    """What a restore would replace; earlier restores' pre-restore folders stay where they are,
    and so do the locks (the restore itself holds one)."""
    if not root.is_dir():
        return []
    locks = Layout(root).locks
    replaced = (p for p in root.iterdir() if not p.name.startswith(REPLACED_PREFIX))
    return sorted(p for p in replaced if p != locks)


def _move_aside(root: Path, entries: list[Path]) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = root / f"{REPLACED_PREFIX}{stamp}"
    if aside.exists():
        aside = root / f"{REPLACED_PREFIX}{stamp}-{uuid.uuid4().hex[:4]}"
    aside.mkdir()
    for entry in entries:
        os.rename(entry, aside / entry.name)
    return aside
