"""The unified integration interface of the seed (``integration.main`` there).

>>> from seetrain.integration import init, log, finish       # doctest: +SKIP
>>> integration = init("pytorch_lightning", project="my_project")  # doctest: +SKIP
>>> log({"accuracy": 0.95})                                  # doctest: +SKIP
>>> finish()                                                 # doctest: +SKIP

An :class:`Integration` ties one framework adapter to a run. Integrations started for the
same project and experiment (and store directory) share one run, whose
``config["seetrain"]["frameworks"]`` lists them all; the module-level ``log`` functions
write each value once to every distinct run of the active integrations.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Mapping

from . import errors
from .adapters import Adapter, load_adapter, normalise_name
from .media import Audio, Image, Text

__all__ = [
    "Integration",
    "init",
    "log",
    "log_scalar",
    "log_image",
    "log_audio",
    "log_text",
    "update_config",
    "finish",
    "with_integration",
    "active_integrations",
    "init_pytorch_lightning",
    "init_keras",
    "init_transformers",
    "init_ultralytics",
    "init_accelerate",
    "init_ray_tune",
    "init_optuna",
    "init_wandb",
    "init_mmengine",
    "init_mmdetection",
    "init_tensorboard",
    "init_mlflow",
    "enable_openai_autolog",
    "enable_zhipuai_autolog",
    "enable_anthropic_autolog",
]

#: options of :func:`init` that configure the run rather than the adapter
RUN_OPTIONS = ("dir", "mode", "tags", "group")
#: how each mode hands out its framework object
_GETTER_OF_MODE = {"callback": "get_callback", "tracker": "get_tracker", "visbackend": "get_backend",
                   "autolog": "enable"}

_lock = threading.RLock()
_integrations: list[Integration] = []


class Integration:
    """One framework adapter attached to a run.

    Give the framework-facing object with the getter of the adapter's mode:
    :meth:`get_callback` (callback mode), :meth:`get_tracker` (tracker mode),
    :meth:`get_backend` (visbackend mode); autolog integrations are switched with
    :meth:`enable` / :meth:`disable`.
    """

    def __init__(self, framework: str, adapter: Adapter, run: Any, options: dict,
                 experiment_name: str | None = None) -> None:
        self.framework = framework
        self.adapter = adapter
        self.mode = adapter.mode
        self.run = run
        self._experiment = experiment_name
        self._options = options
        self._object: Any = None
        self._finished = False

    def __repr__(self) -> str:
        return f"<Integration {self.framework} ({self.mode}) run={self.run.id}>"

    # -- the framework-facing object ------------------------------------------------------
    def _get(self, getter: str) -> Any:
        if self._finished:
            raise RuntimeError(f"the {self.framework} integration is finished; start a new one with init()")
        expected = _GETTER_OF_MODE[self.mode]
        if getter != expected:
            raise TypeError(
                f"the {self.framework} integration is in {self.mode} mode: use {expected}() instead of {getter}()"
            )
        if self._object is None:
            self._object = self.adapter.create(run=self.run, **self._options)
        return self._object

    def get_callback(self) -> Any:
        """The callback (or logger) to pass to the framework (callback mode)."""
        return self._get("get_callback")

    def get_tracker(self) -> Any:
        """The tracker to pass to the framework (tracker mode)."""
        return self._get("get_tracker")

    def get_backend(self) -> Any:
        """The visualisation backend to pass to the framework (visbackend mode)."""
        return self._get("get_backend")

    def enable(self) -> Integration:
        """Start recording API calls (autolog mode). Enabling twice records once."""
        handle = self._get("enable")
        handle.enable()
        return self

    def disable(self) -> Integration:
        """Stop recording and restore the SDK exactly as it was (autolog mode)."""
        if self.mode != "autolog":
            raise TypeError(f"the {self.framework} integration is in {self.mode} mode; only autolog ones disable()")
        if self._object is not None:
            self._object.disable()
        return self

    # -- state -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The run's config, as a plain dict."""
        return self.run.config.as_dict()

    def get_stats(self) -> dict[str, Any]:
        """Records logged by kind, errors, retries, records dropped, queue depth, run id and
        directory. Waits (briefly) for queued records to be delivered, so counts are exact."""
        dispatcher = self.run._dispatcher
        if dispatcher is not None and not self.run.finished:
            dispatcher.barrier(timeout=5.0)
        stats = errors.get_integration_error_stats()
        mine = {name: ops for name, ops in stats.items() if name in (self.framework, "core")
                or name.startswith(f"adapter:{self.framework}")}
        failures = sum(op["failures"] for ops in mine.values() for op in ops.values())
        retries = sum(op["retries"] for ops in mine.values() for op in ops.values())
        return {
            "framework": self.framework,
            "mode": self.mode,
            "run_id": self.run.id,
            "project": self.run.project,
            "dir": self.run.dir,
            "status": self.run.status,
            "step": self.run.step,
            "logged": dict(self.run.counts),
            "records_logged": sum(self.run.counts.values()),
            "errors": failures,
            "retries": retries,
            "dropped": self.run.dropped,
            "queue_depth": dispatcher.queue_depth() if dispatcher is not None else 0,
            "error_details": mine,
        }

    # -- end --------------------------------------------------------------------------------
    def finish(self, status: str | None = None, error: Any = None) -> None:
        """End this integration; the run ends when no other integration shares it."""
        if self._finished:
            return
        self._finished = True
        if self.mode == "autolog" and self._object is not None:
            try:
                self._object.disable()
            except Exception as exc:
                errors.record_failure(self.framework, "disable", exc)
        with _lock:
            if self in _integrations:
                _integrations.remove(self)
            shared = any(other.run is self.run for other in _integrations)
        if not shared:
            self.run.finish(status, error=error)

    def __enter__(self) -> Integration:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("crashed", error=exc)


