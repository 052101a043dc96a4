"""The one settings object: every environment variable the service reads is declared here."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Folders given as one variable, separated like PATH (":" on Linux).
FolderList = Annotated[tuple[Path, ...], NoDecode]
# Addresses or networks given as one variable, separated by commas (":" is part of IPv6).
AddressList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Service configuration, read once at start-up and passed down."""

    model_config = SettingsConfigDict(env_prefix="WAKETRAIN_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data/wake-training"),
        description="Root of the artifact registry (datasets, jobs, models, database).",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy database URL; default: SQLite file waketrain.db in the data dir. "
        "PostgreSQL (postgresql+psycopg://user:password@host/db) lets workers on several hosts "
        "share the registry.",
    )
    scratch_dir: Path | None = Field(
        default=None,
        description="Cache of synthetic speech, augmented audio and embeddings (safe to "
        "delete); default: scratch/ in the data dir. A worker on another host keeps it on "
        "its own disk.",
    )
    host: str = Field(default="127.0.0.1", description="Address `waketrain serve` binds to.")
    port: int = Field(default=8000, description="Port `waketrain serve` listens on.")
    admin_password: str | None = Field(
        default=None,
        description="Password of the admin user created at first start; generated if unset.",
    )
    default_dataset_id: str = Field(
        default="tars-default", description="Dataset created at first start."
    )
    default_phrase: str = Field(default="hey tars", description="Wake phrase of that dataset.")

    max_upload_bytes: int = Field(default=10_000_000, description="Largest accepted upload.")
    min_clip_seconds: float = Field(default=0.3, description="Shortest accepted clip.")
    max_clip_seconds: float = Field(default=30.0, description="Longest accepted clip.")
    min_positive_clips: int = Field(
        default=50, description="Positive clips a dataset needs before training."
    )
    min_negative_clips: int = Field(
        default=50, description="Negative + noise clips a dataset needs before training."
    )
    session_hours: float = Field(default=168.0, description="Lifetime of a browser login.")
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind HTTPS)."
    )
    uploads_per_minute: int = Field(
        default=1200, ge=0, description="Uploads one user may make a minute, in bursts (0: off)."
    )
    login_failures_per_minute: int = Field(
        default=10,
        ge=0,
        description="Failed logins one address may make a minute, or per "
        "WAKETRAIN_LOGIN_WINDOW_SECONDS (0: off).",
    )
    login_window_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The window failed logins are counted over; an address over its budget may "
        "try again after this divided by WAKETRAIN_LOGIN_FAILURES_PER_MINUTE.",
    )
    trusted_proxies: AddressList = Field(
        default=(),
        description="Reverse proxies (comma-separated IP addresses or networks) whose "
        "X-Forwarded-For names the client; from any other peer the header is ignored.",
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A request body must arrive in full this many seconds after its headers; "
        "a stalled or trickling one is answered 408.",
    )
    capture_retention_days: float = Field(
        default=14.0, gt=0, description="Unreviewed captures from the board expire after this."
    )
    heartbeat_seconds: float = Field(
        default=2.0, gt=0, description="How often a worker confirms it is alive."
    )
    stale_job_seconds: float = Field(
        default=30.0, gt=0, description="A running job silent this long is recovered."
    )
    auto_bless: bool = Field(
        default=True,
        description="Make a newly succeeded job's model the current one when it is at least as "
        "good as the current model on the same audio (else it is kept, marked not better).",
    )
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")
    gc_interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="How often a worker cleans scratch/ and transfers/ between jobs; 0 disables.",
    )
    scratch_max_age_days: float = Field(
        default=7.0, ge=0, description="Cached files in scratch/ unused this long are deleted."
    )
    keep_transfers: int = Field(
        default=3,
        ge=1,
        description="Deploy bundles kept per model in transfers/ (newest first); "
        "a running deployment's bundle is always kept.",
    )
    noise_dirs: FolderList = Field(
        default=(),
        description="Background noise folders every job mixes into its training audio "
        "(':'-separated), beside the dataset's own noise clips.",
    )
    rir_dirs: FolderList = Field(
        default=(),
        description="Room impulse response folders for reverberation (':'-separated); "
        "without them jobs use synthetic ones.",
    )
    eval_negative_dirs: FolderList = Field(
        default=(),
        description="Long negative audio (speech, TV, household sound; ':'-separated) every job "
        "streams, beside its held-out clips, to measure false accepts per hour and set its "
        "threshold. Never trained on.",
    )
    negatives_import_dirs: FolderList = Field(
        default=(),
        description="Folders (':'-separated, e.g. a mounted drive) under which the web UI may "
        "add audio on the server's disk to the negative bank; none by default (upload instead, "
        "or use waketrain negatives add).",
    )

    deploy_host: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPLOY_HOST"),
        description="SSH host of a board outside the registry (the default while no board is "
        "added on the Boards page); the other DEPLOY_* values are also the defaults of a new "
        "board.",
    )
    deploy_user: str | None = Field(
        default=None, validation_alias=AliasChoices("DEPLOY_USER"), description="SSH user."
    )
    deploy_path: str = Field(
        default="/opt/waketrain",
        validation_alias=AliasChoices("DEPLOY_PATH"),
        description="Folder on the board holding incoming/, releases/ and current.",
    )
    deploy_ssh_key: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPLOY_SSH_KEY"),
        description="Private key for the board.",
    )
    deploy_port: int = Field(
        default=22, validation_alias=AliasChoices("DEPLOY_PORT"), description="SSH port."
    )
    deploy_post_command: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPLOY_POST_COMMAND"),
        description="Command run on the board after the swap (e.g. restart the wake service).",
    )
    deploy_known_hosts: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPLOY_KNOWN_HOSTS"),
        description="known_hosts file the board's host key is verified against.",
    )
    deploy_target: Literal["detector", "tars-compose"] = Field(
        default="detector",
        validation_alias=AliasChoices("DEPLOY_TARGET"),
        description="What runs the model on the board: this project's detector, or py-tars's "
        "wake-activation service (an oww_head export placed in its checkout).",
    )
    deploy_health_command: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DEPLOY_HEALTH_COMMAND"),
        description="Check run on the board after the post command; failing rolls back "
        "(default: the model loads and scores a second of silence).",
    )
    deploy_capture_dir: str = Field(
        default="/var/lib/waketrain/captures",
        validation_alias=AliasChoices("DEPLOY_CAPTURE_DIR"),
        description="The detector's capture spool on the board, for `waketrain capture pull`.",
    )
    deploy_keep_releases: int = Field(
        default=3,
        ge=2,
        validation_alias=AliasChoices("DEPLOY_KEEP_RELEASES"),
        description="Releases kept on the board, current and previous included.",
    )
    deploy_attempts: int = Field(
        default=3,
        ge=1,
        validation_alias=AliasChoices("DEPLOY_ATTEMPTS"),
        description="Tries to reach the board and upload before a deploy fails.",
    )
    stt_wake_model_path: Path = Field(
        default=Path("/models/wake_model.onnx"),
        validation_alias=AliasChoices("STT_WAKE_MODEL_PATH"),
        description="Model the detector on the board loads (normally the `current` symlink).",
    )

    @field_validator(
        "noise_dirs", "rir_dirs", "eval_negative_dirs", "negatives_import_dirs", mode="before"
    )
    @classmethod
    def _split_folders(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())
        return value

    @field_validator("noise_dirs", "rir_dirs", "eval_negative_dirs", "negatives_import_dirs")
    @classmethod
    def _folders_exist(cls, folders: tuple[Path, ...]) -> tuple[Path, ...]:
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:
            raise ValueError(f"not a folder: {', '.join(missing)} (give existing folders)")
        return folders

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_valid(cls, addresses: tuple[str, ...]) -> tuple[str, ...]:
        for address in addresses:
            try:
                ipaddress.ip_network(address)
            except ValueError:
                raise ValueError(
                    f"{address!r} is not an IP address or network (e.g. 10.0.0.2 or 10.0.0.0/24)"
                ) from None
        return addresses

    @classmethod
    def variable(cls, field_name: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return f"WAKETRAIN_{field_name.upper()}"

    @property
    def database_url(self) -> str:
        """The configured database URL, or the registry's SQLite file."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'waketrain.db').resolve()}"


def explain(error: ValidationError) -> str:
    """What is wrong with the environment, by variable name, for an operator to fix."""
    problems = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        variable = Settings.variable(name) if name in Settings.model_fields else name
        problems.append(f"{variable}: {problem['msg'].removeprefix('Value error, ')}")
    return "bad setting: " + "; ".join(problems)
