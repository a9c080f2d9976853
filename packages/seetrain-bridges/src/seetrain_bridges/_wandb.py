"""The W&B bridge: ``wandb.init`` / ``log`` / ``config`` / ``finish`` also record into SeeTrain.

Patched, at the class level of ``wandb.sdk.wandb_run.Run`` (``wandb.log`` is rebound to the
run's method by every ``wandb.init``, so the module attribute is the wrong place):

``Run._on_start``         the run is started: start or join the SeeTrain run
``Run.log``               mirror the values, at the step W&B files them under
``Run._config_callback``  every ``run.config`` / ``wandb.config`` change
``Run._finish``           ``run.finish()``, ``wandb.finish()``, leaving ``with wandb.init()``

Steps follow W&B's rules (``wandb.sdk.wandb_run.Run._log``): values are gathered per step and
written when W&B commits the step, so ``commit=False`` accumulation, explicit ``step`` and
overwrites within a step give SeeTrain what W&B's history holds; a ``step`` below the current
one is dropped, as W&B drops it.
"""

from __future__ import annotations

import logging
import numbers
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from ._bridge import Bridge, get_bridge

__all__ = ["WandbBridge", "create"]

log = logging.getLogger("seetrain")
_STATUS_OF_EXIT_CODE = {0: "finished", None: "finished"}


class _Mirror:
    """One W&B run's counterpart: its SeeTrain run and the step W&B has open."""

    def __init__(self, run: Any, owner: Any, step: int) -> None:
        self.run = run
        self.owner = owner
        self.step = step
        self.pending: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.lock = threading.Lock()

    def flush(self) -> None:
        if self.pending:
            data, self.pending = self.pending, {}
            self.run.log(data, step=self.step)

    def log(self, data: dict[str, Any], step: Any, commit: Any, wandb_step: int | None) -> None:
        with self.lock:
            if wandb_step is not None and wandb_step != self.step:
                # W&B moved on by itself (wandb.watch hooks log through Run._log directly)
                self.flush()
                self.step = wandb_step
            if step is not None:
                step = int(step)
                if step > self.step:
                    self.flush()
                    self.step = step
                elif step < self.step:
                    return  # W&B refuses steps that go back; it keeps nothing of this call
            self.pending.update(data)
            if (step is None and commit is None) or commit:
                self.flush()
                self.step += 1


