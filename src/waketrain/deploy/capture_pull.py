"""Fetch the detector's capture spool from the board over SSH (the deploy settings).

For boards that cannot reach the service: the service reaches the board instead. A capture
is deleted on the board only after the registry stored it (or already had it), so a pull
cut off at any point is simply run again; a capture the registry refuses moves to the
spool's `rejected/` folder with a `.reason` file beside it, as a refused push does.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass, field

import asyncssh

from waketrain.audio.decode import AudioRejected
from waketrain.deploy.boards import board_target
from waketrain.deploy.ssh import DeployFailed, connect, explain
from waketrain.jobs.room_audio import receive_from_board
from waketrain.runtime.capture import REJECTED_FOLDER
from waketrain.store.errors import Conflict, InvalidInput
from waketrain.store.health import require_dataset
from waketrain.store.registry import Registry


@dataclass
class PullReport:
    received: int = 0
    already_there: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (capture id, reason)

    def summary(self) -> str:
        return (
            f"received {self.received}, already there {self.already_there}, "
            f"refused {len(self.rejected)}"
        )


async def pull_captures(
    registry: Registry, dataset_id: str, spool: str | None, board: str | None = None
) -> PullReport:
    """Every complete capture (WAV + sidecar) in a board's spool (default: the default
    board), into `dataset_id` (room audio into the negative bank)."""
    require_dataset(registry, dataset_id)
    target, _ = board_target(registry, board)
    spool = spool or registry.settings.deploy_capture_dir
    report = PullReport()
    actor = f"pull:{target.host}"
    try:
        async with await connect(target) as conn, conn.start_sftp_client() as sftp:
            if not await sftp.isdir(spool):
                raise DeployFailed(
                    f"No capture spool at {spool} on {target.host}: is the detector running "
                    "with --capture-dir (or set DEPLOY_CAPTURE_DIR)?"
                )
            for name in sorted(await sftp.listdir(spool)):
                if not name.endswith(".json"):
                    continue
                stem = name.removesuffix(".json")
                sidecar, wav = posixpath.join(spool, name), posixpath.join(spool, f"{stem}.wav")
                if not await sftp.isfile(wav):
                    continue  # a pair being written: the sidecar lands last, so skip it
                sidecar_text = (await _read(sftp, sidecar)).decode("utf-8", errors="replace")
                audio = await _read(sftp, wav)
                try:
                    received = await asyncio.to_thread(
                        receive_from_board, registry, dataset_id, audio, sidecar_text, actor
                    )
                except (InvalidInput, AudioRejected, Conflict) as exc:
                    report.rejected.append((stem, str(exc)))
                    rejected = posixpath.join(spool, REJECTED_FOLDER)
                    await sftp.makedirs(rejected, exist_ok=True)
                    for path in (sidecar, wav):  # sidecar first, as a refused push moves them
                        await sftp.rename(path, posixpath.join(rejected, posixpath.basename(path)))
                    async with sftp.open(posixpath.join(rejected, f"{stem}.reason"), "w") as f:
                        await f.write(f"refused on pull: {exc}\n")
                    continue
                if received.created:
                    report.received += 1
                else:
                    report.already_there += 1
                for path in (sidecar, wav):  # stored here: now it may leave the board
                    await sftp.remove(path)
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        raise DeployFailed(explain(target, exc)) from exc
    return report


async def _read(sftp: asyncssh.SFTPClient, path: str) -> bytes:
    async with sftp.open(path, "rb") as f:
        data = await f.read()
    return data if isinstance(data, bytes) else data.encode()  # "rb" gives bytes
