"""The command-line door: each command parses its input, calls one core function, prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from waketrain.logs import configure_logging
from waketrain.settings import Settings
from waketrain.store.errors import WaketrainError

if TYPE_CHECKING:
    # Imported lazily at run time so that `waketrain --help` stays fast.
    from collections.abc import Callable

    from waketrain.runtime.capture import CaptureRecorder
    from waketrain.runtime.capture_push import BackgroundPush
    from waketrain.store.registry import Registry

NoiseDirs = Annotated[
    list[Path] | None,
    typer.Option(help="Extra background noise folder; repeatable (default: WAKETRAIN_NOISE_DIRS)."),
]
RirDirs = Annotated[
    list[Path] | None,
    typer.Option(help="Room impulse responses folder; repeatable (default: WAKETRAIN_RIR_DIRS)."),
]

app = typer.Typer(help="waketrain: self-hosted wake word training service.", no_args_is_help=True)
dataset_app = typer.Typer(help="Create, list, show and import datasets.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for scripts.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
app.add_typer(token_app, name="token")


def _settings() -> Settings:
    from pydantic import ValidationError

    from waketrain.settings import explain

    try:
        settings = Settings()
    except ValidationError as exc:
        raise _fail(ValueError(explain(exc))) from None
    configure_logging(settings.log_level)
    return settings


def _open_registry() -> Registry:
    from waketrain.store.accounts import ensure_admin
    from waketrain.store.registry import Registry

    registry = Registry.open(_settings())
    password = ensure_admin(registry)
    if password:
        typer.echo(f"created the admin user; its password (shown once): {password}", err=True)
    return registry


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _die_with_parent() -> None:
    """In the embedded worker: the kernel sends SIGTERM when `serve` dies, however it dies.

    Its running job then goes stale and the next worker requeues it.
    """
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not start an embedded training worker.")
    ] = False,
) -> None:
    """Run the API and web UI (and, by default, one embedded training worker)."""
    import uvicorn

    from waketrain.api.app import create_app

    settings = _settings()
    worker = None
    if not no_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "waketrain", "worker"], preexec_fn=_die_with_parent
        )
    try:
        uvicorn.run(
            create_app(settings),
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,  # the API logs each request itself, as JSON with its request id
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)


@app.command()
def worker(
    max_jobs: Annotated[int | None, typer.Option(help="Exit after this many jobs.")] = None,
    noise_dir: NoiseDirs = None,
    rir_dir: RirDirs = None,
) -> None:
    """Claim queued training jobs and run them, one at a time (one worker per GPU).

    Stopped mid-job (SIGTERM, crash, power cut), the job's heartbeat goes stale and the next
    worker to start requeues it once.
    """
    from waketrain.jobs.worker import WorkerOptions, run_worker

    settings = _settings()
    options = WorkerOptions(
        heartbeat_seconds=settings.heartbeat_seconds,
        stale_after_seconds=settings.stale_job_seconds,
        auto_bless=settings.auto_bless,
        gc_interval_hours=settings.gc_interval_hours,
        noise_dirs=tuple(noise_dir or settings.noise_dirs),
        rir_dirs=tuple(rir_dir or settings.rir_dirs),
        eval_negative_dirs=settings.eval_negative_dirs,
    )
    run_worker(_open_registry(), options, max_jobs=max_jobs)


@dataset_app.command("create")
def dataset_create(
    dataset_id: Annotated[str, typer.Argument(help="Slug, e.g. tars-default.")],
    phrase: Annotated[str, typer.Option(help="The wake phrase, as spoken.")],
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
) -> None:
    """Create a dataset."""
    from pydantic import ValidationError

    from waketrain.store.datasets import DatasetCreate, create_dataset

    try:
        spec = DatasetCreate(id=dataset_id, phrase=phrase, description=description)
        summary = create_dataset(_open_registry(), spec, actor="cli")
    except (WaketrainError, ValidationError) as exc:
        raise _fail(exc) from None
    typer.echo(f"created dataset {summary.id} (phrase: {summary.phrase!r})")


@dataset_app.command("list")
def dataset_list() -> None:
    """One line per dataset: clips per label and minutes."""
    from waketrain.store.datasets import list_datasets

    for s in list_datasets(_open_registry()):
        c = s.clip_counts
        typer.echo(
            f"{s.id:24} {s.phrase!r:20} positive={c.positive} negative={c.negative} "
            f"noise={c.noise} minutes={s.total_minutes:.2f}"
        )


@dataset_app.command("show")
def dataset_show(dataset_id: str) -> None:
    """The dataset's health summary as JSON."""
    from waketrain.store.health import dataset_summary

    try:
        summary = dataset_summary(_open_registry(), dataset_id)
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(summary.model_dump(mode="json"), indent=2))


