"""Can a causal encoder hear like openWakeWord's speech embedding? An experiment.

    .venv/bin/python bench/distil_encoder.py [--babble-hours 1.5] [--babble-share S]
        [--steps 8000] [--width 128] [--seeds 1234 1 2 3] [--cache teacher.npz]

About 35 minutes on 2 cores with 4.5 h of babble, most of it the teacher embedding 12.5 h of
audio; `--cache` keeps those embeddings for the next run.

The causal backend costs a seventh of microWakeWord's CPU but, trained from scratch on 40
clips, misses most unheard voices (docs/benchmarks.md, "The causal backend"). This script
tries the distillation route: a student of `training/causal_model.py`'s layers, with a
96-dim projection in place of the wake logit, regresses openWakeWord's speech embedding (the
teacher) every 80 ms, on audio that is neither the phrase nor any of the benchmark's test
audio: the bank's part of speech_long, the wake phrases `bench/accuracy.py` trains on as
negatives (snowboy, amelia), and espeak-ng babble (pseudo-words in many languages and
voices, generated here). The teacher embeds the same audio with noise mixed in too, so the
student learns to hear through it.

It prints the student's R² on the held-out "computer" clips, then the oww_head default row
of `bench/accuracy.py --voices` with the student in place of the teacher's embedding for
everything that row computes (the job's training examples and bank, its calibration, the
held-out hour and clips): what a causal backend built as encoder + oww head would hear.
Nothing here changes the product; the replacement lasts for this process.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from accuracy import (
    BANK_SETS,
    NOISE_FOLDERS,
    SEEDS,
    SHARED,
    TRAIN_POSITIVES,
    flacs,
    load_test_set,
    read,
    voices_ablation,
)

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime import oww_model
from waketrain.runtime import speech_embedding as oww
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, LogMelFrames, frames_span
from waketrain.settings import Settings
from waketrain.store.startup import start_registry
from waketrain.synth.espeak import Espeak, Voice
from waketrain.training import negative_bank
from waketrain.training.causal_model import CausalNetConfig, CausalWakeNet, ConvSpec
from waketrain.training.config import CAUSAL_HOP_FRAMES, TrainConfig

MEL_BANDS = 64
HOP_FRAMES = CAUSAL_HOP_FRAMES  # the student's 40 ms hop, the causal backend's
HOP_SAMPLES = HOP_FRAMES * FRAME_HOP_SAMPLES
HOPS_PER_EMBEDDING = oww.CHUNK_SAMPLES // HOP_SAMPLES  # 2
# The teacher's embedding k hears audio up to this sample of `SpeechEmbedder.embed`'s input
# (+ one chunk per k); the student's hop FIRST_HOP + 2 k ends on the same sample.
FIRST_EMBEDDING_END = (
    oww.MEL_CONTEXT_SAMPLES
    + (oww.FIRST_EMBEDDING_CHUNK + 1) * oww.CHUNK_SAMPLES
    - oww.UNHEARD_TAIL_SAMPLES
)
FIRST_HOP = (FIRST_EMBEDDING_END - frames_span(HOP_FRAMES)) // HOP_SAMPLES  # 19
CROP_FRAMES = 320  # 3.2 s of frames per training example
# espeak-ng languages for babble; Swedish left out: espeak-ng (espeakng-loader 0.2.4)
# crashed the process on some of its pseudo-word sentences.
BABBLE_LANGUAGES = ("en-us", "en", "en-gb-scotland", "nl", "cs", "de", "fr", "es", "it", "pl",
                    "pt", "ru", "hu", "fi", "da")  # fmt: skip
ONSETS = "b c d f g h j k l m n p r s t v w z ch sh th st pr tr kl gr".split()  # noqa: SIM905
NUCLEI = "a e i o u ai ou ee oo y".split()  # noqa: SIM905


def babble(hours: float, rng: np.random.Generator) -> np.ndarray:
    """Sentences of 2-8 pseudo-words, each in a random language, voice, rate and pitch."""
    engine = Espeak.shared()
    variants = engine.variants()
    out, total = [], 0
    while total < hours * 3600 * SAMPLE_RATE_HZ:
        words = [
            "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) for _ in range(rng.integers(1, 4)))
            + (rng.choice(ONSETS) if rng.random() < 0.5 else "")
            for _ in range(rng.integers(2, 9))
        ]
        text = " ".join(words)
        if "comp" in text:  # nothing near the benchmark's phrase
            continue
        voice = Voice(str(rng.choice(BABBLE_LANGUAGES)), str(rng.choice(variants)),
                      int(rng.integers(110, 260)), int(rng.integers(20, 80)),
                      int(rng.integers(20, 90)))  # fmt: skip
        audio = engine.speak(text, voice, seed=int(rng.integers(1 << 30)))
        out += [audio, np.zeros(int(rng.integers(1600, 8000)), np.float32)]
        total += len(audio)
    return np.concatenate(out)


def joined(paths: list[Path]) -> np.ndarray:
    """Recordings back to back, 0.3 s of silence after each."""
    gap = np.zeros(SAMPLE_RATE_HZ * 3 // 10, np.float32)
    return np.concatenate([part for p in paths for part in (read(p), gap)])


def with_noise(audio: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise at 0-20 dB SNR, a new stretch and SNR every 4 s, then a gain of -15 to +3 dB."""
    out = audio.copy()
    step = 4 * SAMPLE_RATE_HZ
    for start in range(0, len(audio), step):
        part = audio[start : start + step]
        offset = rng.integers(0, len(noise) - len(part))
        bed = noise[offset : offset + len(part)]
        snr = 10 ** (rng.uniform(0, 20) / 10)
        ratio = (np.mean(part**2) + 1e-9) / (np.mean(bed**2) + 1e-9) / snr
        out[start : start + step] = part + bed * np.sqrt(ratio)
    gain = 10 ** (rng.uniform(-15, 3) / 20)
    return np.clip(out * gain, -1, 1).astype(np.float32)


