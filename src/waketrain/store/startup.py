"""Bring a registry up for serving: migrations, admin user, default dataset, crash recovery."""

from __future__ import annotations

from dataclasses import dataclass

from waketrain.settings import Settings
from waketrain.store.accounts import ensure_admin
from waketrain.store.datasets import ensure_default_dataset
from waketrain.store.recovery import RecoveryReport, reconcile_registry
from waketrain.store.registry import Registry


@dataclass
class StartedRegistry:
    registry: Registry
    generated_admin_password: str | None
    recovery: RecoveryReport


def start_registry(settings: Settings) -> StartedRegistry:
    """Everything the service does before it accepts its first request."""
    registry = Registry.open(settings)
    password = ensure_admin(registry)
    ensure_default_dataset(registry)
    recovery = reconcile_registry(registry)
    return StartedRegistry(registry, password, recovery)