@dataset_app.command("import")
def dataset_import(
    folder: Annotated[Path, typer.Argument(help="Folder of audio files (searched recursively).")],
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    label: Annotated[str, typer.Option(help="positive, negative or noise.")],
    speaker: Annotated[str | None, typer.Option(help="Speaker tag for every clip.")] = None,
    analyze: Annotated[
        bool, typer.Option(help="Measure quality now (else a running service does it).")
    ] = True,
) -> None:
    """Import every audio file of a folder; refused files are listed with the reason."""
    from pydantic import ValidationError

    from waketrain.store.analysis import (
        analysis_pool,
        analyze_pending_clips,
        measure_in_processes,
    )
    from waketrain.store.clips import ClipMetadata, import_directory

    try:
        metadata = ClipMetadata(label=label, speaker=speaker, source="import")  # type: ignore[arg-type]
        registry = _open_registry()
        report = import_directory(registry, folder, dataset, metadata, actor="cli")
        if analyze:
            with analysis_pool(workers=os.cpu_count() or 1) as pool:
                analyze_pending_clips(registry, measure_in_processes(pool))
    except (WaketrainError, ValidationError) as exc:
        raise _fail(exc) from None
    for name, reason in report.rejected:
        typer.secho(f"refused {name}: {reason}", fg=typer.colors.YELLOW, err=True)
    minutes = sum(c.duration_seconds for c in report.imported) / 60
    typer.echo(
        f"imported {len(report.imported)} clips ({minutes:.2f} min) into {dataset} as {label}; "
        f"refused {len(report.rejected)}"
    )


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="Dataset id.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override key=value (e.g. epochs=10); repeatable."),
    ] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Warm start from this earlier job's checkpoint.")
    ] = None,
    noise_dir: NoiseDirs = None,
    rir_dir: RirDirs = None,
    eval_negatives: Annotated[
        list[Path] | None,
        typer.Option(
            help="Extra held-out negative audio for false accepts per hour; repeatable "
            "(default: WAKETRAIN_EVAL_NEGATIVE_DIRS)."
        ),
    ] = None,
) -> None:
    """Train, evaluate and export a model as a job run here; prints the job id and export folder."""
    from waketrain.jobs.worker import WorkerOptions, train_here
    from waketrain.training.config import parse_set_options
    from waketrain.training.diagnosis import MissedClip
    from waketrain.training.evaluate import FalseAccepts
    from waketrain.training.pipeline import ProgressUpdate

    def show(update: ProgressUpdate) -> None:
        typer.echo(f"[{update.progress:4.0%}] {update.stage}: {update.message}", err=True)

    settings = _settings()
    options = WorkerOptions(
        heartbeat_seconds=settings.heartbeat_seconds,
        auto_bless=settings.auto_bless,
        noise_dirs=tuple(noise_dir or settings.noise_dirs),
        rir_dirs=tuple(rir_dir or settings.rir_dirs),
        eval_negative_dirs=tuple(eval_negatives or settings.eval_negative_dirs),
    )
    try:
        registry = _open_registry()
        job = train_here(
            registry, dataset, parse_set_options(set_ or []), "cli", options, init_from, show
        )
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(f"job {job.id}")
    if job.status != "succeeded" or job.metrics is None or job.export_dir is None:
        typer.secho(f"error: the job {job.status}: {job.error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    m, target = job.metrics, job.config["target_fa_per_hour"]
    typer.echo(f"export {registry.layout.root / job.export_dir}")
    false_accepts = FalseAccepts(m["false_accepts"], m["negative_hours"])
    verdict = (
        "met"
        if m["target_met"]
        else f"not shown: about {m['hours_to_decide']:.1f} h more negative audio would decide it"
        if false_accepts.per_hour <= target
        else "NOT met"
    )
    typer.echo(
        f"threshold {m['threshold']:.6g} (log-odds {m['threshold_log_odds']:.2f}): "
        f"FRR {m['frr']:.1%}; false accepts "
        f"{false_accepts.describe()}; target {target:g}/h {verdict}"
    )
    for missed in m.get("missed_positives") or []:
        clip = MissedClip(**missed)
        typer.echo(f"missed held-out positive: {clip.describe()}. {clip.advice}")


negatives_app = typer.Typer(
    help="The negative bank: hours of audio that is never the wake phrase, for every job.",
    no_args_is_help=True,
)
app.add_typer(negatives_app, name="negatives")


@negatives_app.command("add")
def negatives_add(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Folders or files: audio of any length, or openWakeWord .npy features."
        ),
    ],
    set_id: Annotated[
        str | None, typer.Option("--set", help="Set id (default: the first path's name).")
    ] = None,
    kind: Annotated[str, typer.Option(help="speech, music, tv, room, noise or mixed.")] = "mixed",
) -> None:
    """Add audio to the bank; features are computed once. Run it again to resume."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from waketrain.training.negative_bank import (
        AddProgress,
        NegativeBank,
        default_set_id,
    )

    bank_id = set_id or default_set_id(paths[0])
    try:
        bank = NegativeBank(_open_registry().layout)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.percentage:>3.0f}%"), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task(f"adding to {bank_id}", total=None)

            def show(update: AddProgress) -> None:
                bar.update(
                    task,
                    total=update.total_seconds or None,
                    completed=update.done_seconds,
                    description=f"{Path(update.file).name}",
                )

            report = bank.add(paths, bank_id, kind, show)  # type: ignore[arg-type]
    except WaketrainError as exc:
        raise _fail(exc) from None
    for line in report.refused:
        typer.secho(f"refused {line}", fg=typer.colors.YELLOW, err=True)
    for line in report.already_in_bank:
        typer.echo(f"already in the bank: {line}", err=True)
    total = sum(s.hours for s in bank.sets() if s.id == bank_id)
    typer.echo(
        f"added {len(report.added)} files ({report.hours_added:.2f} h) to {bank_id}; "
        f"{len(report.already_in_bank)} already in the bank, {len(report.refused)} refused; "
        f"{bank_id} now holds {total:.2f} h"
    )


@negatives_app.command("list")
def negatives_list(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The bank's sets: kind, hours, files."""
    from waketrain.training.negative_bank import NegativeBank

    try:
        sets = NegativeBank(_open_registry().layout).sets()
    except WaketrainError as exc:
        raise _fail(exc) from None
    if json_out:
        typer.echo(json.dumps([s.model_dump(mode="json") | {"hours": s.hours} for s in sets]))
        return
    if not sets:
        typer.echo("the negative bank is empty: waketrain negatives add FOLDER --kind speech")
        return
    typer.echo(f"{'set':<28} {'kind':<8} {'hours':>7} {'files':>6}")
    for s in sets:
        typer.echo(f"{s.id:<28} {s.kind:<8} {s.hours:>7.2f} {len(s.sources):>6}")
    typer.echo(f"{'total':<28} {'':<8} {sum(s.hours for s in sets):>7.2f}")


