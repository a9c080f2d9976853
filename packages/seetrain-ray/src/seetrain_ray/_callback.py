"""The Ray Tune logger callback.

Tune runs ``LoggerCallback`` hooks in the driver process, in the thread that drives the
experiment, so one SeeTrain run per trial is opened, fed and finished there: the trials'
worker processes need no SeeTrain at all.

``Tuner`` pickles its ``RunConfig`` (callbacks included) into the experiment folder to make
``Tuner.restore`` possible, so the callback drops its runs and lock when pickled.
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Iterable

from ray.tune.logger import LoggerCallback

import seetrain
from seetrain.errors import record_failure

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["SeeTrainLoggerCallback", "create"]

_KEY = "ray"
#: result entries that are bookkeeping, not metrics (``training_iteration`` is the step)
EXCLUDED_RESULT_KEYS = frozenset({
    "config", "trial_id", "date", "hostname", "node_ip", "pid", "timestamp", "done",
    "training_iteration", "checkpoint_dir_name", "experiment_tag", "should_checkpoint",
    "iterations_since_restore", "time_since_restore", "timesteps_since_restore",
})


class SeeTrainLoggerCallback(LoggerCallback):
    """Record a Ray Tune experiment in SeeTrain: pass it in ``RunConfig(callbacks=[...])``.

    Each trial gets a run, named after the trial (``trainable_1a2b3_00000``), with:

    * the trial's config as run config, plus ``ray: {trial_id, trial_name, experiment,
      experiment_tag}``;
    * every numeric entry of every reported result (nested dicts flattened with ``/``) at
      step = ``training_iteration``; bookkeeping entries (``pid``, ``date``, ``done`` …, see
      :data:`EXCLUDED_RESULT_KEYS`) are left out, ``time_this_iter_s`` and ``time_total_s``
      kept;
    * status ``finished``, or ``crashed`` with the trial's error for a trial that raised (its
      ``error.txt`` is recorded as a file of kind ``error``).

    All runs of one Tuner share a group: ``group=``, else ``experiment_name=``, else the
    parent run's group or name, else Ray's experiment name (``RunConfig(name=...)`` or the one
    Ray generates).

    The parent run -- ``run=`` if given (the integration passes its run), else the run
    active when the callback is built -- receives the experiment's overview:
    ``trials/finished``, ``trials/errored`` at step = number of trials ended so far, and in
    its summary ``trials``: trial name -> ``{run_id, status}``. It is left open for its owner.

    :param project: project of the trial runs (default: the parent run's, else SeeTrain's
        default).
    :param experiment_name: the name of the tuning experiment, the trial runs' group.
    :param description: description of the trial runs.
    :param config: config added to every trial run (shared settings of the sweep).
    :param tags: tags of the trial runs.
    :param group: the trial runs' group (overrides ``experiment_name``).
    :param dir: store directory of the trial runs.
    :param mode: ``"local"`` or ``"disabled"``.
    :param run: the parent run.

    >>> tune.Tuner(trainable, run_config=tune.RunConfig(                         # doctest: +SKIP
    ...     callbacks=[SeeTrainLoggerCallback(project="tuning")])).fit()
    """

    def __init__(
        self,
        project: str | None = None,
        experiment_name: str | None = None,
        description: str | None = None,
        config: Any = None,
        *,
        tags: Iterable[str] | None = None,
        group: str | None = None,
        dir: str | None = None,
        mode: str = "local",
        run: seetrain.Run | None = None,
    ) -> None:
        if run is not None and not isinstance(run, seetrain.Run):
            raise TypeError(f"SeeTrainLoggerCallback: run must be a seetrain.Run, got {type(run).__name__}; "
                            "pass the object seetrain.init() returned, or leave run out")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"SeeTrainLoggerCallback: config must be a mapping, got {type(config).__name__}")
        self.project = project
        self.experiment_name = experiment_name
        self.description = description
        self.config = dict(config or {})
        self.tags = [str(t) for t in (tags or ())]
        self.group = group
        self.dir = dir
        self.mode = mode
        self.run: seetrain.Run | None = run if run is not None else seetrain.active_run()
        self._init_state()
        if self.run is not None:
            self.run.add_framework(_KEY)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._trial_runs: dict[str, seetrain.Run] = {}
        self._ended: dict[str, str] = {}  # trial name -> status

    # -- pickling (Tuner saves its RunConfig for restore) ---------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("run", "_lock", "_trial_runs", "_ended"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.run = None  # a restored experiment has no live parent run
        self._init_state()

    # -- Tune hooks ------------------------------------------------------------------------
    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        """Called by Tune once before the first trial: describe the sweep in the parent run."""
        try:
            if self.run is not None and not self.run.finished:
                self.run.config.update({_KEY: {"num_samples": num_samples, "total_num_samples": total_num_samples,
                                               "stop": stop if isinstance(stop, Mapping) else repr(stop)}})
        except Exception as exc:
            record_failure("ray", "setup", exc)

    def log_trial_start(self, trial: Trial) -> None:
        """Open the trial's run (a restarted trial keeps the run it has)."""
        try:
            self._trial_run(trial)
        except Exception as exc:
            record_failure("ray", "log_trial_start", exc)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        """Log the numeric entries of ``result`` at step ``training_iteration``."""
        try:
            run = self._trial_run(trial)
            if run.finished:
                return
            data: dict[str, float] = {}
            _numeric_items(result, "", data)
            step = result.get("training_iteration")
            if data:
                run.log(data, step=step if isinstance(step, int) and step >= 0 else None)
        except Exception as exc:
            record_failure("ray", "log_trial_result", exc)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """Finish the trial's run: ``crashed`` with the trial's error if it failed."""
        try:
            run = self._trial_run(trial)
            error = None
            if failed:
                error = _trial_error(trial)
                error_file = getattr(trial, "error_file", None)
                if error_file and os.path.exists(error_file):
                    run.add_file(error_file, kind="error")
            status = "crashed" if failed else "finished"
            run.finish(status, error=error)
            with self._lock:
                self._trial_runs.pop(trial.trial_id, None)
                self._ended[str(trial)] = status
                ended = dict(self._ended)
            self._update_parent(ended, trial, run, status)
        except Exception as exc:
            record_failure("ray", "log_trial_end", exc)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """End the runs of trials Tune stopped without a complete/error event."""
        with self._lock:
            left = list(self._trial_runs.values())
            self._trial_runs.clear()
        for run in left:
            try:
                run.finish("interrupted")
            except Exception as exc:
                record_failure("ray", "on_experiment_end", exc)

    # -- internals ---------------------------------------------------------------------------
    def _trial_run(self, trial: Trial) -> seetrain.Run:
        with self._lock:
            run = self._trial_runs.get(trial.trial_id)
            if run is not None:
                return run
            parent = self.run
            experiment = _experiment_name(trial)
            group = (self.group or self.experiment_name
                     or (parent.group or parent.name if parent is not None else None) or experiment)
            run = seetrain.init(
                project=self.project or (parent.project if parent is not None else None),
                experiment_name=str(trial),
                description=self.description,
                config={**self.config, **(trial.config or {})},
                dir=self.dir or (parent.dir if parent is not None else None),
                mode=self.mode,
                tags=self.tags,
                group=group,
                # given to init, not added afterwards, so the store's run row has it from the start
                framework=_KEY,
            )
            self._trial_runs[trial.trial_id] = run
        run.config.setdefaults({_KEY: {"trial_id": trial.trial_id, "trial_name": str(trial),
                                       "experiment": experiment,
                                       "experiment_tag": getattr(trial, "experiment_tag", None)}})
        return run

    def _update_parent(self, ended: dict[str, str], trial: Trial, trial_run: seetrain.Run, status: str) -> None:
        parent = self.run
        if parent is None or parent.finished:
            return
        statuses = list(ended.values())
        parent.log({"trials/finished": statuses.count("finished"), "trials/errored": statuses.count("crashed")},
                   step=len(statuses))
        trials = dict(parent.summary.get("trials") or {})
        trials[str(trial)] = {"run_id": trial_run.id, "status": status}
        parent.summary["trials"] = trials


