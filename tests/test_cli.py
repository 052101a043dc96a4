"""The CLI door: the same core as the API, driven as an operator types it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import Service, clip_files, run_cli, shared


def seconds(folder: Path, limit: float = 30.0) -> tuple[int, float]:
    """Number and total length of the clips under `folder` that the limits accept."""
    lengths = [sf.info(str(p)).duration for p in sorted(folder.rglob("*.flac"))]
    accepted = [d for d in lengths if d <= limit]
    return len(accepted), sum(accepted)


def test_import_real_sets_through_the_cli(tmp_path: Path) -> None:
    # The whole "computer" set goes in over HTTP (test_api_recordings); here a smaller one.
    data = tmp_path / "registry"
    created = run_cli(data, "dataset", "create", "chatterbox", "--phrase", "hey chatterbox")
    assert created.returncode == 0, created.stderr
    runs = {
        "positive": run_cli(
            data, "dataset", "import", str(shared("wake/heychatterbox")),
            "--dataset", "chatterbox", "--label", "positive", "--no-analyze",
        ),
        "negative": run_cli(
            data, "dataset", "import", str(shared("wake/snowboy")),
            "--dataset", "chatterbox", "--label", "negative", "--no-analyze",
        ),
        "noise": run_cli(
            data, "dataset", "import", str(shared("noise")),
            "--dataset", "chatterbox", "--label", "noise", "--speaker", "room", "--no-analyze",
        ),
    }  # fmt: skip
    for run in runs.values():
        assert run.returncode == 0, run.stderr
    # The two noise files over 30 s are refused by name, with the reason.
    assert "refused misc/noise1.flac" in runs["noise"].stderr
    assert "refused room_tone/bg_noise9.flac" in runs["noise"].stderr
    assert "at most 30.0 s" in runs["noise"].stderr

    shown = run_cli(data, "dataset", "show", "chatterbox")
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    expected = {
        "positive": seconds(shared("wake/heychatterbox")),
        "negative": seconds(shared("wake/snowboy")),
        "noise": seconds(shared("noise")),
    }
    assert summary["clip_counts"] == {label: n for label, (n, _) in expected.items()}
    for label, (_, total) in expected.items():
        assert summary["minutes"][label] == pytest.approx(total / 60, abs=0.01)
    assert summary["quality"]["pending_analysis"] == sum(n for n, _ in expected.values())
    assert summary["ready_to_train"] is True

    files = clip_files(data, "chatterbox")
    assert len(files) == sum(n for n, _ in expected.values())
    labels = json.loads((data / "datasets" / "chatterbox" / "labels.json").read_text())["clips"]
    assert {f.stem for f in files} == set(labels)
    assert {e["speaker"] for e in labels.values() if e["label"] == "noise"} == {"room"}

    listed = run_cli(data, "dataset", "list")
    assert "chatterbox" in listed.stdout and "positive=56" in listed.stdout
    assert "tars-default" not in listed.stdout  # only `serve` creates the default dataset


def test_cli_import_measures_quality_and_the_api_sees_the_same_registry(tmp_path: Path) -> None:
    data = tmp_path / "registry"
    assert run_cli(data, "dataset", "create", "amelia", "--phrase", "amelia").returncode == 0
    imported = run_cli(
        data, "dataset", "import", str(shared("wake/amelia")), "--dataset", "amelia",
        "--label", "positive", "--speaker", "amelia-speaker",
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "imported 80 clips" in imported.stdout
    again = run_cli(  # run again, as after an interruption: nothing is added twice
        data, "dataset", "import", str(shared("wake/amelia")), "--dataset", "amelia",
        "--label", "positive", "--no-analyze",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "imported 0 clips" in again.stdout and "already there 80" in again.stdout

    token = run_cli(data, "token", "create", "--user", "admin", "--name", "test")
    assert token.returncode == 0, token.stderr
    service = Service(data).start()
    try:
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        summary = httpx.get(f"{service.url}/datasets/amelia", headers=headers).json()
        assert summary["clip_counts"]["positive"] == 80
        assert summary["quality"]["pending_analysis"] == 0
        assert summary["mean_snr_db"] is not None
        page = httpx.get(
            f"{service.url}/datasets/amelia/recordings",
            params={"sort": "quality_score", "order": "desc", "limit": 80},
            headers=headers,
        ).json()
        scores = [item["quality_score"] for item in page["items"]]
        assert scores == sorted(scores, reverse=True)
        assert {item["source"] for item in page["items"]} == {"import"}
    finally:
        service.stop()


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "registry"
    bad_id = run_cli(data, "dataset", "create", "../etc", "--phrase", "x")
    assert bad_id.returncode == 1 and "Invalid dataset id" in bad_id.stderr
    assert "Traceback" not in bad_id.stderr
    missing = run_cli(data, "dataset", "import", str(shared("wake/amelia")), "--dataset", "nope",
                      "--label", "positive")  # fmt: skip
    assert missing.returncode == 1 and "No dataset 'nope'" in missing.stderr
    bad_label = run_cli(data, "dataset", "create", "d1", "--phrase", "x")
    assert bad_label.returncode == 0
    wrong = run_cli(data, "dataset", "import", str(shared("wake/amelia")), "--dataset", "d1",
                    "--label", "maybe")  # fmt: skip
    assert wrong.returncode == 1 and "positive" in wrong.stderr
    assert not clip_files(data, "d1")


def test_identical_clips_are_listed_and_resolved_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "registry"
    assert run_cli(data, "dataset", "create", "twins", "--phrase", "computer").returncode == 0
    folder = tmp_path / "two"
    folder.mkdir()
    for path in sorted(shared("wake/computer").glob("*.flac"))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    for label in ("positive", "negative"):
        run = run_cli(data, "dataset", "import", str(folder), "--dataset", "twins",
                      "--label", label, "--no-analyze")  # fmt: skip
        assert run.returncode == 0, run.stderr
    listed = run_cli(data, "dataset", "duplicates", "twins")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("CONFLICT negative / positive") == 2
    assert "2 clips left out as duplicates, 2 label conflicts" in listed.stdout
    clip_lines = [line.split() for line in listed.stdout.splitlines() if line.startswith("  ")]
    negative = next(clip_id for clip_id, label, *_ in clip_lines if label == "negative")
    kept = run_cli(data, "dataset", "duplicates", "twins", "--keep", negative)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.startswith("discarded ") and "(positive)" in kept.stdout
    again = run_cli(data, "dataset", "duplicates", "twins")
    assert "1 clips left out as duplicates, 1 label conflicts" in again.stdout


def test_a_long_recording_is_split_into_clips_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "registry"
    assert run_cli(data, "dataset", "create", "long", "--phrase", "computer").returncode == 0
    takes = [sf.read(str(p), dtype="float32")[0]
             for p in sorted(shared("wake/computer").glob("*.flac"))[:3]]  # fmt: skip
    gap = np.zeros(16_000, np.float32)
    audio = np.concatenate([gap, *[x for take in takes for x in (take, gap)]])
    sf.write(str(tmp_path / "takes.wav"), audio, 16_000)
    run = run_cli(data, "dataset", "split", str(tmp_path / "takes.wav"), "--dataset", "long",
                  "--label", "positive", "--speaker", "bo")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "added 3 clips to long as positive" in run.stdout
    assert run.stdout.count("from takes at ") == 3
