"""Audio geometry shared by ingest, training and the detector."""

from typing import Final

SAMPLE_RATE_HZ: Final = 16_000
CLIP_SUBTYPE: Final = "PCM_16"
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = SAMPLE_RATE_HZ * FRAME_MS // 1000
# An RMS below this is a near-silent clip: flagged at ingest, left out of training.
NEAR_SILENT_DBFS: Final = -60.0