@negatives_app.command("remove")
def negatives_remove(set_id: Annotated[str, typer.Argument(help="Set id.")]) -> None:
    """Remove a set from the bank (jobs already trained keep their figures)."""
    from waketrain.training.negative_bank import NegativeBank

    try:
        removed = NegativeBank(_open_registry().layout).remove(set_id)
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(f"removed {removed.id} ({removed.hours:.2f} h, {len(removed.sources)} files)")


@app.command()
def synth(
    dataset: Annotated[str | None, typer.Option(help="Speak this dataset's wake phrase.")] = None,
    phrase: Annotated[str | None, typer.Option(help="Or speak this phrase.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Synthesis setting key=value (e.g. positives=500)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same clips (and the cached ones).")] = 1234,
    out: Annotated[
        Path | None, typer.Option(help="Also copy the clips and manifest.json here.")
    ] = None,
) -> None:
    """Generate (or reuse) synthetic positives and confusable negatives with espeak-ng."""
    from pydantic import ValidationError

    from waketrain.store.errors import InvalidInput, describe_validation_errors
    from waketrain.store.health import dataset_summary
    from waketrain.synth.generate import SynthConfig, copy_set, synthesize
    from waketrain.training.config import parse_set_options

    try:
        registry = _open_registry()
        if (dataset is None) == (phrase is None):
            raise InvalidInput("Give either --dataset ID or --phrase TEXT.")
        text = phrase if phrase is not None else dataset_summary(registry, str(dataset)).phrase
        config = SynthConfig.model_validate(parse_set_options(set_ or []))
        result = synthesize(text, config, registry.layout.scratch, seed)
        if out is not None:
            copy_set(result, out)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors(), "synth")
        raise _fail(InvalidInput(f"Invalid synthesis settings: {problems}.")) from None
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(result.report.summary())
    for item in result.report.dropped:
        typer.echo(f"dropped {item['text']!r}: {item['reason']}")
    typer.echo(f"cache {result.report.folder}")
    if out is not None:
        typer.echo(f"copied to {out}")


