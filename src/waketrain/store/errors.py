"""Domain errors raised by the core; each door (API, CLI) translates them once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class WaketrainError(Exception):
    """Base of every error the core raises on purpose; the message is for a person."""


def describe_validation_errors(errors: Iterable[Any], subject: str) -> str:
    """Pydantic errors as one sentence part: `field: problem; other: problem`."""
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        parts.append(f"{'.'.join(loc) or subject}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


class NotFound(WaketrainError):
    """The object asked for does not exist (or is not visible)."""


class InvalidInput(WaketrainError, ValueError):
    """The request was understood but its content is not acceptable."""


class Conflict(WaketrainError):
    """The request clashes with the current state (e.g. the id is taken)."""


class AuthenticationFailed(WaketrainError):
    """Missing, wrong or expired credentials."""


class Forbidden(WaketrainError):
    """Known credentials, but not allowed to do this (or not this way)."""


class RateLimited(WaketrainError):
    """Too many requests of one kind from one user or address; try again later."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ServiceBusy(WaketrainError):
    """The service is at capacity for this kind of work; try again shortly."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class BackupError(WaketrainError):
    """A backup or restore that cannot go ahead; the message says why and what to do."""
