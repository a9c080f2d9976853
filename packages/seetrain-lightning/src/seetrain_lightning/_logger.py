"""The Lightning ``Logger`` subclass. Importing this module imports Lightning.

The base class is chosen here, once: ``lightning.pytorch`` (the unified ``lightning``
distribution) when it imports, else the standalone ``pytorch_lightning`` distribution. Both
Trainers only duck-type their loggers, so the logger built on one namespace also works with the
other's Trainer when both are installed.
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

import seetrain
from seetrain.errors import record_failure

from ._resume import resume_run, run_reference

try:
    from lightning.pytorch.loggers import Logger as _LightningLogger
    from lightning.pytorch.loggers.logger import rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only

    #: the Lightning namespace the logger is built on
    LIGHTNING_NAMESPACE = "lightning.pytorch"
except ImportError as _lightning_error:
    try:
        from pytorch_lightning.loggers import Logger as _LightningLogger
        from pytorch_lightning.loggers.logger import rank_zero_experiment
        from pytorch_lightning.utilities import rank_zero_only

        LIGHTNING_NAMESPACE = "pytorch_lightning"
    except ImportError:
        raise ImportError(
            "seetrain_lightning needs PyTorch Lightning, which could not be imported "
            f"({_lightning_error}); install it with: pip install \"lightning>=2.0\""
        ) from _lightning_error

__all__ = ["SeeTrainLogger", "create", "LIGHTNING_NAMESPACE"]

#: the adapter key written into ``run.config["seetrain"]["frameworks"]``
FRAMEWORK = "lightning"

# Lightning's finalize() statuses -> SeeTrain run statuses
_STATUSES = {"success": "finished", "finished": "finished", "failed": "crashed",
             "interrupted": "interrupted", "aborted": "interrupted"}


class SeeTrainLogger(_LightningLogger):
    """A PyTorch Lightning logger that records the training in a SeeTrain run.

    >>> from lightning.pytorch import Trainer                         # doctest: +SKIP
    >>> from seetrain_lightning import SeeTrainLogger                 # doctest: +SKIP
    >>> trainer = Trainer(logger=SeeTrainLogger(project="mnist"))     # doctest: +SKIP

    The run is bound lazily, on global rank zero only, the first time Lightning (or you) needs
    :attr:`experiment`: the ``run=`` given, else the active run (``seetrain.active_run()``),
    else a run the logger starts itself with the arguments below and ends in
    :meth:`finalize`. Other ranks create and log nothing.

    :param project: the run's project (default: the current folder's name).
    :param experiment_name: the run's name.
    :param description: free text shown with the run.
    :param config: hyperparameters put in the run config (a dict, ``argparse.Namespace`` or
        dataclass); merged into the run's config when the logger joins an existing run.
    :param dir: the SeeTrain store directory (default ``SEETRAIN_DIR`` or ``./seetrain``).
    :param save_dir: where Lightning puts this logger's files, checkpoints included, as
        ``save_dir/<name>/<version>/``; ``None`` (default) means the Trainer's
        ``default_root_dir``.
    :param run: an existing :class:`seetrain.Run` to log into; the logger never ends it.
    :param init_options: further :func:`seetrain.init` options (``tags``, ``group``, ``mode``).
    """

    def __init__(
        self,
        project: str | None = None,
        experiment_name: str | None = None,
        description: str | None = None,
        config: Any = None,
        dir: str | os.PathLike | None = None,
        *,
        save_dir: str | os.PathLike | None = None,
        run: Any = None,
        **init_options: Any,
    ) -> None:
        super().__init__()
        unknown = set(init_options) - {"tags", "group", "mode"}
        if unknown:
            raise TypeError(f"SeeTrainLogger got unexpected keyword argument(s) {', '.join(sorted(unknown))}; "
                            "the seetrain.init options it passes on are tags, group and mode")
        if run is not None and not isinstance(run, seetrain.Run):
            raise TypeError(f"SeeTrainLogger: run= must be a seetrain.Run, got {type(run).__name__}")
        # resolved like seetrain.init does, so `name` is a plain value before any run exists
        self._project = project if project is not None else (os.path.basename(os.getcwd()) or "default")
        self._experiment_name = experiment_name
        self._description = description
        self._config = config
        self._dir = os.fspath(dir) if dir is not None else None
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._init_options = init_options
        self._run = run
        self._ref: dict[str, Any] | None = None  # the bound run's identity, kept across pickling
        self._owns_run = False
        self._checkpoints: dict[str, int] = {}  # checkpoint path -> mtime recorded

    # -- plain values: Lightning reads them on every rank, they never start a run ----------
    @property
    def name(self) -> str:
        """The project of the run (the folder level of ``save_dir/<name>/<version>``)."""
        run = self._run
        if run is not None:
            return run.project
        return self._ref["project"] if self._ref is not None else self._project

    @property
    def version(self) -> str | None:
        """The run id once a run is bound, else ``None``."""
        run = self._run
        if run is not None:
            return run.id
        return self._ref["id"] if self._ref is not None else None

    @property
    def save_dir(self) -> str | None:
        """The directory given as ``save_dir`` (``None``: the Trainer's ``default_root_dir``)."""
        return self._save_dir

    @property
    def root_dir(self) -> str | None:
        """``save_dir/<name>``, or ``None`` without a ``save_dir``."""
        return None if self._save_dir is None else os.path.join(self._save_dir, str(self.name))

    @property
    def log_dir(self) -> str | None:
        """``save_dir/<name>/<version>``, or ``None`` without a ``save_dir`` or before a run."""
        root, version = self.root_dir, self.version
        return None if root is None or version is None else os.path.join(root, version)

    # -- the run -------------------------------------------------------------------------
    @property
    @rank_zero_experiment
    def experiment(self) -> seetrain.Run:
        """The SeeTrain run (a dummy object that ignores every call on ranks other than 0)."""
        run = self._run
        if run is not None and not run.finished:
            if self._ref is None:  # the run= given at construction, used for the first time
                self._bind(run)
            return run
        if self._ref is not None and (run is None or self._owns_run):
            # unpickled in a worker, or our own run ended by finalize() before trainer.test():
            # continue the same run rather than split the training over two
            run = self._live_run(self._ref["id"]) or resume_run(
                run_reference(run) if run is not None else self._ref, owned=self._owns_run)
        else:
            run = self._start_or_join()
        self._bind(run)
        return run

    @staticmethod
    def _live_run(run_id: str) -> Any:
        from seetrain.run import active_runs

        return next((r for r in active_runs() if r.id == run_id), None)

    def _start_or_join(self) -> Any:
        run = seetrain.active_run()
        if run is not None:
            self._owns_run = False
            if self._config is not None:
                run.config.update(self._config)
            return run
        # no framework= here: that re-checks the `lightning` distribution, which a
        # pytorch_lightning-only install lacks; the run is marked in _bind instead
        run = seetrain.init(project=self._project, experiment_name=self._experiment_name,
                            description=self._description, config=self._config, dir=self._dir,
                            **self._init_options)
        self._owns_run = True
        return run

    def _bind(self, run: Any) -> None:
        self._run = run
        if FRAMEWORK not in run.frameworks:
            run.add_framework(FRAMEWORK)
        self._ref = run_reference(run)

    # -- Lightning's Logger API ------------------------------------------------------------
    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | Any, *args: Any, **kwargs: Any) -> None:
        """Merge hyperparameters into the run config: a dict (nested dicts stay nested), an
        ``argparse.Namespace``, a dataclass, or Lightning's ``AttributeDict``."""
        from seetrain.configuration import to_config_dict

        values = to_config_dict(params)  # raises a TypeError naming the type for anything else
        if values:
            self.experiment.config.update(values)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log values at Lightning's ``step`` (the global step when the Trainer calls it).

        Lightning has already turned tensors into floats; media values (``seetrain.Image`` …)
        pass through. A value of the wrong type raises the core's ``TypeError`` naming its key.
        """
        if not metrics:
            return
        run = self.experiment
        try:
            run.log(metrics, step=step)
        except (TypeError, ValueError):
            raise  # the caller passed something that is not a value: their error to fix
        except Exception as exc:
            record_failure(FRAMEWORK, "log_metrics", exc)

    @rank_zero_only
    def log_image(self, key: str, images: Any, step: int | None = None,
                  caption: str | list[str | None] | None = None) -> None:
        """Log one image or a list of them (numpy arrays, CHW tensors, PIL images, paths)
        under ``key``; ``caption`` is a str or a list with one per image."""
        items = _as_list(images)
        captions = _per_item("caption", caption, len(items))
        self.log_metrics({key: [seetrain.Image(img, caption=c) for img, c in zip(items, captions)]}, step)

    @rank_zero_only
    def log_audio(self, key: str, audios: Any, step: int | None = None,
                  sample_rate: int | list[int] | None = None,
                  caption: str | list[str | None] | None = None) -> None:
        """Log one clip or a list of them (numpy samples, or file paths) under ``key``;
        ``sample_rate`` and ``caption`` are one value or one per clip."""
        items = _as_list(audios)
        rates = _per_item("sample_rate", sample_rate, len(items))
        captions = _per_item("caption", caption, len(items))
        self.log_metrics({key: [seetrain.Audio(a, sample_rate=r, caption=c)
                                for a, r, c in zip(items, rates, captions)]}, step)

    @rank_zero_only
    def log_text(self, key: str, text: str | list[str], step: int | None = None) -> None:
        """Log a str, or a list of str, under ``key``."""
        items = _as_list(text)
        self.log_metrics({key: [seetrain.Text(t) for t in items]}, step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record the checkpoint files of ``checkpoint_callback`` in the run (kind
        ``checkpoint``), each once per save, with its tag (``best``, ``top_k``, ``last``),
        monitored metric, score and global step."""
        try:
            self._record_checkpoints(checkpoint_callback)
        except Exception as exc:
            record_failure(FRAMEWORK, "after_save_checkpoint", exc)

    def _record_checkpoints(self, callback: Any) -> None:
        found: dict[str, tuple[str, Any]] = {}
        for path, score in (getattr(callback, "best_k_models", None) or {}).items():
            found[path] = ("top_k", score)
        best = getattr(callback, "best_model_path", "")
        if best:
            found[best] = ("best", getattr(callback, "best_model_score", None))
        last = getattr(callback, "last_model_path", "")
        if last:
            found[last] = ("last", getattr(callback, "current_score", None))
        if not found:
            return
        run = self.experiment
        for path, (tag, score) in found.items():
            if not os.path.isfile(path):
                continue  # already rotated out of the top k
            mtime = os.stat(path).st_mtime_ns
            if self._checkpoints.get(path) == mtime:
                continue
            self._checkpoints[path] = mtime
            run.add_file(os.path.abspath(path), kind="checkpoint", tag=tag, score=_number(score),
                         monitor=getattr(callback, "monitor", None),
                         step=getattr(callback, "_last_global_step_saved", None))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run when the logger started it (``failed`` → ``crashed``, with the
        exception being handled as its error; a ``KeyboardInterrupt`` → ``interrupted``).
        A run given as ``run=`` or joined from ``seetrain.active_run()`` is left to its owner."""
        run = self._run
        if run is None or run.finished:
            return
        try:
            if not self._owns_run:
                return
            error = sys.exc_info()[1]  # Lightning calls finalize("failed") inside its except
            final = _STATUSES.get(status, "finished")
            if final == "crashed" and isinstance(error, KeyboardInterrupt):
                final = "interrupted"
            run.finish(final, error=error if final != "finished" else None)
        except Exception as exc:
            record_failure(FRAMEWORK, "finalize", exc)

    # -- pickling (ddp_spawn, spawn-based launchers) -----------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        run = state.get("_run")
        if run is not None:
            # a Run holds threads and connections; the worker continues it from its identity
            state["_ref"] = run_reference(run)
        state["_run"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<SeeTrainLogger project={self.name!r} version={self.version!r}>"


def create(run: Any, **options: Any) -> SeeTrainLogger:
    """The adapter's factory: a logger bound to ``run`` (used by
    ``seetrain.integration.init_pytorch_lightning``)."""
    return SeeTrainLogger(run=run, **options)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _per_item(name: str, value: Any, n: int) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"SeeTrainLogger: {name} has {len(value)} items for {n} media; give one per item")
    return list(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)
