"""Clean-up of the registry (DESIGN: Security and operations).

Stale caches in scratch/, surplus deploy bundles in transfers/, and unreviewed captures past
their retention days; each can be listed first with a dry run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from waketrain.store.captures import expire_captures
from waketrain.store.errors import InvalidInput
from waketrain.store.models import ACTIVE_DEPLOYMENT_STATUSES, Deployment
from waketrain.store.registry import Registry

TRASH_PREFIX = ".trash-"
BUNDLE_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<model_id>.+)\.tar\.gz$")


@dataclass
class GarbageReport:
    dry_run: bool
    removed: list[Path] = field(default_factory=list)  # files, and whole cached sets
    kept_in_use: list[Path] = field(default_factory=list)  # surplus bundles a deploy is using
    files: int = 0
    bytes_freed: int = 0
    expired_captures: int = 0  # unreviewed captures past capture_retention_days


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
