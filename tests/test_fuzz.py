"""Fuzzing the doors: hypothesis against the upload decoder, schemathesis against the live API.

The decoder gets arbitrary bytes and real recordings with damaged headers; the only exception
it may raise is its own `AudioRejected`. The API gets schema-generated requests with a valid
bearer token, and uploads of damaged real recordings; no answer may be a 5xx, and no refused
request may leave a file in the registry's clips folders.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import Service, shared
from waketrain.api.app import create_app
from waketrain.audio.decode import AudioRejected, ClipLimits, decode_upload
from waketrain.settings import Settings

LIMITS = ClipLimits(max_bytes=10_000_000, min_seconds=0.3, max_seconds=30.0)
# Values that header fields (sizes, rates, counts) rarely hold by chance and parsers mishandle.
EXTREME_WORDS = [0, 1, 2, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
HEADER_BYTES = 96  # covers RIFF/fmt/data (44 bytes) and fLaC + STREAMINFO (42) and a bit more
FUZZ_HEALTH_CHECKS = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def real_recordings() -> dict[str, bytes]:
    """Small real clips as uploaded: shared FLACs, and one of them as WAV, OGG and MP3."""
    flacs = sorted(shared("wake/computer").glob("*.flac"), key=lambda p: p.stat().st_size)
    speech, rate = sf.read(io.BytesIO(flacs[0].read_bytes()), dtype="float32")
    stereo = np.stack([speech, speech[::-1]], axis=1)  # (n, 2)

    def encoded(samples: np.ndarray, container: str, subtype: str) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, samples, rate, format=container, subtype=subtype)
        return buffer.getvalue()

    return {
        "flac": flacs[0].read_bytes(),
        "flac-other-speaker": sorted(shared("wake/snowboy").glob("*.flac"))[0].read_bytes(),
        "wav-pcm16": encoded(speech, "WAV", "PCM_16"),
        "wav-float-stereo": encoded(stereo, "WAV", "FLOAT"),
        "wav-pcm8": encoded(speech, "WAV", "PCM_U8"),
        "ogg-vorbis": encoded(speech, "OGG", "VORBIS"),
        "mp3": encoded(speech, "MP3", "MPEG_LAYER_III"),
    }


RECORDINGS = real_recordings()


@dataclass(frozen=True)
class Damage:
    """Which real recording, and what to do to it; small, so a failing example reads well."""

    recording: str
    byte_edits: tuple[tuple[int, int], ...]  # (offset, new byte) inside the header
    word_edits: tuple[tuple[int, int, str], ...]  # (offset, 32-bit value, byte order)
    cut_at: int | None  # keep only this many bytes

    def apply(self) -> bytes:
        data = bytearray(RECORDINGS[self.recording])
        for offset, value in self.byte_edits:
            data[offset] = value
        for offset, word, order in self.word_edits:
            data[offset : offset + 4] = word.to_bytes(4, "little" if order == "little" else "big")
        return bytes(data[: self.cut_at])


@st.composite
def damaged_recording(draw: st.DrawFn) -> Damage:
    """A real recording with some header bytes or 32-bit fields overwritten, maybe cut short."""
    name = draw(st.sampled_from(sorted(RECORDINGS)))
    size = len(RECORDINGS[name])
    header = min(HEADER_BYTES, size)
    byte_edits = st.tuples(st.integers(0, header - 1), st.integers(0, 255))
    word_edits = st.tuples(
        st.integers(0, header - 4),
        st.sampled_from(EXTREME_WORDS),
        st.sampled_from(["little", "big"]),
    )
    return Damage(
        recording=name,
        byte_edits=tuple(draw(st.lists(byte_edits, max_size=6))),
        word_edits=tuple(draw(st.lists(word_edits, max_size=3))),
        cut_at=draw(st.none() | st.integers(0, size)),
    )


def decode_or_reject(data: bytes) -> None:
    """Decode; a refusal must be the decoder's own error with a sentence and an HTTP status."""
    try:
        decoded = decode_upload(data, LIMITS)
    except AudioRejected as exc:
        assert str(exc) and exc.status in (413, 415, 422)
        return
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert LIMITS.min_seconds <= decoded.duration_seconds <= LIMITS.max_seconds + 0.01
    assert np.isfinite(decoded.samples).all()


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_decoder_refuses_arbitrary_bytes_with_its_own_error(data: bytes) -> None:
    decode_or_reject(data)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(sorted(RECORDINGS)), st.binary(min_size=1, max_size=512))
def test_decoder_refuses_a_real_header_followed_by_garbage(name: str, tail: bytes) -> None:
    decode_or_reject(RECORDINGS[name][:HEADER_BYTES] + tail)


@settings(max_examples=400, deadline=None, database=None)
@given(damaged_recording())
def test_decoder_refuses_real_recordings_with_damaged_headers(damage: Damage) -> None:
    decode_or_reject(damage.apply())


# --- the API, driven by its own OpenAPI schema -------------------------------------------

