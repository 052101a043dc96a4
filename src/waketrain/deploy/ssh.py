"""Over SSH to the board: verified host key, SFTP upload with retries, the remote apply script."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh

from waketrain.deploy.bundle import SCRIPT_NAME, Bundle, remote_script
from waketrain.settings import Settings
from waketrain.store.errors import InvalidInput, WaketrainError

Profile = Literal["detector", "tars-compose"]
# deploy_hotword.sh's exit codes
APPLIED, REFUSED, ROLLED_BACK, ROLLBACK_FAILED = 0, 1, 3, 4
CONNECT_TIMEOUT_SECONDS = 10


class DeployFailed(WaketrainError):
    """The board could not be reached or refused the bundle; nothing on it changed."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    path: str
    profile: Profile
    post_command: str | None
    health_command: str | None
    keep_releases: int

    @classmethod
    def from_settings(cls, settings: Settings, default_known_hosts: Path) -> Target:
        missing = [
            name
            for name, value in (
                ("DEPLOY_HOST", settings.deploy_host),
                ("DEPLOY_USER", settings.deploy_user),
                ("DEPLOY_SSH_KEY", settings.deploy_ssh_key),
            )
            if not value
        ]
        if missing:
            raise InvalidInput(f"No deploy target: set {', '.join(missing)}.")
        assert settings.deploy_host and settings.deploy_user and settings.deploy_ssh_key
        return cls(
            host=settings.deploy_host,
            port=settings.deploy_port,
            user=settings.deploy_user,
            key=settings.deploy_ssh_key,
            known_hosts=settings.deploy_known_hosts or default_known_hosts,
            path=settings.deploy_path,
            profile=settings.deploy_target,
            post_command=settings.deploy_post_command,
            health_command=settings.deploy_health_command,
            keep_releases=settings.deploy_keep_releases,
        )

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}:{self.path} ({self.profile})"

    def apply_command(self, bundle_name: str) -> str:
        env = {
            "DEPLOY_PATH": self.path,
            "DEPLOY_TARGET": self.profile,
            "DEPLOY_KEEP_RELEASES": str(self.keep_releases),
        }
        if self.post_command is not None:
            env["DEPLOY_POST_COMMAND"] = self.post_command
        if self.health_command is not None:
            env["DEPLOY_HEALTH_COMMAND"] = self.health_command
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        incoming = f"{self.path}/incoming"
        script = shlex.quote(f"{incoming}/{SCRIPT_NAME}")
        return f"{assignments} sh {script} {shlex.quote(f'{incoming}/{bundle_name}')}"


@dataclass(frozen=True)
class RemoteOutcome:
    exit_status: int
    stdout: str
    stderr: str
    attempts: int


async def connect(target: Target) -> asyncssh.SSHClientConnection:
    if not target.known_hosts.is_file():
        raise DeployFailed(
            f"No known host key for {target.host}: {target.known_hosts} does not exist. "
            "Check the board's key fingerprint, then pin it with `waketrain pin-host-key`."
        )
    return await asyncssh.connect(
        target.host,
        port=target.port,
        username=target.user,
        client_keys=[str(target.key)],
        known_hosts=str(target.known_hosts),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def explain(target: Target, exc: Exception) -> str:
    where = f"{target.host}:{target.port}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            f"The host key of {where} does not match {target.known_hosts}: refusing to connect "
            "(a different board, or someone in between). Re-pin only if the board was reinstalled."
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"SSH login as {target.user!r} on {where} was refused: check DEPLOY_SSH_KEY."
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return f"No permission to write {target.path}/incoming on the board ({exc.reason})."
    if isinstance(exc, asyncssh.SFTPFailure) and "space" in str(exc.reason).lower():
        return f"The board's disk is full: {exc.reason}."
    if isinstance(exc, asyncssh.SFTPError):
        return f"Upload to {target.path}/incoming failed: {exc.reason}."
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncssh.ConnectionLost)):
        return f"Cannot reach {where}: {exc or type(exc).__name__}."
    return f"{type(exc).__name__}: {exc}"


def _is_transient(exc: Exception) -> bool:
    permanent = (asyncssh.HostKeyNotVerifiable, asyncssh.PermissionDenied, asyncssh.SFTPError)
    return not isinstance(exc, permanent) and isinstance(
        exc, (OSError, asyncio.TimeoutError, asyncssh.ConnectionLost, asyncssh.DisconnectError)
    )


async def ship(
    bundle: Bundle,
    target: Target,
    log: Callable[[str], None],
    attempts: int = 3,
    backoff_seconds: float = 2.0,
    on_uploaded: Callable[[], object] | None = None,
) -> RemoteOutcome:
    """Upload the bundle and run the apply script; transient failures retry with backoff."""
    for attempt in range(1, attempts + 1):
        try:
            async with await connect(target) as conn:
                log(f"connected to {target.describe()}")
                incoming = f"{target.path}/incoming"
                async with conn.start_sftp_client() as sftp:
                    await sftp.makedirs(incoming, exist_ok=True)
                    for local in (bundle.path, bundle.checksum_path):
                        await sftp.put(str(local), f"{incoming}/{local.name}")
                    async with sftp.open(f"{incoming}/{SCRIPT_NAME}", "wb") as script:
                        await script.write(remote_script())
                log(f"uploaded {bundle.path.name} ({bundle.path.stat().st_size} bytes)")
                if on_uploaded is not None:
                    on_uploaded()
                result = await conn.run(target.apply_command(bundle.path.name), check=False)
                return RemoteOutcome(
                    exit_status=result.exit_status if result.exit_status is not None else -1,
                    stdout=str(result.stdout or ""),
                    stderr=str(result.stderr or ""),
                    attempts=attempt,
                )
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
            reason = explain(target, exc)
            if not _is_transient(exc) or attempt == attempts:
                suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise DeployFailed(reason + suffix) from exc
            delay = backoff_seconds * 2 ** (attempt - 1)
            log(f"attempt {attempt} failed: {reason} Retrying in {delay:g} s.")
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def pin_host_key(host: str, port: int, known_hosts: Path) -> str:
    """Fetch the board's host key and append it to known_hosts; returns its fingerprint."""
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port), CONNECT_TIMEOUT_SECONDS
        )
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        raise DeployFailed(f"Cannot reach {host}:{port}: {exc or type(exc).__name__}.") from exc
    if key is None:
        raise DeployFailed(f"{host}:{port} offered no host key.")
    name = host if port == 22 else f"[{host}]:{port}"
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    with known_hosts.open("a") as f:
        f.write(f"{name} {key.export_public_key('openssh').decode().strip()}\n")
    return str(key.get_fingerprint())
