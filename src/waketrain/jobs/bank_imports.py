"""Adds to the negative bank for the API: one at a time, in the background, with progress.

Hours of audio take minutes to embed, longer than a request may wait, so the API hands each
add to this thread and answers at once; progress and the outcome are events on the status
stream (`negatives.progress`, `negatives.added`, `negatives.failed`), which the UI follows.
An add that a restart interrupts is resumed by adding the same folder again.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from waketrain.store.errors import InvalidInput, WaketrainError
from waketrain.store.events import record_audit, record_event
from waketrain.store.registry import Registry
from waketrain.training.negative_bank import (
    AddProgress,
    Kind,
    NegativeBank,
    validate_set_id,
)

log = structlog.get_logger(__name__)
PROGRESS_EVERY_SECONDS = 1.0


@dataclass
class BankImport:
    id: str
    set_id: str
    kind: Kind
    paths: list[Path]
    actor: str
    uploaded: Path | None = None  # a folder of uploaded files, removed once added
    state: str = "queued"  # queued | running | done | failed
    file: str | None = None
    done_seconds: float = 0.0
    total_seconds: float = 0.0
    message: str | None = None
    created: float = field(default_factory=time.time)

    def view(self) -> dict[str, object]:
        return {
            "id": self.id,
            "set_id": self.set_id,
            "kind": self.kind,
            "state": self.state,
            "file": Path(self.file).name if self.file else None,
            "done_seconds": round(self.done_seconds, 1),
            "total_seconds": round(self.total_seconds, 1),
            "message": self.message,
        }


def allowed_server_paths(raw: list[str], roots: tuple[Path, ...]) -> list[Path]:
    """The server paths a web user asked for, each resolved and under one of `roots`."""
    allowed = [root.resolve() for root in roots]
    paths, refused = [], []
    for text in raw:
        try:
            path = Path(text).resolve()
        except (ValueError, OSError):  # a NUL byte, text the file system cannot encode
            refused.append(repr(text))
            continue
        if any(path.is_relative_to(root) for root in allowed):
            paths.append(path)
        else:
            refused.append(str(path))
    if refused or not paths:
        names = ", ".join(map(str, allowed)) or "none: the setting is empty"
        raise InvalidInput(
            f"{', '.join(refused) or 'no path'}: not under WAKETRAIN_NEGATIVES_IMPORT_DIRS "
            f"({names}). Set it to the folders the service may read, or upload the files."
        )
    return paths


class BankImports:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._bank = NegativeBank(registry.layout)
        self._queue: queue.Queue[BankImport | None] = queue.Queue()
        self._imports: dict[str, BankImport] = {}
        self._thread = threading.Thread(target=self._run, name="negative-bank", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)

    def submit(
        self, paths: list[Path], set_id: str, kind: Kind, actor: str, uploaded: Path | None = None
    ) -> BankImport:
        validate_set_id(set_id)
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise InvalidInput(
                f"Not found on the server: {', '.join(missing)}. Give folders or files that the "
                "service can read (e.g. a mounted drive), or upload the files instead."
            )
        job = BankImport(uuid.uuid4().hex, set_id, kind, paths, actor, uploaded)
        self._imports[job.id] = job
        self._queue.put(job)
        self._event("negatives.progress", job)
        return job

    def imports(self) -> list[BankImport]:
        return sorted(self._imports.values(), key=lambda j: j.created)

    def _event(self, type_: str, job: BankImport) -> None:
        with self._registry.sessions.begin() as session:
            record_event(session, type_, job.view())
            if type_ == "negatives.added":
                record_audit(session, job.actor, "add", "negative_set", job.set_id)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            job.state = "running"
            last = 0.0

            def progress(update: AddProgress, job: BankImport = job) -> None:
                nonlocal last
                job.file, job.done_seconds = update.file, update.done_seconds
                job.total_seconds = update.total_seconds
                if time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
                    last = time.monotonic()
                    self._event("negatives.progress", job)

            try:
                report = self._bank.add(
                    job.paths, job.set_id, job.kind, progress, names_relative_to=job.uploaded
                )
            except (WaketrainError, OSError) as exc:
                job.state, job.message = "failed", str(exc)
                self._event("negatives.failed", job)
            except Exception as exc:  # a bug must not kill the thread for every later add
                log.exception("negative bank add crashed", set_id=job.set_id)
                job.state, job.message = "failed", f"{type(exc).__name__}: {exc}"
                self._event("negatives.failed", job)
            else:
                job.state = "done"
                job.message = (
                    f"added {len(report.added)} files ({report.hours_added:.2f} h); "
                    f"{len(report.already_in_bank)} already in the bank; "
                    f"{len(report.refused)} refused"
                    + "".join(f"\n{line}" for line in report.refused[:20])
                )
                self._event("negatives.added", job)
            finally:
                if job.uploaded is not None:
                    shutil.rmtree(job.uploaded, ignore_errors=True)
