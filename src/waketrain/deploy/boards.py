"""Boards: the deploy targets kept in the registry, and the one the DEPLOY_* settings name.

The one core behind `/boards` and `waketrain board`. A board is reached with a client key
the registry keeps (pasted or generated here; never sent back, only its public half) and
is trusted only once the operator has compared the host key's fingerprint with the
board's own: a check fetches the key, the operator confirms the fingerprint, and the
trust is pinned only if the board still offers that same key. The DEPLOY_* board (id
`env`) stays as it was: the default while the registry holds none, read-only here.
"""

from __future__ import annotations

import asyncio
import shlex
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal

import asyncssh
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from waketrain.deploy.ssh import (
    CONNECT_TIMEOUT_SECONDS,
    DeployFailed,
    Profile,
    Target,
    append_known_host,
    connect,
    explain,
    fetch_host_key,
    host_pattern,
    public_line,
)
from waketrain.store.errors import Conflict, InvalidInput, NotFound
from waketrain.store.events import record_audit
from waketrain.store.models import ACTIVE_DEPLOYMENT_STATUSES, Board, Deployment, utcnow
from waketrain.store.registry import Registry

ENV_BOARD_ID = "env"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
HOST_PATTERN = r"^[A-Za-z0-9._:-]{1,253}$"  # a name, IPv4 or IPv6 address
USER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"
PATH_PATTERN = r"^/[^\s'\"\\;&|$`]*$"
HostKeyStatus = Literal["pinned", "unpinned", "mismatch"]


class KeyInfo(BaseModel):
    algorithm: str
    fingerprint: str = Field(description="SHA256 fingerprint, as `ssh-keygen -lf` prints it.")


class ClientKeyInfo(KeyInfo):
    public_key: str = Field(description="The line for ~/.ssh/authorized_keys on the board.")


class BoardRecord(BaseModel):
    id: str = Field(description=f"`{ENV_BOARD_ID}` for the board of the DEPLOY_* settings.")
    name: str
    host: str
    port: int
    user: str
    path: str
    profile: Profile
    post_command: str | None
    health_command: str | None
    keep_releases: int
    is_default: bool = Field(description="Where a deploy goes unless another board is named.")
    source: Literal["registry", "environment"]
    key: ClientKeyInfo | None = Field(description="The client key's public half, never the key.")
    host_key: KeyInfo | None = Field(description="The trusted host key; None until trusted.")
    created_at: datetime | None
    updated_at: datetime | None


class BoardFields(BaseModel):
    """What an operator may set; a field left out keeps its value (or its DEPLOY_* default)."""

    model_config = {"extra": "forbid"}

    name: str | None = Field(default=None, pattern=NAME_PATTERN, description="e.g. tars-kitchen")
    host: str | None = Field(default=None, pattern=HOST_PATTERN)
    user: str | None = Field(default=None, pattern=USER_PATTERN)
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str | None = Field(
        default=None, pattern=PATH_PATTERN, max_length=512, description="Absolute, on the board."
    )
    profile: Profile | None = None
    post_command: str | None = Field(default=None, max_length=2000)
    health_command: str | None = Field(default=None, max_length=2000)
    keep_releases: int | None = Field(default=None, ge=2, le=50)
    private_key: SecretStr | None = Field(
        default=None,
        description="An OpenSSH or PEM private key without a passphrase; stored, never returned.",
    )
    generate_key: bool = Field(
        default=False, description="Make a new ed25519 key; its public half is in the answer."
    )


class HostKeyConfirmation(BaseModel):
    fingerprint: str = Field(description="The fingerprint the operator compared, SHA256:...")


class BoardCheck(BaseModel):
    reachable: bool
    host_key: KeyInfo | None = Field(description="The key the board offers now.")
    host_key_status: HostKeyStatus | None = Field(description="None when unreachable.")
    login: bool | None = Field(description="None when not tried (host key not trusted).")
    path_writable: bool | None
    ok: bool = Field(description="Everything a deploy needs holds.")
    message: str


def list_boards(registry: Registry) -> list[BoardRecord]:
    """The stored boards by name, then the DEPLOY_* board when it is set."""
    with registry.sessions() as session:
        rows = session.scalars(select(Board).order_by(Board.name)).all()
        boards = [_record(row) for row in rows]
    env = _env_board(registry, default=not boards)
    return boards + ([env] if env else [])


