"""The dataset and recording API against a real `waketrain serve` process and real audio."""

from __future__ import annotations

import io
import json
import select
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx
import numpy as np
import pytest
import soundfile as sf
import soxr
from websockets.sync.client import connect

from tests.conftest import (
    Service,
    clip_files,
    create_dataset,
    read_answer,
    shared,
    start_partial_upload,
    upload,
)


def audio_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted(shared(folder).rglob("*.flac"))]


def duration(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


def labels_json(service: Service, dataset_id: str) -> dict[str, dict[str, object]]:
    path = service.data_dir / "datasets" / dataset_id / "labels.json"
    clips: dict[str, dict[str, object]] = json.loads(path.read_text())["clips"]
    return clips


def all_clip_ids(api: httpx.Client, dataset_id: str) -> set[str]:
    page = api.get(
        f"/datasets/{dataset_id}/recordings", params={"deleted": "include", "limit": 1000}
    ).json()
    assert page["total"] == len(page["items"])
    return {item["id"] for item in page["items"]}


def test_import_real_sets_over_http_counts_minutes_and_files_agree(
    service: Service, api: httpx.Client
) -> None:
    create_dataset(api, "http-import")
    sets = {
        "positive": audio_files("wake/computer"),
        "negative": audio_files("wake/snowboy"),
        "noise": audio_files("noise"),
    }

    def send(item: tuple[str, Path]) -> tuple[Path, httpx.Response]:
        label, path = item
        return path, upload(api, "http-import", path.read_bytes(), path.name, label)

    jobs = [(label, path) for label, paths in sets.items() for path in paths]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(send, jobs))

    accepted = {label: 0.0 for label in sets}
    counts = {label: 0 for label in sets}
    for (label, path), (_, response) in zip(jobs, results, strict=True):
        if duration(path) > 30.0:
            assert response.status_code == 422, response.text
            assert "at most 30.0 s" in response.json()["detail"]
            continue
        assert response.status_code == 201, (path, response.text)
        counts[label] += 1
        accepted[label] += duration(path)

    summary = api.get("/datasets/http-import").json()
    assert summary["clip_counts"] == counts
    assert counts["positive"] == 411 and counts["negative"] == 120
    for label, seconds in accepted.items():
        assert summary["minutes"][label] == pytest.approx(seconds / 60, abs=0.01)
    files = clip_files(service.data_dir, "http-import")
    assert all(f.suffix == ".wav" and not f.name.startswith(".") for f in files)
    assert {f.stem for f in files} == all_clip_ids(api, "http-import")
    assert set(labels_json(service, "http-import")) == {f.stem for f in files}
    metrics = json.loads(
        (service.data_dir / "datasets" / "http-import" / "metrics.json").read_text()
    )
    assert metrics["clip_counts"] == counts


