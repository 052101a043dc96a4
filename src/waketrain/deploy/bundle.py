"""The deploy bundle: an export folder, the remote script and a checksum, in `transfers/`."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from waketrain.jobs.queue import current_job_id, get_job
from waketrain.runtime.model_card import ModelCard, read_card
from waketrain.store.errors import InvalidInput
from waketrain.store.files import atomic_write_bytes
from waketrain.store.registry import Registry

SCRIPT_NAME = "deploy_hotword.sh"
# Installed wheels carry the script inside the package; a checkout keeps it in deploy/remote/.
SCRIPT_PATHS = (
    Path(__file__).resolve().parent / SCRIPT_NAME,
    Path(__file__).resolve().parents[3] / "deploy" / "remote" / SCRIPT_NAME,
)


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    model_id: str
    backend: str

    @property
    def checksum_path(self) -> Path:
        return self.path.with_name(self.path.name + ".sha256")


def remote_script() -> bytes:
    for path in SCRIPT_PATHS:
        if path.is_file():
            return path.read_bytes()
    raise FileNotFoundError(f"{SCRIPT_NAME} is missing from the installation")


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def bundle_for_download(registry: Registry, job_id: str) -> Bundle:
    """The job's newest bundle in transfers/, built now if there is none (the USB fallback)."""
    _, card = _succeeded_export(registry, job_id)
    model_id = card.model_id
    for path in sorted(registry.layout.transfers.glob(f"*-{model_id}.tar.gz"), reverse=True):
        checksum = path.with_name(path.name + ".sha256")
        if checksum.is_file():
            return Bundle(path, checksum.read_text().split()[0], model_id, card.backend)
    return build_bundle(registry, job_id)


def export_bundle(registry: Registry, job_id: str | None, folder: Path) -> Bundle:
    """The USB fallback from a shell: a job's bundle (default: the current model's) and its
    .sha256 written into `folder`, each whole and synced, so the stick can be pulled at once."""
    job_id = job_id or current_job_id(registry)
    if job_id is None:
        raise InvalidInput("There is no current model to export; name a job.")
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder.")
    bundle = bundle_for_download(registry, job_id)
    copy = Bundle(folder / bundle.path.name, bundle.sha256, bundle.model_id, bundle.backend)
    atomic_write_bytes(copy.path, bundle.path.read_bytes())
    atomic_write_bytes(copy.checksum_path, bundle.checksum_path.read_bytes())
    return copy


def build_bundle(registry: Registry, job_id: str) -> Bundle:
    """`transfers/<UTC stamp>-<model_id>.tar.gz` (+ `.sha256`) of a succeeded job's export."""
    export, card = _succeeded_export(registry, job_id)
    model_id, backend = card.model_id, card.backend
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(export.iterdir()):
            if path.is_file():
                archive.add(path, f"model/{path.name}")
        env = "".join(f"{key}={value}\n" for key, value in card.board_env().items())
        _add_bytes(archive, "bundle.env", env.encode())
        _add_bytes(archive, SCRIPT_NAME, remote_script(), mode=0o755)
    data = buffer.getvalue()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = registry.layout.transfers / f"{stamp}-{model_id}.tar.gz"
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    # sha256sum's format, so `sha256sum -c` works on the board too.
    atomic_write_bytes(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n".encode())
    return Bundle(path, digest, model_id, backend)


def load_bundle(path: Path) -> tuple[Bundle, str]:
    """An existing bundle (and the job it came from), checked against its .sha256."""
    checksum = path.with_name(path.name + ".sha256")
    if not (path.name.endswith(".tar.gz") and path.is_file() and checksum.is_file()):
        raise InvalidInput(f"{path.name} is not a bundle with its .sha256 beside it.")
    digest = checksum.read_text().split()[0]
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise InvalidInput(f"{path.name} does not match its .sha256: the file is damaged.")
    with tarfile.open(path, "r:gz") as archive:
        member = archive.extractfile("bundle.env")
        assert member is not None
        env = dict(
            line.split("=", 1) for line in member.read().decode().splitlines() if "=" in line
        )
    return Bundle(path, digest, env["MODEL_ID"], env["BACKEND"]), env["JOB_ID"]


def _succeeded_export(registry: Registry, job_id: str) -> tuple[Path, ModelCard]:
    job = get_job(registry, job_id)
    if job.status != "succeeded" or not job.export_dir:
        raise InvalidInput(f"Job {job_id} is {job.status}; only a succeeded job can be deployed.")
    export = registry.layout.root / job.export_dir
    return export, read_card(export)
