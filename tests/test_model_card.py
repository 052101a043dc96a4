"""The model card: one typed, versioned reader of an export's metadata.json, used by all."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from waketrain.runtime.loader import load_export
from waketrain.runtime.model_card import (
    CARD_FILE,
    SCHEMA_VERSION,
    ModelCard,
    ModelCardError,
    card_schema,
    read_card,
)
from waketrain.training.pipeline import TrainResult

SRC = Path(__file__).resolve().parents[1] / "src" / "waketrain"
CARD_MODULE = SRC / "runtime" / "model_card.py"


def test_a_jobs_card_reads_back_as_it_was_written(oww_job: TrainResult) -> None:
    raw = json.loads((oww_job.export_dir / CARD_FILE).read_text())
    card = read_card(oww_job.export_dir)
    assert raw["schema_version"] == SCHEMA_VERSION
    assert card == oww_job.card
    assert card.model_dump(mode="json") == raw  # nothing lost, nothing added on the way
    model = load_export(oww_job.export_dir)
    assert model.card.backend == "oww_head" and model.threshold == card.threshold
    assert model.params.hop_seconds == card.hop_seconds


def test_fields_of_a_later_version_are_kept(oww_job: TrainResult, tmp_path: Path) -> None:
    raw = json.loads((oww_job.export_dir / CARD_FILE).read_text())
    raw["wake_words"] = ["computer", "hey computer"]
    raw["metrics"]["false_accepts_by_source"] = {"tv": 1}
    (tmp_path / CARD_FILE).write_text(json.dumps(raw))
    card = read_card(tmp_path)
    assert card.model_id == raw["model_id"]
    dumped = card.model_dump(mode="json")
    assert dumped["wake_words"] == ["computer", "hey computer"]
    assert dumped["metrics"]["false_accepts_by_source"] == {"tv": 1}


def test_another_schema_version_is_refused_clearly(oww_job: TrainResult, tmp_path: Path) -> None:
    raw = json.loads((oww_job.export_dir / CARD_FILE).read_text())
    (tmp_path / CARD_FILE).write_text(json.dumps({**raw, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ModelCardError, match=f"schema {SCHEMA_VERSION + 1}.*reads schema 1"):
        read_card(tmp_path)


def test_a_broken_or_missing_card_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match="not a model export"):
        read_card(tmp_path)
    (tmp_path / CARD_FILE).write_text('{"model_id": "m", "phrase": "computer"}')
    with pytest.raises(ModelCardError, match="threshold: Field required"):
        read_card(tmp_path)
    (tmp_path / CARD_FILE).write_text("{not json")
    with pytest.raises(ModelCardError, match="cannot be read"):
        read_card(tmp_path)


def test_the_published_schema_names_what_a_detector_needs() -> None:
    schema = card_schema()
    needed = {"model_id", "phrase", "sample_rate", "window_seconds", "hop_seconds", "threshold",
              "smoothing_windows", "refractory_seconds", "metrics"}  # fmt: skip
    assert needed <= set(schema["required"])
    assert schema["properties"]["backend"]["enum"] == ["marblenet", "oww_head", "causal"]
    assert ModelCard.model_json_schema() == schema


def _reads_metadata_outside_the_card(path: Path) -> list[str]:
    """`metadata[...]`, `metadata.get(...)`, or a path to metadata.json built for reading."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        target = None
        if isinstance(node, ast.Subscript):
            target = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
        ):
            target = node.func.value
        if isinstance(target, ast.Name | ast.Attribute):
            name = target.id if isinstance(target, ast.Name) else target.attr
            if name == "metadata":
                found.append(f"{path.name}:{node.lineno}: metadata read by key")
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value == CARD_FILE
        ):
            found.append(f"{path.name}:{node.lineno}: {CARD_FILE} opened by hand")
    return found


def test_every_module_reads_model_metadata_through_the_card() -> None:
    found = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        if path != CARD_MODULE
        for hit in _reads_metadata_outside_the_card(path)
    ]
    assert found == []


def test_the_check_catches_a_reader_by_key(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import json\n"
        "metadata = json.loads((export / 'metadata.json').read_text())\n"
        "threshold = metadata['threshold']\n"
        "backend = model.metadata.get('backend')\n"
    )
    assert len(_reads_metadata_outside_the_card(sneaky)) == 3
