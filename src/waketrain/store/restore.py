"""Restoring a backup folder written by `backup_registry` into the data dir (DESIGN: Storage).

The registry is rebuilt beside the old one, checked against the manifest, migrated and
re-projected, and only then moved into place; with --force the old contents are moved aside.
An SQLite backup's database is a file among the others. A PostgreSQL backup's dump replaces
the database with pg_restore (in one transaction) before the migrations run; with --force
the database it replaces is first dumped into the folder the old files are moved to.
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
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from waketrain import __version__
from waketrain.settings import Settings
from waketrain.store.backup import MANIFEST_FORMAT, MANIFEST_NAME, BackupManifest, CurrentModel
from waketrain.store.database_copy import (
    DATABASE_FILES,
    ENGINE_NAMES,
    database_engine,
    database_tables,
    drop_tables_newer_than,
    sqlite_file,
)
from waketrain.store.db import alembic_config
from waketrain.store.errors import BackupError
from waketrain.store.files import copy_file, file_digest, fsync_dir, fsync_tree
from waketrain.store.holds import exclusive
from waketrain.store.layout import Layout
from waketrain.store.pg_client import dump_database, pg_program, restore_database
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
    expected = DATABASE_FILES[manifest.database.engine]
    database = backup_dir / manifest.database.file
    if manifest.database.file != expected or not database.is_file():
        raise BackupError(f"{backup_dir} has no {expected}: the backup is incomplete.")
    if file_digest(database)[0] != manifest.database.sha256:
        raise BackupError(
            f"{database} does not match the sha256 in {MANIFEST_NAME}: the database copy is "
            "damaged. Nothing was restored; use another backup."
        )
    return manifest


def restore_registry(backup_dir: Path, settings: Settings, force: bool = False) -> RestoreReport:
    """Restore a backup into the settings' data dir and database; stop the service and
    workers first.

    The registry is rebuilt in a folder inside the data dir (same file system, so the final
    step is renames), migrated if the backup is older, and its projections rewritten. With
    `force`, what the data dir held before is moved to `pre-restore-<time>/`, not deleted,
    and so is a dump of the PostgreSQL database the backup replaces.
    """
    engine = database_engine(settings.database_url)
    root = settings.data_dir.resolve()
    if engine == "sqlite":
        database = sqlite_file(settings.database_url)
        if database != root / DATABASE_FILES["sqlite"]:
            raise BackupError(
                f"WAKETRAIN_DB_URL points at {database}; restore writes "
                f"{root / DATABASE_FILES['sqlite']}. Unset WAKETRAIN_DB_URL, or restore into "
                "the data dir and move the database yourself."
            )
    else:
        pg_program("pg_restore")  # missing: said now, before anything changes
        pg_program("pg_dump")
    backup_dir = backup_dir.resolve()
    manifest = read_backup_manifest(backup_dir)
    if manifest.database.engine != engine:
        raise BackupError(_engine_mismatch(backup_dir, manifest, settings))
    existing = _existing_entries(root)
    tables = database_tables(settings.database_url) if engine == "postgresql" else []
    if (existing or tables) and not force:
        raise BackupError(_not_empty(root, existing, settings.database_url, tables))
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

    replaced = None  # the pre-restore folder, once there is one
    database_replaced = False
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".restore-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            _unpack_backup(backup_dir, manifest, staging)
            if manifest.database.engine == "postgresql":
                dump = staging / manifest.database.file
                replaced = _replace_postgresql(dump, manifest, settings.database_url, root)
                database_replaced = True
            revision, missing = _open_restored(staging, settings)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except (OSError, sqlite3.Error, SQLAlchemyError) as exc:
        if not database_replaced:
            raise BackupError(
                f"Restore from {backup_dir} failed; {root} is unchanged: {exc}"
            ) from exc
        before = f"what it held is dumped in {replaced}" if replaced else "it was empty"
        raise BackupError(
            f"Restore from {backup_dir} stopped after replacing the database ({before}); the "
            f"files in {root} are unchanged: {exc}. Fix that, then restore again with --force."
        ) from exc

    try:
        if existing:
            replaced = _move_aside(root, existing, replaced)
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


def _unpack_backup(backup_dir: Path, manifest: BackupManifest, staging: Path) -> None:
    """The backup's files in `staging`, each checked against the manifest, and models/current."""
    expected = {manifest.database.file: manifest.database.sha256} | manifest.files
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