@app.command("try")
def try_model(
    recording: Annotated[Path, typer.Argument(help="A recording (WAV, FLAC, OGG or MP3).")],
) -> None:
    """Score a recording with the current model as the detector would; prints when it fires."""
    from waketrain.audio.decode import AudioRejected
    from waketrain.jobs.tryout import score_with_current_model

    try:
        result = score_with_current_model(_open_registry(), recording.read_bytes())
    except (WaketrainError, AudioRejected, OSError) as exc:
        raise _fail(exc) from None
    peak = max(result.scores, default=0.0)
    typer.echo(f"model {result.model_id} ({result.phrase!r}), threshold {result.threshold:.4f}")
    typer.echo(f"peak score {peak:.4f} over {result.duration_seconds:.2f} s")
    if result.fired:
        typer.echo("fired at " + ", ".join(f"{t:.2f} s" for t in result.detections))
    else:
        typer.echo("did not fire")


@app.command("eval")
def eval_model(
    positives: Annotated[
        list[Path], typer.Option(help="Folder of wake-phrase recordings; repeatable.")
    ],
    negatives: Annotated[
        list[Path],
        typer.Option(help="Folder of audio without the phrase (any length); repeatable."),
    ],
    job: Annotated[
        str | None, typer.Option(help="Job whose model to test (default: the current model).")
    ] = None,
    artifact: Annotated[
        Path | None, typer.Option(help="Or: a model's export folder (metadata.json inside).")
    ] = None,
    background: Annotated[
        list[Path] | None,
        typer.Option(help="Folder to set the positives in at 10 dB (default: the negatives)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Test a model on recordings its job never saw: false rejects and false accepts per hour."""
    from waketrain.jobs.evaluation import evaluate_export, evaluate_job
    from waketrain.training.evaluate import FalseAccepts

    try:
        if artifact is not None:
            report = evaluate_export(artifact, positives, negatives, background)
        else:
            report = evaluate_job(_open_registry(), job, positives, negatives, background)
    except WaketrainError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"job {report.job_id}: model {report.model_id} ({report.phrase!r}), "
               f"threshold {report.threshold:.4f}\n")  # fmt: skip
    typer.echo("| audio | amount | measure | value |\n| --- | ---: | --- | ---: |")
    typer.echo(f"| positives in silence | {report.positives} clips | FRR | "
               f"{report.frr_clean:.1%} |")  # fmt: skip
    typer.echo(f"| positives at 10 dB SNR | {report.positives} clips | FRR | "
               f"{report.frr_noisy:.1%} |")  # fmt: skip
    for folder in report.negatives:
        typer.echo(f"| {folder.folder} | {folder.minutes:.1f} min | FA/h | "
                   f"{folder.fa_per_hour:.1f} ({folder.false_accepts}) |")  # fmt: skip
    minutes = sum(folder.minutes for folder in report.negatives)
    total = FalseAccepts(sum(f.false_accepts for f in report.negatives), minutes / 60)
    typer.echo(f"| all negatives | {minutes:.1f} min | FA/h | {total.describe()} |")
    best = report.best_within_target
    typer.echo(
        f"\nthis audio's best threshold within {report.target_fa_per_hour:g} FA/h: "
        + (f"{best.threshold:.4f} (FRR at 10 dB {best.frr_noisy:.1%})" if best else "none")
    )


@app.command()
def deploy(
    job: Annotated[
        str | None, typer.Option(help="Job whose model to ship (default: the current model).")
    ] = None,
    artifact: Annotated[
        str | None,
        typer.Option(help="Or: jobs/<job_id>/export, or transfers/<bundle>.tar.gz to ship again."),
    ] = None,
) -> None:
    """Ship a model to the board over SSH and apply it there; rolls back if it fails."""
    from waketrain.deploy.service import run_deployment, start_deployment

    try:
        registry = _open_registry()
        actor = os.environ.get("USER", "cli")
        started = start_deployment(registry, job, actor, artifact_path=artifact)
        typer.echo(f"deployment {started.id}", err=True)
        result = run_deployment(registry, started.id, on_log=lambda s: typer.echo(s, err=True))
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(f"{result.status} on {result.target}")
    if result.status != "succeeded":
        raise typer.Exit(code=1)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Folder to write to, e.g. a mounted USB stick.")],
    job: Annotated[
        str | None, typer.Option(help="Job whose model to export (default: the current model).")
    ] = None,
) -> None:
    """Write a model's board bundle and its .sha256 to a folder, for a board without SSH."""
    from waketrain.deploy.bundle import export_bundle

    try:
        bundle = export_bundle(_open_registry(), job, out)
    except (WaketrainError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(bundle.path)
    typer.echo(
        f"on the board: tar -xzf {bundle.path.name} deploy_hotword.sh && "
        f"DEPLOY_PATH=/opt/waketrain sh deploy_hotword.sh {bundle.path.name}",
        err=True,
    )


@app.command("pin-host-key")
def pin_host_key(
    yes: Annotated[bool, typer.Option("--yes", help="Trust the key without asking.")] = False,
) -> None:
    """Fetch the board's SSH host key and add it to the known_hosts deploys verify against."""
    import asyncio

    from waketrain.deploy.service import deploy_target
    from waketrain.deploy.ssh import pin_host_key as pin

    try:
        target = deploy_target(_open_registry())
        if not yes:
            typer.confirm(f"Trust whatever key {target.host}:{target.port} offers now?", abort=True)
        fingerprint = asyncio.run(pin(target.host, target.port, target.known_hosts))
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(f"pinned {target.host}:{target.port} {fingerprint} in {target.known_hosts}")


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="New folder for the backup (absent or empty).")],
    transfers: Annotated[
        bool, typer.Option("--transfers", help="Also copy the deploy bundles in transfers/.")
    ] = False,
) -> None:
    """Back up the registry while the service runs: database snapshot, clips, jobs, models."""
    from waketrain.store.backup import backup_registry

    try:
        report = backup_registry(_settings(), to, include_transfers=transfers)
    except WaketrainError as exc:
        raise _fail(exc) from None
    m = report.manifest
    rows = ", ".join(f"{m.counts.get(t, 0)} {t}" for t in ("datasets", "clips", "jobs", "audit"))
    typer.echo(f"backup {report.path}: {rows}; {len(m.files)} files, {m.total_bytes / 1e6:.1f} MB")
    typer.echo(
        f"schema {m.schema_revision}, current model "
        f"{m.current_model.job_id if m.current_model else 'none'}"
    )
    for name in m.missing_files:
        typer.secho(f"missing from the registry: {name}", fg=typer.colors.YELLOW, err=True)


