"""Audio ingest: decode by content, validate, resample; quality metrics and VAD."""
