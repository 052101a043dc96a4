"""Who has the registry open: every process holds a shared lock on it while it does, and a
restore must take that lock exclusively, so it cannot replace a registry that a server or a
worker is still writing into.

Beside the lock, each holder leaves a note (command, pid, host, since) so that a refused
restore can say whom to stop. The kernel drops a dead process's lock however it died; its
note stays behind and is ignored (and removed by the next restore).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from waketrain.store.errors import Conflict
from waketrain.store.files import atomic_write_json

LOCK_NAME = "registry.lock"
NOTES = "holders"


class RegistryInUse(Conflict):
    """A restore and the processes using the registry cannot run at once."""


class Hold:
    """A process's shared hold on the registry, until `release` (or until the process ends,
    or the registry that took it is garbage: nothing to warn about, the lock just goes)."""

    def __init__(self, fd: int, note: Path) -> None:
        self.note = note
        self._close = weakref.finalize(self, _drop, fd, note)

    def release(self) -> None:
        self._close()


def _drop(fd: int, note: Path) -> None:
    note.unlink(missing_ok=True)
    os.close(fd)  # closing drops the lock


def hold_shared(locks: Path) -> Hold:
    """Take a shared hold; refused while a restore holds the registry exclusively."""
    fd = _open_lock(locks)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RegistryInUse(
            f"A restore is replacing the registry in {locks.parent}; start again once it has "
            "finished."
        ) from None
    # One note per hold: a process may open the registry more than once.
    note = locks / NOTES / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    atomic_write_json(
        note,
        {
            "command": " ".join([_program(), *sys.argv[1:2]]),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return Hold(fd, note)


@contextmanager
def exclusive(locks: Path) -> Iterator[None]:
    """Hold the registry alone (for a restore); refused, naming the holders, while anyone
    else has it open. A failed restore into a new folder leaves no lock behind either."""
    created = not locks.exists()
    fd = _open_lock(locks)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RegistryInUse(
                f"The registry in {locks.parent} is in use by {_describe_holders(locks)}. "
                "Stop the service and its workers (and any other waketrain command using this "
                "data dir), then restore."
            ) from None
        for stale in (locks / NOTES).glob("*.json"):  # nobody holds it: every note is old
            stale.unlink(missing_ok=True)
        yield
    except BaseException:
        if created:
            shutil.rmtree(locks, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def _program() -> str:
    name = Path(sys.argv[0]).name
    return "waketrain" if name == "__main__.py" else name  # python -m waketrain


def _open_lock(locks: Path) -> int:
    locks.mkdir(parents=True, exist_ok=True)
    return os.open(locks / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _describe_holders(locks: Path) -> str:
    here = socket.gethostname()
    holders = []
    for path in sorted((locks / NOTES).glob("*.json")):
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if note.get("host") == here and not _alive(int(note.get("pid", 0))):
            continue  # died without releasing: its lock is gone with it
        holders.append(
            f"{note.get('command')} (pid {note.get('pid')} on {note.get('host')}, "
            f"since {note.get('since')})"
        )
    return ", ".join(holders) or "another process"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
