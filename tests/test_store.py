"""The registry's database schema and on-disk layout."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from waketrain.settings import Settings
from waketrain.store.models import Base
from waketrain.store.registry import Registry
from waketrain.store.startup import start_registry


def test_migrations_match_the_models(tmp_path: Path) -> None:
    registry = Registry.open(Settings(data_dir=tmp_path))
    with registry.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_first_start_creates_the_layout_wal_database_admin_and_default_dataset(
    tmp_path: Path,
) -> None:
    started = start_registry(Settings(data_dir=tmp_path / "data", admin_password=None))
    root = tmp_path / "data"
    for folder in ("datasets", "jobs", "scratch", "transfers", "models"):
        assert (root / folder).is_dir()
    assert started.generated_admin_password and len(started.generated_admin_password) >= 12
    with started.registry.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    metrics = json.loads((root / "datasets" / "tars-default" / "metrics.json").read_text())
    assert metrics["phrase"] == "hey tars" and metrics["ready_to_train"] is False
    labels = json.loads((root / "datasets" / "tars-default" / "labels.json").read_text())
    assert labels["clips"] == {}
    # A second start keeps the admin password and everything else.
    again = start_registry(Settings(data_dir=root))
    assert again.generated_admin_password is None
