"""waketrain: self-hosted wake word training service."""

__version__ = "0.1.0"
