"""The service's processes: `serve` (API and web UI) and `worker` (training jobs)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from waketrain.cli.startup import NoiseDirs, RirDirs, load_settings, open_registry, worker_options

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not start an embedded training worker.")
    ] = False,
) -> None:
    """Run the API and web UI (and, by default, one embedded training worker).

    The embedded worker is supervised: restarted with back-off when it dies, and the job or
    deployment it held is requeued at once. It dies with `serve`, however `serve` dies.
    """
    import uvicorn

    from waketrain.api.app import create_app

    settings = load_settings()
    worker_command = None if no_worker else [sys.executable, "-m", "waketrain", "worker"]
    uvicorn.run(
        create_app(settings, worker_command),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the API logs each request itself, as JSON with its request id
        # X-Forwarded-For is the app's to trust, from WAKETRAIN_TRUSTED_PROXIES only;
        # uvicorn would trust it from loopback, or from anyone with FORWARDED_ALLOW_IPS=*.
        proxy_headers=False,
    )


@app.command()
def worker(
    max_jobs: Annotated[int | None, typer.Option(help="Exit after this many jobs.")] = None,
    noise_dir: NoiseDirs = None,
    rir_dir: RirDirs = None,
) -> None:
    """Claim queued training jobs and run them, one at a time (one worker per GPU).

    Stopped mid-job (SIGTERM, crash, power cut), the job's heartbeat goes stale and the next
    worker to start requeues it once (under `serve`, the supervisor requeues it at once).
    """
    from waketrain.jobs.worker import run_worker

    settings = load_settings()
    options = worker_options(settings, noise_dir, rir_dir)
    run_worker(open_registry(settings), options, max_jobs=max_jobs)
