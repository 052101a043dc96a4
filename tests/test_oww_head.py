"""The oww_head backend: openWakeWord features, a head TARS loads as it is, streaming parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from tests.conftest import OWW_FEATURE_MODELS, TINY_HEAD, run_cli, shared
from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.loader import load_export
from waketrain.runtime.oww_model import OwwHeadModel, embedding_windows
from waketrain.runtime.speech_embedding import CHUNK_SAMPLES, SpeechEmbedder
from waketrain.store.errors import InvalidInput
from waketrain.store.registry import Registry
from waketrain.training.config import HeadConfig, TrainConfig, apply_overrides
from waketrain.training.export import export_onnx
from waketrain.training.oww_head_backend import OwwHead
from waketrain.training.pipeline import TrainResult, train

HELD_OUT = slice(300, 312)  # "computer" clips the job never sees (it trains on the first 60)
WARM_UP_HOPS = 40  # openWakeWord starts from its own buffers; after 3.2 s only audio counts


def read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def held_out_stream() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """3 s of silence, then each held-out clip followed by 1.5 s of silence; clip spans."""
    parts, spans = [np.zeros(3 * SAMPLE_RATE_HZ, np.float32)], []
    cursor = len(parts[0])
    for path in sorted(shared("wake/computer").glob("*.flac"))[HELD_OUT]:
        clip = read(path)
        spans.append((cursor, cursor + len(clip)))
        parts += [clip, np.zeros(int(1.5 * SAMPLE_RATE_HZ), np.float32)]
        cursor += len(clip) + int(1.5 * SAMPLE_RATE_HZ)
    return np.concatenate(parts), spans


def test_feature_models_compute_what_openwakewords_onnx_models_compute() -> None:
    audio = read(sorted(shared("wake/computer").glob("*.flac"))[0])
    audio = np.concatenate([np.zeros(SAMPLE_RATE_HZ, np.float32), audio])
    embedder = SpeechEmbedder()
    mel = embedder.mel_frames(audio)
    embeddings = embedder.embed(audio)

    melspec = ort.InferenceSession(str(OWW_FEATURE_MODELS / "melspectrogram.onnx"))
    embedding = ort.InferenceSession(str(OWW_FEATURE_MODELS / "embedding_model.onnx"))
    # openWakeWord's own way: each 1280-sample chunk with the 480 samples before it.
    chunks = range((len(audio) - 480) // 1280)
    onnx_mel = np.concatenate(
        [melspec.run(None, {"input": audio[None, c * 1280 : c * 1280 + 1760] * 32768})[0][0, 0]
         for c in chunks]
    ) / 10 + 2  # fmt: skip
    windows = np.stack([onnx_mel[8 * c + 8 - 76 : 8 * c + 8] for c in chunks if c >= 9])
    onnx_embeddings = embedding.run(None, {"input_1": windows[..., None]})[0].reshape(-1, 96)

    assert mel.shape == onnx_mel.shape == (8 * len(chunks), 32)
    assert embeddings.shape == onnx_embeddings.shape == (len(chunks) - 9, 96)
    assert np.abs(mel - onnx_mel).max() < 1e-3
    assert np.abs(embeddings - onnx_embeddings).max() < 1e-3 * np.abs(onnx_embeddings).max()


def test_the_heads_average_in_one_graph_of_openwakeword_s_format(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = OwwHead(HeadConfig(members=3)).eval()
    x = torch.randn(5, 16, 96)
    each = torch.sigmoid(head.member_logits(x)).detach()  # (5, 3)
    assert not torch.allclose(each[:, 0], each[:, 1])  # each member starts from its own weights
    assert torch.allclose(head(x)[:, 0], each.mean(dim=1))
    path = tmp_path / "wake_model.onnx"
    export_onnx(head, path, torch.zeros(1, 16, 96), "embeddings", dynamic_batch=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [graph_input], [graph_output] = session.get_inputs(), session.get_outputs()
    assert graph_input.shape == [1, 16, 96] and graph_output.shape == [1, 1]
    (out,) = session.run(None, {graph_input.name: x[:1].numpy()})
    assert out[0, 0] == pytest.approx(float(each[0].mean()), abs=1e-5)


def test_a_head_saved_before_members_existed_loads_as_the_first_member() -> None:
    head = OwwHead(HeadConfig()).eval()
    older = {k.replace("members.0.", "net."): v for k, v in head.state_dict().items()}
    assert all(k.startswith("net.") for k in older)
    loaded = OwwHead(HeadConfig()).eval()
    loaded.load_state_dict(older)
    x = torch.randn(3, 16, 96)
    assert torch.equal(loaded(x), head(x))


def test_oww_head_job_exports_the_openwakeword_model_format(oww_job: TrainResult) -> None:
    session = ort.InferenceSession(str(oww_job.export_dir / "wake_model.onnx"))
    (model_input,), (model_output,) = session.get_inputs(), session.get_outputs()
    assert model_input.shape == [1, 16, 96] and model_input.type == "tensor(float)"
    assert model_output.shape == [1, 1]

    metadata = json.loads((oww_job.export_dir / "metadata.json").read_text())
    assert metadata["backend"] == "oww_head"
    assert metadata["input"]["shape"] == [1, 16, 96] and metadata["hop_seconds"] == 0.08
    assert metadata["window_seconds"] == pytest.approx(1.99)
    assert metadata["metrics"]["onnx_parity_max_abs_diff"] < 1e-3
    assert {"frr", "fa_per_hour", "auc", "det_curve"} <= set(metadata["metrics"])
    cost = metadata["stream_cost"]  # streamed as the board streams it, on this machine
    assert cost["cpu_percent"] > 0 and cost["audio_seconds"] == 20 and cost["machine"]
    synthetic = metadata["data"]["synthetic"]
    assert synthetic["generated"] == {"positive": 30, "confusable": 30, "speech": 10}
    for name in ("det_curve.png", "confusion_matrix.png", "checkpoint.pt"):
        assert (oww_job.export_dir / name).stat().st_size > 0
    log = (oww_job.job_dir / "logs.txt").read_text()
    assert "synthetic data for 'computer'" in log and "speech embeddings:" in log
    assert "synthetic speech: added: the negative bank gives 0.00 h of real speech" in log


def test_openwakeword_loads_the_head_as_tars_does_and_agrees_with_our_stream(
    oww_job: TrainResult,
) -> None:
    from openwakeword.model import Model

    path = oww_job.export_dir / "wake_model.onnx"
    metadata = json.loads((oww_job.export_dir / "metadata.json").read_text())
    oww = Model(
        wakeword_models=[str(path)],
        inference_framework="onnx",
        melspec_model_path=str(OWW_FEATURE_MODELS / "melspectrogram.onnx"),
        embedding_model_path=str(OWW_FEATURE_MODELS / "embedding_model.onnx"),
    )
    audio, spans = held_out_stream()
    pcm = np.round(audio * 32768).clip(-32768, 32767).astype(np.int16)
    theirs = np.array(
        [
            oww.predict(pcm[i : i + CHUNK_SAMPLES])["wake_model"]
            for i in range(0, len(pcm) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES)
        ]
    )
    ours = OwwHeadModel(path).score_embeddings(
        embedding_windows(SpeechEmbedder().embed_stream(pcm.astype(np.float32) / 32768))
    )
    assert len(ours) == len(theirs)
    assert np.abs(ours[WARM_UP_HOPS:] - theirs[WARM_UP_HOPS:]).max() < 1e-3

    # It fires on held-out speakers: openWakeWord's score passes the job's threshold while
    # (or just after) each clip plays, and stays low in the silence between clips.
    hop_end = (np.arange(len(theirs)) + 1) * CHUNK_SAMPLES
    caught = [
        theirs[(hop_end > start) & (hop_end <= end + SAMPLE_RATE_HZ)].max() >= metadata["threshold"]
        for start, end in spans
    ]
    assert sum(caught) >= len(spans) - 2, caught


def test_the_live_stream_scores_what_the_batched_evaluation_scores(oww_job: TrainResult) -> None:
    """The detector feeds odd-sized chunks; evaluation scores whole recordings at once."""
    model = load_export(oww_job.export_dir)
    audio, _ = held_out_stream()
    audio = audio[: 10 * SAMPLE_RATE_HZ]
    stream, parts, start = model.stream(), [], 0
    for size in np.random.default_rng(0).integers(1, 5000, size=len(audio)):
        parts.append(stream.process(audio[start : start + size]))
        start += size
        if start >= len(audio):
            break
    live = np.concatenate(parts)
    batched = model.score_audio(audio)
    assert len(live) == len(batched) == len(audio) // CHUNK_SAMPLES
    assert np.abs(live - batched).max() < 1e-5


def test_second_job_through_the_cli_warm_starts_and_reuses_every_cached_embedding(
    oww_registry: Registry, oww_job: TrainResult
) -> None:
    args = [arg for key, value in TINY_HEAD.items() for arg in ("--set", f"{key}={value}")]
    result = run_cli(oww_registry.layout.root, "train", "--dataset", "computer", *args,
                     "--rir-dir", str(shared("rir")), "--init-from", oww_job.job_id)  # fmt: skip
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[1]
    log = (oww_registry.layout.jobs / job_id / "logs.txt").read_text()
    assert "(from cache)" in log
    computed = int(log.split("speech embeddings: ")[1].split(" from cache, ")[1].split()[0])
    assert computed == 0, log


def test_warm_start_needs_the_same_backend(oww_registry: Registry, oww_job: TrainResult) -> None:
    marblenet = apply_overrides(
        TrainConfig(), {"backend": "marblenet", "synth.use": "off", "epochs": 1}
    )
    with pytest.raises(
        InvalidInput, match="trained the oww_head backend; warm start needs the same"
    ):
        train(oww_registry, "computer", marblenet, init_from=oww_job.job_id)


def test_eval_measures_a_model_on_folders_its_job_never_saw(
    oww_registry: Registry, oww_job: TrainResult, tmp_path: Path
) -> None:
    positives = tmp_path / "said-computer"
    positives.mkdir()
    for path in sorted(shared("wake/computer").glob("*.flac"))[HELD_OUT]:
        shutil.copy(path, positives)
    negatives = [shared("speech/two_speakers"), shared("wake/heychatterbox")]
    result = run_cli(oww_registry.layout.root, "eval", "--artifact", str(oww_job.export_dir),
                     "--positives", str(positives), "--negatives", str(negatives[0]),
                     "--negatives", str(negatives[1]), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metadata = json.loads((oww_job.export_dir / "metadata.json").read_text())
    assert report["job_id"] == oww_job.job_id and report["threshold"] == metadata["threshold"]
    # The head hears held-out speakers (as openWakeWord's own scoring above finds).
    assert report["positives"] == 12 and report["frr_clean"] <= 3 / 12, report
    assert 0.0 <= report["frr_noisy"] <= 1.0
    by_folder = {entry["folder"]: entry for entry in report["negatives"]}
    assert set(by_folder) == {str(folder) for folder in negatives}
    for folder in negatives:
        entry = by_folder[str(folder)]
        seconds = sum(sf.info(str(p)).duration for p in folder.rglob("*.flac"))
        assert entry["minutes"] == pytest.approx(seconds / 60, rel=1e-3)
        assert entry["fa_per_hour"] == pytest.approx(entry["false_accepts"] / (seconds / 3600))

    table = run_cli(oww_registry.layout.root, "eval", "--artifact", str(oww_job.export_dir),
                    "--positives", str(positives), "--negatives", str(negatives[0]))  # fmt: skip
    assert table.returncode == 0 and "| positives at 10 dB SNR | 12 clips | FRR |" in table.stdout
    no_model = run_cli(oww_registry.layout.root, "eval", "--artifact", str(positives),
                       "--positives", str(positives), "--negatives", str(negatives[0]))  # fmt: skip
    assert no_model.returncode == 1 and "is not a model export" in no_model.stderr