FUZZ_DATASET = "fuzz"
UPLOAD = "POST /datasets/{dataset_id}/recordings"
API_EXAMPLES_PER_OPERATION = 30
UPLOAD_EXAMPLES = 80
SKIPPED_OPERATIONS = {
    # Revokes the token every other request is made with; tests/test_auth.py covers it.
    "POST /auth/logout",
}


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with no training worker: a fuzzed POST /train must not start a real job."""
    svc = Service(tmp_path_factory.mktemp("fuzz-registry"), args=("--no-worker",)).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def bearer(fuzz_service: Service) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {fuzz_service.token()}"}
    created = httpx.post(
        fuzz_service.url + "/datasets",
        json={"id": FUZZ_DATASET, "phrase": "computer"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return headers


@pytest.fixture(scope="module")
def api_schema(fuzz_service: Service, bearer: dict[str, str]) -> schemathesis.BaseSchema:
    """The live schema; it is behind login like everything else.

    Driven with `operation.as_strategy()` under plain hypothesis rather than schemathesis'
    own pytest loader (`from_fixture`), which sets `request.node._nodeid`, gone in pytest 9.
    """
    return schemathesis.openapi.from_url(fuzz_service.url + "/openapi.json", headers=bearer)


def clip_files_and_rows(data_dir: Path) -> tuple[set[str], set[str]]:
    """(`dataset/file` under every datasets/*/clips, `dataset/<id>.wav` for every clip row)."""
    files = {
        f"{path.parent.parent.name}/{path.name}"
        for path in (data_dir / "datasets").glob("*/clips/*")
    }
    database = f"file:{data_dir / 'waketrain.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(database, uri=True)) as db:
        rows = {
            f"{dataset}/{clip}.wav"
            for clip, dataset in db.execute("SELECT id, dataset_id FROM clips")
        }
    return files, rows


def operation_labels() -> list[str]:
    """Every operation of the schema the app factory builds; the test fuzzes the live one."""
    with tempfile.TemporaryDirectory() as data_dir:
        paths = create_app(Settings(data_dir=Path(data_dir))).openapi()["paths"]
    return [
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method in operations
        if f"{method.upper()} {path}" not in SKIPPED_OPERATIONS
    ]


@pytest.mark.parametrize("label", operation_labels())
def test_api_never_answers_5xx_and_refused_requests_leave_no_clip_file(
    label: str,
    api_schema: schemathesis.BaseSchema,
    fuzz_service: Service,
    bearer: dict[str, str],
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"the live schema has no {label}"
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=API_EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=FUZZ_HEALTH_CHECKS,
    )
    @given(cases)
    def request_answers_without_5xx(case: schemathesis.Case) -> None:
        if label == UPLOAD:
            case.path_parameters = {"dataset_id": FUZZ_DATASET}  # reach the decoder, not a 404
        files_before, _ = clip_files_and_rows(fuzz_service.data_dir)
        response = case.call(headers=bearer, timeout=60)
        case.validate_response(response, checks=[not_a_server_error])
        files, rows = clip_files_and_rows(fuzz_service.data_dir)
        assert files == rows, f"clip files without a row, or rows without a file: {files ^ rows}"
        if response.status_code != 201:
            assert files == files_before, f"a refused request left {files - files_before}"

    request_answers_without_5xx()
    # Nothing above may have revoked the token: otherwise the run only fuzzed the 401 path.
    assert httpx.get(fuzz_service.url + "/auth/me", headers=bearer).status_code == 200


@st.composite
def upload_form(draw: st.DrawFn) -> tuple[Damage, str, str]:
    """(what the file holds, the file name, the metadata field) of one upload."""
    metadata = st.one_of(
        st.builds(
            lambda label, speaker: json.dumps({"label": label, "speaker": speaker}),
            st.sampled_from(["positive", "negative", "noise"]),
            st.none() | st.text(max_size=20),
        ),
        st.text(max_size=40),
    )
    tricky_names = ["clip.flac", "../../waketrain.db", "..", "a\\b.wav", ""]
    filename = st.sampled_from(tricky_names) | st.text(max_size=60)
    return draw(damaged_recording()), draw(filename), draw(metadata)


def test_fuzzed_uploads_of_damaged_real_recordings_answer_4xx_or_store_a_whole_clip(
    fuzz_service: Service, bearer: dict[str, str]
) -> None:
    with httpx.Client(base_url=fuzz_service.url, headers=bearer, timeout=60) as client:

        @settings(
            max_examples=UPLOAD_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=FUZZ_HEALTH_CHECKS,
        )
        @given(upload_form())
        def upload_answers_4xx_or_201(form: tuple[Damage, str, str]) -> None:
            damage, filename, metadata = form
            files_before, _ = clip_files_and_rows(fuzz_service.data_dir)
            response = client.post(
                f"/datasets/{FUZZ_DATASET}/recordings",
                files={"file": (filename, damage.apply(), "application/octet-stream")},
                data={"metadata": metadata},
            )
            files, rows = clip_files_and_rows(fuzz_service.data_dir)
            assert files == rows, (
                f"clip files without a row, or rows without a file: {files ^ rows}"
            )
            if response.status_code == 201:
                clip = response.json()
                assert files - files_before == {f"{FUZZ_DATASET}/{clip['id']}.wav"}
                stored = fuzz_service.data_dir / "datasets" / FUZZ_DATASET / "clips"
                info = sf.info(str(stored / f"{clip['id']}.wav"))
                assert (info.samplerate, info.channels) == (16_000, 1)
            else:
                assert response.status_code in (400, 413, 415, 422), response.text
                assert response.json()["detail"], response.text
                assert files == files_before, f"a refused upload left {files - files_before}"

        upload_answers_4xx_or_201()
