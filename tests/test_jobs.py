"""Training jobs as a service: the real HTTP API, a real worker process, real recordings."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import ADMIN_PASSWORD, Service, Worker, run_cli, shared
from waketrain.jobs.liveness import (
    forget_worker,
    mark_worker_alive,
    recover_worker,
    service_health,
)
from waketrain.settings import Settings
from waketrain.store.analysis import analysis_pool, analyze_pending_clips, measure_in_processes
from waketrain.store.clips import ClipMetadata, import_directory, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.models import Deployment, Job, utcnow
from waketrain.store.startup import start_registry

TINY = {"backend": "marblenet", "synth.use": "off", "batch_size": 32,
        "negatives_per_positive": 1.0, "model.channels": 16, "model.mel_bands": 32,
        "augment.hard_negatives_per_positive": 0.5}  # fmt: skip
WORKER_ENV = {
    "WAKETRAIN_HEARTBEAT_SECONDS": "0.5",
    "WAKETRAIN_STALE_JOB_SECONDS": "4",
    # Configured once for the service, used by every job its workers run.
    "WAKETRAIN_NOISE_DIRS": str(shared("noise/misc")),
    "WAKETRAIN_EVAL_NEGATIVE_DIRS": ":".join(
        str(shared(folder)) for folder in ("speech/librispeech", "speech/two_speakers")
    ),
}


def training_registry(root: Path, db_url: str | None = None) -> Path:
    """A registry with a small real dataset, imported and analyzed before the service starts."""
    settings = Settings(data_dir=root, admin_password=ADMIN_PASSWORD, db_url=db_url)
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="computer", phrase="computer"), "test")
    for label, folder, n in (("positive", "wake/computer", 60), ("negative", "wake/snowboy", 45)):
        files = sorted(shared(folder).glob("*.flac"))[:n]
        import_files(registry, files, "computer", ClipMetadata(label=label), "t")
    import_directory(
        registry, shared("noise/room_tone"), "computer", ClipMetadata(label="noise"), "t"
    )
    with analysis_pool(2) as pool:
        analyze_pending_clips(registry, measure_in_processes(pool))
    registry.close()
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return training_registry(tmp_path_factory.mktemp("jobs-registry"))


@pytest.fixture(scope="module")
def service(data_dir: Path) -> Iterator[Service]:
    svc = Service(data_dir, args=("--no-worker",), env=WORKER_ENV).start()
    yield svc
    svc.stop()


@pytest.fixture()
def worker(data_dir: Path) -> Iterator[Worker]:
    w = Worker(data_dir, env=WORKER_ENV).start()
    yield w
    w.stop()


def submit(api: httpx.Client, **overrides: object) -> str:
    response = api.post("/train", json={"dataset_id": "computer",
                                        "config_overrides": {**TINY, **overrides}})  # fmt: skip
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_for(api: httpx.Client, job_id: str, done: Callable[[dict[str, object]], bool],
             timeout: float = 180) -> dict[str, object]:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = api.get(f"/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")


def test_job_runs_through_all_stages_live_and_its_artifacts_download(
    service: Service, api: httpx.Client, worker: Worker
) -> None:
    job_id = submit(api, epochs=2)
    token = api.headers["Authorization"].split()[1]
    stages, statuses = [], []
    url = service.url.replace("http", "ws") + "/status?after=0"
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        while "succeeded" not in statuses and "failed" not in statuses:
            event = json.loads(ws.recv(timeout=180))
            if event["payload"].get("job_id") != job_id:
                continue
            statuses.append(event["payload"]["status"])
            if event["type"] == "job.progress":
                stages.append(event["payload"]["stage"])
                assert (
                    "gpu" in event["payload"]["metrics"] or event["payload"]["stage"] == "training"
                )
    assert statuses[0] == "queued" and statuses[-1] == "succeeded", statuses
    assert sorted(set(stages), key=stages.index) == ["data_prep", "training", "eval", "export"]

    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 1
    assert {"frr", "fa_per_hour", "auc", "threshold"} <= set(job["metrics"])
    # The dataset's metrics.json on disk follows the job, not only the next clip change: the
    # worker rewrites it just after committing the status the API already reports.
    projection = service.data_dir / "datasets" / "computer" / "metrics.json"
    deadline = time.monotonic() + 10
    while (on_disk := json.loads(projection.read_text()))["last_job"]["status"] != "succeeded":
        assert time.monotonic() < deadline, on_disk["last_job"]
        time.sleep(0.05)
    assert on_disk["last_job"]["id"] == job_id
    assert on_disk["last_job"]["metrics"] == job["metrics"]
    metadata = api.get(f"/jobs/{job_id}/artifacts/metadata.json").json()
    assert metadata["job_id"] == job_id and metadata["threshold"] == job["metrics"]["threshold"]
    onnx = api.get(f"/jobs/{job_id}/artifacts/wake_model.onnx")
    assert onnx.status_code == 200 and len(onnx.content) > 10_000
    assert api.get(f"/jobs/{job_id}/artifacts/../../waketrain.db").status_code == 404
    bundle = zipfile.ZipFile(io.BytesIO(api.get(f"/jobs/{job_id}/artifacts.zip").content))
    assert {"export/wake_model.onnx", "export/metadata.json", "config.json", "logs.txt"} <= set(
        bundle.namelist()
    )
    logs = api.get(f"/jobs/{job_id}/logs", params={"follow": True}).text
    assert "epoch 2/2" in logs and "exported" in logs
    assert "(dataset + 1 folders); room" in logs and "(dataset + 2 folders)" in logs
    assert metadata["metrics"]["negative_hours"] * 60 > 0.76 + 0.46  # the configured speech

    current = api.get("/models/current").json()
    assert current["job"]["id"] == job_id
    link = service.data_dir / "models" / "current"
    assert link.is_symlink() and link.resolve() == service.data_dir / "jobs" / job_id / "export"
    assert api.get("/datasets/computer").json()["last_job"]["id"] == job_id
    lineage = json.loads((service.data_dir / "artifacts.json").read_text())
    assert lineage["current"] == job_id
    assert lineage["models"][job_id]["dataset_sha256"] == metadata["dataset_sha256"]


def test_bless_repoints_current_atomically(
    service: Service, api: httpx.Client, worker: Worker
) -> None:
    earlier = [job["id"] for job in api.get("/jobs").json()]
    first, second = submit(api, epochs=1), submit(api, epochs=1)  # two at once: run in turn
    jobs = [
        wait_for(api, j, lambda job: job["status"] in ("succeeded", "failed"))
        for j in (first, second)
    ]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    assert jobs[0]["finished_at"] <= jobs[1]["started_at"]  # one worker, one job at a time
    # Auto-bless took the second only if it was at least as good on the same audio. The worker
    # blesses right after it marks the job succeeded, so a reader may be in between.
    comparison = jobs[1]["metrics"]["comparison"]
    assert comparison is not None and comparison["current_job_id"] in (first, *earlier)
    deadline = time.monotonic() + 30
    now = api.get("/models/current").json()["job"]["id"]
    while comparison["at_least_as_good"] and now != second and time.monotonic() < deadline:
        time.sleep(0.1)
        now = api.get("/models/current").json()["job"]["id"]
    assert (now == second) == comparison["at_least_as_good"]
    assert jobs[1]["metrics"]["not_better_than_current"] == (not comparison["at_least_as_good"])
    other = second if now != second else first
    assert api.post(f"/jobs/{other}/bless").status_code == 200  # the operator promotes
    assert os.readlink(service.data_dir / "models" / "current").endswith(f"{other}/export")
    assert api.get("/models/current").json()["job"]["id"] == other


def test_try_scores_a_recording_as_the_detector_would_through_both_doors(
    service: Service, api: httpx.Client, worker: Worker
) -> None:
    if api.get("/models/current").json()["job"] is None:
        wait_for(api, submit(api, epochs=1), lambda job: job["status"] == "succeeded")
    current = api.get("/models/current").json()["job"]
    clip = shared("wake/computer").glob("*.flac").__next__().read_bytes()
    response = api.post("/models/current/score", files={"file": ("try.flac", clip)})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["job_id"] == current["id"]
    assert result["threshold"] == current["metrics"]["threshold"]
    assert len(result["times"]) == len(result["scores"]) > 0
    assert result["times"][-1] <= result["duration_seconds"] + result["hop_seconds"]
    pairs = zip(result["times"], result["scores"], strict=True)
    above = [t for t, score in pairs if score >= result["threshold"]]
    assert set(result["detections"]) <= set(above) and result["fired"] == bool(above)

    path = service.data_dir.parent / "try.flac"
    path.write_bytes(clip)
    cli = run_cli(service.data_dir, "try", str(path))
    assert cli.returncode == 0, cli.stderr
    assert f"peak score {max(result['scores']):.4f}" in cli.stdout
    assert ("fired at" in cli.stdout) == result["fired"]

    garbage = api.post("/models/current/score", files={"file": ("try.wav", b"not audio" * 100)})
    assert garbage.status_code == 415 and "WAV" in garbage.json()["detail"]


def test_cancel_is_honoured_within_seconds(api: httpx.Client, worker: Worker) -> None:
    job_id = submit(api, epochs=200)
    wait_for(api, job_id, lambda job: job["stage"] == "training")
    asked = time.monotonic()
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 200
    job = wait_for(api, job_id, lambda job: job["status"] == "cancelled", timeout=30)
    assert time.monotonic() - asked < 15
    assert "cancelled" in str(job["error"])
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 409


def test_killed_worker_job_is_recovered_by_a_new_worker(data_dir: Path, api: httpx.Client) -> None:
    first = Worker(data_dir, env=WORKER_ENV).start()
    job_id = submit(api, epochs=4)
    wait_for(api, job_id, lambda job: job["stage"] == "training")
    first.kill()  # SIGKILL mid-job: no clean-up runs
    second = Worker(data_dir, env=WORKER_ENV).start()
    try:
        job = wait_for(api, job_id, lambda job: job["status"] in ("succeeded", "failed"))
    finally:
        second.stop()
    assert job["status"] == "succeeded", job["error"]
    assert job["attempt"] == 2
    events = api.get("/events", params={"after": 0, "limit": 1000}).json()
    requeued = [
        e for e in events if e["type"] == "job.requeued" and e["payload"]["job_id"] == job_id
    ]
    assert requeued and "stopped sending heartbeats" in requeued[0]["payload"]["reason"]


def test_refusals_name_the_problem(api: httpx.Client) -> None:
    api.post("/datasets", json={"id": "tiny", "phrase": "computer"})
    small = api.post("/train", json={"dataset_id": "tiny"})
    assert small.status_code == 422 and "training needs at least 50" in small.json()["detail"]
    bad = api.post("/train", json={"dataset_id": "computer", "config_overrides": {"epochs": 0}})
    assert bad.status_code == 422 and "epochs" in bad.json()["detail"]
    unknown = api.post("/train", json={"dataset_id": "computer", "config_overrides": {"lr2": 1}})
    assert unknown.status_code == 422 and "Unknown config key 'lr2'" in unknown.json()["detail"]
    assert api.get("/jobs/not-a-uuid").status_code == 404


def test_serve_alone_runs_jobs_with_its_embedded_worker(data_dir: Path) -> None:
    """The operator's one command: `waketrain serve` queues and runs a job by itself."""
    alone = Service(data_dir, env=WORKER_ENV).start()
    try:
        with alone.client() as client:
            job_id = submit(client, epochs=1)
            job = wait_for(client, job_id, lambda job: job["status"] in ("succeeded", "failed"))
        assert job["status"] == "succeeded", job["error"]
    finally:
        alone.stop()