def teacher_pairs(
    streams: list[np.ndarray], embedder: oww.SpeechEmbedder
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(log-mel frames (n, 64), teacher embeddings (m, 96)) of each stream."""
    mel = LogMelFrames(MEL_BANDS)
    return [(mel.frames(audio), embedder.embed(audio)) for audio in streams]


class Student(nn.Module):
    """Causal convolutions over raw log-mel, a 96-dim embedding every 40 ms hop."""

    def __init__(self, width: int) -> None:
        super().__init__()
        config = CausalNetConfig(
            mel_bands=MEL_BANDS,
            stem=ConvSpec(width, kernel=3, stride=2),
            blocks=(
                ConvSpec(width, kernel=3, stride=2),
                ConvSpec(width, kernel=5),
                ConvSpec(width, kernel=5, dilation=2),
                ConvSpec(width, kernel=5, dilation=4),
                ConvSpec(width, kernel=5, dilation=8),
            ),
        )
        self.net = CausalWakeNet(config)  # its blocks; `project` stands for its wake logit
        self.project = nn.Conv1d(width, oww.EMBEDDING_DIM, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, mel, frames) -> (B, 96, hops), standardised embeddings."""
        x = frames
        for block in self.net.blocks:
            x = block(x)
        out: torch.Tensor = self.project(x)
        return out


def by_seconds(mels: list[np.ndarray]) -> np.ndarray:
    """Odds of drawing each stream that make each second of audio alike."""
    lengths = np.array([len(mel) for mel in mels], np.float64)
    odds: np.ndarray = lengths / lengths.sum()
    return odds


def crops(
    pairs: list[tuple[np.ndarray, np.ndarray]], odds: np.ndarray, n: int,
    first_valid: int, rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """n crops: frames (n, 64, CROP_FRAMES), targets (n, 96, hops) and which hops have one;
    each from a stream drawn with probabilities `odds`."""
    hops = CROP_FRAMES // HOP_FRAMES
    frames, targets, has = [], [], []
    for _ in range(n):
        mel, emb = pairs[rng.choice(len(pairs), p=odds)]
        last = min(len(mel), (FIRST_HOP + HOPS_PER_EMBEDDING * len(emb)) * HOP_FRAMES)
        start = HOP_FRAMES * rng.integers(0, max(1, (last - CROP_FRAMES) // HOP_FRAMES))
        hop = start // HOP_FRAMES + np.arange(hops)
        k, rest = np.divmod(hop - FIRST_HOP, HOPS_PER_EMBEDDING)
        ok = (np.arange(hops) >= first_valid) & (rest == 0) & (k >= 0) & (k < len(emb))
        target = np.zeros((hops, oww.EMBEDDING_DIM), np.float32)
        target[ok] = emb[k[ok]]
        frames.append(mel[start : start + CROP_FRAMES].T)
        targets.append(target.T)
        has.append(ok)
    return (torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(targets)),
            torch.from_numpy(np.stack(has)))  # fmt: skip


def train_student(
    pairs: list[tuple[np.ndarray, np.ndarray]], odds: np.ndarray,
    test: list[tuple[np.ndarray, np.ndarray]], width: int, steps: int,
) -> tuple[Student, float]:  # fmt: skip
    """The student after `steps` batches of 32 crops, and its R² on `test` (standardised)."""
    torch.manual_seed(0)
    student = Student(width)
    rng, test_rng = np.random.default_rng(0), np.random.default_rng(1)
    test_odds, first_valid = by_seconds([m for m, _ in test]), student.net.first_valid_hop
    held = [crops(test, test_odds, 64, first_valid, test_rng) for _ in range(4)]
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)

    def r_squared() -> float:
        student.eval()
        error = count = 0.0
        with torch.no_grad():
            for frames, targets, has in held:
                squared = ((student(frames) - targets) ** 2).mean(dim=1)
                error += float(squared[has].sum())
                count += int(has.sum())
        student.train()
        return 1 - error / count  # targets are standardised: their variance is 1

    started = time.time()
    for step in range(steps):
        frames, targets, has = crops(pairs, odds, 32, first_valid, rng)
        loss = ((student(frames) - targets) ** 2).mean(dim=1)[has].mean()
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
        schedule.step()
        if step % 1000 == 0 or step == steps - 1:
            print(f"step {step}: held-out R² {r_squared():.3f}, {time.time() - started:.0f} s",
                  flush=True)  # fmt: skip
    student.eval()
    return student, r_squared()


@contextlib.contextmanager
def student_as_embedder(student: Student, mean: np.ndarray, std: np.ndarray) -> Iterator[None]:
    """`SpeechEmbedder` and `EmbeddingStream` give the student's embeddings (in the teacher's
    scale) instead of openWakeWord's, on the same 80 ms grid."""
    mel = LogMelFrames(MEL_BANDS)
    mean_t, std_t = torch.from_numpy(mean)[:, None], torch.from_numpy(std)[:, None]

    def embed(_self: object, audio: np.ndarray) -> np.ndarray:
        n = (len(audio) - oww.MEL_CONTEXT_SAMPLES) // oww.CHUNK_SAMPLES - oww.FIRST_EMBEDDING_CHUNK
        if n <= 0:
            return np.zeros((0, oww.EMBEDDING_DIM), np.float32)
        frames = mel.frames(np.ascontiguousarray(audio, dtype=np.float32))
        with torch.no_grad():
            out = student(torch.from_numpy(frames.T[None].copy()))[0] * std_t + mean_t
        hops = out[:, FIRST_HOP : FIRST_HOP + HOPS_PER_EMBEDDING * n : HOPS_PER_EMBEDDING]
        embeddings: np.ndarray = hops.T.numpy().astype(np.float32)
        return embeddings

    # Whole chunks that hold the newest embedding's receptive field and a chunk more, so every
    # embedding a call gives reads only audio, never the zeros before the buffer.
    heard = frames_span(student.net.receptive_field_frames) + oww.CHUNK_SAMPLES
    keep = -(-heard // oww.CHUNK_SAMPLES) * oww.CHUNK_SAMPLES

    class StudentStream(oww.EmbeddingStream):
        """EmbeddingStream's contract: each call gives the embeddings its audio completes."""

        def __init__(self, embedder: oww.SpeechEmbedder) -> None:
            self.buffer = np.zeros(0, np.float32)  # the latest audio, from sample `dropped` on
            self.dropped = self.seen = self.done = 0  # samples dropped, samples in, embeddings out

        def process(self, chunk: np.ndarray) -> np.ndarray:
            self.buffer = np.concatenate([self.buffer, chunk.astype(np.float32, copy=False)])
            self.seen += len(chunk)
            total = max(0, (self.seen - oww.MEL_CONTEXT_SAMPLES) // oww.CHUNK_SAMPLES
                        - oww.FIRST_EMBEDDING_CHUNK)  # fmt: skip
            if total <= self.done:
                return np.zeros((0, oww.EMBEDDING_DIM), np.float32)
            base = self.dropped // oww.CHUNK_SAMPLES
            out = embed(None, self.buffer)[self.done - base : total - base]
            self.done = total
            drop = max(0, (len(self.buffer) - keep) // oww.CHUNK_SAMPLES * oww.CHUNK_SAMPLES)
            self.buffer, self.dropped = self.buffer[drop:], self.dropped + drop
            return out

    torch.set_num_threads(1)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(oww.SpeechEmbedder, "__init__", lambda _s: None))
        stack.enter_context(mock.patch.object(oww.SpeechEmbedder, "embed", embed))
        for module in (oww_model, negative_bank):  # where the stream is made
            stack.enter_context(mock.patch.object(module, "EmbeddingStream", StudentStream))
        yield


def teacher_set(babble_hours: float, cache: Path | None) -> dict[str, list[np.ndarray]]:
    """Frames and teacher embeddings of the pretraining streams and of the test clips, and
    which streams are babble; from `cache` (an .npz) when it holds them, else written there."""
    if cache and cache.exists():
        with np.load(cache) as saved:
            if float(saved["babble_hours"]) != babble_hours:
                raise SystemExit(f"{cache} holds {float(saved['babble_hours'])} h of babble, "
                                 f"not {babble_hours}: name another --cache file.")  # fmt: skip
            return {key: [saved[f"{key}{i}"] for i in range(int(saved[f"n_{key}"]))]
                    for key in ("mel", "emb", "test_mel", "test_emb", "babble")}  # fmt: skip
    rng = np.random.default_rng(0)
    noise = np.concatenate([read(p) for folder in NOISE_FOLDERS for p in flacs(folder)])
    real = [joined(sorted((SHARED / "speech_long" / name).glob("*.ogg"))) for name in BANK_SETS]
    real += [joined(flacs(f"wake/{name}")) for name in ("snowboy", "amelia")]
    speech = [*real, babble(babble_hours, rng)]
    streams = speech + [with_noise(audio, noise, rng) for audio in speech]
    is_babble = [np.array(i % len(speech) == len(real)) for i in range(len(streams))]
    hours = sum(map(len, streams)) / SAMPLE_RATE_HZ / 3600
    print(f"pretraining audio: {hours:.2f} h (half of it with noise mixed in), "
          f"{babble_hours:.2f} h of it babble before noise", flush=True)  # fmt: skip
    teacher = oww.SpeechEmbedder()
    mel, emb = zip(*teacher_pairs(streams, teacher), strict=True)
    test_clips = joined(flacs("wake/computer")[TRAIN_POSITIVES:])  # the bench's held-out clips
    test_mel, test_emb = zip(
        *teacher_pairs([test_clips, with_noise(test_clips, noise, rng)], teacher), strict=True
    )
    found = {"mel": list(mel), "emb": list(emb), "test_mel": list(test_mel),
             "test_emb": list(test_emb), "babble": is_babble}  # fmt: skip
    if cache:
        arrays = {f"{key}{i}": a for key, values in found.items() for i, a in enumerate(values)}
        arrays |= {f"n_{key}": np.array(len(values)) for key, values in found.items()}
        np.savez(cache, allow_pickle=False, babble_hours=np.array(babble_hours), **arrays)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--babble-hours", type=float, default=1.5)
    parser.add_argument("--babble-share", type=float, default=None,
                        help="share of training crops from babble (default: its share of "
                        "the audio)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--cache", type=Path, default=None,
                        help="an .npz of the teacher embeddings, reused if it exists")  # fmt: skip
    args = parser.parse_args()
    found = teacher_set(args.babble_hours, args.cache)
    every = np.concatenate(found["emb"])
    mean, std = every.mean(axis=0), every.std(axis=0) + 1e-6
    pairs = [(m, (e - mean) / std) for m, e in zip(found["mel"], found["emb"], strict=True)]
    test = [(m, (e - mean) / std) for m, e in zip(found["test_mel"], found["test_emb"],
                                                    strict=True)]  # fmt: skip
    odds = by_seconds(found["mel"])
    if args.babble_share is not None:
        babble_streams = np.array([bool(b) for b in found["babble"]])
        odds[babble_streams] *= args.babble_share / odds[babble_streams].sum()
        odds[~babble_streams] *= (1 - args.babble_share) / odds[~babble_streams].sum()
    student, r2 = train_student(pairs, odds, test, args.width, args.steps)
    params = sum(p.numel() for name, p in student.named_parameters() if "head" not in name)
    print(f"\nstudent: {params} parameters, receptive field "
          f"{student.net.receptive_field_frames} frames; R² on the held-out 'computer' clips "
          f"(clean and with noise): {r2:.3f}\n", flush=True)  # fmt: skip
    test_audio = load_test_set()
    with tempfile.TemporaryDirectory() as tmp, student_as_embedder(student, mean, std):
        registry = start_registry(Settings(data_dir=Path(tmp), admin_password="x")).registry
        voices_ablation(TrainConfig(), registry, test_audio, 50, ["default"], args.seeds)


if __name__ == "__main__":
    main()
