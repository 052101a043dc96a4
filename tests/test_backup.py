"""Backups, restores and clean-up: a real registry, a real service under load, the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect, select

from tests.conftest import ADMIN_PASSWORD, Service, db_env, run_cli, shared, upload
from tests.conftest import create_dataset as create_dataset_over_http
from tests.postgres import PostgresServer, postgres_bin
from waketrain.audio.decode import ClipLimits, decode_upload, encode_clip
from waketrain.deploy.bundle import build_bundle
from waketrain.jobs import queue
from waketrain.jobs.worker import WorkerOptions, run_worker
from waketrain.settings import Settings
from waketrain.store.backup import BackupError, backup_registry
from waketrain.store.clips import (
    ClipMetadata,
    ClipUpdate,
    delete_clip,
    import_directory,
    import_files,
    update_clip,
)
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.db import alembic_config
from waketrain.store.garbage import collect_garbage
from waketrain.store.health import dataset_summary
from waketrain.store.layout import Layout
from waketrain.store.models import (
    AuditEntry,
    Base,
    Clip,
    Dataset,
    Deployment,
    Event,
    Job,
    User,
    utcnow,
)
from waketrain.store.pg_client import libpq_url
from waketrain.store.registry import Registry
from waketrain.store.restore import read_backup_manifest, restore_registry
from waketrain.store.startup import start_registry
from waketrain.training.negative_bank import NegativeBank

TINY = {"backend": "marblenet", "synth.use": "off", "batch_size": 32, "epochs": 1,
        "negatives_per_positive": 1.0, "model.channels": 16, "model.mel_bands": 32}  # fmt: skip
DAY_SECONDS = 86400.0
KNOWN_HOSTS = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0YWtldHJhaW4tdGVzdA\n"


@dataclass
class Live:
    registry: Registry
    job_id: str
    stale_scratch: Path
    fresh_scratch: Path

    @property
    def root(self) -> Path:
        return self.registry.layout.root


def make_idle(path: Path, days: float) -> None:
    """Mark a file (or folder) as neither written nor read for `days`."""
    then = time.time() - days * DAY_SECONDS
    os.utime(path, (then, then))


def write(path: Path, data: bytes = b"cached") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def table_rows(registry: Registry, model: type[Base]) -> list[dict[str, Any]]:
    table = model.__table__
    with registry.sessions() as session:
        query = select(table).order_by(*table.primary_key.columns)  # type: ignore[arg-type]
        return [dict(row._mapping) for row in session.execute(query)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def make_live(root: Path, db_url: str | None) -> Live:
    """Clips with a review edit and a discard, a trained and blessed job, a bundle, a host key."""
    settings = Settings(
        data_dir=root,
        db_url=db_url,
        admin_password=ADMIN_PASSWORD,
        min_positive_clips=10,
        min_negative_clips=10,
    )
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="computer", phrase="computer"), "test")
    added = []
    for label, folder in (("positive", "wake/computer"), ("negative", "wake/snowboy")):
        files = sorted(shared(folder).glob("*.flac"))[:14]
        added += import_files(registry, files, "computer", ClipMetadata(label=label), "t").imported
    import_directory(
        registry, shared("noise/room_tone"), "computer", ClipMetadata(label="noise"), "test"
    )
    update_clip(registry, added[0].id, ClipUpdate(notes="checked by ear"), "reviewer")
    delete_clip(registry, added[-1].id, "reviewer")
    # The worker cleans scratch/ before its first job: one stale cache entry, one in use.
    stale = write(registry.layout.scratch / "embeddings" / "ab" / "stale.npy")
    make_idle(stale, 30)
    fresh = write(registry.layout.scratch / "embeddings" / "cd" / "fresh.npy")
    job = queue.submit_job(registry, "computer", TINY, "test")
    run_worker(registry, WorkerOptions(gc_interval_hours=24, poll_seconds=0.1), max_jobs=1)
    finished = queue.get_job(registry, job.id)
    assert finished.status == "succeeded", finished.error
    build_bundle(registry, job.id)
    (root / "known_hosts").write_text(KNOWN_HOSTS)
    room = sorted(shared("speech/not_wake_words").glob("*.flac"))[:3]
    NegativeBank(registry.layout).add(room, "room-tars-pi", "room")
    return Live(registry, job.id, stale, fresh)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The registry on SQLite, in its data dir."""
    made = make_live(tmp_path_factory.mktemp("live"), None)
    yield made
    made.registry.close()


