"""Pre-flight and data assembly: which clips train, which are held out, and why others are not."""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from sqlalchemy import select

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.audio.decode import read_clip
from waketrain.store.analysis import analysis_pool, analyze_pending_clips, measure_in_processes
from waketrain.store.errors import InvalidInput
from waketrain.store.gate import ClipNote, active_clips, review_clips
from waketrain.store.health import require_dataset
from waketrain.store.models import Capture, Clip
from waketrain.store.registry import Registry
from waketrain.training.config import TrainConfig

TRIM_MARGIN_SECONDS = 0.1


@dataclass
class Example:
    clip_id: str
    label: str  # positive | negative | noise
    speaker: str | None
    samples: np.ndarray  # (n,) float32, 16 kHz, silence trimmed
    weight: float = 1.0  # loss weight: real recordings 1, synthetic ones synth.weight
    sha256: str = ""  # of the stored clip: untagged clips are split by content, reproducibly
    source: str = ""  # the clip's source: upload, record, import, capture, ...


@dataclass
class PreparedData:
    phrase: str
    train: list[Example]
    val: list[Example]
    background: list[np.ndarray]  # noise clips of the training split + any noise folders
    rirs: list[np.ndarray]
    skipped: list[ClipNote] = field(default_factory=list)  # left out, with the reason
    doubted: list[ClipNote] = field(default_factory=list)  # positives the VAD doubts: used
    dataset_sha256: str = ""
    captured_by: dict[str, str] = field(default_factory=dict)  # capture clip id -> model id

    def captures(self, split: str) -> list[Example]:
        return [e for e in getattr(self, split) if e.source == "capture"]

    def count(self, split: str, label: str) -> int:
        return sum(e.label == label for e in getattr(self, split))


def read_folder_audio(folder: Path) -> list[np.ndarray]:
    """Every audio file under `folder` as 16 kHz mono float32 (noise or RIR banks)."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder of audio files.")
    clips = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except sf.LibsndfileError:
            continue
        mono = audio.mean(axis=1)
        if rate != SAMPLE_RATE_HZ:
            mono = soxr.resample(mono, rate, SAMPLE_RATE_HZ).astype(np.float32)
        clips.append(mono)
    if not clips:
        raise InvalidInput(f"{folder} holds no audio that can be decoded.")
    return clips


def _trim(samples: np.ndarray, clip: Clip) -> np.ndarray:
    """Cut leading and trailing silence using the VAD bounds measured at ingest."""
    if clip.speech_start_seconds is None or clip.speech_end_seconds is None:
        return samples
    start = max(0, int((clip.speech_start_seconds - TRIM_MARGIN_SECONDS) * SAMPLE_RATE_HZ))
    end = min(len(samples), int((clip.speech_end_seconds + TRIM_MARGIN_SECONDS) * SAMPLE_RATE_HZ))
    return samples[start:end] if end - start > SAMPLE_RATE_HZ // 10 else samples


def speaker_split(
    examples: list[Example], val_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """About `val_fraction` of each label held out; one speaker tag never lands on both sides.

    Clips without a speaker tag are their own group, named by their content, so the same
    clips split the same way in every dataset and every job with the same seed. A speaker
    with more than twice a label's held-out share stays in training (one operator who
    recorded everything must not end up all held out); a label still short of its share
    then lends single clips, so only then does a speaker appear on both sides.
    """
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(_group_key(example), []).append(example)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    totals = {
        label: sum(e.label == label for e in examples)
        for label in ("positive", "negative", "noise")
    }
    wanted = {label: round(n * val_fraction) for label, n in totals.items()}
    held = dict.fromkeys(totals, 0)
    train: list[Example] = []
    val: list[Example] = []
    for key in order:
        members = groups[key]
        counts = Counter(m.label for m in members)
        needed = any(held[label] < wanted[label] for label in counts)
        too_big = any(held[label] + n > 2 * wanted[label] for label, n in counts.items())
        if needed and not too_big:
            val += members
            held.update({label: held[label] + n for label, n in counts.items()})
        else:
            train += members
    for label in totals:
        short = max(wanted[label] - held[label], 0)
        lent = [e for e in sorted(train, key=_group_key) if e.label == label][:short]
        lent_ids = {id(e) for e in lent}
        val += lent
        train = [e for e in train if id(e) not in lent_ids]
    return train, val


def _group_key(example: Example) -> str:
    return example.speaker or f"clip:{example.sha256 or example.clip_id}"


def prepare_data(
    registry: Registry,
    dataset_id: str,
    config: TrainConfig,
    noise_dirs: Sequence[Path] = (),
    rir_dirs: Sequence[Path] = (),
) -> PreparedData:
    """Pre-flight: gate on counts, trim, drop near-silent and duplicate clips, split by speaker."""
    dataset = require_dataset(registry, dataset_id)
    with analysis_pool(os.cpu_count() or 1) as pool:
        analyze_pending_clips(registry, measure_in_processes(pool))  # VAD bounds for trimming
    clips = active_clips(registry, dataset_id)
    gate = review_clips(clips)
    blockers = gate.blockers(config.min_positive_clips, config.min_negative_clips)
    if blockers:
        raise InvalidInput(
            f"Dataset {dataset_id!r} cannot train: {' '.join(blockers)} "
            "Record or import more clips."
        )
    doubted = {note.clip_id for note in gate.doubted}
    usable = set(gate.usable)
    examples: list[Example] = []
    for clip in clips:
        if clip.id not in usable:
            continue
        samples = read_clip(str(registry.layout.clip_path(dataset_id, clip.id)))
        untrimmed = clip.label == "noise" or clip.id in doubted
        trimmed = samples if untrimmed else _trim(samples, clip)
        # A false wake heard on the board is the hardest negative there is: weigh it up.
        weight = config.capture_negative_weight if clip.source == "capture" else 1.0
        weight = weight if clip.label == "negative" else 1.0
        examples.append(Example(clip.id, clip.label, clip.speaker, trimmed, weight,
                                sha256=clip.sha256, source=clip.source))  # fmt: skip

    train, val = speaker_split(examples, config.val_fraction, config.seed)
    background = [e.samples for e in train if e.label == "noise"]
    for folder in noise_dirs:
        background += read_folder_audio(folder)
    rirs = [clip for folder in rir_dirs for clip in read_folder_audio(folder)]
    digest = hashlib.sha256()
    for clip in clips:
        if clip.id in usable:
            digest.update(f"{clip.sha256}:{clip.label}\n".encode())
    capture_clips = [e.clip_id for e in examples if e.source == "capture"]
    with registry.sessions() as session:
        rows = session.execute(
            select(Capture.clip_id, Capture.model_id).where(Capture.clip_id.in_(capture_clips))
        )
        captured_by = {clip_id: model_id for clip_id, model_id in rows if clip_id is not None}
    return PreparedData(
        phrase=dataset.phrase,
        train=train,
        val=val,
        background=background,
        rirs=rirs,
        skipped=gate.skipped,
        doubted=gate.doubted,
        dataset_sha256=digest.hexdigest(),
        captured_by=captured_by,
    )