def _numeric_items(result: Mapping, prefix: str, out: dict[str, float]) -> None:
    for key, value in result.items():
        if not prefix and key in EXCLUDED_RESULT_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _numeric_items(value, f"{name}/", out)
        elif isinstance(value, numbers.Real):
            out[name] = float(value)
        elif getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
            item = value.item()  # 0-d numpy arrays and tensors
            if isinstance(item, numbers.Real):
                out[name] = float(item)
        # strings, lists, arrays: Ray's own loggers keep them; a scalar chart cannot


def _experiment_name(trial: Trial) -> str | None:
    try:
        return trial.experiment_dir_name
    except Exception:  # a trial without storage (a stub) has none
        return None


def _trial_error(trial: Trial) -> str:
    """The last line of the trial's error (``ValueError: ...``), or a generic text."""
    error_file = getattr(trial, "error_file", None)
    if error_file and os.path.exists(error_file):
        with open(error_file, encoding="utf-8", errors="replace") as fh:
            lines = [line.strip() for line in fh.read().splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"Ray Tune trial {trial} failed"


def create(run: seetrain.Run, **options: Any) -> SeeTrainLoggerCallback:
    """The adapter factory: a :class:`SeeTrainLoggerCallback` whose parent run is ``run``."""
    return SeeTrainLoggerCallback(run=run, **options)
