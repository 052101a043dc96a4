"""A job's files for download: single artifacts by name and the export folder as a zip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from waketrain.jobs.queue import get_job
from waketrain.runtime.causal_stream import STEP_FILE, WHOLE_FILE
from waketrain.runtime.model_card import CARD_FILE
from waketrain.store.errors import NotFound
from waketrain.store.registry import Registry

DOWNLOADABLE = {
    "wake_model.onnx": "application/octet-stream",
    "wake_model.trt": "application/octet-stream",
    "encoder.onnx": "application/octet-stream",
    STEP_FILE: "application/octet-stream",
    WHOLE_FILE: "application/octet-stream",
    CARD_FILE: "application/json",
    "checkpoint.pt": "application/octet-stream",
    "confusion_matrix.png": "image/png",
    "det_curve.png": "image/png",
    "config.json": "application/json",
    "logs.txt": "text/plain",
}


def artifact_path(registry: Registry, job_id: str, name: str) -> tuple[Path, str]:
    """(path, media type) of one artifact; only the known names, so no path tricks."""
    job = get_job(registry, job_id)
    if name not in DOWNLOADABLE:
        raise NotFound(f"No artifact {name!r}. Available names: {', '.join(sorted(DOWNLOADABLE))}.")
    job_dir = registry.layout.jobs / job.id
    path = job_dir / name if name in ("config.json", "logs.txt") else job_dir / "export" / name
    if not path.is_file():
        raise NotFound(f"Job {job_id} has no {name} (status {job.status}).")
    return path, DOWNLOADABLE[name]


def export_zip(registry: Registry, job_id: str) -> bytes:
    """The export folder plus config and logs, zipped (the offline bundle for a USB stick)."""
    job = get_job(registry, job_id)
    job_dir = registry.layout.jobs / job.id
    if job.status != "succeeded":
        raise NotFound(f"Job {job_id} is {job.status}; only a succeeded job has an export.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((job_dir / "export").iterdir()):
            archive.write(path, f"export/{path.name}")
        for name in ("config.json", "logs.txt"):
            archive.write(job_dir / name, name)
    return buffer.getvalue()


def read_log_from(registry: Registry, job_id: str, offset: int) -> tuple[bytes, bool]:
    """Log bytes from `offset` on, and whether the job has ended (no more will come)."""
    job = get_job(registry, job_id)
    path = registry.layout.jobs / job.id / "logs.txt"
    data = b""
    if path.exists():
        with path.open("rb") as log:
            log.seek(offset)
            data = log.read()
    return data, job.status in ("succeeded", "failed", "cancelled")