def _replace_postgresql(dump: Path, manifest: BackupManifest, url: str, root: Path) -> Path | None:
    """The database replaced by the checked `dump`; returns the new pre-restore folder that
    holds a dump of what the database held before, or None if it held nothing."""
    replaced = None
    if database_tables(url):
        replaced = _new_replaced_dir(root)
        try:
            dump_database(url, replaced / DATABASE_FILES["postgresql"])
        except BaseException as exc:
            shutil.rmtree(replaced, ignore_errors=True)
            if not isinstance(exc, BackupError):
                raise
            raise BackupError(
                f"Could not dump the database before replacing it ({exc}); nothing was restored."
            ) from exc
    dropped: list[str] = []
    try:
        # The backup's counts name every registry table its dump holds.
        dropped = drop_tables_newer_than(url, backup_tables=manifest.counts)
        restore_database(url, dump)  # one transaction: on failure nothing more changes
    except (BackupError, SQLAlchemyError) as exc:
        state = "as it was" if not dropped else f"as it was but for {', '.join(dropped)}"
        kept = f"; a dump of what it held is in {replaced}" if replaced else ""
        raise BackupError(
            f"Restoring the database from {dump.name} failed ({exc}). The database is {state}"
            f"{kept}; the files in {root} are unchanged."
        ) from exc
    dump.unlink()  # now in the database; the data dir keeps no copy
    return replaced


def _open_restored(staging: Path, settings: Settings) -> tuple[str | None, list[str]]:
    """Open the restored registry: migrated, projections rewritten; its revision and the clips
    whose files are missing."""
    update: dict[str, object] = {"data_dir": staging}
    if database_engine(settings.database_url) == "sqlite":
        update["db_url"] = None  # the staging folder's own waketrain.db
    registry = Registry.open(settings.model_copy(update=update))
    try:
        with registry.engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
        recovery = reconcile_registry(registry)  # rewrites labels.json and metrics.json
    finally:
        registry.close()
    fsync_tree(staging)
    return revision, recovery.missing_clip_files


def _engine_mismatch(backup_dir: Path, manifest: BackupManifest, settings: Settings) -> str:
    backup_engine = manifest.database.engine
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    if backup_engine == "sqlite":
        how = "unset WAKETRAIN_DB_URL (the registry is then waketrain.db in the data dir)"
    else:
        how = "set WAKETRAIN_DB_URL to a PostgreSQL database (postgresql+psycopg://user@host/db)"
    other = ENGINE_NAMES[database_engine(settings.database_url)]
    return (
        f"{backup_dir} holds a {ENGINE_NAMES[backup_engine]} database "
        f"({manifest.database.file}), and this registry's database is {other} ({url}): a "
        f"backup goes back into the engine it came from. To restore it, {how}; or restore a "
        f"backup of a {other} registry. Nothing was restored."
    )


def _not_empty(root: Path, existing: list[Path], url: str, tables: list[str]) -> str:
    def some(names: list[str]) -> str:
        return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")

    found = []
    if existing:
        found.append(f"{root} is not empty ({some([p.name for p in existing])})")
    if tables:
        shown = make_url(url).render_as_string(hide_password=True)
        found.append(f"the database {shown} is not empty ({some(tables)})")
    what = " and ".join(found)
    them = "them" if len(found) > 1 else "it"
    kept = "the current contents are moved"
    if tables:
        kept += " (the database as a pg_dump file)"
    return (
        f"{what[:1].upper()}{what[1:]}; restoring would replace {them}. "
        f"Stop the service and workers, then run again with --force: {kept} to "
        f"{root / (REPLACED_PREFIX + '<time>')}/, not deleted."
    )


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


def _move_aside(root: Path, entries: list[Path], replaced: Path | None) -> Path:
    """Move `entries` into the pre-restore folder (`replaced`, or a new one)."""
    aside = replaced or _new_replaced_dir(root)
    for entry in entries:
        os.rename(entry, aside / entry.name)
    return aside


def _new_replaced_dir(root: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = root / f"{REPLACED_PREFIX}{stamp}"
    if aside.exists():
        aside = root / f"{REPLACED_PREFIX}{stamp}-{uuid.uuid4().hex[:4]}"
    aside.mkdir()
    return aside