def test_serve_restarts_a_killed_worker_and_requeues_its_job_at_once(tmp_path: Path) -> None:
    """kill -9 of the embedded worker: /healthz says so until a new worker is up, and the job
    it ran is requeued at once, not after the stale window (600 s here), and finishes."""
    data = training_registry(tmp_path / "registry")
    service = Service(data, env={**WORKER_ENV, "WAKETRAIN_STALE_JOB_SECONDS": "600"}).start()
    try:
        with service.client() as api:
            job_id = submit(api, epochs=4)
            running = wait_for(api, job_id, lambda job: job["stage"] == "training")
            killed = str(running["worker_id"])
            os.kill(int(killed.rsplit(":", 1)[1]), signal.SIGKILL)
            degraded = wait_for_health(service, "degraded")
            assert "No training worker is running" in degraded["reason"]
            assert degraded["workers"] == 0
            assert wait_for_health(service, "ok")["workers"] == 1
            job = wait_for(api, job_id, lambda job: job["status"] in ("succeeded", "failed"))
            events = api.get("/events", params={"type": "job.requeued", "limit": 1000}).json()
        assert job["status"] == "succeeded", job["error"]
        assert job["attempt"] == 2 and job["worker_id"] != killed  # a new worker ran it
        reasons = [e["payload"]["reason"] for e in events if e["payload"]["job_id"] == job_id]
        assert reasons == [f"worker {killed} was killed by SIGKILL (attempt 1)"]
        log = service.log_path.read_text()
        assert "worker died" in log and "was killed by SIGKILL" in log
    finally:
        service.stop()


