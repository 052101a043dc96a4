"""What the commands start from: the settings, the registry, the training worker's options."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from waketrain.logs import configure_logging
from waketrain.settings import Settings
from waketrain.store.errors import InvalidInput

if TYPE_CHECKING:
    # Imported when a command runs, so that `waketrain --help` stays fast and the board's
    # `waketrain detect` never imports the service's dependencies.
    from waketrain.jobs.worker import WorkerOptions
    from waketrain.store.registry import Registry

NoiseDirs = Annotated[
    list[Path] | None,
    typer.Option(help="Extra background noise folder; repeatable (default: WAKETRAIN_NOISE_DIRS)."),
]
RirDirs = Annotated[
    list[Path] | None,
    typer.Option(help="Room impulse responses folder; repeatable (default: WAKETRAIN_RIR_DIRS)."),
]


def load_settings() -> Settings:
    """The settings from the environment, with logging configured from them."""
    from pydantic import ValidationError

    from waketrain.settings import explain

    try:
        settings = Settings()
    except ValidationError as exc:
        raise InvalidInput(explain(exc)) from None
    configure_logging(settings.log_level)
    return settings


def open_registry(settings: Settings | None = None) -> Registry:
    """The registry, with the admin user created (and its password shown once) on first use."""
    from waketrain.store.accounts import ensure_admin
    from waketrain.store.registry import Registry

    registry = Registry.open(settings or load_settings())
    password = ensure_admin(registry)
    if password:
        typer.echo(f"created the admin user; its password (shown once): {password}", err=True)
    return registry


def worker_options(
    settings: Settings,
    noise_dirs: list[Path] | None = None,
    rir_dirs: list[Path] | None = None,
    eval_negative_dirs: list[Path] | None = None,
) -> WorkerOptions:
    """How jobs run, from the settings; folders given on the command line replace theirs."""
    from waketrain.jobs.worker import WorkerOptions

    return WorkerOptions(
        heartbeat_seconds=settings.heartbeat_seconds,
        stale_after_seconds=settings.stale_job_seconds,
        auto_bless=settings.auto_bless,
        gc_interval_hours=settings.gc_interval_hours,
        noise_dirs=tuple(noise_dirs or settings.noise_dirs),
        rir_dirs=tuple(rir_dirs or settings.rir_dirs),
        eval_negative_dirs=tuple(eval_negative_dirs or settings.eval_negative_dirs),
    )
