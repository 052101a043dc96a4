"""PostgreSQL's client programs for backups: pg_dump and pg_restore, run on the registry's URL.

The password travels in PGPASSWORD, never on the command line, where `ps` would show it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import URL, make_url

from waketrain.store.errors import BackupError

# The lines of a failed program's stderr that an error message quotes.
STDERR_LINES = 5


def pg_program(name: str) -> str:
    """`pg_dump` or `pg_restore`: on PATH, or where Debian puts them (newest version first)."""
    debian = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    # By version number: 9.6 is older than 15.
    found = shutil.which(name) or max(debian, key=lambda p: float(Path(p).parts[4]), default=None)
    if found is None:
        raise BackupError(
            f"{name} is missing: backing up and restoring a PostgreSQL registry needs "
            "PostgreSQL's client programs (Debian: apt install postgresql-client, the same "
            "major version as the server or newer)."
        )
    return found


def dump_database(url: str, target: Path, snapshot_id: str | None = None) -> None:
    """pg_dump of the database at `url` into `target` (custom format); with `snapshot_id`,
    as that exported snapshot sees it (its transaction must stay open meanwhile)."""
    args = ["--format=custom", "--no-owner", "--no-privileges", "--file", str(target)]
    if snapshot_id is not None:
        args.append(f"--snapshot={snapshot_id}")
    _run("pg_dump", args, url)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def restore_database(url: str, dump: Path) -> None:
    """pg_restore of `dump` over the database at `url`, in one transaction: the objects the
    dump holds are dropped and recreated, and if anything fails nothing changes."""
    args = ["--clean", "--if-exists", "--no-owner", "--no-privileges",
            "--single-transaction", "--exit-on-error", str(dump)]  # fmt: skip
    _run("pg_restore", args, url)


def libpq_url(url: str) -> tuple[str, str | None]:
    """The SQLAlchemy URL as libpq reads it (no `+psycopg`), without its password; and that."""
    parsed = make_url(url)
    # Built anew: URL.set(password=None) leaves the password as it was.
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return plain.render_as_string(hide_password=False), parsed.password


def _run(name: str, args: list[str], url: str) -> None:
    plain_url, password = libpq_url(url)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    # --no-password: a missing password is an error, not a prompt that waits for nobody.
    command = [pg_program(name), *args, "--no-password", "--dbname", plain_url]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()[-STDERR_LINES:]
        raise BackupError(f"{name} failed (exit {done.returncode}): " + " / ".join(lines))
