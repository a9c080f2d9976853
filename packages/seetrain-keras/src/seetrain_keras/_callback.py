"""The Keras ``Callback`` subclass. Importing this module imports Keras (never TensorFlow
itself: only what the configured backend needs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras

import seetrain
from seetrain.errors import SeeTrainError, record_failure

from ._resume import reopen_run

__all__ = ["SeeTrainCallback", "create"]

#: the adapter key written into ``run.config["seetrain"]["frameworks"]``
FRAMEWORK = "keras"
# keys of Keras' logs that are not metrics of the model
_LR_KEYS = ("learning_rate", "lr")


class SeeTrainCallback(keras.callbacks.Callback):
    """A Keras 3 callback that records ``fit``, ``evaluate`` and ``predict`` in a SeeTrain run.

    >>> model.fit(x, y, validation_split=0.2, epochs=5,                           # doctest: +SKIP
    ...           callbacks=[SeeTrainCallback(project="mnist", log_every_n_batches=50)])

    Names: epoch metrics ``train/<metric>`` and ``val/<metric>`` (Keras' ``val_loss`` →
    ``val/loss``), ``train/lr`` (the optimizer's learning rate) and ``epoch``; with
    ``log_every_n_batches`` also ``batch/<metric>`` (Keras' running mean over the epoch so
    far); ``eval/<metric>`` for ``evaluate``; ``predict/batches`` and ``predict/samples`` for
    ``predict``. The step is the number of training batches run so far, so batch and epoch
    values share one axis. The run config gets ``keras: {fit, optimizer, model}``.

    The run is the ``run=`` given, else the active run when training starts
    (``seetrain.active_run()``), else one the callback starts and ends at ``on_train_end``
    (reopened for a following ``evaluate``/``predict`` with the same callback).

    :param project: the run's project (default: the current folder's name).
    :param experiment_name: the run's name.
    :param description: free text shown with the run.
    :param config: hyperparameters put in the run config (dict, ``argparse.Namespace``,
        dataclass); merged into the run's config when the callback joins an existing run.
    :param dir: the SeeTrain store directory (default ``SEETRAIN_DIR`` or ``./seetrain``).
    :param log_every_n_batches: also log the batch metrics every N training batches
        (default: epoch metrics only).
    :param run: an existing :class:`seetrain.Run` to log into; the callback never ends it.
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
        log_every_n_batches: int | None = None,
        run: Any = None,
        **init_options: Any,
    ) -> None:
        super().__init__()
        unknown = set(init_options) - {"tags", "group", "mode"}
        if unknown:
            raise TypeError(f"SeeTrainCallback got unexpected keyword argument(s) {', '.join(sorted(unknown))}; "
                            "the seetrain.init options it passes on are tags, group and mode")
        if log_every_n_batches is not None and (
                isinstance(log_every_n_batches, bool) or not isinstance(log_every_n_batches, int)
                or log_every_n_batches < 1):
            raise ValueError(f"SeeTrainCallback: log_every_n_batches must be an int >= 1 or None, "
                             f"got {log_every_n_batches!r}")
        if run is not None and not isinstance(run, seetrain.Run):
            raise TypeError(f"SeeTrainCallback: run= must be a seetrain.Run, got {type(run).__name__}")
        self.log_every_n_batches = log_every_n_batches
        self._init_args = dict(project=project, experiment_name=experiment_name, description=description,
                               config=config, dir=os.fspath(dir) if dir is not None else None, **init_options)
        self._config = config
        self._run = run
        self._owns_run = False
        self._bound = False
        self._in_fit = False
        #: training batches run so far, over every fit: the step of everything logged
        self.global_step = 0
        self._predict_batches = 0
        self._predict_samples = 0

    # -- the run ---------------------------------------------------------------------------
    @property
    def run(self) -> Any:
        """The run the callback logs to (``None`` before training starts)."""
        return self._run

    def _ensure_run(self) -> Any:
        run = self._run
        if run is not None and not run.finished:
            if not self._bound:
                self._bind(run)
            return run
        if run is not None and self._owns_run:
            run = reopen_run(run)  # our run, ended by on_train_end: evaluate after fit
        else:
            run = seetrain.active_run()
            if run is not None:
                self._owns_run = False
                if self._config is not None:
                    run.config.update(self._config)
            else:
                run = seetrain.init(**self._init_args)
                self._owns_run = True
        self._run = run
        self._bind(run)
        return run

    def _bind(self, run: Any) -> None:
        self._bound = True
        if FRAMEWORK not in run.frameworks:
            run.add_framework(FRAMEWORK)

    def _end_own_run(self, status: str, error: Any = None) -> None:
        if self._owns_run and self._run is not None and not self._run.finished:
            self._run.finish(status, error=error)

    # -- fit --------------------------------------------------------------------------------
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        try:
            if self._in_fit:
                # Keras has no exception hook: the last fit raised before on_train_end
                self._end_own_run("crashed", "model.fit raised before on_train_end (see the training's traceback)")
                if self._owns_run:  # this fit is a new attempt: a run of its own, from step 0
                    self._run, self._bound, self._owns_run, self.global_step = None, False, False, 0
            self._in_fit = True
            run = self._ensure_run()
            run.config.update({FRAMEWORK: self._describe_fit()})
        except SeeTrainError:
            raise  # a configuration error (an unwritable store …): its message says the fix
        except Exception as exc:
            record_failure(FRAMEWORK, "on_train_begin", exc)

    def _describe_fit(self) -> dict[str, Any]:
        params = dict(self.params or {})
        fit = {"epochs": params.get("epochs"), "steps_per_epoch": params.get("steps"),
               "verbose": params.get("verbose")}
        out: dict[str, Any] = {"fit": fit, "backend": keras.backend.backend(), "version": keras.__version__}
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            out["optimizer"] = {"class": type(optimizer).__name__, **optimizer.get_config()}
        trainable = sum(int(_size(w)) for w in model.trainable_weights)
        out["model"] = {"name": model.name, "class": type(model).__name__, "params": int(model.count_params()),
                        "trainable_params": trainable}
        return out

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.global_step += 1
        n = self.log_every_n_batches
        if n is None or self.global_step % n or not logs:
            return
        try:
            values = _scalars(logs, "on_train_batch_end")
            values.pop("learning_rate", None)
            values.pop("lr", None)
            self._log({f"batch/{k}": v for k, v in values.items()})
        except Exception as exc:
            record_failure(FRAMEWORK, "on_train_batch_end", exc)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        try:
            values: dict[str, Any] = {"epoch": epoch}
            lr_from_logs = None
            for key, value in _scalars(logs or {}, "on_epoch_end").items():
                if key in _LR_KEYS:
                    lr_from_logs = value  # LearningRateScheduler / ReduceLROnPlateau put it here
                elif key.startswith("val_"):
                    values[f"val/{key[4:]}"] = value
                else:
                    values[f"train/{key}"] = value
            lr = self._learning_rate()
            if lr is None:
                lr = lr_from_logs
            if lr is not None:
                values["train/lr"] = lr
            self._log(values)
        except Exception as exc:
            record_failure(FRAMEWORK, "on_epoch_end", exc)

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        lr = getattr(optimizer, "learning_rate", None)
        if lr is None:
            return None
        try:
            return float(keras.ops.convert_to_numpy(lr))
        except Exception:  # a schedule object some optimizer exposes as is: no single value
            return None

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._in_fit = False
        try:
            self._end_own_run("finished")
        except Exception as exc:
            record_failure(FRAMEWORK, "on_train_end", exc)

    # -- evaluate (and fit's validation, which Keras runs through the same hooks) ---------------
    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._in_fit:
            return  # fit's validation: its values arrive as val_* in on_epoch_end
        self._begin_call("on_test_begin")

    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._in_fit:
            return
        try:
            values = _scalars(logs or {}, "on_test_end")
            self._log({f"eval/{k}": v for k, v in values.items()})
            self._end_call()
        except Exception as exc:
            record_failure(FRAMEWORK, "on_test_end", exc)

    # -- predict ------------------------------------------------------------------------------
    def on_predict_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._predict_batches = self._predict_samples = 0
        if not self._in_fit:
            self._begin_call("on_predict_begin")

    def on_predict_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._predict_batches += 1
        outputs = (logs or {}).get("outputs")
        first = keras.tree.flatten(outputs)[0] if outputs is not None else None
        shape = getattr(first, "shape", None)
        if shape:
            self._predict_samples += int(shape[0])

    def on_predict_end(self, logs: Mapping[str, Any] | None = None) -> None:
        try:
            values = {"predict/batches": self._predict_batches}
            if self._predict_samples:
                values["predict/samples"] = self._predict_samples
            self._log(values)
            if not self._in_fit:
                self._end_call()
        except Exception as exc:
            record_failure(FRAMEWORK, "on_predict_end", exc)

    def _begin_call(self, operation: str) -> None:
        # a standalone evaluate/predict: the callback's run (reopened after fit), the active
        # one, or one started for this call and ended by _end_call
        try:
            self._ensure_run()
        except SeeTrainError:
            raise  # a configuration error (an unwritable store …): its message says the fix
        except Exception as exc:
            record_failure(FRAMEWORK, operation, exc)

    def _end_call(self) -> None:
        self._end_own_run("finished")

    # -- logging ------------------------------------------------------------------------------
    def _log(self, values: Mapping[str, Any]) -> None:
        run = self._run
        if run is None or run.finished:
            run = self._ensure_run()
        if values:
            run.log(values, step=self.global_step)


def create(run: Any, **options: Any) -> SeeTrainCallback:
    """The adapter's factory: a callback bound to ``run`` (used by
    ``seetrain.integration.init_keras``)."""
    return SeeTrainCallback(run=run, **options)


def _size(weight: Any) -> int:
    n = 1
    for dim in weight.shape:
        n *= int(dim)
    return n


def _scalars(logs: Mapping[str, Any], operation: str) -> dict[str, Any]:
    """The scalar values of Keras' ``logs``; a metric with several values (an F1 score per
    class) is logged as ``<name>/<i>``."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if isinstance(value, (int, float)):
            out[key] = value
            continue
        if getattr(value, "ndim", None) == 0 or getattr(value, "shape", None) == ():
            out[key] = float(value)  # a 0-d tensor of any backend, or a numpy scalar
            continue
        try:
            array = keras.ops.convert_to_numpy(value)
        except Exception as exc:
            record_failure(FRAMEWORK, operation, TypeError(f"metric {key!r} is not a number: {exc}"))
            continue
        if array.ndim == 0:
            out[key] = float(array)
        else:
            for i, item in enumerate(array.reshape(-1).tolist()):
                out[f"{key}/{i}"] = float(item)
    return out
