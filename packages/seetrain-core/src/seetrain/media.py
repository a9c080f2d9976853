"""Media values for :func:`seetrain.log`: :class:`Image`, :class:`Audio` and :class:`Text`.

A media object copies its data when it is created (so the caller may reuse its buffer at
once). ``log`` starts its encoding in a small pool of threads (:func:`start_encoding`), off the
caller's thread and in parallel; the dispatcher waits for the result when it writes the step.
Images from arrays are written as PNG by :func:`encode_png` (zlib at level 1, which releases
the GIL, so the pool really runs in parallel with training), everything else through Pillow;
audio as FLAC or WAV through soundfile. numpy, Pillow and soundfile are imported on first use.

The pool holds at most ``SEETRAIN_MEDIA_INFLIGHT_MB`` (256 MB) of raw media at a time: past
that, ``log`` waits for encodings to finish (back-pressure, nothing is dropped).
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import Any

#: zlib level of the PNG files Pillow writes: 1 is several times faster than the default 6,
#: for files a few per cent larger
PNG_COMPRESS_LEVEL = 1
#: raw bytes of media waiting to be encoded, past which log() waits
INFLIGHT_BYTES = int(float(os.environ.get("SEETRAIN_MEDIA_INFLIGHT_MB", "256")) * 1024 * 1024)

_pool = None
_pool_lock = threading.Lock()
_budget = threading.Condition()
_inflight = 0


def _encoder_pool():
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                from concurrent.futures import ThreadPoolExecutor

                _pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                                           thread_name_prefix="seetrain-media")
    return _pool


def _after_fork_in_child() -> None:
    global _pool, _budget, _inflight, _pool_lock
    _pool, _pool_lock, _budget, _inflight = None, threading.Lock(), threading.Condition(), 0


os.register_at_fork(after_in_child=_after_fork_in_child)


def encode_png(arr: Any) -> bytes:
    """PNG bytes of a ``uint8`` array of shape ``HxW`` (grey), ``HxWx2`` (grey + alpha),
    ``HxWx3`` (RGB) or ``HxWx4`` (RGBA).

    Every row uses the PNG "Up" filter (computed with numpy), and the data is deflated with
    zlib's run-length strategy (``Z_RLE``, what libpng suggests for speed: 2-3 times faster
    than level 1 and, on filtered image rows, smaller). zlib releases the GIL while it
    compresses: several images encode in parallel, and the training thread keeps the
    interpreter. Pillow writes the same files, but holds the GIL while it compresses.
    """
    import numpy as np

    height, width = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(arr).reshape(height, width * channels)
    raw = np.empty((height, width * channels + 1), dtype=np.uint8)
    raw[:, 0] = 2  # filter type Up: each byte minus the byte above it
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(tag)))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    deflate = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    body = deflate.compress(raw) + deflate.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")

__all__ = ["Image", "Audio", "Text", "Media"]


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _to_numpy(data: Any) -> Any:
    """numpy view of an array-like; duck-types torch/TF tensors without importing them."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return data
    for attr in ("detach", "cpu"):
        if hasattr(data, attr) and callable(getattr(data, attr)):
            data = getattr(data, attr)()
    if hasattr(data, "numpy") and callable(data.numpy):
        return np.asarray(data.numpy())
    return np.asarray(data)