@app.command()
def restore(
    from_dir: Annotated[Path, typer.Argument(help="A folder written by `waketrain backup`.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a non-empty data dir (its contents are moved aside)."
        ),
    ] = False,
) -> None:
    """Restore a backup into WAKETRAIN_DATA_DIR; stop the service and workers first."""
    from waketrain.store.backup import restore_registry

    try:
        report = restore_registry(from_dir, _settings(), force=force)
    except WaketrainError as exc:
        raise _fail(exc) from None
    m = report.manifest
    typer.echo(
        f"restored {from_dir} (taken {m.created_at:%Y-%m-%d %H:%M} UTC) into {report.data_dir}: "
        f"{m.counts.get('clips', 0)} clips, {m.counts.get('jobs', 0)} jobs, current model "
        f"{m.current_model.job_id if m.current_model else 'none'}"
    )
    if report.migrated:
        typer.echo(f"schema migrated {m.schema_revision} -> {report.schema_revision}")
    if report.replaced_dir:
        typer.echo(
            f"the previous contents are in {report.replaced_dir}; "
            "delete it once the restored registry looks right"
        )
    for clip_id in report.missing_clip_files:
        typer.secho(f"clip file missing: {clip_id}", fg=typer.colors.YELLOW, err=True)


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
) -> None:
    """Delete stale caches in scratch/ and surplus deploy bundles in transfers/."""
    from waketrain.store.backup import collect_garbage

    try:
        registry = _open_registry()
        report = collect_garbage(registry, dry_run=dry_run)
    except WaketrainError as exc:
        raise _fail(exc) from None
    verb = "would remove" if dry_run else "removed"
    for path in report.removed:
        typer.echo(f"{verb} {path.relative_to(registry.layout.root)}")
    for path in report.kept_in_use:
        typer.echo(f"kept {path.relative_to(registry.layout.root)} (a deployment is using it)")
    typer.echo(f"{verb} {report.files} files, {report.bytes_freed / 1e6:.1f} MB")
    if report.expired_captures:
        typer.echo(f"expired {report.expired_captures} unreviewed capture(s)")


