"""The Optuna study callback.

Optuna calls each callback as ``callback(study, frozen_trial)`` once a trial has ended
(complete, pruned, or failed and caught by ``catch=``), in the thread that ran the trial.
Nothing here subclasses an Optuna class, but the module reads Optuna's ``TrialState`` and
so is imported only on first use (see the package's ``__getattr__``).
"""

from __future__ import annotations

import numbers
import threading
from typing import Any, Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

import seetrain
from seetrain.errors import record_failure

__all__ = ["SeeTrainCallback", "create"]

_KEY = "optuna"
# a trial run ends with the status that says how the trial ended
_TRIAL_STATUS = {TrialState.COMPLETE: "finished", TrialState.PRUNED: "finished", TrialState.FAIL: "crashed"}


class SeeTrainCallback:
    """Record an Optuna study in SeeTrain: pass it in ``study.optimize(callbacks=[...])``.

    By default one run holds the whole study. At step = trial number it logs:

    * ``value`` (single objective) or ``values/<metric name or index>`` (several), for every
      trial Optuna gave a value -- complete trials, and pruned ones, whose value is their last
      intermediate value;
    * ``best_value``: the study's best value after that trial (single objective; complete
      trials only, as Optuna counts it), or ``best_trials`` (the Pareto-front size);
    * ``params/<name>`` (numbers as scalars, categorical strings as text), ``state`` (text:
      ``COMPLETE``, ``PRUNED``, ``FAIL``), ``duration`` (seconds), ``intermediate/last_value``
      and ``intermediate/last_step`` when the trial reported intermediate values,
      ``user_attrs/<name>`` for numeric user attributes, and the running counts
      ``trials/complete``, ``trials/pruned``, ``trials/failed``.

    The run's config gets ``optuna: {study_name, directions, sampler, pruner}``; its summary
    ``best_value``, ``best_params`` and ``best_trial``.

    With ``per_trial_runs=True`` each trial gets a run of its own (name
    ``<study>-trial-<n>``, its params as config, its intermediate values as steps of
    ``intermediate_value``, ``value`` at the last step, status ``finished`` or ``crashed`` for
    a failed trial, tagged with its state), grouped by ``group`` (default: the study name).

    Which run receives the study view: ``run=`` if given, else the run active when the
    callback is built, else (``per_trial_runs=False`` only) a run the callback starts at the
    first trial, named after the study; call :meth:`finish` (or use the callback as a context
    manager) to end that one. A run the callback did not start is left to its owner.

    :param project: project of the runs the callback starts (default: the study run's
        project, else SeeTrain's default).
    :param experiment_name: name of the study run it starts (default: the study name).
    :param description: description of the runs it starts.
    :param config: extra config for the study run.
    :param per_trial_runs: one run per trial instead of one for the study.
    :param tags: tags of the runs it starts.
    :param group: group of the runs it starts (per-trial runs default to the study name).
    :param dir: store directory of the runs it starts.
    :param mode: ``"local"`` or ``"disabled"``, for the runs it starts.
    :param run: the run to record the study in.

    >>> callback = SeeTrainCallback(project="tuning")                  # doctest: +SKIP
    >>> study.optimize(objective, n_trials=20, callbacks=[callback])   # doctest: +SKIP
    >>> callback.finish()                                              # doctest: +SKIP
    """

    def __init__(
        self,
        project: str | None = None,
        experiment_name: str | None = None,
        description: str | None = None,
        config: Any = None,
        *,
        per_trial_runs: bool = False,
        tags: Iterable[str] | None = None,
        group: str | None = None,
        dir: str | None = None,
        mode: str = "local",
        run: seetrain.Run | None = None,
    ) -> None:
        if run is not None and not isinstance(run, seetrain.Run):
            raise TypeError(f"SeeTrainCallback: run must be a seetrain.Run, got {type(run).__name__}; "
                            "pass the object seetrain.init() returned, or leave run out")
        if not isinstance(per_trial_runs, bool):
            raise TypeError(f"SeeTrainCallback: per_trial_runs must be True or False, got {per_trial_runs!r}")
        self.project = project
        self.experiment_name = experiment_name
        self.description = description
        self.per_trial_runs = per_trial_runs
        self.tags = list(tags or ())
        self.group = group
        self.dir = dir
        self.mode = mode
        self._config = config
        self._lock = threading.Lock()
        self._own_run = False
        self._counts = {"complete": 0, "pruned": 0, "failed": 0}
        self._study_described = False
        self.run: seetrain.Run | None = run if run is not None else seetrain.active_run()
        if self.run is not None:
            self._adopt(self.run)

    # -- the Optuna callback -------------------------------------------------------------
    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Record ``trial``, which has just ended in ``study``. Never raises: a failure
        inside SeeTrain is counted in ``seetrain.errors`` and the study goes on."""
        try:
            with self._lock:
                run = self._study_run(study)
                if run is not None and not self._study_described:
                    run.config.update({_KEY: _study_config(study)})
                    self._study_described = True
                self._count(trial)
                counts = dict(self._counts)
            if run is not None and not run.finished:
                self._log_study_view(run, study, trial, counts)
        except Exception as exc:
            record_failure("optuna", "log_trial", exc)
        if self.per_trial_runs:
            try:
                self._log_trial_run(study, trial)
            except Exception as exc:
                record_failure("optuna", "trial_run", exc)

    # -- lifecycle -----------------------------------------------------------------------
    def finish(self, status: str | None = None) -> None:
        """End the study run if this callback started it (a run it was given, or found
        active, is left open for its owner)."""
        if self._own_run and self.run is not None:
            self.run.finish(status)

    def __enter__(self) -> SeeTrainCallback:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish("finished")
        elif self._own_run and self.run is not None:
            self.run.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "crashed", error=exc)

    # -- internals -----------------------------------------------------------------------
    def _adopt(self, run: seetrain.Run) -> None:
        run.add_framework(_KEY)
        if self._config is not None:
            run.config.update(self._config)

    def _study_run(self, study: optuna.Study) -> seetrain.Run | None:
        if self.run is None and not self.per_trial_runs:
            self.run = seetrain.init(
                project=self.project, experiment_name=self.experiment_name or study.study_name,
                description=self.description, config=self._config, dir=self.dir, mode=self.mode,
                tags=self.tags, group=self.group,
                # given to init, not added afterwards, so the store's run row has it from the start
                framework=_KEY,
            )
            self._own_run = True
        return self.run

    def _count(self, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            self._counts["complete"] += 1
        elif trial.state == TrialState.PRUNED:
            self._counts["pruned"] += 1
        elif trial.state == TrialState.FAIL:
            self._counts["failed"] += 1

    def _log_study_view(self, run: seetrain.Run, study: optuna.Study, trial: FrozenTrial,
                        counts: dict[str, int]) -> None:
        data: dict[str, Any] = _value_items(study, trial)
        data["state"] = trial.state.name
        data.update(_param_items(trial.params))
        if trial.duration is not None:
            data["duration"] = trial.duration.total_seconds()
        if trial.intermediate_values:
            last = max(trial.intermediate_values)
            data["intermediate/last_step"] = last
            data["intermediate/last_value"] = trial.intermediate_values[last]
        for name, value in trial.user_attrs.items():
            if _is_number(value):
                data[f"user_attrs/{name}"] = value
        data.update({f"trials/{k}": v for k, v in counts.items()})
        best = _best(study)
        if "best_value" in best:
            data["best_value"] = best["best_value"]
        elif "best_trials" in best:
            data["best_trials"] = best["best_trials"]
        run.log(data, step=trial.number)
        summary = {k: v for k, v in best.items() if k != "best_trials"}
        if summary:
            run.summary.update(summary)

    def _log_trial_run(self, study: optuna.Study, trial: FrozenTrial) -> None:
        parent = self.run
        trial_run = seetrain.init(
            project=self.project or (parent.project if parent is not None else None),
            experiment_name=f"{study.study_name}-trial-{trial.number}",
            description=self.description,
            config={**trial.params, _KEY: {**_study_config(study), "trial_number": trial.number}},
            dir=self.dir or (parent.dir if parent is not None else None),
            mode=self.mode,
            tags=[*self.tags, trial.state.name.lower()],
            group=self.group or (parent.group if parent is not None else None) or study.study_name,
            framework=_KEY,
        )
        status = _TRIAL_STATUS.get(trial.state, "interrupted")
        error = None
        try:
            for step in sorted(trial.intermediate_values):
                trial_run.log({"intermediate_value": trial.intermediate_values[step]}, step=step)
            values = _value_items(study, trial)
            if values:
                trial_run.log(values, step=max(trial.intermediate_values, default=0))
            summary: dict[str, Any] = {"state": trial.state.name, **values}
            if trial.duration is not None:
                summary["duration"] = trial.duration.total_seconds()
            trial_run.summary.update(summary)
            if trial.state == TrialState.FAIL:
                error = f"Optuna trial {trial.number} of study {study.study_name!r} failed"
        finally:
            trial_run.finish(status, error=error)


def _study_config(study: optuna.Study) -> dict[str, Any]:
    return {
        "study_name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "sampler": type(study.sampler).__name__,
        "pruner": type(study.pruner).__name__,
        "metric_names": study.metric_names,
    }


def _value_items(study: optuna.Study, trial: FrozenTrial) -> dict[str, float]:
    values = trial.values
    if values is None:
        return {}
    if len(values) == 1:
        return {"value": values[0]}
    names = study.metric_names or [str(i) for i in range(len(values))]
    return {f"values/{name}": v for name, v in zip(names, values)}


def _param_items(params: dict[str, Any]) -> dict[str, Any]:
    # categorical choices may be str / None: those are logged as text, so the value is
    # still visible per trial, while numbers stay chartable scalars
    return {f"params/{name}": value if _is_number(value) else str(value) for name, value in params.items()}


def _best(study: optuna.Study) -> dict[str, Any]:
    if len(study.directions) > 1:
        return {"best_trials": len(study.best_trials)}
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return {}
    return {"best_value": best.value, "best_params": best.params, "best_trial": best.number}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real)


def create(run: seetrain.Run, **options: Any) -> SeeTrainCallback:
    """The adapter factory: a :class:`SeeTrainCallback` recording into ``run``."""
    return SeeTrainCallback(run=run, **options)
