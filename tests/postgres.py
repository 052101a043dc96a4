"""A real PostgreSQL server for the tests: its own cluster in a temp dir, on a loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg


def postgres_bin(program: str) -> str:
    """A server program: on PATH, or where Debian's `postgresql` package puts it."""
    debian = glob.glob(f"/usr/lib/postgresql/*/bin/{program}")
    found = shutil.which(program) or max(
        debian, key=lambda p: float(Path(p).parts[4]), default=None
    )
    if found is None:
        raise RuntimeError(f"{program} is missing: install PostgreSQL (Debian: postgresql)")
    return found


@dataclass
class PostgresServer:
    """`initdb` + `pg_ctl start` as an unprivileged user (the server refuses root), trust
    authentication on 127.0.0.1 only, no Unix socket outside its own folder."""

    port: int
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="waketrain-pg-")))
    user: str = "waketrain"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _run(self, args: Sequence[str]) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run([postgres_bin("initdb"), "-D", str(self.data), "-U", self.user,
                   "--auth=trust", "--encoding=UTF8", "--no-sync"])  # fmt: skip
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
                   "-c fsync=off -c max_connections=200")  # fmt: skip
        log = self.folder / "server.log"
        self._run([postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(log),
                   "-o", options, "-w", "-t", "60", "start"])  # fmt: skip
        return self

    def stop(self) -> None:
        try:
            self._run([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
