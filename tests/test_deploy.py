"""Deploy over SSH to a real OpenSSH server on loopback, standing in for the board."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.board import Board, keygen
from tests.conftest import (
    ADMIN_PASSWORD,
    Service,
    Worker,
    free_port,
    run_cli,
    running,
    service_env,
    shared,
)
from waketrain.deploy.runner import run_claimed
from waketrain.deploy.service import cancel_deployment, list_deployments, start_deployment
from waketrain.jobs import queue
from waketrain.jobs.worker import WorkerOptions, run_job
from waketrain.settings import Settings
from waketrain.store.clips import ClipMetadata, import_files
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.events import events_after
from waketrain.store.registry import Registry
from waketrain.store.startup import start_registry

TINY = {"backend": "marblenet", "synth.use": "off", "epochs": 1, "batch_size": 16,
        "model.channels": 16, "model.mel_bands": 32}  # fmt: skip
TINY_HEAD = {"backend": "oww_head", "epochs": 2, "batch_size": 64, "head.positive_variants": 1,
             "head.negative_variants": 1, "synth.use": "off"}  # fmt: skip
# The new release's post command fails; the previous release's succeeds (so rollback works).
FAIL_ON = (
    'case "$(readlink current)" in *{model}*) echo "wake service did not start" >&2; exit 7;; esac'
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Three succeeded jobs, run by the real worker code: two MarbleNet, one openWakeWord head."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("deploy-registry"),
        admin_password=ADMIN_PASSWORD,
        min_positive_clips=10,
        min_negative_clips=10,
    )
    registry = start_registry(settings).registry
    create_dataset(registry, DatasetCreate(id="computer", phrase="computer"), "test")
    for folder, label in (("wake/computer", "positive"), ("wake/snowboy", "negative")):
        files = sorted(shared(folder).glob("*.flac"))[:16]
        import_files(registry, files, "computer", ClipMetadata(label=label), "t")
    for overrides in (TINY, {**TINY, "seed": 7}, TINY_HEAD):
        queue.submit_job(registry, "computer", overrides, "test")
        job = queue.claim_next_job(registry, "test-worker")
        assert job is not None
        assert run_job(registry, job, "test-worker", WorkerOptions()) == "succeeded"
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def jobs(registry: Registry) -> dict[str, str]:
    """backend-numbered job id -> model id: marblenet-1, marblenet-2, oww_head-1."""
    found: dict[str, str] = {}
    for job in reversed(queue.list_jobs(registry, "computer", 10)):
        backend = job.config["backend"]
        n = sum(key.startswith(backend) for key in found) + 1
        found[f"{backend}-{n}"] = job.id
    return found


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    board = Board(tmp_path).start()
    yield board
    board.stop()


def model_id(registry: Registry, job_id: str) -> str:
    export = registry.layout.jobs / job_id / "export" / "metadata.json"
    return str(json.loads(export.read_text())["model_id"])


def deploy(
    registry: Registry, board: Board, job_id: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`waketrain deploy --job ID` as the operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "waketrain", "deploy", "--job", job_id],
        env=service_env(registry.layout.root, **board.env(**env)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploys_land_keep_the_previous_release_and_run_the_post_command(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    post = 'echo "restarted on $(readlink current)" >> post.log'
    first, second = jobs["marblenet-1"], jobs["marblenet-2"]
    for job_id in (first, second):
        run = deploy(registry, board, job_id, DEPLOY_POST_COMMAND=post)
        assert run.returncode == 0, run.stderr
        assert "succeeded on" in run.stdout and "board: deploy_hotword: applied" in run.stderr
    root = board.deploy_path
    assert (root / "current").readlink() == Path(f"releases/{model_id(registry, second)}")
    previous = root / "releases" / model_id(registry, first)
    assert (previous / "wake_model.onnx").is_file() and (previous / "bundle.tar.gz").is_file()
    assert not list((root / "incoming").glob("*.tar.gz*"))  # staged uploads are cleaned up
    export = registry.layout.jobs / second / "export"
    assert (root / "current" / "wake_model.onnx").read_bytes() == (
        export / "wake_model.onnx"
    ).read_bytes()
    assert (root / "post.log").read_text().splitlines() == [
        f"restarted on releases/{model_id(registry, job_id)}" for job_id in (first, second)
    ]
    bundles = sorted(registry.layout.transfers.glob("*.tar.gz"))
    assert len(bundles) == 2 and all(Path(f"{b}.sha256").is_file() for b in bundles)
    record = list_deployments(registry, limit=1)[0]
    assert (record.job_id, record.status, record.attempts) == (second, "succeeded", 1)
    assert "uploaded" in record.log and record.bundle == bundles[-1].name
    statuses = [
        e.payload["status"]
        for e in events_after(registry, 0, 1000)
        if e.payload.get("deployment_id") == record.id
    ]
    assert statuses == ["pending", "transferring", "applying", "succeeded"]


def test_a_failing_post_command_rolls_back_to_the_previous_release(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    good, bad = jobs["marblenet-1"], jobs["marblenet-2"]
    bad_model = model_id(registry, bad)
    assert deploy(registry, board, good).returncode == 0
    run = deploy(registry, board, bad, DEPLOY_POST_COMMAND=FAIL_ON.format(model=bad_model))
    assert run.returncode == 1
    assert "rolled_back on" in run.stdout
    assert "wake service did not start" in run.stderr and "rolled back to" in run.stderr
    current = (board.deploy_path / "current").readlink()
    assert current == Path(f"releases/{model_id(registry, good)}")
    record = list_deployments(registry, limit=1)[0]
    assert (record.job_id, record.status) == (bad, "rolled_back")
    assert "wake service did not start" in (record.remote_stderr or "")
    assert record.error and "rolled back to" in record.error and record.finished_at


def test_a_wrong_host_key_is_refused_before_anything_is_sent(
    registry: Registry, jobs: dict[str, str], board: Board, tmp_path: Path
) -> None:
    impostor = keygen(tmp_path / "impostor")
    kind, key = Path(f"{impostor}.pub").read_text().split()[:2]
    board.known_hosts.write_text(f"[127.0.0.1]:{board.port} {kind} {key}\n")
    run = deploy(registry, board, jobs["marblenet-1"])
    assert run.returncode == 1
    assert "does not match" in run.stderr
    assert not (board.deploy_path / "incoming").exists()


def test_an_unreachable_board_is_retried_then_fails_clearly(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    port = str(free_port())  # nothing listens there
    run = deploy(registry, board, jobs["marblenet-1"], DEPLOY_PORT=port, DEPLOY_ATTEMPTS="2")
    assert run.returncode == 1
    assert "attempt 1 failed: Cannot reach 127.0.0.1" in run.stderr
    assert "after 2 attempts" in run.stderr


def test_tars_compose_places_the_head_edits_env_and_recreates_the_service(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    root = board.deploy_path
    (root / ".env").write_text(
        "MQTT_USER=tars\nWAKE_MODEL_PATH=/models/openwakeword/hey_tars.tflite\n"
    )
    board.stub("docker", f'echo "$@" >> {board.root}/docker.calls')
    head = jobs["oww_head-1"]
    load = 'import onnxruntime as o; o.InferenceSession("current/wake_model.onnx")'
    health = f"{sys.executable} -c '{load}'"
    run = deploy(registry, board, head, DEPLOY_TARGET="tars-compose", DEPLOY_HEALTH_COMMAND=health)
    assert run.returncode == 0, run.stderr
    name = f"{model_id(registry, head)}.onnx"
    placed = root / "models" / "openwakeword" / name
    export = registry.layout.jobs / head / "export"
    assert placed.read_bytes() == (export / "wake_model.onnx").read_bytes()
    metadata = json.loads((export / "metadata.json").read_text())
    env = (root / ".env").read_text().splitlines()
    assert "MQTT_USER=tars" in env and f"WAKE_MODEL_PATH=/models/openwakeword/{name}" in env
    assert f"WAKE_DETECTION_THRESHOLD={metadata['threshold']}" in env
    assert f"WAKE_MIN_RETRIGGER_SEC={metadata['refractory_seconds']}" in env
    calls = (board.root / "docker.calls").read_text().splitlines()
    assert calls == ["compose -f ops/compose.yml up -d --force-recreate wake-activation"]


def test_tars_compose_refuses_a_model_it_cannot_run(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    run = deploy(registry, board, jobs["marblenet-1"], DEPLOY_TARGET="tars-compose")
    assert run.returncode == 1
    assert "openWakeWord heads only" in run.stderr
    assert not (board.deploy_path / "incoming").exists()


def test_the_remote_script_is_posix_sh_and_shellcheck_clean() -> None:
    script = Path(__file__).resolve().parents[1] / "deploy" / "remote" / "deploy_hotword.sh"
    run = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_offline_bundle_applies_from_a_usb_stick_with_two_commands(
    registry: Registry, jobs: dict[str, str], tmp_path: Path
) -> None:
    """The README's fallback: `waketrain export` onto the stick; on the board, unpack the
    script from the bundle and run it. No SSH involved."""
    stick, board = tmp_path / "usb", tmp_path / "board"
    board.mkdir()
    export = run_cli(
        registry.layout.root, "export", "--job", jobs["marblenet-1"], "--out", str(stick)
    )
    assert export.returncode == 0, export.stderr
    bundle = Path(export.stdout.strip())
    assert bundle.parent == stick and "tar -xzf" in export.stderr
    assert sorted(p.name for p in stick.iterdir()) == [bundle.name, f"{bundle.name}.sha256"]
    name = bundle.name
    env = {"PATH": "/usr/bin:/bin", "DEPLOY_PATH": str(board)}
    for command in (f"tar -xzf {name} deploy_hotword.sh", f"sh deploy_hotword.sh {name}"):
        run = subprocess.run(
            command, shell=True, cwd=stick, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
    shipped = queue.get_job(registry, jobs["marblenet-1"]).metrics or {}
    assert (board / "current").readlink() == Path(f"releases/{shipped['model_id']}")

    (stick / name).write_bytes((stick / name).read_bytes()[:-10])  # a cut-off copy
    run = subprocess.run(
        f"sh deploy_hotword.sh {name}", shell=True, cwd=stick, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 1 and "checksum mismatch" in run.stderr

    # Without --job, the current model; a job that is not there is named.
    current = run_cli(registry.layout.root, "export", "--out", str(tmp_path / "current"))
    blessed = queue.get_job(registry, queue.current_job_id(registry) or "").metrics or {}
    assert current.returncode == 0 and f"-{blessed['model_id']}.tar.gz" in current.stdout
    missing = run_cli(registry.layout.root, "export", "--job", "no-such-job", "--out", str(stick))
    assert missing.returncode == 1 and "no-such-job" in missing.stderr
    assert "Traceback" not in missing.stderr


def wait_for_status(api: httpx.Client, deployment_id: str, statuses: set[str]) -> dict[str, object]:
    for _ in range(600):
        record: dict[str, object] = api.get(f"/deployments/{deployment_id}").json()
        if record["status"] in statuses:
            return record
        time.sleep(0.1)
    raise AssertionError(f"deployment {deployment_id} never reached {statuses}: {record}")


def finished(api: httpx.Client, deployment_id: str) -> dict[str, object]:
    final = {"succeeded", "rolled_back", "failed", "cancelled"}
    return wait_for_status(api, deployment_id, final)


def test_the_api_deploys_in_the_background_and_refuses_a_second_at_once(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    slow_post = "sleep 3"  # keeps the first deployment busy while the second is asked for
    service = Service(registry.layout.root, env=board.env(DEPLOY_POST_COMMAND=slow_post)).start()
    try:
        with service.client() as api:
            target = api.get("/deploy/target").json()
            assert target["configured"] and str(board.port) in target["target"]
            first = api.post("/deploy", json={"job_id": jobs["marblenet-1"]})
            assert first.status_code == 202, first.text
            second = api.post("/deploy", json={"job_id": jobs["marblenet-2"]})
            assert second.status_code == 409 and "still" in second.json()["detail"]
            deployment_id = first.json()["id"]
            record = finished(api, deployment_id)
            assert record["status"] == "succeeded", record
            assert "board: deploy_hotword: applied" in record["log"]
            assert api.get("/deployments").json()[0]["id"] == deployment_id
            queued = api.post("/deploy", json={"job_id": "not-a-job"})
            assert queued.status_code == 404

            # The USB fallback: the bundle just shipped, and its checksum, as downloads.
            bundle = api.get(f"/jobs/{jobs['marblenet-1']}/deploy-bundle")
            checksum = api.get(f"/jobs/{jobs['marblenet-1']}/deploy-bundle.sha256").text
            assert hashlib.sha256(bundle.content).hexdigest() == checksum.split()[0]
            assert record["bundle"] in bundle.headers["content-disposition"]

            again = api.post("/deploy", json={"artifact_path": f"transfers/{record['bundle']}"})
            assert again.status_code == 202 and again.json()["bundle"] == record["bundle"]
            assert finished(api, again.json()["id"])["status"] == "succeeded"
            for path in ("../../etc/passwd", "datasets", "transfers/nothing.tar.gz"):
                refused = api.post("/deploy", json={"artifact_path": path})
                assert refused.status_code == 422 and "Accepted:" in refused.json()["detail"]
    finally:
        service.stop()


def test_an_unknown_key_is_refused_until_pinned_and_a_wrong_login_is_named(
    registry: Registry, jobs: dict[str, str], board: Board, tmp_path: Path
) -> None:
    board.known_hosts.unlink()
    run = deploy(registry, board, jobs["marblenet-1"])
    assert run.returncode == 1 and "waketrain pin-host-key" in run.stderr

    pin = subprocess.run(
        [sys.executable, "-m", "waketrain", "pin-host-key", "--yes"],
        env=service_env(registry.layout.root, **board.env()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pin.returncode == 0, pin.stderr
    assert "SHA256:" in pin.stdout and board.known_hosts.is_file()
    assert deploy(registry, board, jobs["marblenet-1"]).returncode == 0

    stranger = keygen(tmp_path / "stranger")
    run = deploy(registry, board, jobs["marblenet-1"], DEPLOY_SSH_KEY=str(stranger))
    assert run.returncode == 1 and "login as" in run.stderr and "authorized_keys" in run.stderr


def test_a_stored_board_is_deployed_to_by_name_without_any_deploy_settings(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    data = registry.layout.root
    added = run_cli(data, "board", "add", "bench", "--host", "127.0.0.1", "--port",
                    str(board.port), "--user", board.user, "--path", str(board.deploy_path),
                    "--key", str(board.client_key),
                    "--post-command", "touch restarted")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert run_cli(data, "board", "trust", "bench", "--yes").returncode == 0

    run = run_cli(data, "deploy", "--job", jobs["marblenet-2"], "--board", "bench")
    assert run.returncode == 0, run.stderr
    assert f"127.0.0.1:{board.port}" in run.stdout
    current = board.deploy_path / "current"
    assert current.readlink() == Path(f"releases/{model_id(registry, jobs['marblenet-2'])}")
    assert (board.deploy_path / "restarted").exists()  # the board's own post command ran
    newest = list_deployments(registry, 1)[0]
    assert newest.status == "succeeded" and newest.board_id is not None
    assert run_cli(data, "board", "remove", "bench").returncode == 0


def test_a_deploy_in_flight_survives_an_api_restart_and_a_worker_crash(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    """The API only queues; a worker runs the deployment. A killed API loses nothing; a killed
    worker's deployment is taken up again by the next worker and lands."""
    env = board.env(DEPLOY_POST_COMMAND="sleep 4", WAKETRAIN_STALE_JOB_SECONDS="3",
                    WAKETRAIN_HEARTBEAT_SECONDS="0.5")  # fmt: skip
    service = Service(registry.layout.root, args=("--no-worker",), env=env).start()
    worker = Worker(registry.layout.root, env=env).start()
    try:
        with service.client() as api:
            started = api.post("/deploy", json={"job_id": jobs["marblenet-1"]})
            assert started.status_code == 202, started.text
            deployment_id = started.json()["id"]
            wait_for_status(api, deployment_id, {"applying"})
        service.kill()  # SIGKILL while the board runs its post command
        service = Service(registry.layout.root, args=("--no-worker",), env=env).start()
        with service.client() as api:
            record = finished(api, deployment_id)
            assert record["status"] == "succeeded", record
            assert record["runs"] == 1 and "board: deploy_hotword: applied" in record["log"]

            again = api.post("/deploy", json={"job_id": jobs["marblenet-2"]})
            deployment_id = again.json()["id"]
            wait_for_status(api, deployment_id, {"applying"})
            worker.kill()  # the worker dies while the board applies
            time.sleep(1)
            worker = Worker(registry.layout.root, env=env).start()
            record = finished(api, deployment_id)
            assert record["status"] == "succeeded", record
            assert record["runs"] == 2 and "queued again" in str(record["log"])
        current = (board.deploy_path / "current").resolve().name
        assert current == model_id(registry, jobs["marblenet-2"])
    finally:
        worker.stop()
        service.stop()


