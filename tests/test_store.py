"""The registry's database schema and on-disk layout."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.conftest import shared
from waketrain.settings import Settings
from waketrain.store.clips import ClipMetadata, add_clip, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.errors import Conflict
from waketrain.store.events import events_after, record_event
from waketrain.store.models import Base, Clip, Event
from waketrain.store.registry import Registry
from waketrain.store.startup import start_registry


def test_migrations_match_the_models(tmp_path: Path, db_url: str | None) -> None:
    registry = Registry.open(Settings(data_dir=tmp_path, db_url=db_url))
    with registry.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    registry.close()


def test_first_start_creates_the_layout_database_admin_and_default_dataset(
    tmp_path: Path, db_url: str | None
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password=None, db_url=db_url)
    started = start_registry(settings)
    root = tmp_path / "data"
    for folder in ("datasets", "jobs", "scratch", "transfers", "models"):
        assert (root / folder).is_dir()
    assert started.generated_admin_password and len(started.generated_admin_password) >= 12
    if db_url is None:  # SQLite in WAL mode: readers never wait for the writer
        with started.registry.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    else:
        assert started.registry.engine.dialect.name == "postgresql"
    metrics = json.loads((root / "datasets" / "tars-default" / "metrics.json").read_text())
    assert metrics["phrase"] == "hey tars" and metrics["ready_to_train"] is False
    labels = json.loads((root / "datasets" / "tars-default" / "labels.json").read_text())
    assert labels["clips"] == {}
    # A second start keeps the admin password and everything else.
    started.registry.close()
    again = start_registry(settings.model_copy(update={"admin_password": None}))
    assert again.generated_admin_password is None
    again.registry.close()


def test_importing_files_reports_each_refusal_and_the_projections_list_every_clip_stored(
    tmp_path: Path, db_url: str | None
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password="x", db_url=db_url)
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="computer", phrase="computer"), "t")
    good = sorted(shared("wake/computer").glob("*.flac"))[:3]
    text_file = tmp_path / "notes.wav"
    text_file.write_text("not audio")
    files = [good[0], tmp_path / "gone.flac", text_file, *good[1:]]
    labels_path = tmp_path / "data" / "datasets" / "computer" / "labels.json"
    before = labels_path.stat().st_mtime_ns

    report = import_files(registry, files, "computer", ClipMetadata(label="positive"), "t")

    assert [c.original_filename for c in report.imported] == [p.name for p in good]
    refused = dict(report.rejected)
    assert refused.keys() == {"gone.flac", "notes.wav"}
    assert refused["gone.flac"] == "could not be read: No such file or directory"
    assert refused["notes.wav"].startswith("The file is not audio that can be decoded")
    labels = json.loads(labels_path.read_text())["clips"]
    assert set(labels) == {c.id for c in report.imported}
    assert labels_path.stat().st_mtime_ns > before
    registry.close()


def test_concurrent_adds_share_projection_rewrites_and_each_returns_with_its_clip_listed(
    tmp_path: Path, db_url: str | None
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password="x", db_url=db_url)
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="busy", phrase="computer"), "t")
    labels_path = tmp_path / "data" / "datasets" / "busy" / "labels.json"
    files = sorted(shared("wake/view_glass").glob("*.flac"))[:16]
    barrier = Barrier(len(files))

    def add_and_read_back(path: Path) -> tuple[str, set[str]]:
        barrier.wait()
        clip = add_clip(registry, "busy", path.read_bytes(), ClipMetadata(label="positive"),
                        path.name, "t")  # fmt: skip
        # No rewrite is skipped that this caller needed: the file already lists its clip.
        return clip.id, set(json.loads(labels_path.read_text())["clips"])

    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        results = list(pool.map(add_and_read_back, files))
    for clip_id, listed in results:
        assert clip_id in listed
    assert set(json.loads(labels_path.read_text())["clips"]) == {i for i, _ in results}
    registry.close()


def test_a_clip_and_what_is_committed_with_it_land_together_or_not_at_all(
    tmp_path: Path, db_url: str | None
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password="x", db_url=db_url)
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="together", phrase="computer"), "t")
    audio = sorted(shared("wake/computer").glob("*.flac"))[0].read_bytes()

    def refuse(session: Session, clip_id: str) -> None:
        raise Conflict("someone else got there first")

    with pytest.raises(Conflict):
        add_clip(registry, "together", audio, ClipMetadata(label="positive"), "a.flac", "t",
                 also=refuse)  # fmt: skip
    clips_dir = tmp_path / "data" / "datasets" / "together" / "clips"
    assert list(clips_dir.iterdir()) == []  # no file without its row
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Clip)) == 0
        assert session.scalar(select(func.count()).where(Event.type == "clip.added")) == 0
    registry.close()


def test_the_event_log_gives_the_newest_events_of_some_types_newest_first(
    tmp_path: Path, db_url: str | None
) -> None:
    registry = Registry.open(Settings(data_dir=tmp_path, db_url=db_url))
    with registry.sessions.begin() as session:
        for n, type_ in enumerate(["job.progress", "job.succeeded", "job.failed", "job.succeeded"]):
            record_event(session, type_, {"n": n})
    outcomes = ["job.succeeded", "job.failed"]
    newest = events_after(registry, 0, 2, outcomes, newest_first=True)
    assert [(e.type, e.payload["n"]) for e in newest] == [("job.succeeded", 3), ("job.failed", 2)]
    oldest = events_after(registry, 0, 2, outcomes)
    assert [e.payload["n"] for e in oldest] == [1, 2]
    assert [e.payload["n"] for e in events_after(registry, newest[0].id - 1)] == [3]
    registry.close()


def test_a_feed_reading_after_its_last_id_misses_no_event_of_concurrent_writers(
    tmp_path: Path, db_url: str | None
) -> None:
    """Writers whose transactions commit out of the order they started in: a reader that
    only ever asks for events after the last id it saw still gets every one of them."""
    registry = Registry.open(Settings(data_dir=tmp_path, db_url=db_url))
    writers, per_writer = 6, 15
    done = threading.Event()

    def write(writer: int) -> None:
        rng = random.Random(writer)
        for n in range(per_writer):
            with registry.sessions.begin() as session:
                record_event(session, "test.event", {"writer": writer, "n": n})
                session.flush()  # the id is taken here ...
                time.sleep(rng.uniform(0, 0.02))  # ... and the commit comes later

    seen: list[int] = []

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            for event in events_after(registry, last):
                seen.append(event.id)
                last = event.id
            if finished:
                return
            time.sleep(0.001)

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(write, range(writers)))
    done.set()
    reader.join()
    assert len(seen) == writers * per_writer == len(set(seen))
    registry.close()
