"""Send the board's spooled captures to the service (standard library HTTP only).

Each complete pair goes to `POST {service}/datasets/{dataset}/captures` as multipart
(`file` = the WAV, `metadata` = the sidecar's text), oldest first, and leaves the spool only
when the service acknowledges it (201 new, 200 already there: uploads are idempotent by
capture id, so a push cut off half way is simply repeated). A capture the service refuses
(422, 413, ...) moves to `rejected/` with the service's sentence, so it cannot block the queue.
Anything that is not about one capture (no network, a 5xx, 429, a bad or expired token, a
wrong dataset) stops the push and leaves the rest for next time.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

from waketrain.runtime.capture import REJECTED_FOLDER, SpooledCapture, spooled_captures

# Refusals about the push as a whole (auth, scope, dataset, rate), not about one capture.
STOPPING_STATUSES = frozenset({401, 403, 404, 408, 429})


@dataclass
class PushReport:
    sent: int = 0  # 201: new on the service
    already_there: int = 0  # 200: received by an earlier push whose answer was lost
    rejected: int = 0  # moved to rejected/
    left: int = 0  # still in the spool for the next push
    stopped: str | None = None  # why the push stopped early, if it did

    def summary(self) -> str:
        line = (
            f"sent {self.sent}, already there {self.already_there}, "
            f"rejected {self.rejected}, left {self.left}"
        )
        return f"{line} (stopped: {self.stopped})" if self.stopped else line


def push_spool(
    spool_dir: Path, service_url: str, dataset_id: str, token: str, timeout: float = 30.0
) -> PushReport:
    """Upload every complete capture in `spool_dir`, oldest first; see the module docstring."""
    if not spool_dir.is_dir():
        raise FileNotFoundError(f"No capture spool at {spool_dir} (the detector's --capture-dir).")
    url = f"{service_url.rstrip('/')}/datasets/{quote(dataset_id, safe='')}/captures"
    report = PushReport()
    pending = spooled_captures(spool_dir)
    for i, capture in enumerate(pending):
        try:
            status, message = _upload(url, token, capture, timeout)
        except FileNotFoundError:  # evicted by the recorder meanwhile
            continue
        except (OSError, HTTPException) as exc:  # refused, reset, cut off, timed out, DNS
            report.stopped = f"cannot reach {service_url}: {exc}"
            report.left = len(pending) - i
            break
        if status in (200, 201):
            capture.sidecar.unlink(missing_ok=True)
            capture.wav.unlink(missing_ok=True)
            report.sent += status == 201
            report.already_there += status == 200
        elif 400 <= status < 500 and status not in STOPPING_STATUSES:
            _reject(capture, status, message)
            report.rejected += 1
        else:
            report.stopped = f"the service answered {status}: {message}"
            report.left = len(pending) - i
            break
    return report


def _upload(url: str, token: str, capture: SpooledCapture, timeout: float) -> tuple[int, str]:
    """(status, the service's message) for one pair."""
    body, content_type = _multipart(
        capture.wav.read_bytes(), capture.wav.name, capture.sidecar.read_text()
    )
    request = Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    try:
        with urlopen(request, timeout=timeout) as response:
            return response.status, ""
    except HTTPError as error:
        with error:
            return error.code, _message(error.read())


def _multipart(wav: bytes, filename: str, metadata: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'.encode(),
            metadata.encode(),
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="file"; filename="{filename}"\r\nContent-Type: audio/wav\r\n\r\n'.encode(),
            wav,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _message(body: bytes) -> str:
    """The service's `detail` sentence, or the body as it came."""
    text = body.decode("utf-8", "replace").strip()
    try:
        detail = json.loads(text).get("detail")
    except (ValueError, AttributeError):
        return text[:500]
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]


def _reject(capture: SpooledCapture, status: int, message: str) -> None:
    folder = capture.wav.parent / REJECTED_FOLDER
    folder.mkdir(exist_ok=True)
    os.replace(capture.sidecar, folder / capture.sidecar.name)  # sidecar first: never half pushed
    os.replace(capture.wav, folder / capture.wav.name)
    (folder / f"{capture.capture_id}.reason").write_text(f"{status}: {message}\n")


class BackgroundPush:
    """A daemon thread that pushes the spool every `every_seconds`, and once more at stop()."""

    def __init__(
        self,
        spool_dir: Path,
        service_url: str,
        dataset_id: str,
        token: str,
        every_seconds: float,
        say: Callable[[str], None],
        timeout: float = 30.0,
    ) -> None:
        self._push: Callable[[], PushReport] = partial(
            push_spool, spool_dir, service_url, dataset_id, token, timeout
        )
        self._every = every_seconds
        self._say = say
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self._every)
            try:
                report = self._push()
            except (OSError, ValueError) as exc:  # the spool folder itself, or a bad URL
                self._say(f"capture push failed: {exc}")
                report = PushReport()
            if report.sent or report.already_there or report.rejected or report.stopped:
                self._say(f"capture push: {report.summary()}")
            if stopping:
                return
