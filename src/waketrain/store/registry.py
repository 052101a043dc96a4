"""The registry handle: settings, on-disk layout and database, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from waketrain.audio.decode import ClipLimits
from waketrain.settings import Settings
from waketrain.store.db import make_engine, make_sessionmaker, upgrade_database
from waketrain.store.layout import Layout


@dataclass
class Registry:
    settings: Settings
    layout: Layout
    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, settings: Settings) -> Registry:
        """Create the folders, connect, and apply pending migrations."""
        layout = Layout(settings.data_dir.resolve())
        layout.create()
        engine = make_engine(settings.database_url)
        upgrade_database(engine)
        return cls(settings, layout, engine, make_sessionmaker(engine))

    @property
    def clip_limits(self) -> ClipLimits:
        s = self.settings
        return ClipLimits(s.max_upload_bytes, s.min_clip_seconds, s.max_clip_seconds)

    def close(self) -> None:
        self.engine.dispose()