def init(framework: str, project: str | None = None, experiment_name: str | None = None,
         description: str | None = None, config: Any = None, **options: Any) -> Integration:
    """Start an integration of ``framework`` (an adapter name such as ``"pytorch_lightning"``,
    ``"keras"``, ``"accelerate"``, ``"mmengine"``, ``"openai"``).

    The run options ``dir``, ``mode``, ``tags`` and ``group`` go to :func:`seetrain.init`;
    every other keyword goes to the adapter. Raises the core's errors when the adapter or its
    framework is missing (with the ``pip install`` line that fixes it).
    """
    import os

    import seetrain

    from .store.schema import resolve_dir

    name = normalise_name(framework)
    adapter = load_adapter(name)
    run_options = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
    if project is None:
        project = os.path.basename(os.getcwd()) or "default"
    directory = resolve_dir(run_options.get("dir"))
    with _lock:
        run = next((i.run for i in _integrations
                    if i.run.project == project and i._experiment == experiment_name
                    and i.run.dir == directory and not i.run.finished), None)
        if run is None:
            run = seetrain.init(project=project, experiment_name=experiment_name, description=description,
                                config=config, framework=name, **run_options)
        else:
            adapter.attach(run)
            run.add_framework(name)
            if config:
                run.config.update(config)
        integration = Integration(name, adapter, run, options, experiment_name)
        _integrations.append(integration)
    if adapter.mode == "autolog":
        integration.enable()
    return integration


def active_integrations() -> list[Integration]:
    """The integrations started and not finished, oldest first."""
    with _lock:
        return list(_integrations)


