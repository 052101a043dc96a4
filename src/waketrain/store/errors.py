"""Domain errors raised by the core; each door (API, CLI) translates them once."""

from __future__ import annotations


class WaketrainError(Exception):
    """Base of every error the core raises on purpose; the message is for a person."""


class NotFound(WaketrainError):
    """The object asked for does not exist (or is not visible)."""


class InvalidInput(WaketrainError, ValueError):
    """The request was understood but its content is not acceptable."""


class Conflict(WaketrainError):
    """The request clashes with the current state (e.g. the id is taken)."""


class AuthenticationFailed(WaketrainError):
    """Missing, wrong or expired credentials."""
