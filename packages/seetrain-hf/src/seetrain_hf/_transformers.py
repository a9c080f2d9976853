"""The Transformers adapter: :class:`SeeTrainCallback`, a ``transformers.TrainerCallback``.

Imported on first use only (``seetrain_hf.SeeTrainCallback``, ``init_transformers``,
``seetrain.init(framework="transformers")``): it imports Transformers.
"""

from __future__ import annotations

import logging
import numbers
import os
from typing import TYPE_CHECKING, Any, Iterable

from seetrain.errors import record_failure
from transformers import TrainerCallback

from ._binding import RunBinding

if TYPE_CHECKING:
    from seetrain.run import Run

__all__ = ["SeeTrainCallback", "create", "metrics_by_phase"]

log = logging.getLogger("seetrain")

_ADAPTER = "transformers"
# Trainer adds speed metrics named "<prefix>_runtime" to every evaluate / predict / end-of-training
# record: their prefix is the phase of the record ("eval", "test", "train", or a custom
# metric_key_prefix). A record without one is a training-step record.
_RUNTIME_SUFFIX = "_runtime"


def metrics_by_phase(logs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Name the values of one Trainer log record by phase.

    Returns ``(phase, named)``: ``("train", {"train/loss": ..., "train/epoch": ...})`` for a
    training step, ``("eval", {"eval/loss": ..., "eval/accuracy": ...})`` for
    ``evaluate()``, ``("test", {"test/loss": ...})`` for ``predict()``. Keys without the
    phase's prefix (``epoch``, ``num_input_tokens_seen``) are put under the record's phase.
    ``evaluate(eval_dataset={"a": ..., "b": ...})`` records (prefix ``eval_a``) become
    ``eval/a/...``.
    """
    phase = "train"
    for key in logs:
        if key.endswith(_RUNTIME_SUFFIX) and len(key) > len(_RUNTIME_SUFFIX):
            phase = key[: -len(_RUNTIME_SUFFIX)]
            break
    prefix = phase + "_"
    # "eval_a" -> "eval/a": a multi-dataset evaluation groups under its phase
    name = phase
    for known in ("eval", "test"):
        if phase.startswith(known + "_"):
            name = known + "/" + phase[len(known) + 1:]
    named = {}
    for key, value in logs.items():
        rest = key[len(prefix):] if key.startswith(prefix) else key
        named[f"{name}/{rest}"] = value
    return phase, named


def _is_end_of_training(phase: str, logs: dict[str, Any]) -> bool:
    # Trainer._finalize_training logs speed metrics + "train_loss" + "total_flos" once; step records
    # carry "loss" (and, with include_num_input_tokens_seen, "train_runtime" too, so that alone is
    # not the mark)
    return phase == "train" and "train_loss" in logs


def _scalar(value: Any) -> float | None:
    """``value`` as a float when it is a real number (int, float, numpy / 0-d tensor), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and tuple(getattr(value, "shape", ())) == ():
        try:
            scalar = item()
        except Exception:
            return None
        return float(scalar) if isinstance(scalar, numbers.Real) else None
    return None


class SeeTrainCallback(TrainerCallback):
    """Logs a ``transformers.Trainer`` to SeeTrain.

    >>> from seetrain_hf import SeeTrainCallback
    >>> trainer = Trainer(model, args, train_dataset=ds,                      # doctest: +SKIP
    ...                   callbacks=[SeeTrainCallback(project="gpt2-tiny")])

    On train begin (on the world process zero only) it uses the run given as ``run=``, else the
    active run, else starts its own from the arguments below; it puts ``TrainingArguments``
    (tokens redacted, as ``TrainingArguments.to_dict()`` does), the model's config, class and
    parameter counts in the run config. Every Trainer log record is logged at Trainer's
    ``global_step``, named by phase (``train/loss``, ``train/learning_rate``,
    ``train/grad_norm``, ``eval/loss``, ``eval/<metric>``, ``test/<metric>`` for
    ``predict()``); the end-of-training figures (``train_runtime``, ``train_loss``,
    ``total_flos`` …) go to the run summary. Saved checkpoints are recorded as files.

    :param project: project of a run the callback starts itself.
    :param experiment_name: name of that run.
    :param description: its description.
    :param config: extra hyperparameters for its config.
    :param run: a run to log to (it is never ended by the callback).
    :param dir: store directory of a run the callback starts itself.
    :param mode: ``"local"`` or ``"disabled"`` for such a run.
    :param tags: its tags.
    :param group: its group.
    :param log_model_config: put the model's ``config.to_dict()`` in the run config.
    :param finish_on_train_end: end a run the callback started itself when training ends.
        Pass ``False`` to keep it for a ``trainer.evaluate()`` / ``predict()`` after
        ``train()``, and end it with :meth:`finish`.
    """

    def __init__(
        self,
        project: str | None = None,
        experiment_name: str | None = None,
        description: str | None = None,
        config: Any = None,
        *,
        run: Run | None = None,
        dir: str | os.PathLike | None = None,
        mode: str | None = None,
        tags: Iterable[str] | None = None,
        group: str | None = None,
        log_model_config: bool = True,
        finish_on_train_end: bool = True,
    ) -> None:
        self._binding = RunBinding(_ADAPTER, run=run, init_options=dict(
            project=project, experiment_name=experiment_name, description=description, config=config,
            dir=dir, mode=mode, tags=tags, group=group,
        ))
        self.log_model_config = log_model_config
        self.finish_on_train_end = finish_on_train_end
        self._skipped_keys: set[str] = set()

    # -- the run ------------------------------------------------------------------------
    @property
    def run(self) -> Run | None:
        """The run the callback logs to (``None`` before training began, and on other ranks)."""
        return self._binding.run

    def finish(self, status: str = "finished") -> None:
        """End the run the callback logs to."""
        self._binding.end(status)

    def _current_run(self) -> Run | None:
        """The run for a record outside ``on_train_begin``: the one in use; for an
        ``evaluate()`` / ``predict()`` without training a freshly resolved one; and after the
        callback's own run ended with ``train()``, that same run reopened (as the Keras and
        Lightning adapters do), so those metrics land with the training they belong to."""
        run = self._binding.run
        if run is None:
            return self._binding.resolve()
        if run.finished and self._binding.owned:
            return self._binding.reopen()
        return run

    # -- Trainer events -----------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        # a run that cannot be started (a bad dir= or mode=) is the user's to fix: it raises here,
        # before any compute is spent
        run = self._binding.resolve()
        try:
            run.config.update(self._run_config(args, model))
        except Exception as exc:
            record_failure(_ADAPTER, "on_train_begin", exc)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        try:
            run = self._current_run()
            if run is None:
                return
            phase, named = metrics_by_phase(logs)
            if _is_end_of_training(phase, logs):
                self._to_summary(run, logs, state)
                return
            self._log(run, named, state.global_step)
        except Exception as exc:
            record_failure(_ADAPTER, "on_log", exc)

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        # predict() does not go through Trainer.log: its metrics come only here
        if not state.is_world_process_zero or not metrics:
            return
        try:
            run = self._current_run()
            if run is None:
                return
            _, named = metrics_by_phase(metrics)
            self._log(run, named, state.global_step)
        except Exception as exc:
            record_failure(_ADAPTER, "on_predict", exc)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        try:
            run = self._current_run()
            if run is None:
                return
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            path = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(path):
                run.add_file(path, kind="checkpoint", step=state.global_step)
        except Exception as exc:
            record_failure(_ADAPTER, "on_save", exc)

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.finish_on_train_end and self._binding.owned:
            try:
                self._binding.end("finished")
            except Exception as exc:
                record_failure(_ADAPTER, "on_train_end", exc)

    # -- helpers --------------------------------------------------------------------------
    def _run_config(self, args: Any, model: Any) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if args is not None:
            # to_dict() redacts every *_token field and turns enums into their values
            config["training_args"] = args.to_dict()
        if model is not None:
            config["model_class"] = type(model).__name__
            model_config = getattr(model, "config", None)
            if self.log_model_config and model_config is not None and callable(getattr(model_config, "to_dict", None)):
                config["model_config"] = model_config.to_dict()
            count = getattr(model, "num_parameters", None)
            if callable(count):
                config["num_parameters"] = int(count())
                config["num_trainable_parameters"] = int(count(only_trainable=True))
            elif callable(getattr(model, "parameters", None)):
                params = list(model.parameters())
                config["num_parameters"] = sum(p.numel() for p in params)
                config["num_trainable_parameters"] = sum(p.numel() for p in params if p.requires_grad)
        return config

    def _numbers(self, named: dict[str, Any]) -> dict[str, float]:
        out = {}
        for key, value in named.items():
            number = _scalar(value)
            if number is not None:
                out[key] = number
            elif key not in self._skipped_keys:
                # a compute_metrics may return lists or strings: charts take numbers only
                self._skipped_keys.add(key)
                log.warning("seetrain: %r from the Trainer is a %s, not a number; it is not logged",
                            key, type(value).__name__)
        return out

    def _log(self, run: Run, named: dict[str, Any], step: int) -> None:
        values = self._numbers(named)
        if values:
            run.log(values, step=step)

    def _to_summary(self, run: Run, logs: dict[str, Any], state: Any) -> None:
        figures = {key: number for key, number in ((k, _scalar(v)) for k, v in logs.items()) if number is not None}
        # PrinterCallback (disable_tqdm=True) pops total_flos from the shared record before us
        if "total_flos" not in figures and getattr(state, "total_flos", None) is not None:
            figures["total_flos"] = float(state.total_flos)
        run.summary.update(figures)


def create(run: Run, **options: Any) -> SeeTrainCallback:
    """The adapter factory: a callback bound to ``run`` (``init_transformers(...).get_callback()``)."""
    return SeeTrainCallback(run=run, **options)
