"""Atomic file writes, durable copies and cross-process locks for the registry."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"
CHUNK_BYTES = 1 << 20


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o644)  # mkstemp makes 0600; the registry is for people too
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, value: object) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def fsync_dir(folder: Path) -> None:
    """Make a rename or new entry in `folder` durable: that needs the directory on disk too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Make the folder entries durable (the files were fsynced as they were written)."""
    for dirpath, _, _ in os.walk(root, topdown=False):
        fsync_dir(Path(dirpath))


def copy_file(source: Path, target: Path) -> tuple[str, int]:
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


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock shared by threads and processes (the API, the CLI, workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_temp_files(folder: Path, older_than_seconds: float = 0.0) -> list[Path]:
    """Delete leftovers of writes that a crash interrupted; returns what was removed.

    `older_than_seconds` spares younger ones, where another process (a worker) may be
    writing right now.
    """
    removed = []
    if folder.is_dir():
        cutoff = time.time() - older_than_seconds
        for leftover in folder.glob(f"{TEMP_PREFIX}*"):
            try:
                if older_than_seconds and leftover.stat().st_mtime > cutoff:
                    continue
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            except FileNotFoundError:
                continue  # its writer finished meanwhile
            removed.append(leftover)
    return removed
