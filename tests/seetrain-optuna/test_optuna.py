"""seetrain-optuna against real Optuna studies, read back through ``seetrain.Api``."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

import seetrain
from seetrain.errors import get_integration_error_stats
from seetrain_optuna import SeeTrainCallback

optuna.logging.set_verbosity(optuna.logging.ERROR)


def failures() -> dict[str, int]:
    """Failures counted per integration/operation (the core also counts calls there)."""
    return {f"{name}/{op}": entry["failures"] for name, ops in get_integration_error_stats().items()
            for op, entry in ops.items() if entry["failures"]}

FAIL_EVERY = 7  # trials 0, 7, 14 raise; the study catches it


class ObjectiveError(RuntimeError):
    pass


def quadratic(trial: optuna.Trial) -> float:
    """(x - 2)^2 + small penalty for the choice, reported over 5 steps so the pruner acts."""
    x = trial.suggest_float("x", -10.0, 10.0)
    shape = trial.suggest_categorical("shape", ["flat", "steep"])
    n = trial.suggest_int("n", 1, 4)
    value = (x - 2.0) ** 2 + (0.5 if shape == "steep" else 0.0) + 0.1 * n
    for step in range(5):
        trial.report(value + (4 - step), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    if trial.number % FAIL_EVERY == 0:
        raise ObjectiveError(f"trial {trial.number} fails on purpose")
    trial.set_user_attr("n_doubled", 2 * n)
    return value


def new_study(name: str, **kwargs) -> optuna.Study:
    return optuna.create_study(
        study_name=name,
        sampler=optuna.samplers.TPESampler(seed=7),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        **kwargs,
    )


def only_run(project: str) -> seetrain.api.ApiRun:
    runs = seetrain.Api().runs(project=project)
    assert len(runs) == 1, runs
    return runs[0]


def test_study_run_records_every_trial_as_optuna_saw_it():
    study = new_study("quadratic")
    with SeeTrainCallback(project="optuna-tests", config={"budget": 20}) as callback:
        study.optimize(quadratic, n_trials=20, callbacks=[callback], catch=(ObjectiveError,))
    trials = study.trials
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.PRUNED) >= 1
    assert states.count(optuna.trial.TrialState.FAIL) == 3
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 5

    run = only_run("optuna-tests")
    assert run.name == "quadratic"
    assert run.status == "finished"
    assert run.frameworks == ["optuna"]
    assert run.config["budget"] == 20
    assert run.config["optuna"] == {"study_name": "quadratic", "directions": ["minimize"], "sampler": "TPESampler",
                                    "pruner": "MedianPruner", "metric_names": None}

    # every trial Optuna gave a value (complete and pruned) at step = trial number
    assert run.scalars("value") == [(t.number, t.value) for t in trials if t.value is not None]
    assert [(m.step, m.text) for m in run.media("state")] == [(t.number, t.state.name) for t in trials]
    assert run.scalars("params/x") == [(t.number, t.params["x"]) for t in trials]
    assert run.scalars("params/n") == [(t.number, float(t.params["n"])) for t in trials]
    assert [(m.step, m.text) for m in run.media("params/shape")] == [(t.number, t.params["shape"]) for t in trials]
    assert run.scalars("intermediate/last_value") == [
        (t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials]
    assert run.scalars("user_attrs/n_doubled") == [
        (t.number, float(t.user_attrs["n_doubled"])) for t in trials if "n_doubled" in t.user_attrs]
    assert [v for _, v in run.scalars("trials/failed")][-1] == 3

    # best value so far, complete trials only (trial 0 fails, so the first point comes later)
    expected_best, best = [], None
    for t in trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            best = t.value if best is None else min(best, t.value)
        if best is not None:
            expected_best.append((t.number, best))
    assert run.scalars("best_value") == expected_best
    assert run.summary["best_value"] == study.best_value
    assert run.summary["best_params"] == study.best_params
    assert run.summary["best_trial"] == study.best_trial.number
    assert failures() == {}


def test_per_trial_runs_have_params_as_config_and_their_status():
    study = new_study("per-trial")
    callback = SeeTrainCallback(project="optuna-trials", per_trial_runs=True)
    study.optimize(quadratic, n_trials=8, callbacks=[callback], catch=(ObjectiveError,))

    runs = seetrain.Api().runs(project="optuna-trials")
    assert [r.name for r in runs] == [f"per-trial-trial-{t.number}" for t in study.trials]
    for run, trial in zip(runs, study.trials):
        assert run.group == "per-trial"
        assert run.frameworks == ["optuna"]
        assert {k: run.config[k] for k in trial.params} == trial.params
        assert run.config["optuna"]["trial_number"] == trial.number
        assert trial.state.name.lower() in run.tags
        assert run.status == ("crashed" if trial.state == optuna.trial.TrialState.FAIL else "finished")
        assert run.scalars("intermediate_value") == sorted(trial.intermediate_values.items())
        if trial.value is not None:
            assert run.scalars("value") == [(max(trial.intermediate_values), trial.value)]
        assert run.summary["state"] == trial.state.name
    assert callback.run is None  # no study run was started in per-trial mode


def test_init_optuna_tracker_records_into_the_integration_run():
    from seetrain.integration import init_optuna

    integration = init_optuna(project="optuna-int", experiment_name="study-a", description="quadratic sweep")
    callback = integration.get_tracker()
    assert isinstance(callback, SeeTrainCallback)
    assert callback.run is integration.run
    study = new_study("study-a")
    study.optimize(quadratic, n_trials=5, callbacks=[callback], catch=(ObjectiveError,))
    integration.finish()

    run = only_run("optuna-int")
    assert run.name == "study-a" and run.status == "finished" and run.frameworks == ["optuna"]
    assert run.scalars("value") == [(t.number, t.value) for t in study.trials if t.value is not None]


def test_callback_uses_the_active_run_and_leaves_it_open():
    run = seetrain.init(project="optuna-active", experiment_name="mine")
    callback = SeeTrainCallback()
    study = new_study("active")
    study.optimize(quadratic, n_trials=3, callbacks=[callback], catch=(ObjectiveError,))
    callback.finish()  # not its run: nothing happens
    assert not run.finished
    run.finish()
    stored = only_run("optuna-active")
    assert stored.name == "mine" and stored.frameworks == ["optuna"]
    assert [s for s, _ in stored.scalars("params/x")] == [0, 1, 2]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_multi_objective_values_and_pareto_front_size():
    study = optuna.create_study(study_name="two", directions=["minimize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.set_metric_names(["loss", "accuracy"])
    with SeeTrainCallback(project="optuna-multi") as callback:
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=6,
                       callbacks=[callback])
    run = only_run("optuna-multi")
    assert run.scalars("values/loss") == [(t.number, t.values[0]) for t in study.trials]
    assert run.scalars("values/accuracy") == [(t.number, t.values[1]) for t in study.trials]
    assert run.scalars("best_trials")[-1] == (5, float(len(study.best_trials)))


def test_a_failure_inside_seetrain_is_counted_and_the_study_goes_on(monkeypatch):
    run = seetrain.init(project="optuna-broken")

    def broken_log(data, step=None):
        raise OSError("disk gone")

    # the one fault that cannot be produced through Optuna itself: the run failing under us
    monkeypatch.setattr(run, "log", broken_log)
    study = new_study("broken")
    study.optimize(quadratic, n_trials=4, callbacks=[SeeTrainCallback(run=run)], catch=(ObjectiveError,))
    assert len(study.trials) == 4
    stats = get_integration_error_stats("optuna")["optuna"]
    assert stats["log_trial"]["failures"] == 4
    assert "disk gone" in stats["log_trial"]["last_error"]


def test_wrong_arguments_are_refused_with_the_argument_named():
    with pytest.raises(TypeError, match="run must be a seetrain.Run"):
        SeeTrainCallback(run="my-run")
    with pytest.raises(TypeError, match="per_trial_runs"):
        SeeTrainCallback(per_trial_runs="yes")


def test_discovery_and_import_do_not_import_optuna():
    from seetrain.adapters import find_adapter, load_adapter

    info = find_adapter("optuna")
    assert (info.mode, info.requirements, info.distribution) == ("tracker", ("optuna>=3.0",), "seetrain-optuna")
    assert load_adapter("optuna").mode == "tracker"
    code = "import sys, seetrain_optuna; assert 'optuna' not in sys.modules, 'optuna imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_usage_example_of_the_docs_runs_as_written():
    import pathlib
    import re

    doc = pathlib.Path(__file__).parents[2] / "docs" / "adapters" / "optuna.md"
    first_block = re.search(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S).group(1)
    exec(compile(first_block, str(doc), "exec"), {"__name__": "docs_example"})
    run = only_run("tuning")
    assert run.name == "quadratic" and run.status == "finished"
    assert len(run.media("state")) == 20