class Media:
    """Base of the media types. ``encoded`` holds the file bytes once encoded."""

    kind: str = "media"
    #: file extension of the encoded form, without the dot
    format: str = ""

    def __init__(self, caption: str | None = None) -> None:
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"caption must be a str, not {type(caption).__name__}")
        self.caption = caption
        self.encoded: bytes | None = None
        self._future = None

    def encode(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _raw_size(self) -> int:
        array = getattr(self, "_array", None)
        return int(getattr(array, "nbytes", 0) or 0)

    def start_encoding(self) -> None:
        """Encode in the media pool, off the calling thread (``log`` calls this). Waits
        first while more than ``SEETRAIN_MEDIA_INFLIGHT_MB`` of media are being encoded."""
        global _inflight
        if self.encoded is not None or self._future is not None:
            return
        size = self._raw_size()
        with _budget:
            while _inflight and _inflight + size > INFLIGHT_BYTES:
                _budget.wait(0.1)
            _inflight += size
        try:
            self._future = _encoder_pool().submit(self._encode_in_pool, size)
        except RuntimeError:  # the interpreter is shutting down: encode when written
            self._release(size)

    @staticmethod
    def _release(size: int) -> None:
        global _inflight
        with _budget:
            _inflight -= size
            _budget.notify_all()

    def _encode_in_pool(self, size: int) -> None:
        try:
            self.encode()
        finally:
            self._release(size)

    def wait_encoded(self) -> bytes:
        """The encoded bytes: waits for the pool's encoding, or encodes here. Raises what
        encoding raised."""
        future = self._future
        if future is not None:
            future.result()
        elif self.encoded is None:
            self.encode()
        return self.encoded or b""

    def __repr__(self) -> str:
        cap = f", caption={self.caption!r}" if self.caption else ""
        return f"{type(self).__name__}({self._describe()}{cap})"

    def _describe(self) -> str:
        return ""


class Image(Media):
    """An image to log.

    Accepts a numpy array of shape ``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4`` (``uint8``, or
    float in ``[0, 1]``), a PIL image, a ``CxHxW`` tensor (anything with ``.numpy()``), or
    the path of an image file. Stored as PNG.

    >>> import numpy as np, seetrain
    >>> img = seetrain.Image(np.zeros((8, 8, 3), dtype=np.uint8), caption="black")
    >>> img.width, img.height
    (8, 8)
    """

    kind = "image"
    format = "png"

    def __init__(self, data: Any, caption: str | None = None) -> None:
        super().__init__(caption)
        self._array = None
        self._pil = None
        self._path: str | None = None
        if _is_path(data):
            path = os.fspath(data)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"seetrain.Image: no such image file: {path!r}")
            self._path = path
            from PIL import Image as PILImage

            with PILImage.open(path) as im:
                self.width, self.height = im.size
            return
        if type(data).__module__.startswith("PIL.") and hasattr(data, "copy") and hasattr(data, "size"):
            self._pil = data.copy()
            self.width, self.height = self._pil.size
            return
        self._array = self._normalise(data)
        self.height, self.width = self._array.shape[:2]

    @staticmethod
    def _normalise(data: Any) -> Any:
        import numpy as np

        is_tensor = not isinstance(data, np.ndarray) and hasattr(data, "numpy")
        try:
            arr = _to_numpy(data)
        except Exception as exc:
            raise TypeError(
                f"seetrain.Image: cannot read {type(data).__name__} as an image; pass a numpy "
                "array, a PIL image, a tensor or a file path"
            ) from exc
        if arr.dtype == object or arr.ndim not in (2, 3):
            raise ValueError(
                f"seetrain.Image: expected an array of shape HxW, HxWxC or CxHxW, got shape {arr.shape}"
            )
        if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
            arr = np.transpose(arr, (1, 2, 0))  # CHW (torch convention) -> HWC
        elif arr.ndim == 3 and is_tensor and arr.shape[0] in (1, 3, 4) and arr.shape[-1] in (1, 3, 4):
            arr = np.transpose(arr, (1, 2, 0))
        if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"seetrain.Image: expected 1, 3 or 4 channels, got shape {arr.shape}")
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[:, :, 0]
        if arr.dtype == np.uint8:
            return arr.copy()
        if arr.dtype == bool:
            return arr.astype(np.uint8) * 255
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
            return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if np.issubdtype(arr.dtype, np.integer):
            return np.clip(arr, 0, 255).astype(np.uint8)
        raise TypeError(f"seetrain.Image: unsupported array dtype {arr.dtype}")

    def _describe(self) -> str:
        return f"{self.width}x{self.height}"

    def encode(self) -> None:
        if self.encoded is not None:
            return
        if self._array is not None:
            self.encoded = encode_png(self._array)
            self._array = None
            return
        import io

        from PIL import Image as PILImage

        if self._path is not None:
            im = PILImage.open(self._path)
        else:
            im = self._pil
        if im.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "I;16"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        self.encoded = buf.getvalue()
        self._array = self._pil = None  # free memory once encoded


class Audio(Media):
    """A sound clip to log.

    Accepts a numpy array of samples, mono ``(n,)`` or ``(n, channels)``, with its
    ``sample_rate`` in Hz, or the path of an audio file soundfile can read. Stored as FLAC
    (lossless) when the samples fit, else as 32-bit float WAV.
    """

    kind = "audio"

    def __init__(self, data: Any, sample_rate: int | None = None, caption: str | None = None) -> None:
        super().__init__(caption)
        self._path: str | None = None
        self._array = None
        if _is_path(data):
            path = os.fspath(data)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"seetrain.Audio: no such audio file: {path!r}")
            import soundfile

            info = soundfile.info(path)
            self._path = path
            self.sample_rate = int(sample_rate or info.samplerate)
            self.duration = float(info.duration)
            return
        if sample_rate is None or isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
            raise ValueError(f"seetrain.Audio: sample_rate must be a positive int, got {sample_rate!r}")
        import numpy as np

        try:
            arr = _to_numpy(data)
        except Exception as exc:
            raise TypeError(f"seetrain.Audio: cannot read {type(data).__name__} as samples") from exc
        if arr.ndim not in (1, 2) or arr.size == 0:
            raise ValueError(f"seetrain.Audio: expected samples of shape (n,) or (n, channels), got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"seetrain.Audio: unsupported sample dtype {arr.dtype}")
        self._array = arr.copy()
        self.sample_rate = int(sample_rate)
        self.duration = arr.shape[0] / self.sample_rate

    def _describe(self) -> str:
        return f"{self.duration:.2f}s @ {self.sample_rate} Hz"

    def encode(self) -> None:
        if self.encoded is not None:
            return
        import io

        import numpy as np
        import soundfile

        if self._path is not None:
            arr, rate = soundfile.read(self._path, always_2d=False)
            self.sample_rate = int(rate)
        else:
            arr = self._array
        buf = io.BytesIO()
        if np.issubdtype(arr.dtype, np.integer):
            soundfile.write(buf, arr.astype(np.int16) if arr.dtype != np.int16 else arr, self.sample_rate, format="FLAC", subtype="PCM_16")
            self.format = "flac"
        elif np.all(np.isfinite(arr)) and np.max(np.abs(arr), initial=0.0) <= 1.0:
            soundfile.write(buf, arr, self.sample_rate, format="FLAC", subtype="PCM_24")
            self.format = "flac"
        else:
            soundfile.write(buf, arr.astype(np.float32), self.sample_rate, format="WAV", subtype="FLOAT")
            self.format = "wav"
        self.encoded = buf.getvalue()
        self._array = None


class Text(Media):
    """A piece of text to log (a plain ``str`` value in :func:`seetrain.log` is one too)."""

    kind = "text"
    format = "txt"

    def __init__(self, text: str, caption: str | None = None) -> None:
        if not isinstance(text, str):
            raise TypeError(f"seetrain.Text: expected a str, got {type(text).__name__}")
        super().__init__(caption)
        self.text = text

    def _describe(self) -> str:
        return repr(self.text[:40] + ("…" if len(self.text) > 40 else ""))

    def encode(self) -> None:
        if self.encoded is None:
            self.encoded = self.text.encode("utf-8")