def _target_runs(what: str) -> list[Any]:
    with _lock:
        runs: list[Any] = []
        for integration in _integrations:
            if integration.run not in runs and not integration.run.finished:
                runs.append(integration.run)
    if not runs:
        from .run import active_run

        run = active_run()
        if run is None:
            raise RuntimeError(f"seetrain.integration.{what}: no active integration or run; call init() first")
        runs = [run]
    return runs


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log ``data`` once to every run of the active integrations (see :func:`seetrain.log`)."""
    for run in _target_runs("log"):
        run.log(data, step)


def log_scalar(name: str, value: Any, step: int | None = None) -> None:
    """Log one number under ``name``."""
    log({name: value}, step)


def log_image(name: str, image: Any, step: int | None = None, caption: str | None = None) -> None:
    """Log an image (numpy array, PIL image, tensor or file path) under ``name``."""
    log({name: image if isinstance(image, Image) else Image(image, caption=caption)}, step)


def log_audio(name: str, audio: Any, sample_rate: int = 16000, step: int | None = None,
              caption: str | None = None) -> None:
    """Log a sound clip (samples at ``sample_rate`` Hz, 16 kHz by default) under ``name``."""
    log({name: audio if isinstance(audio, Audio) else Audio(audio, sample_rate=sample_rate, caption=caption)}, step)


def log_text(name: str, text: str, step: int | None = None) -> None:
    """Log a piece of text under ``name``."""
    log({name: text if isinstance(text, Text) else Text(text)}, step)


def update_config(mapping: Any) -> None:
    """Update the config of every run of the active integrations."""
    for run in _target_runs("update_config"):
        run.config.update(mapping)


def finish(status: str | None = None) -> None:
    """Finish every active integration (and so their runs)."""
    for integration in reversed(active_integrations()):
        integration.finish(status)


@contextlib.contextmanager
def with_integration(framework: str, **kwargs: Any) -> Iterator[Integration]:
    """Start an integration for the ``with`` block; it finishes when the block ends
    (``crashed`` if an exception escapes, ``interrupted`` on Ctrl+C)."""
    with init(framework, **kwargs) as integration:
        yield integration


def _shortcut(framework: str, label: str, getter: str, extra_doc: str = "") -> Callable[..., Integration]:
    def shortcut(project: str | None = None, experiment_name: str | None = None, description: str | None = None,
                 config: Any = None, **options: Any) -> Integration:
        return init(framework, project=project, experiment_name=experiment_name, description=description,
                    config=config, **options)

    shortcut.__doc__ = (f"Start the {label} integration: ``init({framework!r}, ...)``; "
                        f"{getter}() gives the object for {label}.{extra_doc}")
    return shortcut


init_pytorch_lightning = _shortcut("lightning", "PyTorch Lightning", "get_callback")
init_keras = _shortcut("keras", "Keras", "get_callback")
init_transformers = _shortcut("transformers", "Transformers", "get_callback")
init_ultralytics = _shortcut("ultralytics", "Ultralytics", "get_callback")
init_accelerate = _shortcut("accelerate", "HF Accelerate", "get_tracker")
init_ray_tune = _shortcut("ray", "Ray Tune", "get_tracker")
init_optuna = _shortcut("optuna", "Optuna", "get_tracker")
init_wandb = _shortcut("wandb", "W&B", "get_tracker")
init_mmengine = _shortcut("mmengine", "MMEngine", "get_backend")
init_mmdetection = _shortcut("mmdetection", "MMDetection", "get_backend")
init_tensorboard = _shortcut("tensorboard", "TensorBoard", "get_backend")
init_mlflow = _shortcut("mlflow", "MLflow", "get_backend")
enable_openai_autolog = _shortcut("openai", "OpenAI", "enable",
                                  " Keyword ``capture_content=True`` records prompts and replies.")
enable_zhipuai_autolog = _shortcut("zhipuai", "ZhipuAI", "enable")
enable_anthropic_autolog = _shortcut("anthropic", "Anthropic", "enable")
for _name, _fn in list(globals().items()):
    if _name.startswith(("init_", "enable_")) and callable(_fn) and _fn.__name__ == "shortcut":
        _fn.__name__ = _fn.__qualname__ = _name