BOARD_TOKEN_ENV = "WAKETRAIN_BOARD_TOKEN"
capture_app = typer.Typer(
    help="Captures the detector saved: push or pull them, list and review them.",
    no_args_is_help=True,
)
app.add_typer(capture_app, name="capture")


@app.command()
def detect(
    model: Annotated[
        Path,
        typer.Option(
            envvar="STT_WAKE_MODEL_PATH",
            help="wake_model.onnx with metadata.json beside it; a symlink is followed anew "
            "on every chunk, so a deploy's swap is picked up without a restart.",
        ),
    ] = Path("/models/wake_model.onnx"),
    source: Annotated[
        str, typer.Option(help="file:PATH, stdin (raw PCM16), socket[:PATH] or alsa[:DEVICE].")
    ] = "alsa",
    mqtt: Annotated[
        str | None,
        typer.Option(envvar="MQTT_URL", help="mqtt://[user:pass@]host[:port]; else stdout."),
    ] = None,
    tars: Annotated[
        bool, typer.Option("--tars", help="Also publish TARS's wake/event envelope.")
    ] = False,
    threshold: Annotated[
        float | None, typer.Option(help="Override the model's threshold (its metadata's).")
    ] = None,
    wyoming: Annotated[
        str | None,
        typer.Option(help="Serve Wyoming wake detection instead (e.g. tcp://0.0.0.0:10400)."),
    ] = None,
    capture_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="WAKETRAIN_CAPTURE_DIR",
            help="Save each detection and near miss here (WAV + JSON sidecar) for review, "
            "e.g. /var/lib/waketrain/captures; off unless given.",
        ),
    ] = None,
    near_miss_fraction: Annotated[
        float, typer.Option(help="A near miss peaks at this share of the threshold or above.")
    ] = 0.6,
    capture_max_mb: Annotated[
        float, typer.Option(help="Spool size cap; the oldest captures are deleted first.")
    ] = 50.0,
    board_name: Annotated[
        str | None, typer.Option(help="Board name in each capture (default: the hostname).")
    ] = None,
    room_audio_every: Annotated[
        float,
        typer.Option(
            help="Minutes between stretches of room audio sent back for the negative bank "
            "(only stretches with no detection or near miss); 0: none. Needs --capture-dir."
        ),
    ] = 0.0,
    room_audio_seconds: Annotated[
        float, typer.Option(help="Length of each stretch of room audio, in seconds.")
    ] = 30.0,
    push_url: Annotated[
        str | None,
        typer.Option(help="Push captures to this service (http:// or https://) in the background."),
    ] = None,
    push_dataset: Annotated[
        str | None, typer.Option(help="Dataset the pushed captures go to.")
    ] = None,
    push_token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the board token (else env WAKETRAIN_BOARD_TOKEN)."),
    ] = None,
    push_every: Annotated[float, typer.Option(help="Seconds between pushes.")] = 300.0,
) -> None:
    """Listen for the wake phrase and publish each detection (the board's detector)."""
    if wyoming:
        if capture_dir:
            typer.echo("captures are not saved in Wyoming mode (--capture-dir ignored)", err=True)
        from waketrain.runtime.wyoming_server import run_wyoming

        try:
            run_wyoming(wyoming, model, threshold)
        except (OSError, ValueError) as exc:
            raise _fail(exc) from None
        return
    from waketrain.runtime.detector import Detector, run_detector
    from waketrain.runtime.publish import open_publisher
    from waketrain.runtime.sources import SourceError, open_source

    def say(line: str) -> None:
        typer.echo(line, err=True)

    recorder, pusher = None, None
    try:
        detector = Detector(model, threshold)
        if capture_dir:
            recorder = _capture_recorder(
                capture_dir,
                near_miss_fraction,
                capture_max_mb,
                board_name,
                (room_audio_every * 60, room_audio_seconds),
                say,
            )
        elif room_audio_every:
            raise ValueError("--room-audio-every needs --capture-dir (the spool it is sent from).")
        if push_url:
            if not (capture_dir and push_dataset):
                raise ValueError("--push-url needs --capture-dir and --push-dataset.")
            pusher = _background_push(
                capture_dir, push_url, push_dataset, push_token_file, push_every, say
            )
        chunks = open_source(source)
        publisher = open_publisher(mqtt, tars)
    except (OSError, ValueError, SourceError) as exc:
        raise _fail(exc) from None
    if pusher is not None:
        pusher.start()
    try:
        run_detector(detector, chunks, publisher, on_reload=say, recorder=recorder)
    except (OSError, SourceError) as exc:
        raise _fail(exc) from None
    finally:
        publisher.close()
        if pusher is not None:
            pusher.stop()