def wait_for_health(service: Service, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (health := service.health()).get("status") != status:
        assert time.monotonic() < deadline, f"/healthz never said {status!r}: {health}"
        time.sleep(0.05)
    return health


def test_a_dead_workers_job_and_deployment_are_recovered_and_no_one_elses(
    tmp_path: Path, db_url: str | None
) -> None:
    settings = Settings(data_dir=tmp_path, admin_password="x", db_url=db_url)
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="held", phrase="computer"), "t")
    dead, alive = "host:101", "host:102"
    jobs = {worker: str(uuid.uuid4()) for worker in (dead, alive)}
    with registry.sessions.begin() as session:
        for worker, job_id in jobs.items():
            session.add(
                Job(
                    id=job_id,
                    dataset_id="held",
                    status="running",
                    config={},
                    worker_id=worker,
                    heartbeat_at=utcnow(),
                    attempt=1,
                    created_by="t",
                )
            )
        session.flush()
        session.add(
            Deployment(
                id="d1",
                job_id=jobs[alive],
                dataset_id="held",
                target="board",
                status="transferring",
                worker_id=dead,
                heartbeat_at=utcnow(),
                runs=1,
                log="",
                created_by="t",
            )
        )
    for worker in (dead, alive):
        mark_worker_alive(registry, worker)

    recovered = recover_worker(registry, dead, "was killed by SIGKILL")
    assert [(job.id, job.status, job.worker_id) for job in recovered.jobs] == [
        (jobs[dead], "queued", None)
    ]
    assert [(row.id, row.status, row.worker_id) for row in recovered.deployments] == [
        ("d1", "pending", None)
    ]
    assert f"worker {dead} was killed by SIGKILL while transferring" in recovered.deployments[0].log
    with registry.sessions() as session:
        untouched = session.get(Job, jobs[alive])
        assert untouched is not None and untouched.status == "running"
    assert service_health(registry).workers == 1
    forget_worker(registry, alive)
    assert service_health(registry).status == "degraded"
    registry.close()