@pytest.fixture(scope="module")
def pg_live(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Live]:
    """The same registry on PostgreSQL."""
    made = make_live(tmp_path_factory.mktemp("pg-live"), postgres.create_database())
    yield made
    made.registry.close()


@pytest.fixture(scope="module")
def backup_dir(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return backup_registry(live.registry.settings, tmp_path_factory.mktemp("backups") / "b1").path


@pytest.fixture(scope="module")
def pg_backup_dir(pg_live: Live, tmp_path_factory: pytest.TempPathFactory) -> Path:
    destination = tmp_path_factory.mktemp("pg-backups") / "b1"
    return backup_registry(pg_live.registry.settings, destination).path


@pytest.fixture
def backed_up(db_url: str | None, request: pytest.FixtureRequest) -> tuple[Live, Path]:
    """The live registry and its backup on `db_url`'s engine."""
    names = ("live", "backup_dir") if db_url is None else ("pg_live", "pg_backup_dir")
    return request.getfixturevalue(names[0]), request.getfixturevalue(names[1])


def test_worker_cleans_stale_scratch_between_jobs(live: Live) -> None:
    assert not live.stale_scratch.exists()
    assert live.fresh_scratch.exists()


def test_backup_restores_clips_labels_jobs_audit_and_current_model(
    backed_up: tuple[Live, Path], db_url: str | None, tmp_path: Path
) -> None:
    """Restored into a new data dir, and for PostgreSQL into a new database."""
    live, backup_dir = backed_up
    manifest = read_backup_manifest(backup_dir)
    database = "waketrain.db" if db_url is None else "waketrain.pgdump"
    assert manifest.database.file == database
    assert manifest.database.engine == ("sqlite" if db_url is None else "postgresql")
    assert manifest.counts["clips"] == len(table_rows(live.registry, Clip)) > 28
    assert manifest.current_model is not None and manifest.current_model.job_id == live.job_id
    assert manifest.missing_files == []
    # scratch/ is a cache and transfers/ is opt-in; a finished backup leaves no staging folder.
    assert sorted(p.name for p in backup_dir.iterdir()) == [
        "artifacts.json", "backup.json", "datasets", "jobs", "known_hosts", "negatives", database,
    ]  # fmt: skip
    assert [p.name for p in backup_dir.parent.iterdir()] == ["b1"]

    target = tmp_path / "restored"
    # The same training minimums, so that metrics.json comes out the same.
    settings = live.registry.settings.model_copy(update={"data_dir": target, "db_url": db_url})
    report = restore_registry(backup_dir, settings)
    assert report.replaced_dir is None and report.missing_clip_files == []
    assert not report.migrated and report.schema_revision == manifest.schema_revision
    restored = Registry.open(settings)
    try:
        for model in (Dataset, Clip, Job, AuditEntry, Event, User, Deployment):
            assert table_rows(restored, model) == table_rows(live.registry, model), model
        assert queue.current_job_id(restored) == live.job_id
    finally:
        restored.close()
    assert any(row["action"] == "delete" for row in table_rows(live.registry, AuditEntry))
    for row in table_rows(live.registry, Clip):
        relative = Path("datasets", row["dataset_id"], "clips", f"{row['id']}.wav")
        assert (target / relative).read_bytes() == (live.root / relative).read_bytes()
    labels = [json.loads((r / "datasets/computer/labels.json").read_text())
              for r in (target, live.root)]  # fmt: skip
    assert labels[0]["clips"] == labels[1]["clips"]
    # metrics.json rewritten from the restored database (the live one was last written while
    # the job still ran: projections follow clip changes, not job changes).
    metrics = json.loads((target / "datasets/computer/metrics.json").read_text())
    metrics.pop("generated_at")
    assert metrics == dataset_summary(live.registry, "computer").model_dump(mode="json")
    link = target / "models" / "current"
    assert os.readlink(link) == os.readlink(live.root / "models" / "current")
    export = live.root / "jobs" / live.job_id / "export"
    assert (link / "wake_model.onnx").read_bytes() == (export / "wake_model.onnx").read_bytes()
    for name in ("artifacts.json", "known_hosts"):
        assert (target / name).read_text() == (live.root / name).read_text()
    bank = NegativeBank(Layout(target))
    assert bank.sets() == NegativeBank(live.registry.layout).sets()
    assert len(bank.sets()[0].sources) == 3
    for source in bank.sets()[0].sources:  # the board's room audio can be had nowhere else
        for path in source.features.values():
            relative = Path("negatives", "room-tars-pi", path)
            assert (target / relative).read_bytes() == (live.root / relative).read_bytes()
    assert [p for p in (target / "scratch").rglob("*") if p.is_file()] == []
    assert list((target / "transfers").iterdir()) == []
    assert not (target / "waketrain.pgdump").exists()  # PostgreSQL's is in the database


def test_backup_with_transfers_keeps_each_bundle_with_its_checksum(
    live: Live, tmp_path: Path
) -> None:
    report = backup_registry(live.registry.settings, tmp_path / "b", include_transfers=True)
    names = sorted(p.name for p in (report.path / "transfers").iterdir())
    assert names == sorted(p.name for p in live.registry.layout.transfers.iterdir())
    assert len(names) == 2 and names[1] == names[0] + ".sha256"
    restore_registry(report.path, Settings(data_dir=tmp_path / "restored"))
    bundle = tmp_path / "restored" / "transfers" / names[0]
    assert (tmp_path / "restored" / "transfers" / names[1]).read_text().split()[0] == sha256(bundle)


def canonical_recordings(count: int) -> list[bytes]:
    """Recordings already in the clip encoding, so a stored file's sha256 is the upload's."""
    limits = ClipLimits(10_000_000, 0.3, 30.0)
    paths = sorted(shared("wake/computer").glob("*.flac"))[:count]
    return [encode_clip(decode_upload(p.read_bytes(), limits).samples) for p in paths]


def test_backup_taken_during_uploads_restores_a_consistent_registry(
    tmp_path: Path, db_url: str | None, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "served"
    recordings = canonical_recordings(400)
    uploaded: list[str] = []
    failures: list[str] = []
    stop = threading.Event()
    service = Service(data, args=("--no-worker",), env=db_env(db_url)).start()

    def keep_uploading() -> None:
        with service.client() as client:
            for i, content in enumerate(recordings):
                if stop.is_set():
                    return
                response = upload(client, "served", content, f"take-{i}.wav")
                if response.status_code == 201:
                    uploaded.append(response.json()["id"])
                else:
                    failures.append(response.text)

    uploader = threading.Thread(target=keep_uploading)
    try:
        with service.client() as client:
            create_dataset_over_http(client, "served")
        uploader.start()
        wait_until(lambda: len(uploaded) >= 10)
        before = len(uploaded)
        backed_up = run_cli(data, "backup", "--to", str(tmp_path / "backup"), env=db_env(db_url))
        after = len(uploaded)
        wait_until(lambda: len(uploaded) >= after + 5)  # and the service kept taking uploads
    finally:
        stop.set()
        if uploader.is_alive():
            uploader.join()
        service.stop()
    assert failures == []
    assert backed_up.returncode == 0, backed_up.stderr
    assert before < after, "no upload landed while the backup ran"

    # PostgreSQL: into another database.
    target_url = request.getfixturevalue("postgres").create_database() if db_url else None
    restored = Settings(data_dir=tmp_path / "restored", db_url=target_url)
    restore_registry(tmp_path / "backup", restored)
    registry = Registry.open(restored)
    try:
        rows = table_rows(registry, Clip)
        audit = [r for r in table_rows(registry, AuditEntry) if r["action"] == "upload"]
    finally:
        registry.close()
    ids = {row["id"] for row in rows}
    # Everything acknowledged before the backup started, nothing that was never acknowledged,
    # and not what came after.
    assert set(uploaded[:before]) <= ids <= set(uploaded)
    assert before <= len(ids) <= after + 1 < len(uploaded)
    clips_dir = tmp_path / "restored" / "datasets" / "served" / "clips"
    assert {p.stem for p in clips_dir.iterdir()} == ids
    for row in rows:
        assert sha256(clips_dir / f"{row['id']}.wav") == row["sha256"]
    assert {r["object_id"] for r in audit} == ids
    labels = json.loads((clips_dir.parent / "labels.json").read_text())
    assert set(labels["clips"]) == ids


def test_restore_is_refused_while_a_service_holds_the_registry(
    backup_dir: Path, tmp_path: Path
) -> None:
    """A server writing into the registry and a restore replacing it cannot run at once: the
    restore names the server and touches nothing; once the server is gone (even by kill -9)
    it goes ahead."""
    root = tmp_path / "served"
    restore_registry(backup_dir, Settings(data_dir=root))
    service = Service(root).start()
    assert service.process is not None
    try:
        refused = run_cli(root, "restore", str(backup_dir), "--force")
        assert refused.returncode == 1, refused.stderr
        assert f"waketrain serve (pid {service.process.pid}" in refused.stderr
        assert not list(root.glob("pre-restore-*"))
        with service.client() as api:
            clip = next(iter(sorted(shared("wake/computer").glob("*.flac"))))
            stored = upload(api, "computer", clip.read_bytes(), "after-refusal.flac")
            assert stored.status_code == 201, stored.text
    finally:
        service.kill()  # no shutdown: the kernel drops its hold, its note stays behind
    forced = run_cli(root, "restore", str(backup_dir), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not list((root / ".locks" / "holders").glob("*.json"))


def test_restore_refuses_a_non_empty_target_without_force(backup_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="--force"):
        restore_registry(backup_dir, Settings(data_dir=target))
    refused = run_cli(target, "restore", str(backup_dir))
    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]

    forced = run_cli(target, "restore", str(backup_dir), "--force")
    assert forced.returncode == 0, forced.stderr
    (aside,) = target.glob("pre-restore-*")
    assert (aside / "notes.txt").read_text() == "mine"
    assert f"the previous contents are in {aside}" in forced.stdout
    assert (target / "models" / "current" / "wake_model.onnx").is_file()
    assert not (target / "notes.txt").exists()


def test_damaged_backups_are_refused_and_the_target_is_left_alone(
    backup_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "data"
    damaged = tmp_path / "damaged"
    shutil.copytree(backup_dir, damaged)
    database = damaged / "waketrain.db"
    data = bytearray(database.read_bytes())
    data[len(data) // 2] ^= 0xFF
    database.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="does not match the sha256 in backup"):
        restore_registry(damaged, Settings(data_dir=target))
    assert not target.exists()

    shutil.rmtree(damaged)
    shutil.copytree(backup_dir, damaged)
    clip = next((damaged / "datasets" / "computer" / "clips").glob("*.wav"))
    clip.write_bytes(clip.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(BackupError, match=re.escape(f"{clip.name} does not match its sha256")):
        restore_registry(damaged, Settings(data_dir=target))
    assert list(target.iterdir()) == []

    missing = run_cli(target, "restore", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "is not a waketrain backup" in missing.stderr


def test_an_older_backup_is_migrated_on_restore(backup_dir: Path, tmp_path: Path) -> None:
    older = tmp_path / "older"
    shutil.copytree(backup_dir, older)
    database = older / "waketrain.db"
    engine = create_engine(f"sqlite:///{database}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")  # as a backup made before deployments existed
    engine.dispose()
    manifest = json.loads((older / "backup.json").read_text())
    head = manifest["schema_revision"]
    manifest["schema_revision"] = "0003"
    manifest["database"].update(sha256=sha256(database), bytes=database.stat().st_size)
    del manifest["database"]["engine"]  # as written before backups knew PostgreSQL
    (older / "backup.json").write_text(json.dumps(manifest))

    report = restore_registry(older, Settings(data_dir=tmp_path / "data"))
    assert report.migrated and report.schema_revision == head
    registry = Registry.open(Settings(data_dir=tmp_path / "data"))
    try:
        assert table_rows(registry, Deployment) == []
        assert len(table_rows(registry, Clip)) == manifest["counts"]["clips"]
    finally:
        registry.close()


def database_with_dataset(postgres: PostgresServer, data_dir: Path, dataset_id: str) -> str:
    """A new PostgreSQL database holding a registry with one dataset; its URL."""
    url = postgres.create_database()
    registry = Registry.open(Settings(data_dir=data_dir, db_url=url))
    try:
        create_dataset(registry, DatasetCreate(id=dataset_id, phrase="kitchen"), "test")
    finally:
        registry.close()
    return url


def dataset_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(select(Dataset.id).order_by(Dataset.id)))
    finally:
        engine.dispose()


def test_restore_over_a_postgresql_database_that_is_not_empty_needs_force_and_dumps_it_first(
    postgres: PostgresServer, pg_backup_dir: Path, tmp_path: Path
) -> None:
    target_url = database_with_dataset(postgres, tmp_path / "elsewhere", "kitchen")
    data = tmp_path / "data"  # an empty data dir: the database alone is in the way
    with pytest.raises(BackupError, match=r"is not empty .*--force"):
        restore_registry(pg_backup_dir, Settings(data_dir=data, db_url=target_url))
    refused = run_cli(data, "restore", str(pg_backup_dir), env=db_env(target_url))
    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert dataset_ids(target_url) == ["kitchen"]
    assert not list(data.glob("pre-restore-*"))

    data.mkdir(exist_ok=True)
    (data / "notes.txt").write_text("mine")
    forced = run_cli(data, "restore", str(pg_backup_dir), "--force", env=db_env(target_url))
    assert forced.returncode == 0, forced.stderr
    assert dataset_ids(target_url) == ["computer", "tars-default"]  # the backup's
    (aside,) = data.glob("pre-restore-*")
    assert f"the previous contents are in {aside}" in forced.stdout
    assert sorted(p.name for p in aside.iterdir()) == ["notes.txt", "waketrain.pgdump"]
    assert not (data / "waketrain.pgdump").exists()
    # The dump holds the replaced database: restored elsewhere, there is the kitchen again.
    elsewhere = postgres.create_database()
    pg_restore = [postgres_bin("pg_restore"), "--no-owner", "--exit-on-error"]
    libpq_url = elsewhere.replace("+psycopg", "")
    subprocess.run([*pg_restore, "-d", libpq_url, str(aside / "waketrain.pgdump")], check=True)
    assert dataset_ids(elsewhere) == ["kitchen"]


def test_an_older_postgresql_backup_replaces_an_upgraded_database_and_is_migrated(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """pg_restore --clean drops only the backup's tables: the newer ones must go first."""
    source_url = database_with_dataset(postgres, tmp_path / "old", "old")
    engine = create_engine(source_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")  # as a registry before deployments existed
    engine.dispose()
    older = backup_registry(Settings(data_dir=tmp_path / "old", db_url=source_url), tmp_path / "b")
    assert older.manifest.schema_revision == "0003"
    assert "deployments" not in older.manifest.counts

    target_url = database_with_dataset(postgres, tmp_path / "elsewhere", "kitchen")
    settings = Settings(data_dir=tmp_path / "data", db_url=target_url)
    report = restore_registry(older.path, settings, force=True)
    assert report.migrated and report.schema_revision != "0003"
    assert report.replaced_dir is not None
    assert (report.replaced_dir / "waketrain.pgdump").is_file()
    registry = Registry.open(settings)
    try:
        assert [row["id"] for row in table_rows(registry, Dataset)] == ["old"]
        assert table_rows(registry, Deployment) == []
    finally:
        registry.close()


def test_a_damaged_postgresql_dump_is_refused_and_the_database_left_alone(
    postgres: PostgresServer, pg_backup_dir: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(pg_backup_dir, damaged)
    dump = damaged / "waketrain.pgdump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    target_url = database_with_dataset(postgres, tmp_path / "elsewhere", "kitchen")
    target = tmp_path / "data"
    settings = Settings(data_dir=target, db_url=target_url)
    with pytest.raises(BackupError, match=r"waketrain\.pgdump does not match the sha256"):
        restore_registry(damaged, settings, force=True)
    assert dataset_ids(target_url) == ["kitchen"]
    assert not target.exists()

    # Cut short, with its sha256 to match: pg_restore fails midway, in one transaction.
    whole = (pg_backup_dir / "waketrain.pgdump").read_bytes()
    dump.write_bytes(whole[: len(whole) // 2])
    manifest = json.loads((damaged / "backup.json").read_text())
    manifest["database"].update(sha256=sha256(dump), bytes=dump.stat().st_size)
    (damaged / "backup.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="pg_restore failed") as refused:
        restore_registry(damaged, settings, force=True)
    assert "The database is as it was" in str(refused.value)
    assert dataset_ids(target_url) == ["kitchen"]
    # Left behind: the dump of the database as it was, in the folder the message names.
    (aside,) = target.iterdir()
    assert f"a dump of what it held is in {aside}" in str(refused.value)
    assert [p.name for p in aside.iterdir()] == ["waketrain.pgdump"]


def test_a_backup_is_restored_only_into_the_engine_it_was_taken_from(
    postgres: PostgresServer, backup_dir: Path, pg_backup_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "data"
    target_url = postgres.create_database()
    refused = run_cli(target, "restore", str(backup_dir), env=db_env(target_url))
    assert refused.returncode == 1, refused.stderr
    assert "holds a SQLite database (waketrain.db)" in refused.stderr
    assert "this registry's database is PostgreSQL" in refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(BackupError, match=r"holds a PostgreSQL database .* is SQLite"):
        restore_registry(pg_backup_dir, Settings(data_dir=target))
    assert not target.exists()
    engine = create_engine(target_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_pg_dump_and_pg_restore_get_the_password_in_their_environment() -> None:
    url = "postgresql+psycopg://wt:s%40cret@db.example:5433/waketrain?sslmode=require"
    assert libpq_url(url) == ("postgresql://wt@db.example:5433/waketrain?sslmode=require", "s@cret")
    assert libpq_url("postgresql+psycopg://wt@db.example/waketrain")[1] is None


def test_refused_and_failed_backups_leave_nothing(
    live: Live, backup_dir: Path, tmp_path: Path
) -> None:
    unreachable = Settings(data_dir=live.root, db_url="postgresql+psycopg://wt@127.0.0.1:1/wt")
    with pytest.raises(BackupError, match="nothing was kept"):
        backup_registry(unreachable, tmp_path / "b-pg")
    with pytest.raises(BackupError, match="holds a SQLite database"):
        restore_registry(backup_dir, unreachable)
    with pytest.raises(BackupError, match="inside the registry"):
        backup_registry(live.registry.settings, live.root / "backups" / "b")
    busy = tmp_path / "busy"
    write(busy / "x")
    with pytest.raises(BackupError, match="not empty"):
        backup_registry(live.registry.settings, busy)

    # A registry whose clip file has turned into a folder: the copy fails midway.
    broken = Settings(data_dir=tmp_path / "broken")
    restore_registry(backup_dir, broken)
    clip = next((tmp_path / "broken" / "datasets" / "computer" / "clips").glob("*.wav"))
    clip.unlink()
    clip.mkdir()
    with pytest.raises(BackupError, match="nothing was kept"):
        backup_registry(broken, tmp_path / "b-broken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "busy"]


def bundle_pair(transfers: Path, name: str, data: bytes) -> list[Path]:
    bundle = write(transfers / name, data)
    digest = hashlib.sha256(data).hexdigest()
    return [bundle, write(transfers / f"{name}.sha256", f"{digest}  {name}\n".encode())]


def test_gc_removes_stale_scratch_and_surplus_bundles_and_keeps_the_newest(
    live: Live, backup_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    restore_registry(backup_dir, Settings(data_dir=root))
    registry = Registry.open(Settings(data_dir=root))
    scratch, transfers = registry.layout.scratch, registry.layout.transfers
    # Cached synthetic sets are valid only whole; embeddings are one file each.
    old_set = write(scratch / "synth" / "old" / "manifest.json").parent
    write(old_set / "a.wav")
    used_set = write(scratch / "synth" / "used" / "manifest.json").parent
    write(used_set / "a.wav")  # read or written just now
    old_embedding = write(scratch / "embeddings" / "ab" / "old.npy")
    new_embedding = write(scratch / "embeddings" / "ab" / "new.npy")
    for path in [old_set / "manifest.json", old_set / "a.wav", old_set, used_set / "manifest.json",
                 old_embedding]:  # fmt: skip
        make_idle(path, 30)
    half_removed = write(scratch / ".trash-1a2b3c4d" / "a.wav").parent  # an interrupted gc
    idle_folder = scratch / "embeddings" / "ef"
    idle_folder.mkdir()
    make_idle(idle_folder, 30)

    # Model A: the real bundle under four stamps, the oldest one being deployed; model B: two.
    real = next(live.registry.layout.transfers.glob("*.tar.gz"))
    model_a = real.name.split("-", 1)[1]
    a = {stamp: bundle_pair(transfers, f"{stamp}-{model_a}", real.read_bytes())
         for stamp in ("20990101T000000Z", "20240101T000000Z", "20240201T000000Z",
                       "20240301T000000Z")}  # fmt: skip
    b = [bundle_pair(transfers, f"{stamp}-other-1a2b3c4d.tar.gz", stamp.encode())
         for stamp in ("20240101T000000Z", "20240102T000000Z")]  # fmt: skip
    orphan = write(transfers / f"20230101T000000Z-{model_a}.sha256")
    by_hand = write(transfers / "notes.tar.gz")
    deploying = a["20240101T000000Z"][0]
    with registry.sessions.begin() as session:
        session.add(Deployment(id="d1", job_id=live.job_id, dataset_id="computer",
                               target="pi@board:22", status="transferring",
                               bundle=deploying.name, created_by="test"))  # fmt: skip

    expected = [old_set, old_embedding, half_removed, *a["20240201T000000Z"], orphan]
    files = [old_set / "manifest.json", old_set / "a.wav", old_embedding, half_removed / "a.wav",
             *a["20240201T000000Z"], orphan]  # fmt: skip
    try:
        dry = collect_garbage(registry, scratch_max_age_days=7, keep_transfers=2, dry_run=True)
        assert sorted(dry.removed) == sorted(expected)
        assert all(path.exists() for path in files)
        report = collect_garbage(registry, scratch_max_age_days=7, keep_transfers=2)
        assert sorted(report.removed) == sorted(expected)
        assert report.files == len(files) == dry.files
        assert report.bytes_freed == dry.bytes_freed > len(real.read_bytes())
        assert report.kept_in_use == [deploying]
        assert not any(path.exists() for path in [*expected, idle_folder])
        assert not list(scratch.glob("**/.trash-*"))
        kept = [used_set / "a.wav", used_set / "manifest.json", new_embedding, by_hand, deploying]
        kept += [*a["20990101T000000Z"], *a["20240301T000000Z"], *b[0], *b[1]]
        assert all(path.exists() for path in kept)

        # Once that deployment has finished, its bundle is surplus like any other.
        with registry.sessions.begin() as session:
            deployment = session.get(Deployment, "d1")
            assert deployment is not None
            deployment.status, deployment.finished_at = "failed", utcnow()
        again = collect_garbage(registry, scratch_max_age_days=7, keep_transfers=2)
        assert sorted(again.removed) == sorted(a["20240101T000000Z"])
    finally:
        registry.close()


def test_gc_through_the_cli_with_the_default_settings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Registry.open(Settings(data_dir=data)).close()
    stale = write(data / "scratch" / "embeddings" / "ab" / "stale.npy")
    make_idle(stale, 8)  # the default keeps 7 days
    recent = write(data / "scratch" / "embeddings" / "ab" / "recent.npy")
    make_idle(recent, 6)
    stamps = [f"2024010{day}T000000Z" for day in range(1, 6)]
    pairs = [bundle_pair(data / "transfers", f"{s}-m-1a2b3c4d.tar.gz", s.encode()) for s in stamps]

    dry = run_cli(data, "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove scratch/embeddings/ab/stale.npy" in dry.stdout
    assert f"would remove transfers/{pairs[0][0].name}" in dry.stdout
    assert "would remove 5 files" in dry.stdout
    assert stale.exists() and all(p.exists() for pair in pairs for p in pair)

    done = run_cli(data, "gc")
    assert done.returncode == 0, done.stderr
    assert "removed 5 files" in done.stdout
    assert not stale.exists() and recent.exists()
    # The newest three per model (WAKETRAIN_KEEP_TRANSFERS), each with its .sha256.
    assert sorted(p.name for p in (data / "transfers").iterdir()) == sorted(
        p.name for pair in pairs[2:] for p in pair
    )


def test_clean_up_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.gc_interval_hours, defaults.scratch_max_age_days) == (24.0, 7.0)
    assert defaults.keep_transfers == 3
    monkeypatch.setenv("WAKETRAIN_GC_INTERVAL_HOURS", "0")
    monkeypatch.setenv("WAKETRAIN_SCRATCH_MAX_AGE_DAYS", "2.5")
    monkeypatch.setenv("WAKETRAIN_KEEP_TRANSFERS", "5")
    settings = Settings()
    assert (settings.gc_interval_hours, settings.scratch_max_age_days) == (0.0, 2.5)
    assert settings.keep_transfers == 5
    monkeypatch.setenv("WAKETRAIN_KEEP_TRANSFERS", "0")
    with pytest.raises(ValidationError, match="keep_transfers"):
        Settings()
