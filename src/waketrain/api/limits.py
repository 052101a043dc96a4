"""Refuse request bodies that are too large, or too slow to arrive, before they are buffered."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str
    # Otherwise the server reads and drops the rest of the body, so that a client still
    # sending it gets to read the answer; a stalled client is not waited for.
    close_connection: bool = False


class BodyRefused(Exception):
    pass


class BodyLimits:
    """ASGI middleware: 413 when Content-Length, or the bytes actually streamed, pass the cap;
    408 when the body has not arrived in full `timeout_seconds` after the headers.

    The server's keep-alive timeout covers only the wait between requests: without the
    deadline, a client that sends headers and then stalls, or trickles a byte now and then,
    would hold its request open forever.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = Refusal(
            413,
            f"The request body is larger than {self.max_body_bytes} bytes. "
            "Uploads are limited in size; split or compress the recording.",
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_refusal(send, too_large)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        received = 0
        body_done = False
        refusal: Refusal | None = None
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, body_done, refusal
            if body_done:  # later reads wait for the disconnect: no deadline on those
                return await receive()
            try:
                left = deadline - asyncio.get_running_loop().time()
                message = await asyncio.wait_for(receive(), timeout=left)
            except asyncio.TimeoutError:  # not yet the builtin one on Python 3.10
                refusal = Refusal(
                    408,
                    f"The request body did not arrive within {self.timeout_seconds:g} s. "
                    "Send it again on a steadier connection.",
                    close_connection=True,
                )
                raise BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_body_bytes:
                    refusal = too_large
                    raise BodyRefused
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks may turn the aborted read into their own error answer; replace it.
            nonlocal refused
            if refusal is None:
                await send(message)
            elif not refused:
                refused = True
                await send_refusal(send, refusal)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyRefused:
            if refusal is not None and not refused:  # refusal is set: narrows its type
                await send_refusal(send, refusal)


async def send_refusal(send: Send, refusal: Refusal) -> None:
    body = json.dumps({"detail": refusal.detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.close_connection:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