def get_board(registry: Registry, ref: str) -> BoardRecord:
    """A board by id or name."""
    if ref == ENV_BOARD_ID:
        with registry.sessions() as session:
            stored = session.scalar(select(Board.id).limit(1)) is not None
        env = _env_board(registry, default=not stored)
        if env is None:
            raise NotFound("No DEPLOY_* board: DEPLOY_HOST, DEPLOY_USER or DEPLOY_SSH_KEY unset.")
        return env
    with registry.sessions() as session:
        return _record(_row(session, ref))


def default_board(registry: Registry) -> BoardRecord:
    """Where a deploy goes unless another board is named."""
    for board in list_boards(registry):
        if board.is_default:
            return board
    raise InvalidInput(
        "No board to deploy to: add one on the Boards page or with `waketrain board add` "
        "(or set DEPLOY_HOST, DEPLOY_USER and DEPLOY_SSH_KEY)."
    )


def offered_host_key(registry: Registry, ref: str) -> KeyInfo:
    """The host key the board offers now, for the operator to compare before trusting it."""
    board = get_board(registry, ref)
    return _key_info(asyncio.run(fetch_host_key(board.host, board.port)))


def add_board(registry: Registry, fields: BoardFields, actor: str) -> BoardRecord:
    """Store a new board (the first one becomes the default); DEPLOY_* fills what is left out."""
    settings = registry.settings
    missing = [name for name in ("name", "host", "user") if getattr(fields, name) is None]
    if missing:
        raise InvalidInput(f"A board needs {', '.join(missing)}.")
    if fields.private_key is None and not fields.generate_key:
        raise InvalidInput("Give the board's private key (private_key) or ask for a new one "
                           "(generate_key).")  # fmt: skip
    given = fields.model_fields_set
    with registry.sessions.begin() as session:
        _refuse_taken_name(session, fields.name)
        first = session.scalar(select(Board.id).limit(1)) is None
        now = utcnow()
        row = Board(
            id=str(uuid.uuid4()),
            name=fields.name,
            host=fields.host,
            user=fields.user,
            port=fields.port or settings.deploy_port,
            path=fields.path or settings.deploy_path,
            profile=fields.profile or settings.deploy_target,
            post_command=(
                fields.post_command if "post_command" in given else settings.deploy_post_command
            ),
            health_command=(
                fields.health_command
                if "health_command" in given
                else settings.deploy_health_command
            ),
            keep_releases=fields.keep_releases or settings.deploy_keep_releases,
            private_key=_client_key_text(fields, fields.name or ""),
            host_key=None,
            is_default=first,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        record_audit(session, actor, "add", "board", row.id, _audited(row))
        return _record(row)


def edit_board(registry: Registry, ref: str, fields: BoardFields, actor: str) -> BoardRecord:
    """Change what was given; a new host or port forgets the trusted host key."""
    _refuse_env(ref, "edit")
    given = fields.model_fields_set - {"private_key", "generate_key"}
    with registry.sessions.begin() as session:
        row = _row(session, ref, lock=True)
        if fields.name is not None and fields.name != row.name:
            _refuse_taken_name(session, fields.name)
        for name in given:
            value = getattr(fields, name)
            if value is None and name not in ("post_command", "health_command"):
                raise InvalidInput(f"{name} cannot be empty.")
            setattr(row, name, value)
        if {"host", "port"} & given:
            row.host_key = None  # another machine until its key is checked again
        if fields.private_key is not None or fields.generate_key:
            row.private_key = _client_key_text(fields, row.name)
        row.updated_at = utcnow()
        record_audit(session, actor, "edit", "board", row.id, _audited(row))
        return _record(row)


def remove_board(registry: Registry, ref: str, actor: str) -> None:
    """Forget a board (refused while a deployment to it is under way)."""
    _refuse_env(ref, "remove")
    with registry.sessions.begin() as session:
        row = _row(session, ref, lock=True)
        busy = session.scalar(
            select(Deployment.id).where(
                Deployment.board_id == row.id, Deployment.status.in_(ACTIVE_DEPLOYMENT_STATUSES)
            )
        )
        if busy is not None:
            raise Conflict(f"Deployment {busy} to {row.name} is under way; remove it afterwards.")
        session.delete(row)
        session.flush()
        if row.is_default:  # the oldest board left takes over
            successor = session.scalar(select(Board).order_by(Board.created_at).limit(1))
            if successor is not None:
                successor.is_default = True
        record_audit(session, actor, "remove", "board", row.id, {"name": row.name})


def make_default(registry: Registry, ref: str, actor: str) -> BoardRecord:
    _refuse_env(ref, "make the default")
    with registry.sessions.begin() as session:
        row = _row(session, ref, lock=True)
        session.execute(update(Board).where(Board.id != row.id).values(is_default=False))
        row.is_default = True
        record_audit(session, actor, "make default", "board", row.id, {"name": row.name})
        return _record(row)


def board_target(registry: Registry, board_id: str | None = None) -> tuple[Target, str | None]:
    """The SSH target of a board (default: the default board) and its stored id."""
    with registry.sessions() as session:
        if board_id is None or board_id == ENV_BOARD_ID:
            row = None
            if board_id is None:
                row = session.scalar(select(Board).where(Board.is_default))
        else:
            row = _row(session, board_id)
        if row is not None:
            return _target(row), row.id
    if board_id is None and not _env_configured(registry):
        default_board(registry)  # raises, saying how to add one
    return Target.from_settings(registry.settings, registry.layout.root / "known_hosts"), None


def check_board(registry: Registry, ref: str) -> BoardCheck:
    """Reach the board: its host key against the trusted one, then log in and try the path."""
    board = get_board(registry, ref)
    target, _ = board_target(registry, board.id)
    return asyncio.run(_check(target, board))


def trust_host_key(registry: Registry, ref: str, fingerprint: str, actor: str) -> BoardRecord:
    """Trust the key the board offers, if it is still the one whose fingerprint was confirmed."""
    board = get_board(registry, ref)
    offered = asyncio.run(fetch_host_key(board.host, board.port))
    if offered.get_fingerprint() != fingerprint.strip():
        raise Conflict(
            f"{board.host}:{board.port} now offers {offered.get_fingerprint()}, not the "
            f"{fingerprint.strip()} that was confirmed: nothing trusted. Test the board again."
        )
    if board.source == "environment":  # the key just compared, not one fetched again
        append_known_host(_env_known_hosts(registry), board.host, board.port, offered)
    else:
        with registry.sessions.begin() as session:
            row = _row(session, board.id, lock=True)
            row.host_key = public_line(offered)
            row.updated_at = utcnow()
    with registry.sessions.begin() as session:
        details = {"fingerprint": fingerprint.strip()}
        record_audit(session, actor, "trust host key", "board", board.id, details)
    return get_board(registry, board.id)


async def _check(target: Target, board: BoardRecord) -> BoardCheck:
    where = f"{target.host}:{target.port}"
    try:
        offered = await fetch_host_key(target.host, target.port)
    except DeployFailed as exc:
        return BoardCheck(reachable=False, host_key=None, host_key_status=None, login=None,
                          path_writable=None, ok=False, message=str(exc))  # fmt: skip
    offered_info = _key_info(offered)
    pinned = [key.get_fingerprint() for key in target.pinned_keys()]
    if not pinned or offered.get_fingerprint() not in pinned:
        status: HostKeyStatus = "mismatch" if pinned else "unpinned"
        message = (
            f"{where} offers a host key other than the trusted one: a different board, or "
            "someone in between. Trust the new key only if the board was reinstalled."
            if pinned
            else f"{where} answers with host key {offered_info.fingerprint}. Compare it with "
            "the board's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there), then "
            f"trust it with {target.trust_how}."
        )
        return BoardCheck(reachable=True, host_key=offered_info, host_key_status=status,
                          login=None, path_writable=None, ok=False, message=message)  # fmt: skip
    incoming = shlex.quote(f"{target.path}/incoming")
    try:
        async with await connect(target) as conn:
            probe = await asyncio.wait_for(
                conn.run(f"mkdir -p {incoming} && test -w {incoming}", check=False),
                CONNECT_TIMEOUT_SECONDS,
            )
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        return BoardCheck(reachable=True, host_key=offered_info, host_key_status="pinned",
                          login=False, path_writable=None, ok=False,
                          message=explain(target, exc))  # fmt: skip
    writable = probe.exit_status == 0
    message = (
        f"Ready: logged in as {target.user} on {where}, host key {offered_info.fingerprint} "
        f"as trusted, {target.path}/incoming writable."
        if writable
        else f"Logged in as {target.user} on {where}, but {target.path}/incoming cannot be "
        f"written: {str(probe.stderr or '').strip() or 'permission denied'}."
    )
    return BoardCheck(reachable=True, host_key=offered_info, host_key_status="pinned",
                      login=True, path_writable=writable, ok=writable, message=message)  # fmt: skip


def _target(row: Board) -> Target:
    return Target(
        host=row.host,
        port=row.port,
        user=row.user,
        client_key=asyncssh.import_private_key(row.private_key),
        known_hosts=f"{host_pattern(row.host, row.port)} {row.host_key}\n" if row.host_key else "",
        known_hosts_origin=f"the host key trusted for board {row.name!r}",
        trust_how=f"the Boards page or `waketrain board trust {row.name}`",
        path=row.path,
        profile=row.profile,  # type: ignore[arg-type]  # only Profile values are written
        post_command=row.post_command,
        health_command=row.health_command,
        keep_releases=row.keep_releases,
    )


def _record(row: Board) -> BoardRecord:
    return BoardRecord(
        id=row.id,
        name=row.name,
        host=row.host,
        port=row.port,
        user=row.user,
        path=row.path,
        profile=row.profile,  # type: ignore[arg-type]
        post_command=row.post_command,
        health_command=row.health_command,
        keep_releases=row.keep_releases,
        is_default=row.is_default,
        source="registry",
        key=_client_key_info(asyncssh.import_private_key(row.private_key)),
        host_key=_key_info(asyncssh.import_public_key(row.host_key)) if row.host_key else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _env_configured(registry: Registry) -> bool:
    s = registry.settings
    return bool(s.deploy_host and s.deploy_user and s.deploy_ssh_key)


def _env_known_hosts(registry: Registry) -> Path:
    return registry.settings.deploy_known_hosts or registry.layout.root / "known_hosts"


def _env_board(registry: Registry, default: bool) -> BoardRecord | None:
    if not _env_configured(registry):
        return None
    s = registry.settings
    try:
        target = Target.from_settings(s, registry.layout.root / "known_hosts")
        key: ClientKeyInfo | None = _client_key_info(target.client_key)
        pinned = target.pinned_keys()
    except InvalidInput:
        key, pinned = None, []  # an unreadable key file: a check says why
    assert s.deploy_host and s.deploy_user
    return BoardRecord(
        id=ENV_BOARD_ID,
        name="DEPLOY_* settings",
        host=s.deploy_host,
        port=s.deploy_port,
        user=s.deploy_user,
        path=s.deploy_path,
        profile=s.deploy_target,
        post_command=s.deploy_post_command,
        health_command=s.deploy_health_command,
        keep_releases=s.deploy_keep_releases,
        is_default=default,
        source="environment",
        key=key,
        host_key=_key_info(pinned[0]) if pinned else None,
        created_at=None,
        updated_at=None,
    )


def _row(session: Session, ref: str, lock: bool = False) -> Board:
    query = select(Board).where(or_(Board.id == ref, Board.name == ref))
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"No board {ref!r}: give a board's name or id (see `waketrain board list`).")
    return row


def _refuse_env(ref: str, what: str) -> None:
    if ref == ENV_BOARD_ID:
        raise Conflict(
            f"The DEPLOY_* board is set by the server's environment; cannot {what} it here. "
            "Change DEPLOY_* where the service starts, or add a board instead."
        )


def _refuse_taken_name(session: Session, name: str | None) -> None:
    if session.scalar(select(Board.id).where(Board.name == name)) is not None:
        raise Conflict(f"A board named {name!r} exists already; pick another name.")


def _client_key_text(fields: BoardFields, name: str) -> str:
    if fields.private_key is not None and fields.generate_key:
        raise InvalidInput("Give private_key or generate_key, not both.")
    if fields.generate_key:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"waketrain@{name}")
    else:
        assert fields.private_key is not None
        try:
            key = asyncssh.import_private_key(fields.private_key.get_secret_value())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise InvalidInput(
                f"The private key cannot be read ({exc}). Accepted: an OpenSSH or PEM private "
                "key without a passphrase."
            ) from None  # the key's text stays out of tracebacks
    return key.export_private_key("openssh").decode()


def _key_info(key: asyncssh.SSHKey) -> KeyInfo:
    return KeyInfo(algorithm=key.get_algorithm(), fingerprint=key.get_fingerprint())


def _client_key_info(key: asyncssh.SSHKey) -> ClientKeyInfo:
    info = _key_info(key)
    return ClientKeyInfo(**info.model_dump(), public_key=public_line(key))


def _audited(row: Board) -> dict[str, object]:
    """What the audit log keeps of a board: everything but its key."""
    fields = ("name", "host", "port", "user", "path", "profile", "post_command", "health_command")
    return {name: getattr(row, name) for name in fields}