class WandbBridge(Bridge):
    """Mirrors W&B runs into SeeTrain runs; see :func:`seetrain_bridges.sync_wandb`."""

    name = "wandb"

    def __init__(self) -> None:
        super().__init__()
        self._mirrors: weakref.WeakKeyDictionary[Any, _Mirror] = weakref.WeakKeyDictionary()
        self._media: tuple[type, type, type] | None = None
        self._module_log: tuple[Any, Any] | None = None

    # -- patching ---------------------------------------------------------------------------
    def _install(self) -> None:
        import wandb
        from wandb.sdk.wandb_run import Run

        self._media = (wandb.Image, wandb.Audio, wandb.Html)
        self._patch(Run, "log", before=self._before_log, after=self._after_log)
        if "_on_start" in vars(Run):
            self._patch(Run, "_on_start", after=self._after_start)
        if "_config_callback" in vars(Run):
            self._patch(Run, "_config_callback", after=self._after_config)
        self._patch(Run, "_finish" if "_finish" in vars(Run) else "finish", after=self._after_finish)
        # A run started before the bridge: wandb.log is bound to the unpatched Run.log.
        current = wandb.run
        if current is not None and getattr(wandb.log, "__self__", None) is current:
            replacement = current.log
            self._module_log = (wandb.log, replacement)
            wandb.log = replacement

    def _on_disable(self) -> None:
        import wandb

        if self._module_log is not None:
            original, replacement = self._module_log
            if wandb.log is replacement:
                wandb.log = original
            self._module_log = None
        for mirror in list(self._mirrors.values()):
            with mirror.lock:
                mirror.flush()
            if mirror.owner is True and not mirror.run.finished:
                mirror.run.finish()
        self._mirrors.clear()

    # -- the mirror of a W&B run --------------------------------------------------------------
    def _mirror(self, wandb_run: Any) -> _Mirror:
        with self._lock:
            mirror = self._mirrors.get(wandb_run)
            if mirror is not None and not mirror.run.finished:
                return mirror
            claimed = [m.run for m in self._mirrors.values() if not m.run.finished]
            config = _config_of(wandb_run)
            run, owner = self._resolve_run(
                project=_safe(lambda: wandb_run.project), name=_safe(lambda: wandb_run.name),
                config=config, tags=[str(t) for t in (_safe(lambda: wandb_run.tags) or ())],
                group=_safe(lambda: wandb_run.group) or None, claimed=claimed,
            )
            mirror = _Mirror(run, owner, step=getattr(wandb_run, "_local_step", 0) or 0)
            mirror.config = config
            self._mirrors[wandb_run] = mirror
            return mirror

    def _after_start(self, call: dict, result: Any, prepared: Any) -> None:
        self._mirror(call["self"])

    def _before_log(self, call: dict) -> Any:
        data = call.get("data")
        if not isinstance(data, Mapping):
            return None  # W&B raises its own TypeError
        # W&B media point at temporary files that W&B moves into the run when it logs
        # them: read them now
        return self._convert_mapping(data), getattr(call["self"], "_local_step", None)

    def _after_log(self, call: dict, result: Any, prepared: Any) -> None:
        if prepared is None:
            return
        data, wandb_step = prepared
        self._mirror(call["self"]).log(data, call.get("step"), call.get("commit"), wandb_step)

    def _after_config(self, call: dict, result: Any, prepared: Any) -> None:
        mirror = self._mirrors.get(call["self"])
        if mirror is not None:  # changes during wandb.init come with the start
            self._sync_config(call["self"], mirror)

    def _after_finish(self, call: dict, result: Any, prepared: Any) -> None:
        wandb_run = call["self"]
        with self._lock:
            mirror = self._mirrors.pop(wandb_run, None)
        if mirror is None or mirror.run.finished:
            return
        with mirror.lock:
            mirror.flush()
        # what changed without passing through a patched method (a run bound before enabling)
        self._sync_config(wandb_run, mirror)
        tags = [str(t) for t in (_safe(lambda: wandb_run.tags) or ())]
        new_tags = [t for t in tags if t not in mirror.run.tags]
        if new_tags:
            mirror.run.set_tags([*mirror.run.tags, *new_tags])
        status = _STATUS_OF_EXIT_CODE.get(call.get("exit_code"), "crashed")
        self._end(mirror.run, mirror.owner, status)

    def _sync_config(self, wandb_run: Any, mirror: _Mirror) -> None:
        config = _config_of(wandb_run)
        changed = {k: v for k, v in config.items() if k not in mirror.config or mirror.config[k] != v}
        mirror.config = config
        if changed and not mirror.run.finished:
            mirror.run.config.update(changed)

    # -- values ---------------------------------------------------------------------------------
    def _convert_mapping(self, data: Mapping) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                continue  # W&B raises for it
            converted = self._convert(key, value)
            if converted is not None:
                out[key] = converted
        return out

    def _convert(self, key: str, value: Any) -> Any:
        """The SeeTrain form of a W&B value, ``None`` for what has none (tables, plots,
        histograms of arrays...)."""
        if value is None:
            return None
        if isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, Mapping):
            inner = self._convert_mapping(value)
            return inner or None
        image_t, audio_t, html_t = self._media
        try:
            if isinstance(value, image_t):
                return _image(value)
            if isinstance(value, audio_t):
                return _audio(value)
            if isinstance(value, html_t):
                import seetrain

                html = getattr(value, "html", None)
                return seetrain.Text(html) if isinstance(html, str) else None
        except Exception as exc:
            self._failed(f"log {type(value).__name__}", exc)
            return None
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (image_t, audio_t, html_t)) for v in value):
            items = [self._convert(key, v) for v in value]
            items = [i for i in items if i is not None]
            return items or None
        if isinstance(value, numbers.Real):
            return float(value)
        shape = getattr(value, "shape", None)
        if shape is not None and tuple(shape) == () and callable(getattr(value, "item", None)):
            return value  # a 0-d array or tensor: SeeTrain reads it as a number
        return None


def _config_of(wandb_run: Any) -> dict[str, Any]:
    config = wandb_run.config
    data = config.as_dict() if hasattr(config, "as_dict") else dict(config)
    return {k: v for k, v in data.items() if k != "_wandb"}


def _safe(read: Any) -> Any:
    """A W&B property read that must not break the mirror (some raise in special modes)."""
    try:
        return read()
    except Exception:
        return None


def _image(value: Any) -> Any:
    import seetrain

    path = getattr(value, "_path", None)
    if not path:
        pil = getattr(value, "image", None)  # no file (yet): W&B still holds the PIL image
        return seetrain.Image(pil, caption=getattr(value, "_caption", None)) if pil is not None else None
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        im.load()
        return seetrain.Image(im.copy(), caption=_caption(value))


def _audio(value: Any) -> Any:
    import seetrain
    import soundfile

    path = getattr(value, "_path", None)
    if not path:
        return None
    samples, rate = soundfile.read(path, always_2d=False)
    return seetrain.Audio(samples, sample_rate=int(getattr(value, "_sample_rate", None) or rate),
                          caption=_caption(value))


def _caption(value: Any) -> str | None:
    caption = getattr(value, "_caption", None)
    return caption if isinstance(caption, str) else None


def create(run: Any, **options: Any) -> WandbBridge:
    """The adapter factory: the W&B bridge, enabled and recording into ``run``."""
    bridge = get_bridge("wandb")
    bridge.enable(run=run, **options)
    return bridge  # type: ignore[return-value]