def _capture_recorder(
    spool_dir: Path,
    near_miss_fraction: float,
    max_mb: float,
    board_name: str | None,
    room_audio: tuple[float, float],  # (seconds between stretches, seconds each); 0: none
    say: Callable[[str], None],
) -> CaptureRecorder:
    import socket

    from waketrain.runtime.capture import (
        MAX_ROOM_SECONDS,
        ROOM_GUARD_SECONDS,
        CaptureRecorder,
        CaptureSettings,
    )

    if not 0 < near_miss_fraction < 1:
        raise ValueError(f"--near-miss-fraction must be in (0, 1) (got {near_miss_fraction}).")
    if max_mb <= 0:
        raise ValueError(f"--capture-max-mb must be positive (got {max_mb}).")
    every, seconds = room_audio
    if not 0 < seconds <= MAX_ROOM_SECONDS:
        raise ValueError(
            f"--room-audio-seconds must be in (0, {MAX_ROOM_SECONDS:g}] (got {seconds:g})."
        )
    if every and not every > seconds + ROOM_GUARD_SECONDS:
        raise ValueError(
            f"--room-audio-every ({every / 60:g} min) must leave time between stretches of "
            f"--room-audio-seconds ({seconds:g} s), or be 0 for none."
        )
    settings = CaptureSettings(
        spool_dir=spool_dir,
        board=board_name or socket.gethostname(),
        near_miss_fraction=near_miss_fraction,
        max_spool_bytes=round(max_mb * 1_000_000),
        room_every_seconds=every,
        room_seconds=seconds,
    )
    return CaptureRecorder(settings, say)


def _board_token(token_file: Path | None) -> str:
    """From a file or the environment: never from argv, which `ps` and logs show."""
    token = token_file.read_text().strip() if token_file else os.environ.get(BOARD_TOKEN_ENV, "")
    if not token:
        raise ValueError(f"No board token: give --token-file or set {BOARD_TOKEN_ENV}.")
    return token


def _service_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Service URL {url!r} must start with http:// or https://.")
    return url


def _background_push(
    spool_dir: Path,
    url: str,
    dataset_id: str,
    token_file: Path | None,
    every_seconds: float,
    say: Callable[[str], None],
) -> BackgroundPush:
    from waketrain.runtime.capture_push import BackgroundPush

    if every_seconds <= 0:
        raise ValueError(f"--push-every must be positive (got {every_seconds}).")
    token = _board_token(token_file)
    return BackgroundPush(spool_dir, _service_url(url), dataset_id, token, every_seconds, say)


