"""The registry handle: settings, on-disk layout and database, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from waketrain.audio.decode import ClipLimits
from waketrain.settings import Settings
from waketrain.store.db import make_engine, make_sessionmaker, upgrade_database
from waketrain.store.holds import Hold, hold_shared
from waketrain.store.layout import Layout


@dataclass
class Registry:
    settings: Settings
    layout: Layout
    engine: Engine
    sessions: sessionmaker[Session]
    hold: Hold | None = field(default=None, repr=False)
    # Views derived from the database that this process keeps between requests, each
    # under its module's key and with its own rule for when it is stale.
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Registry:
        """Create the folders, hold the registry against a restore until `close`, connect,
        and apply pending migrations."""
        scratch = settings.scratch_dir.resolve() if settings.scratch_dir else None
        layout = Layout(settings.data_dir.resolve(), scratch)
        layout.create()
        hold = hold_shared(layout.locks)
        try:
            engine = make_engine(settings.database_url)
            upgrade_database(engine)
        except BaseException:
            hold.release()
            raise
        return cls(settings, layout, engine, make_sessionmaker(engine), hold)

    @property
    def clip_limits(self) -> ClipLimits:
        s = self.settings
        return ClipLimits(s.max_upload_bytes, s.min_clip_seconds, s.max_clip_seconds)

    def close(self) -> None:
        self.engine.dispose()
        if self.hold is not None:
            self.hold.release()
            self.hold = None