def test_flac_upload_is_stored_as_16k_mono_pcm16_wav_and_plays_back_with_ranges(
    service: Service, api: httpx.Client
) -> None:
    create_dataset(api, "flac")
    source = audio_files("wake/computer")[0]
    response = upload(api, "flac", source.read_bytes(), source.name, speaker="alice")
    assert response.status_code == 201, response.text
    clip = response.json()
    assert clip["original_format"] == "FLAC" and clip["speaker"] == "alice"

    stored = service.data_dir / "datasets" / "flac" / "clips" / f"{clip['id']}.wav"
    info = sf.info(str(stored))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "WAV",
        "PCM_16",
        16000,
        1,
    )
    original, _ = sf.read(str(source), dtype="int16")
    canonical, _ = sf.read(str(stored), dtype="int16")
    assert np.array_equal(original, canonical)  # 16 kHz mono in: samples kept exactly

    audio = api.get(f"/recordings/{clip['id']}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content == stored.read_bytes()
    partial = api.get(f"/recordings/{clip['id']}/audio", headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206 and partial.content == stored.read_bytes()[:100]


def test_quality_metrics_arrive_after_upload(api: httpx.Client) -> None:
    create_dataset(api, "quality")
    source = audio_files("wake/computer")[1]
    clip = upload(api, "quality", source.read_bytes(), source.name).json()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        clip = api.get(f"/recordings/{clip['id']}").json()
        if clip["analyzed_at"]:
            break
        time.sleep(0.2)
    assert clip["analyzed_at"], "quality analysis never ran"
    assert 0 <= clip["quality_score"] <= 100
    assert clip["speech_seconds"] > 0.2 and clip["snr_db"] > 0
    summary = api.get("/datasets/quality").json()
    assert summary["quality"]["analyzed"] == 1 and summary["mean_snr_db"] == clip["snr_db"]


def test_delete_restore_round_trip_is_audited_and_streamed(
    service: Service, api: httpx.Client
) -> None:
    create_dataset(api, "review")
    source = audio_files("wake/computer")[2]
    clip_id = upload(api, "review", source.read_bytes(), source.name).json()["id"]

    deleted = api.delete(f"/recordings/{clip_id}")
    assert deleted.status_code == 200 and deleted.json()["deleted_by"] == "admin"
    assert api.get("/datasets/review").json()["clip_counts"]["positive"] == 0
    assert api.get("/datasets/review/recordings", params={"deleted": "only"}).json()["total"] == 1
    assert labels_json(service, "review")[clip_id]["deleted"] is True

    restored = api.post(f"/recordings/{clip_id}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert api.get("/datasets/review").json()["clip_counts"]["positive"] == 1
    assert labels_json(service, "review")[clip_id]["deleted"] is False
    assert (service.data_dir / "datasets" / "review" / "clips" / f"{clip_id}.wav").exists()

    actions = [entry["action"] for entry in api.get("/audit", params={"object_id": clip_id}).json()]
    assert actions == ["restore", "delete", "upload"]

    token = api.headers["Authorization"].split()[1]
    url = service.url.replace("http", "ws") + "/status?after=0"
    seen: list[str] = []
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        while "clip.restored" not in seen:
            event = json.loads(ws.recv(timeout=10))
            if event["payload"].get("clip_id") == clip_id:
                seen.append(event["type"])
    assert [t for t in seen if t != "clip.analyzed"] == [
        "clip.added",
        "clip.deleted",
        "clip.restored",
    ]
    assert api.get("/datasets/review").json()["last_reviewed_by"] == "admin"


def test_event_stream_resumes_from_last_seen_id(service: Service, api: httpx.Client) -> None:
    create_dataset(api, "resume")
    token = api.headers["Authorization"].split()[1]
    headers = {"Authorization": f"Bearer {token}"}
    base = service.url.replace("http", "ws") + "/status"
    with connect(f"{base}?after=0", additional_headers=headers) as ws:
        first = json.loads(ws.recv(timeout=10))
    create_dataset(api, "resume-later")
    with connect(f"{base}?after={first['id']}", additional_headers=headers) as ws:
        ids = []
        while True:
            event = json.loads(ws.recv(timeout=10))
            ids.append(event["id"])
            if event["type"] == "dataset.created" and event["dataset_id"] == "resume-later":
                break
    assert ids[0] == first["id"] + 1 and ids == sorted(ids)

    # From now: no history. Other tests' background analysis may still publish, so skip to ours.
    with connect(f"{base}?after=-1", additional_headers=headers) as ws:
        create_dataset(api, "resume-now")
        received = []
        while not received or received[-1]["type"] != "dataset.created":
            received.append(json.loads(ws.recv(timeout=10)))
    assert received[-1]["dataset_id"] == "resume-now"
    assert all(event["id"] > ids[-1] for event in received)


def test_relabel_moves_counts_and_is_audited(service: Service, api: httpx.Client) -> None:
    create_dataset(api, "relabel")
    source = audio_files("wake/snowboy")[0]
    clip_id = upload(api, "relabel", source.read_bytes(), source.name).json()["id"]
    response = api.patch(
        f"/recordings/{clip_id}", json={"label": "negative", "speaker": "bob", "notes": "snowboy"}
    )
    assert response.status_code == 200
    assert (response.json()["label"], response.json()["speaker"]) == ("negative", "bob")
    assert api.get("/datasets/relabel").json()["clip_counts"] == {
        "positive": 0,
        "negative": 1,
        "noise": 0,
    }
    assert labels_json(service, "relabel")[clip_id]["label"] == "negative"
    audit = api.get("/audit", params={"object_id": clip_id}).json()[0]
    assert audit["action"] == "relabel"
    assert audit["detail"]["label"] == {"from": "positive", "to": "negative"}

    bad = api.patch(f"/recordings/{clip_id}", json={"label": "maybe"})
    assert bad.status_code == 422 and "positive" in bad.json()["detail"]
    assert api.patch(f"/recordings/{clip_id}", json={}).status_code == 422


def test_identical_clips_are_listed_and_one_click_keeps_the_right_one(api: httpx.Client) -> None:
    create_dataset(api, "twins")
    first, other = audio_files("wake/snowboy")[:2]
    original = upload(api, "twins", first.read_bytes(), first.name, "positive").json()["id"]
    again = upload(api, "twins", first.read_bytes(), "copy.flac", "positive").json()["id"]
    relabelled = upload(api, "twins", first.read_bytes(), "other.flac", "negative").json()["id"]
    upload(api, "twins", other.read_bytes(), other.name, "positive")
    hygiene = api.get("/datasets/twins/duplicates").json()
    assert (hygiene["left_out"], hygiene["label_conflicts"]) == (2, 1)
    [group] = hygiene["groups"]
    assert [c["id"] for c in group["clips"]] == [original, again, relabelled]
    assert group["conflict"] and group["labels"] == ["negative", "positive"]
    assert api.get("/datasets/twins").json()["quality"]["duplicate_clips"] == 3  # all three

    wrong = api.post("/datasets/twins/duplicates/resolve",
                     json={"sha256": group["sha256"], "keep": "not-in-it"})  # fmt: skip
    assert wrong.status_code == 422 and original in wrong.json()["detail"]
    gone = api.post("/datasets/twins/duplicates/resolve", json={"sha256": "0" * 64, "keep": "x"})
    assert gone.status_code == 404
    kept = api.post("/datasets/twins/duplicates/resolve",
                    json={"sha256": group["sha256"], "keep": relabelled})  # fmt: skip
    assert kept.status_code == 200
    assert sorted(c["id"] for c in kept.json()) == sorted([original, again])
    assert api.get("/datasets/twins/duplicates").json()["groups"] == []
    assert api.get("/datasets/twins").json()["clip_counts"] == {
        "positive": 1,
        "negative": 1,
        "noise": 0,
    }
    audit = api.get("/audit", params={"object_id": original}).json()[0]
    assert audit["action"] == "delete"  # restorable like any discarded clip


def test_a_long_recording_is_split_into_phrases_the_operator_accepts(api: httpx.Client) -> None:
    create_dataset(api, "long")
    phrases = [sf.read(str(p), dtype="float32")[0] for p in audio_files("wake/computer")[:8]]
    gap = np.zeros(24_000, np.float32)  # 1.5 s between takes, as someone repeats the phrase
    spans, parts, t = [], [], 0.0
    for phrase in phrases:
        parts += [phrase, gap]
        spans.append((t, t + len(phrase) / 16_000))
        t += (len(phrase) + len(gap)) / 16_000
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate(parts), 16_000, format="WAV", subtype="PCM_16")
    assert upload(api, "long", buffer.getvalue(), "anna.wav").status_code == 422  # > 30 s

    proposed = api.post("/datasets/long/long-recordings",
                        files={"file": ("anna.wav", buffer.getvalue(), "audio/wav")})  # fmt: skip
    assert proposed.status_code == 201, proposed.text
    split = proposed.json()
    assert split["duration_seconds"] == pytest.approx(t, abs=0.01)
    segments = split["segments"]
    assert len(segments) == len(phrases)
    for seg, (start, end) in zip(segments, spans, strict=True):
        assert start - 0.01 <= seg["start"] < seg["end"] <= end + 0.76  # inside its take
    audio = api.get(f"/long-recordings/{split['id']}/audio")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"

    accept = f"/long-recordings/{split['id']}/clips"
    meta = {"label": "positive", "speaker": "anna", "source": "record"}
    beyond = api.post(accept, json={"metadata": meta, "segments": [{"start": 1, "end": t + 5}]})
    assert beyond.status_code == 422 and "ends after the recording" in beyond.json()["detail"]
    short = api.post(accept, json={"metadata": meta, "segments": [{"start": 1, "end": 1.1}]})
    assert short.status_code == 422 and "clips are" in short.json()["detail"]
    kept = segments[:-1]  # the operator drops the last piece and widens the first
    kept[0] = {"start": 0.0, "end": segments[0]["end"] + 0.2}
    added = api.post(accept, json={"metadata": meta, "segments": kept})
    assert added.status_code == 201, added.text
    clips = added.json()
    assert len(clips) == len(phrases) - 1
    assert clips[0]["notes"] == f"from anna at 0.00-{kept[0]['end']:.2f} s"
    assert clips[0]["duration_seconds"] == pytest.approx(kept[0]["end"], abs=0.01)
    assert {c["speaker"] for c in clips} == {"anna"} and {c["source"] for c in clips} == {"record"}
    assert api.get("/datasets/long").json()["clip_counts"]["positive"] == len(phrases) - 1


def test_listing_sorts_filters_and_paginates(api: httpx.Client) -> None:
    create_dataset(api, "listing")
    files = audio_files("wake/computer")[:6]
    for i, path in enumerate(files):
        label = "positive" if i % 2 == 0 else "negative"
        upload(api, "listing", path.read_bytes(), path.name, label, speaker=f"spk{i % 3}")
    url = "/datasets/listing/recordings"

    by_length = api.get(url, params={"sort": "duration_seconds", "order": "asc"}).json()["items"]
    lengths = [item["duration_seconds"] for item in by_length]
    assert lengths == sorted(lengths) and len(lengths) == 6

    positives = api.get(url, params={"label": "positive"}).json()
    assert positives["total"] == 3 and {i["label"] for i in positives["items"]} == {"positive"}
    speaker = api.get(url, params={"speaker": "spk1"}).json()
    assert speaker["total"] == 2

    by_speaker = api.get(url, params={"sort": "speaker", "order": "asc"}).json()["items"]
    assert [i["speaker"] for i in by_speaker] == sorted(i["speaker"] for i in by_speaker)

    page1 = api.get(url, params={"limit": 4, "offset": 0}).json()
    page2 = api.get(url, params={"limit": 4, "offset": 4}).json()
    assert page1["total"] == 6 and len(page1["items"]) == 4 and len(page2["items"]) == 2
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}

    bad = api.get(url, params={"sort": "colour"})
    assert bad.status_code == 422 and "sort" in bad.json()["detail"]


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_hostile_uploads_get_the_right_answer_and_leave_nothing_behind(
    service: Service, api: httpx.Client
) -> None:
    create_dataset(api, "hostile")
    speech, _ = sf.read(str(audio_files("wake/computer")[0]), dtype="float32")
    whole = _wav(speech, 16000)
    noise, _ = sf.read(str(shared("noise/speech_commands/white_noise.flac")), dtype="float32")
    thirty_one = _wav(np.concatenate([noise, noise[:16000]]), 16000)

    refused = {
        "truncated.wav": (whole[: len(whole) // 2], 422, "truncated"),
        "notes.wav": (b"this is a text file, not a recording\n" * 10, 415, "not audio"),
        "empty.wav": (b"", 422, "empty"),
        "long.wav": (thirty_one, 422, "at most 30.0 s"),
    }
    for name, (content, status, phrase) in refused.items():
        response = upload(api, "hostile", content, name)
        assert response.status_code == status, (name, response.text)
        assert phrase in response.json()["detail"], (name, response.text)
    assert clip_files(service.data_dir, "hostile") == []

    stereo = soxr.resample(np.stack([speech, speech], axis=1), 16000, 44100)
    converted = upload(api, "hostile", _wav(stereo, 44100), "stereo44k.wav")
    assert converted.status_code == 201, converted.text
    assert converted.json()["original_sample_rate"] == 44100
    assert converted.json()["original_channels"] == 2

    traversal = upload(api, "hostile", whole, "../../../etc/evil.wav")
    assert traversal.status_code == 201, traversal.text
    assert traversal.json()["original_filename"] == "evil.wav"

    stored = clip_files(service.data_dir, "hostile")
    assert {f.stem for f in stored} == {converted.json()["id"], traversal.json()["id"]}
    for path in stored:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert not list(service.data_dir.rglob("evil*"))

    bad_dataset = upload(api, "..%2F..%2Fetc", whole, "x.wav")
    assert bad_dataset.status_code in (404, 422)
    bad_metadata = api.post(
        "/datasets/hostile/recordings",
        files={"file": ("a.wav", whole)},
        data={"metadata": '{"label": "loud"}'},
    )
    assert bad_metadata.status_code == 422 and "positive|negative|noise" in bad_metadata.text
    as_the_board = api.post(  # "capture" is for clips the board recorded, after review
        "/datasets/hostile/recordings",
        files={"file": ("a.wav", whole)},
        data={"metadata": '{"label": "positive", "source": "capture"}'},
    )
    assert as_the_board.status_code == 422 and "upload|record|import" in as_the_board.text
    assert len(clip_files(service.data_dir, "hostile")) == 2


def test_oversized_upload_is_refused_before_buffering(api: httpx.Client) -> None:
    create_dataset(api, "oversized")
    response = upload(api, "oversized", b"\0" * 11_000_000, "huge.wav")
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_an_upload_body_that_stalls_or_trickles_is_cut_off_with_408(tmp_path: Path) -> None:
    env = {"WAKETRAIN_BODY_TIMEOUT_SECONDS": "1"}
    service = Service(tmp_path / "data", args=("--no-worker",), env=env).start()
    try:
        bearer = {"Authorization": f"Bearer {service.token()}"}
        path = "/datasets/tars-default/recordings"
        with start_partial_upload(service, path, 5_000_000, bearer) as stalled:
            status, body = read_answer(stalled)
            assert status == 408 and "did not arrive within 1 s" in body.decode()
            assert stalled.recv(1) == b""  # and the connection is closed
        with start_partial_upload(service, path, 5_000_000, bearer) as trickling:
            # A byte every 0.2 s: never silent long, but the body never ends either.
            while not select.select([trickling], [], [], 0.2)[0]:
                trickling.sendall(b"\0")
            status, body = read_answer(trickling)
            assert status == 408 and "did not arrive within 1 s" in body.decode()
        clip = sorted(shared("wake/computer").glob("*.flac"))[0]
        with service.client() as client:  # a steady upload still lands
            assert upload(client, "tars-default", clip.read_bytes(), clip.name).status_code == 201
    finally:
        service.stop()


def test_an_upload_sent_again_with_its_idempotency_key_is_stored_once(
    service: Service, api: httpx.Client
) -> None:
    """A client that lost the answer (a crash, a dropped connection) sends the file again
    with the same key, even several times at once: one clip, the same answer."""
    create_dataset(api, "retried")
    first, other = audio_files("wake/computer")[:2]
    key = {"Idempotency-Key": "3f0c9a52-0d7e-4b4e-9a51-2f7c1f1f5e10"}

    def send(path: Path, headers: dict[str, str]) -> httpx.Response:
        return api.post(
            "/datasets/retried/recordings",
            files={"file": (path.name, path.read_bytes())},
            data={"metadata": '{"label": "positive"}'},
            headers=headers,
        )

    stored = send(first, key)
    assert stored.status_code == 201, stored.text
    with ThreadPoolExecutor(4) as pool:
        retries = list(pool.map(lambda _: send(first, key), range(4)))
    assert {r.status_code for r in retries} == {200}
    assert {r.json()["id"] for r in retries} == {stored.json()["id"]}
    assert len(clip_files(service.data_dir, "retried")) == 1

    reused = send(other, key)  # the key belongs to the first file
    assert reused.status_code == 409 and "new key" in reused.json()["detail"]
    malformed = send(other, {"Idempotency-Key": "x y"})
    assert malformed.status_code == 422 and "UUID" in malformed.json()["detail"]
    without = [send(other, {}) for _ in range(2)]  # no key: each request is a new clip
    assert [r.status_code for r in without] == [201, 201]
    assert len(clip_files(service.data_dir, "retried")) == 3


def test_twenty_concurrent_uploads_all_land_once(service: Service, api: httpx.Client) -> None:
    create_dataset(api, "concurrent")
    files = audio_files("wake/view_glass")[:20]
    barrier = Barrier(len(files))

    def send(path: Path) -> httpx.Response:
        barrier.wait()
        return upload(api, "concurrent", path.read_bytes(), path.name)

    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        responses = list(pool.map(send, files))
    assert [r.status_code for r in responses] == [201] * 20
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 20
    assert {r.json()["original_filename"] for r in responses} == {p.name for p in files}
    assert {f.stem for f in clip_files(service.data_dir, "concurrent")} == ids
    assert set(labels_json(service, "concurrent")) == ids
    assert api.get("/datasets/concurrent").json()["clip_counts"]["positive"] == 20


def test_trying_with_no_current_model_says_what_to_do(api: httpx.Client) -> None:
    clip = next(iter(audio_files("wake/computer"))).read_bytes()
    response = api.post("/models/current/score", files={"file": ("try.flac", clip)})
    assert response.status_code == 404
    assert "no current model" in response.json()["detail"]


def test_deploy_target_says_what_is_missing_when_no_board_is_configured(
    api: httpx.Client,
) -> None:
    target = api.get("/deploy/target").json()
    assert target["configured"] is False and "DEPLOY_HOST" in target["reason"]
    refused = api.post("/deploy", json={})
    assert refused.status_code == 422 and "DEPLOY_HOST" in refused.json()["detail"]
