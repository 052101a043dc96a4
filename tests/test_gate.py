"""One training gate: the summary, the queue and the data preparation agree on every clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import shared
from waketrain.jobs.queue import submit_job
from waketrain.settings import Settings
from waketrain.store import datasets
from waketrain.store.analysis import analysis_pool, analyze_pending_clips, measure_in_processes
from waketrain.store.clips import ClipMetadata, ClipUpdate, delete_clip, import_files, update_clip
from waketrain.store.errors import InvalidInput
from waketrain.store.health import dataset_summary
from waketrain.store.registry import Registry
from waketrain.store.startup import start_registry
from waketrain.training.config import TrainConfig
from waketrain.training.data import prepare_data


def thin_microphone(audio: np.ndarray) -> np.ndarray:
    """A clean recording through a microphone with no bass (nothing below 1 kHz), peak -11 dBFS."""
    spectrum = np.fft.rfft(audio)
    spectrum[np.fft.rfftfreq(len(audio), 1 / 16_000) < 1000] = 0
    thin = np.fft.irfft(spectrum, len(audio))
    return (thin / np.abs(thin).max() * 10 ** (-11 / 20)).astype(np.float32)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return start_registry(Settings(data_dir=tmp_path / "registry", admin_password="x")).registry


def test_fifty_clean_positives_the_vad_doubts_are_all_trained_on(
    registry: Registry, tmp_path: Path
) -> None:
    datasets.create_dataset(registry, datasets.DatasetCreate(id="thin", phrase="computer"), "t")
    folder = tmp_path / "thin"
    folder.mkdir()
    for path in sorted(shared("wake/computer").glob("*.flac"))[:50]:
        audio, _ = sf.read(path, dtype="float32")
        sf.write(folder / path.name, thin_microphone(audio), 16_000)
    import_files(registry, sorted(folder.iterdir()), "thin", ClipMetadata(label="positive"), "t")
    negatives = sorted(shared("wake/snowboy").glob("*.flac"))[:50]
    import_files(registry, negatives, "thin", ClipMetadata(label="negative"), "t")
    with analysis_pool(2) as pool:
        analyze_pending_clips(registry, measure_in_processes(pool))

    summary = dataset_summary(registry, "thin")
    doubted = summary.quality.positives_without_speech
    assert doubted >= 5  # the VAD hears (almost) no speech in these clean recordings
    assert summary.ready_to_train and summary.training_blockers == []

    data = prepare_data(registry, "thin", TrainConfig())
    assert data.count("train", "positive") + data.count("val", "positive") == 50
    assert len(data.doubted) == doubted and data.skipped == []
    assert all("trained on as it is" in note.reason for note in data.doubted)
    assert submit_job(registry, "thin", {}, "t").status == "queued"


def test_clips_left_out_count_against_the_gate_everywhere(
    registry: Registry, tmp_path: Path
) -> None:
    datasets.create_dataset(registry, datasets.DatasetCreate(id="short", phrase="computer"), "t")
    positives = sorted(shared("wake/computer").glob("*.flac"))[:49]
    import_files(registry, positives, "short", ClipMetadata(label="positive"), "t")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.full(16_000, 1e-5, np.float32), 16_000)  # -100 dBFS: near silent
    import_files(registry, [silent], "short", ClipMetadata(label="positive"), "t")
    negatives = sorted(shared("wake/snowboy").glob("*.flac"))[:50]
    import_files(registry, negatives, "short", ClipMetadata(label="negative"), "t")
    with analysis_pool(2) as pool:
        analyze_pending_clips(registry, measure_in_processes(pool))

    summary = dataset_summary(registry, "short")
    assert summary.clip_counts.positive == 50  # what the operator has...
    expected = (
        "49 usable positive clips (1 left out: near silent or duplicate); "
        "training needs at least 50."
    )
    assert summary.training_blockers == [expected]  # ...and what a job could use
    assert not summary.ready_to_train
    with pytest.raises(InvalidInput, match="49 usable positive clips"):
        submit_job(registry, "short", {}, "t")
    with pytest.raises(InvalidInput, match="49 usable positive clips"):
        prepare_data(registry, "short", TrainConfig())


def test_a_summary_kept_between_requests_follows_every_change(registry: Registry) -> None:
    """The summary is computed again after any change to its dataset, never served stale,
    and the other datasets' are left as they were."""
    for dataset_id in ("kept", "other"):
        datasets.create_dataset(registry, datasets.DatasetCreate(id=dataset_id, phrase="x"), "t")
    files = sorted(shared("wake/computer").glob("*.flac"))[:3]
    added = import_files(registry, files, "kept", ClipMetadata(label="positive"), "t").imported
    before = {s.id: s for s in datasets.list_datasets(registry)}
    assert before["kept"].clip_counts.positive == 3
    assert dataset_summary(registry, "kept") is before["kept"]  # nothing changed: kept

    update_clip(registry, added[0].id, ClipUpdate(label="negative"), "t")
    delete_clip(registry, added[1].id, "t")
    with analysis_pool(1) as pool:
        analyze_pending_clips(registry, measure_in_processes(pool))
    after = {s.id: s for s in datasets.list_datasets(registry)}
    counts = after["kept"].clip_counts
    assert (counts.positive, counts.negative, after["kept"].deleted_clips) == (1, 1, 1)
    assert after["kept"].quality.pending_analysis == 0
    assert after["other"] is before["other"]
