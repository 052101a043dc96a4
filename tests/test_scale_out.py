"""Several workers on several hosts over one registry: the queue gives each job to one worker,
and a worker that dies mid-job hands its job to another. On SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy import select

from tests.conftest import Worker, db_env
from tests.test_jobs import TINY, WORKER_ENV, training_registry
from waketrain.jobs import queue
from waketrain.settings import Settings
from waketrain.store.datasets import DatasetCreate, create_dataset
from waketrain.store.models import Event, Job
from waketrain.store.registry import Registry


def claim_until_empty(data_dir: Path, db_url: str | None, host: str, hosts: int) -> list[str]:
    """One "host": claims jobs until none is left; the ids it got."""
    registry = Registry.open(Settings(data_dir=data_dir, db_url=db_url))
    try:
        ready = data_dir / "ready"
        (ready / host).touch()
        while len(list(ready.iterdir())) < hosts:  # all hosts start claiming together
            time.sleep(0.01)
        claimed = []
        while (job := queue.claim_next_job(registry, f"{host}:{os.getpid()}")) is not None:
            claimed.append(job.id)
            time.sleep(0.02)  # a worker runs its job before it asks again
        return claimed
    finally:
        registry.close()


def test_workers_on_several_hosts_claim_each_job_exactly_once(
    tmp_path: Path, db_url: str | None
) -> None:
    registry = Registry.open(Settings(data_dir=tmp_path, db_url=db_url))
    create_dataset(registry, DatasetCreate(id="busy", phrase="computer"), "t")
    with registry.sessions.begin() as session:
        jobs = [Job(id=str(uuid.uuid4()), dataset_id="busy", status="queued", config={},
                    created_by="t") for _ in range(40)]  # fmt: skip
        session.add_all(jobs)
    registry.close()

    hosts = [f"host-{n}" for n in range(4)]
    (tmp_path / "ready").mkdir()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(hosts), mp_context=spawn) as pool:
        claims = list(pool.map(claim_until_empty, [tmp_path] * 4, [db_url] * 4, hosts,
                               [len(hosts)] * 4))  # fmt: skip

    every = [job_id for claimed in claims for job_id in claimed]
    assert sorted(every) == sorted(job.id for job in jobs)  # each once, none left behind
    registry = Registry.open(Settings(data_dir=tmp_path, db_url=db_url))
    with registry.sessions() as session:
        rows = session.scalars(select(Job)).all()
        assert {(job.status, job.attempt) for job in rows} == {("running", 1)}
        started = session.scalars(select(Event).where(Event.type == "job.started")).all()
        assert sorted(event.payload["job_id"] for event in started) == sorted(every)
    registry.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def test_two_workers_on_two_hosts_share_the_queue_and_take_over_from_a_dead_one(
    tmp_path: Path, db_url: str | None
) -> None:
    """Two `waketrain worker` processes, each with its own scratch as on its own disk, over
    one registry folder (as an NFS mount would share it) and one database."""
    data_dir = training_registry(tmp_path / "registry", db_url)
    settings = Settings(data_dir=data_dir, db_url=db_url)
    registry = Registry.open(settings)
    submitted = [queue.submit_job(registry, "computer", TINY, "t").id for _ in range(2)]

    def host(name: str) -> Worker:
        scratch = tmp_path / f"{name}-scratch"
        env = WORKER_ENV | db_env(db_url) | {"WAKETRAIN_SCRATCH_DIR": str(scratch)}
        return Worker(data_dir, env=env).start()

    workers = {"a": host("a"), "b": host("b")}
    ids = {
        name: f"{os.uname().nodename}:{w.process.pid}" for name, w in workers.items() if w.process
    }

    def jobs() -> dict[str, queue.JobRecord]:
        return {job_id: queue.get_job(registry, job_id) for job_id in submitted}

    try:
        wait_until(lambda: {j.worker_id for j in jobs().values()} == set(ids.values()),
                   "each worker runs one of the two jobs")  # fmt: skip
        held_by_a = next(j.id for j in jobs().values() if j.worker_id == ids["a"])
        workers["a"].kill()  # host a dies mid-job
        wait_until(lambda: all(j.status in queue.FINAL for j in jobs().values()),
                   "both jobs are finished")  # fmt: skip
    finally:
        for worker in workers.values():
            worker.stop()

    final = jobs()
    assert {job.status for job in final.values()} == {"succeeded"}, final
    assert final[held_by_a].attempt == 2 and final[held_by_a].worker_id == ids["b"]
    with registry.sessions() as session:
        events = session.scalars(select(Event).where(Event.type.in_(["job.started",
                                 "job.requeued"])).order_by(Event.id)).all()  # fmt: skip
    runs = [(e.payload["job_id"], e.payload.get("attempt"), e.payload.get("worker_id"))
            for e in events if e.type == "job.started"]  # fmt: skip
    assert len(runs) == len(set(runs)) == 3  # a's job started twice (a, then b), b's once
    assert [(job_id, worker) for job_id, attempt, worker in runs if job_id == held_by_a] == [
        (held_by_a, ids["a"]),
        (held_by_a, ids["b"]),
    ]
    assert any(e.type == "job.requeued" and e.payload["job_id"] == held_by_a for e in events)
    registry.close()
