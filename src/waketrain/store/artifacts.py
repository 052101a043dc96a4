"""artifacts.json: lineage of every exported model (job, dataset hash, config, metrics)."""

from __future__ import annotations

import json
from typing import Any

from waketrain.store.files import atomic_write_json, file_lock
from waketrain.store.registry import Registry


def record_artifact(registry: Registry, job_id: str, entry: dict[str, Any]) -> None:
    """Add or replace one job's entry; read-modify-write under the registry's lock."""
    path = registry.layout.root / "artifacts.json"
    with file_lock(registry.layout.locks / "artifacts.lock"):
        manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
        manifest["models"][job_id] = entry
        atomic_write_json(path, manifest)