def test_a_queued_deploy_is_cancelled_at_once_and_an_applying_one_is_not(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    env = board.env(DEPLOY_POST_COMMAND="sleep 3")
    service = Service(registry.layout.root, args=("--no-worker",), env=env).start()
    try:
        with service.client() as api:
            queued = api.post("/deploy", json={"job_id": jobs["marblenet-1"]}).json()
            assert queued["status"] == "pending"  # no worker yet: it waits in the queue
            cancelled = api.post(f"/deployments/{queued['id']}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            again = api.post(f"/deployments/{queued['id']}/cancel")
            assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
            assert not (board.deploy_path / "current").exists()  # nothing reached the board

            worker = Worker(registry.layout.root, env=env).start()
            try:
                started = api.post("/deploy", json={"job_id": jobs["marblenet-1"]}).json()
                wait_for_status(api, started["id"], {"applying"})
                refused = api.post(f"/deployments/{started['id']}/cancel")
                assert refused.status_code == 409 and "rolls back" in refused.json()["detail"]
                assert finished(api, started["id"])["status"] == "succeeded"
            finally:
                worker.stop()
            audit = api.get("/audit").json()
            assert {"actor": "admin", "object_id": queued["id"]}.items() <= next(
                a for a in audit if (a["action"], a["object_type"]) == ("cancel", "deployment")
            ).items()
    finally:
        service.stop()


def test_a_running_deploy_cancelled_before_the_upload_leaves_the_board_alone(
    registry: Registry, jobs: dict[str, str], board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in board.env().items():
        monkeypatch.setenv(name, value)
    here = Registry.open(Settings(data_dir=registry.layout.root, admin_password=ADMIN_PASSWORD))
    try:
        started = start_deployment(here, jobs["marblenet-1"], "test", claim_for="worker-a")
        asked = cancel_deployment(here, started.id, "admin")
        assert asked.status == "pending" and asked.cancel_requested  # its worker decides
        done = run_claimed(here, started, "worker-a", heartbeat_seconds=0.5)
        assert done.status == "cancelled" and "keeps its current model" in done.log
        assert not (board.deploy_path / "incoming").exists()  # nothing was sent
    finally:
        here.close()


def test_ctrl_c_ends_a_cli_deploy_instead_of_leaving_it_to_a_worker(
    registry: Registry, jobs: dict[str, str], board: Board
) -> None:
    before = {d.id for d in list_deployments(registry)}
    env = service_env(registry.layout.root, **board.env(DEPLOY_POST_COMMAND="sleep 20"))
    with running(
        [sys.executable, "-m", "waketrain", "deploy", "--job", jobs["marblenet-1"]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as cli:  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = [d for d in list_deployments(registry) if d.id not in before]
            if new and new[0].status == "applying":
                break
            time.sleep(0.2)
        assert new and new[0].status == "applying", new
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=60)
    assert cli.returncode != 0
    record = list_deployments(registry)[0]
    assert record.id == new[0].id and record.status == "failed", stderr
    assert record.error is not None and "interrupted (Ctrl-C)" in record.error
