"""The TensorBoard bridge: ``SummaryWriter`` calls also record into SeeTrain.

Both ``torch.utils.tensorboard.SummaryWriter`` and ``tensorboardX.SummaryWriter`` are patched
(whichever import), at the level of their ``add_*`` methods rather than at
``FileWriter.add_event`` where every call ends: there the values are already encoded
(images as PNG, audio as WAV, histograms as buckets, hparams as plugin protos) and
``add_scalars`` / ``add_hparams`` write through writers of their own in subfolders, whereas
the method still has the caller's array, sample rate, data format and dicts.

``global_step`` is the SeeTrain step; without one TensorBoard records step 0, and so does the
bridge. A writer records into the SeeTrain run given to the bridge, else the active run,
else a run the bridge starts (named after the writer's log directory; writers opened while
it is active share it) and ends when the last of its writers is closed. An integration's run
ends with the integration (``integration.finish()``), not with a writer. The log directory is recorded as a file of kind ``tensorboard``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import weakref
from typing import Any

from ._bridge import Bridge, get_bridge

__all__ = ["TensorBoardBridge", "create", "writer_classes"]


def writer_classes() -> list[tuple[str, type]]:
    """``(library, SummaryWriter class)`` of each TensorBoard writer that imports here."""
    found: list[tuple[str, type]] = []
    # torch.utils.tensorboard imports only with the `tensorboard` package beside torch
    if importlib.util.find_spec("torch") is not None and importlib.util.find_spec("tensorboard") is not None:
        try:
            from torch.utils.tensorboard import SummaryWriter as TorchWriter

            found.append(("torch", TorchWriter))
        except ImportError:
            pass
    if importlib.util.find_spec("tensorboardX") is not None:
        try:
            from tensorboardX import SummaryWriter as XWriter

            found.append(("tensorboardX", XWriter))
        except ImportError:
            pass
    return found


class _Mirror:
    """A writer's counterpart: the SeeTrain run it records into, and whether the bridge
    started that run (then the last writer's ``close()`` ends it)."""

    def __init__(self, run: Any, owner: bool) -> None:
        self.run = run
        self.owner = owner


class TensorBoardBridge(Bridge):
    """Mirrors ``SummaryWriter`` calls into SeeTrain; see :func:`seetrain_bridges.sync_tensorboard`."""

    name = "tensorboard"

    def __init__(self) -> None:
        super().__init__()
        self._writers: weakref.WeakKeyDictionary[Any, _Mirror] = weakref.WeakKeyDictionary()
        self._library: dict[type, str] = {}
        self._writers_lock = threading.Lock()

    # -- patching ---------------------------------------------------------------------------
    def _install(self) -> None:
        classes = writer_classes()
        if not classes:
            from seetrain.adapters import FrameworkMissingError

            raise FrameworkMissingError(
                "the SeeTrain adapter 'tensorboard' (seetrain-bridges) needs a TensorBoard SummaryWriter, and "
                "neither imports here: install the tensorboard package for torch.utils.tensorboard "
                "(pip install tensorboard) or tensorboardX (pip install tensorboardX)"
            )
        handlers = {
            "add_scalar": self._add_scalar,
            "add_scalars": self._add_scalars,
            "add_image": self._add_image,
            "add_images": self._add_images,
            "add_text": self._add_text,
            "add_audio": self._add_audio,
            "add_histogram": self._add_histogram,
            "add_hparams": self._add_hparams,
            "close": self._close,
        }
        for library, cls in classes:
            self._library[cls] = library
            for method, handler in handlers.items():
                if method in vars(cls):
                    self._patch(cls, method, after=handler)

    def _on_disable(self) -> None:
        with self._writers_lock:
            mirrors = list(self._writers.values())
            self._writers.clear()
        for mirror in mirrors:
            if mirror.owner is True and not mirror.run.finished:
                mirror.run.finish()

    # -- the run of a writer ----------------------------------------------------------------
    def _run_of(self, writer: Any) -> Any:
        with self._writers_lock:
            mirror = self._writers.get(writer)
            if mirror is not None and not mirror.run.finished:
                return mirror.run
            logdir = _logdir(writer)
            run, owner = self._resolve_run(project=None, name=os.path.basename(os.path.normpath(logdir)) if logdir else None)
            # Writers share a run (train and val writers of one training); one the bridge
            # started for another writer stays the bridge's to end. An integration's run
            # ends with the integration, not with a writer.
            started = owner is True or any(m.run is run and m.owner is True for m in self._writers.values())
            self._writers[writer] = _Mirror(run, started)
        if logdir:
            library = next((lib for cls, lib in self._library.items() if isinstance(writer, cls)), None)
            run.add_file(os.path.abspath(logdir), kind="tensorboard", library=library)
        return run

    def _log(self, call: dict, data: dict[str, Any]) -> None:
        step = call.get("global_step")
        self._run_of(call["self"]).log(data, step=0 if step is None else int(step))

    # -- one handler per writer method (after the original returned) ---------------------------
    def _add_scalar(self, call: dict, result: Any, prepared: Any) -> None:
        value = _scalar(call.get("scalar_value"))
        if value is not None:
            self._log(call, {call["tag"]: value})

    def _add_scalars(self, call: dict, result: Any, prepared: Any) -> None:
        main = call["main_tag"]
        data = {f"{main}/{tag}": _scalar(v) for tag, v in call["tag_scalar_dict"].items()}
        self._log(call, {k: v for k, v in data.items() if v is not None})

    def _add_image(self, call: dict, result: Any, prepared: Any) -> None:
        import seetrain

        array = _to_hwc(call["img_tensor"], call.get("dataformats") or "CHW")
        self._log(call, {call["tag"]: seetrain.Image(array)})

    def _add_images(self, call: dict, result: Any, prepared: Any) -> None:
        import seetrain

        batch = _to_hwc(call["img_tensor"], call.get("dataformats") or "NCHW")
        self._log(call, {call["tag"]: [seetrain.Image(image) for image in batch]})

    def _add_text(self, call: dict, result: Any, prepared: Any) -> None:
        import seetrain

        self._log(call, {call["tag"]: seetrain.Text(str(call["text_string"]))})

    def _add_audio(self, call: dict, result: Any, prepared: Any) -> None:
        import numpy as np

        import seetrain

        # as TensorBoard stores it: squeezed to one channel, clipped to [-1, 1]
        samples = np.clip(_numpy(call["snd_tensor"]).squeeze().astype(np.float64), -1.0, 1.0)
        rate = call.get("sample_rate") or 44100
        self._log(call, {call["tag"]: seetrain.Audio(samples.reshape(-1), sample_rate=int(rate))})

    def _add_histogram(self, call: dict, result: Any, prepared: Any) -> None:
        import numpy as np

        values = _numpy(call["values"]).astype(np.float64).reshape(-1)
        tag = call["tag"]
        mean = float(values.mean())
        self._log(call, {
            f"{tag}/min": float(values.min()),
            f"{tag}/max": float(values.max()),
            f"{tag}/mean": mean,
            f"{tag}/std": float(np.sqrt(max(float(np.mean(values * values)) - mean * mean, 0.0))),
            f"{tag}/count": float(values.size),
        })

    def _add_hparams(self, call: dict, result: Any, prepared: Any) -> None:
        run = self._run_of(call["self"])
        run.config.update({str(k): _hparam(v) for k, v in call["hparam_dict"].items()})
        metrics = {str(k): _scalar(v) for k, v in call["metric_dict"].items()}
        metrics = {k: v for k, v in metrics.items() if v is not None}
        if metrics:
            self._log(call, metrics)
            run.summary.update(metrics)

    def _close(self, call: dict, result: Any, prepared: Any) -> None:
        with self._writers_lock:
            mirror = self._writers.pop(call["self"], None)
            last = mirror is not None and not any(m.run is mirror.run for m in self._writers.values())
        if mirror is not None and mirror.owner and last and not mirror.run.finished:
            mirror.run.finish("finished")  # the last open writer of a run the bridge started


def _logdir(writer: Any) -> str | None:
    for attr in ("log_dir", "logdir"):
        value = getattr(writer, attr, None)
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    return None


def _numpy(value: Any) -> Any:
    import numpy as np

    for attr in ("detach", "cpu"):
        method = getattr(value, attr, None)
        if callable(method):
            value = method()
    if callable(getattr(value, "numpy", None)):
        value = value.numpy()
    return np.asarray(value)


def _scalar(value: Any) -> float | None:
    """A float, as TensorBoard reads its scalars (a one-element array too); ``None`` for a
    value TensorBoard itself takes otherwise (Caffe2 blob names)."""
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        return None
    array = _numpy(value)
    return float(array.reshape(-1)[0]) if array.size == 1 else None


def _hparam(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    array = _numpy(value)
    return array.reshape(-1)[0].item() if array.size == 1 else array.tolist()


def _to_hwc(value: Any, dataformats: str) -> Any:
    """The image(s) as TensorBoard writes them: uint8, channels last (``N`` first for a
    batch); float images are scaled by 255 and clipped, uint8 ones kept."""
    import numpy as np

    array = _numpy(value)
    fmt = dataformats.upper()
    if len(fmt) != array.ndim or len(set(fmt)) != len(fmt) or not set(fmt) <= set("NCHW"):
        raise ValueError(f"cannot read an array of shape {array.shape} as {dataformats!r}")
    target = [c for c in "NHWC" if c in fmt]
    array = np.transpose(array, [fmt.index(c) for c in target])
    if "C" not in fmt:
        array = array[..., None]
    if array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype != np.uint8:
        array = (array.astype(np.float32) * 255.0).clip(0, 255).astype(np.uint8)
    return array


def create(run: Any, **options: Any) -> TensorBoardBridge:
    """The adapter factory: the TensorBoard bridge, enabled and recording into ``run``."""
    bridge = get_bridge("tensorboard")
    bridge.enable(run=run, **options)
    return bridge  # type: ignore[return-value]
