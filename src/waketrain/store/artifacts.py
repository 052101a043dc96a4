"""artifacts.json: lineage of every exported model (job, dataset hash, config, metrics)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from waketrain.store.files import atomic_write_json, file_lock
from waketrain.store.registry import Registry


def _update(registry: Registry, change: Callable[[dict[str, Any]], None]) -> None:
    """Read-modify-write of the manifest under the registry's lock."""
    path = registry.layout.root / "artifacts.json"
    with file_lock(registry.layout.locks / "artifacts.lock"):
        manifest = json.loads(path.read_text()) if path.exists() else {}
        manifest.setdefault("models", {})
        manifest.setdefault("current", None)
        change(manifest)
        atomic_write_json(path, manifest)


def record_artifact(registry: Registry, job_id: str, entry: dict[str, Any]) -> None:
    """Add or replace one job's entry."""
    _update(registry, lambda manifest: manifest["models"].__setitem__(job_id, entry))


def record_current(registry: Registry, job_id: str) -> None:
    """Note which job's model models/current points at."""
    _update(registry, lambda manifest: manifest.__setitem__("current", job_id))
