"""Over SSH to the board: verified host key, SFTP upload with retries, the remote apply script."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
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
    """A board as one deploy sees it: where, as whom, which host key it must show."""

    host: str
    port: int
    user: str
    client_key: asyncssh.SSHKey = field(repr=False)
    known_hosts: str  # known_hosts lines trusted for this board; empty: none trusted yet
    known_hosts_origin: str  # where that trust is kept, for messages
    trust_how: str  # how the operator trusts the board's key, for messages
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
        known_hosts = settings.deploy_known_hosts or default_known_hosts
        return cls(
            host=settings.deploy_host,
            port=settings.deploy_port,
            user=settings.deploy_user,
            client_key=read_client_key(settings.deploy_ssh_key),
            known_hosts=known_hosts.read_text() if known_hosts.is_file() else "",
            known_hosts_origin=str(known_hosts),
            trust_how="`waketrain pin-host-key`",
            path=settings.deploy_path,
            profile=settings.deploy_target,
            post_command=settings.deploy_post_command,
            health_command=settings.deploy_health_command,
            keep_releases=settings.deploy_keep_releases,
        )

    def pinned_keys(self) -> list[asyncssh.SSHKey]:
        """The host keys trusted for this board's host and port."""
        if not self.known_hosts.strip():
            return []
        trusted = asyncssh.import_known_hosts(self.known_hosts)
        return list(trusted.match(self.host, "", self.port)[0])

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


def read_client_key(path: Path) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as exc:
        raise InvalidInput(
            f"The SSH key {path} cannot be read ({exc}). Accepted: an OpenSSH or PEM private "
            "key without a passphrase."
        ) from exc


def host_pattern(host: str, port: int) -> str:
    """How known_hosts names a host on a port."""
    return host if port == 22 else f"[{host}]:{port}"


async def connect(target: Target) -> asyncssh.SSHClientConnection:
    if not target.known_hosts.strip():
        raise DeployFailed(
            f"No trusted host key for {target.host}:{target.port} ({target.known_hosts_origin} "
            f"has none). Check the board's key fingerprint, then trust it with "
            f"{target.trust_how}."
        )
    return await asyncssh.connect(
        target.host,
        port=target.port,
        username=target.user,
        client_keys=[target.client_key],
        known_hosts=asyncssh.import_known_hosts(target.known_hosts),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def explain(target: Target, exc: Exception) -> str:
    where = f"{target.host}:{target.port}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            f"The host key of {where} does not match {target.known_hosts_origin}: refusing to "
            "connect "
            "(a different board, or someone in between). Re-pin only if the board was reinstalled."
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return (
            f"SSH login as {target.user!r} on {where} was refused: is the board's public key "
            f"in ~{target.user}/.ssh/authorized_keys there?"
        )
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


async def fetch_host_key(host: str, port: int) -> asyncssh.SSHKey:
    """The host key the board offers now (before any trust: for the operator to compare)."""
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port), CONNECT_TIMEOUT_SECONDS
        )
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        raise DeployFailed(f"Cannot reach {host}:{port}: {exc or type(exc).__name__}.") from exc
    if key is None:
        raise DeployFailed(f"{host}:{port} offered no host key.")
    return key


def public_line(key: asyncssh.SSHKey) -> str:
    """One OpenSSH public key line: "ssh-ed25519 AAAA... comment"."""
    return key.export_public_key("openssh").decode().strip()


def append_known_host(known_hosts: Path, host: str, port: int, key: asyncssh.SSHKey) -> None:
    """Trust `key` for the host and port in a known_hosts file."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    with known_hosts.open("a") as f:
        f.write(f"{host_pattern(host, port)} {public_line(key)}\n")
