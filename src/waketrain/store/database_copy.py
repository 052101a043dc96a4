"""The registry's database in a backup: one consistent copy, what it holds, and putting it back.

SQLite is copied with its online backup into `waketrain.db`; PostgreSQL is dumped with
pg_dump into `waketrain.pgdump`, from a snapshot exported by a repeatable-read transaction.
Either way the facts the backup needs (schema revision, row counts, clips) are read from
the same snapshot as the copy, so that the files copied next are the ones its rows name.
For a restore over a PostgreSQL database: which tables it holds, and dropping those of a
newer schema than the backup's, which pg_restore would leave in the way.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, func, inspect, make_url, select, text
from sqlalchemy.exc import SQLAlchemyError

from waketrain.store.db import make_engine
from waketrain.store.errors import BackupError
from waketrain.store.models import Base, Clip, Dataset
from waketrain.store.pg_client import dump_database

DatabaseEngine = Literal["sqlite", "postgresql"]
DATABASE_FILES: dict[DatabaseEngine, str] = {
    "sqlite": "waketrain.db",
    "postgresql": "waketrain.pgdump",
}
ENGINE_NAMES: dict[DatabaseEngine, str] = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass(frozen=True)
class Snapshot:
    """What the database held at the instant it was copied."""

    revision: str | None
    counts: dict[str, int]  # rows per table
    dataset_ids: list[str]
    clips: list[tuple[str, str]]  # (dataset id, clip id)


def database_engine(url: str) -> DatabaseEngine:
    """Which database `url` names; backups handle SQLite and PostgreSQL, nothing else."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise BackupError(
        f"`waketrain backup` and `restore` handle SQLite and PostgreSQL; this registry's "
        f"database is {backend}. Back it up with that database's own tools, and copy the "
        "registry's files (datasets/, jobs/, negatives/, artifacts.json, known_hosts, "
        "models/current) with your file backup tool."
    )


def sqlite_file(url: str) -> Path:
    """The file of an SQLite URL (an in-memory database has none to back up)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not an SQLite file: there is nothing to back up.")
    return Path(database).resolve()


def copy_database(url: str, folder: Path) -> tuple[Path, Snapshot]:
    """A consistent copy of the live database in `folder`, and what it holds."""
    engine = database_engine(url)
    target = folder / DATABASE_FILES[engine]
    if engine == "postgresql":
        return target, _dump_postgresql(url, target)
    _copy_sqlite(url, target)
    copy = create_engine(f"sqlite:///{target}")
    try:
        with copy.connect() as connection:
            return target, read_snapshot(connection)
    finally:
        copy.dispose()


def read_snapshot(connection: Connection) -> Snapshot:
    """The backup's facts, read with the models through `connection` (in its transaction)."""
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
    return Snapshot(revision, counts, dataset_ids, clips)


def database_tables(url: str) -> list[str]:
    """The tables in the database's default schema: what restoring over it would replace."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())
    except SQLAlchemyError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise BackupError(
            f"Cannot read the database {shown}: {exc}. Check WAKETRAIN_DB_URL and that "
            "PostgreSQL is running; nothing was restored."
        ) from exc
    finally:
        engine.dispose()


def drop_tables_newer_than(url: str, backup_tables: Collection[str]) -> list[str]:
    """Drop the registry's tables that a backup holding `backup_tables` lacks; their names.

    pg_restore --clean drops only what its dump holds. Restoring an older backup over an
    upgraded registry, the newer tables' foreign keys would stop that drop, and then the
    migrations would find the tables in their way.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            present = set(inspect(connection).get_table_names())
            newer = sorted(present & set(Base.metadata.tables) - set(backup_tables))
            quote = connection.dialect.identifier_preparer.quote
            for name in newer:
                connection.execute(text(f"DROP TABLE {quote(name)} CASCADE"))
    finally:
        engine.dispose()
    return newer


def _dump_postgresql(url: str, target: Path) -> Snapshot:
    """pg_dump of the snapshot a read-only repeatable-read transaction sees, and that
    transaction's facts: the documented way to dump exactly what a session reads."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            # Execution options, not a BEGIN statement: the driver opens the transaction.
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with connection.begin():
                snapshot_id = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                snapshot = read_snapshot(connection)
                # The exported snapshot lives as long as this transaction.
                dump_database(url, target, snapshot_id=str(snapshot_id))
    finally:
        engine.dispose()
    return snapshot


def _copy_sqlite(url: str, target: Path) -> None:
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
