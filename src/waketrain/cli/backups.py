"""Looking after the registry: `backup`, `restore` and `gc`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from waketrain.cli.startup import load_settings, open_registry

app = typer.Typer()


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="New folder for the backup (absent or empty).")],
    transfers: Annotated[
        bool, typer.Option("--transfers", help="Also copy the deploy bundles in transfers/.")
    ] = False,
) -> None:
    """Back up the registry while the service runs: database snapshot, clips, jobs, models."""
    from waketrain.store.backup import backup_registry

    report = backup_registry(load_settings(), to, include_transfers=transfers)
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
            "--force",
            help="Replace a non-empty data dir or PostgreSQL database (their contents are "
            "moved aside, the database as a pg_dump file).",
        ),
    ] = False,
) -> None:
    """Restore a backup into WAKETRAIN_DATA_DIR (and the WAKETRAIN_DB_URL database, if set);
    stop the service and workers first."""
    from waketrain.store.restore import restore_registry

    report = restore_registry(from_dir, load_settings(), force=force)
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
    from waketrain.store.garbage import collect_garbage

    registry = open_registry()
    report = collect_garbage(registry, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for path in report.removed:
        typer.echo(f"{verb} {path.relative_to(registry.layout.root)}")
    for path in report.kept_in_use:
        typer.echo(f"kept {path.relative_to(registry.layout.root)} (a deployment is using it)")
    typer.echo(f"{verb} {report.files} files, {report.bytes_freed / 1e6:.1f} MB")
    if report.expired_captures:
        typer.echo(f"expired {report.expired_captures} unreviewed capture(s)")
