"""Offline synthetic data: the wake phrase and confusable phrases spoken by espeak-ng."""