@capture_app.command("push")
def capture_push(
    url: Annotated[str, typer.Option(help="The service, e.g. http://jetson:8000.")],
    dataset: Annotated[str, typer.Option(help="Dataset the captures go to.")],
    spool: Annotated[
        Path | None,
        typer.Option(
            envvar="WAKETRAIN_CAPTURE_DIR",
            help="The detector's capture folder (default /var/lib/waketrain/captures).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the board token (else env WAKETRAIN_BOARD_TOKEN)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each upload.")] = 30.0,
) -> None:
    """Send the board's saved captures to the service; each leaves the spool once received."""
    from waketrain.runtime.capture import DEFAULT_SPOOL_DIR
    from waketrain.runtime.capture_push import push_spool

    spool = spool or DEFAULT_SPOOL_DIR
    try:
        report = push_spool(spool, _service_url(url), dataset, _board_token(token_file), timeout)
    except (OSError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(report.summary())
    if report.stopped:
        raise typer.Exit(code=1)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="User the token acts as.")] = "admin",
    name: Annotated[str | None, typer.Option(help="Label for the token.")] = None,
    captures_for: Annotated[
        str | None,
        typer.Option(help="A board token: it may only add captures to this dataset."),
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Print a new bearer token (shown once; only its hash is stored)."""
    from waketrain.store.accounts import issue_token

    kind = "board" if captures_for else "api"
    try:
        issued = issue_token(
            _open_registry(), user, kind, name, captures_for=captures_for, days=days
        )
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(issued.token)


@capture_app.command("list")
def captures_list(
    dataset: Annotated[str, typer.Option(help="Dataset the captures belong to.")],
    status: Annotated[
        str, typer.Option(help="unreviewed, reviewed, discarded or all.")
    ] = "unreviewed",
) -> None:
    """One line per capture: id, what the detector thought, peak score, board, when."""
    from waketrain.store.captures import list_captures

    if status not in ("unreviewed", "reviewed", "discarded", "all"):
        raise _fail(ValueError(f"Unknown status {status!r}: unreviewed, reviewed, discarded, all."))
    try:
        page = list_captures(_open_registry(), dataset, status, limit=500)  # type: ignore[arg-type]
    except WaketrainError as exc:
        raise _fail(exc) from None
    for c in page.items:
        verdict = c.verdict or c.status
        typer.echo(f"{c.id}  {c.kind:9}  peak {c.peak_score:.3f}  {verdict:10}  {c.board}  "
                   f"{c.captured_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    typer.echo(f"{page.total} {status} capture(s)")


@capture_app.command("review")
def captures_review(
    capture_id: Annotated[str, typer.Argument(help="The capture's id.")],
    verdict: Annotated[
        str, typer.Option(help="positive (a real wake), negative (a false wake) or discard.")
    ],
    actor: Annotated[str, typer.Option(help="Who reviews, for the audit trail.")] = "admin",
) -> None:
    """Say what a capture was; positive and negative ones join the dataset as clips."""
    from waketrain.store.captures import review_capture

    if verdict not in ("positive", "negative", "discard"):
        raise _fail(ValueError(f"Unknown verdict {verdict!r}: positive, negative or discard."))
    try:
        reviewed = review_capture(_open_registry(), capture_id, verdict, actor)  # type: ignore[arg-type]
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(f"{reviewed.id}: {reviewed.status}" + (f", clip {reviewed.clip_id}"
                                                      if reviewed.clip_id else ""))  # fmt: skip


@capture_app.command("pull")
def capture_pull(
    dataset: Annotated[str, typer.Option(help="Dataset the captures are for.")],
    spool: Annotated[
        str | None, typer.Option(help="Spool folder on the board (default DEPLOY_CAPTURE_DIR).")
    ] = None,
) -> None:
    """Fetch the board's capture spool over SSH (the deploy settings), for boards that cannot
    reach the service; each capture leaves the board only once it is stored here."""
    import asyncio

    from waketrain.deploy.capture_pull import pull_captures

    try:
        report = asyncio.run(pull_captures(_open_registry(), dataset, spool))
    except WaketrainError as exc:
        raise _fail(exc) from None
    typer.echo(report.summary())
    for capture_id, reason in report.rejected:
        typer.echo(f"refused {capture_id}: {reason}", err=True)
