"""seetrain-ray against real Ray Tune experiments, read back through ``seetrain.Api``."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import pytest

import seetrain
from seetrain.errors import get_integration_error_stats

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from seetrain_ray import SeeTrainLoggerCallback  # noqa: E402


def failures() -> dict[str, int]:
    """Failures counted per integration/operation (the core also counts calls there)."""
    return {f"{name}/{op}": entry["failures"] for name, ops in get_integration_error_stats().items()
            for op, entry in ops.items() if entry["failures"]}

ITERATIONS = 3
FAILING_LR = 0.3


class TrialFailure(ValueError):
    pass


def trainable(config):
    """Reports ITERATIONS results; the trial with lr=FAILING_LR raises at its 2nd one."""
    for i in range(ITERATIONS):
        if config["lr"] == FAILING_LR and i == 1:
            raise TrialFailure(f"lr {config['lr']} diverged")
        tune.report({"loss": config["lr"] * (ITERATIONS - i), "eval": {"acc": 0.25 * (i + 1)}})


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module, shut down at its end."""
    from ray import cloudpickle

    # the workers cannot import this test module (pytest put its folder on sys.path only
    # here), so its trainable travels by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def fit(callback, tmp_path, name, lrs):
    tuner = tune.Tuner(
        trainable,
        param_space={"lr": tune.grid_search(lrs), "layers": 2},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "ray-results"), callbacks=[callback],
                                  verbose=0),
    )
    return tuner.fit()


@pytest.mark.slow
def test_one_run_per_trial_with_every_result_and_the_right_status(ray_cluster, tmp_path):
    results = fit(SeeTrainLoggerCallback(project="ray-tests", tags=["sweep"]), tmp_path, "lr-sweep",
                  [0.1, 0.2, FAILING_LR])
    assert len(results) == 3 and len(results.errors) == 1

    runs = {r.config["ray"]["trial_id"]: r for r in seetrain.Api().runs(project="ray-tests")}
    assert len(runs) == 3
    for result in results:
        run = runs[result.metrics["trial_id"]]
        lr = result.config["lr"]
        assert run.name.endswith(result.metrics["trial_id"]) and run.name == run.config["ray"]["trial_name"]
        assert run.group == "lr-sweep" and run.tags == ["sweep"] and run.frameworks == ["ray"]
        assert {k: run.config[k] for k in ("lr", "layers")} == {"lr": lr, "layers": 2}
        assert run.config["ray"]["experiment"] == "lr-sweep"

        # every result Tune recorded (its progress.csv), at step = training_iteration
        reported = result.metrics_dataframe
        steps = [int(s) for s in reported["training_iteration"]]
        assert run.scalars("loss") == list(zip(steps, reported["loss"]))
        assert run.scalars("eval/acc") == list(zip(steps, reported["eval/acc"]))
        assert run.scalars("time_this_iter_s") == list(zip(steps, reported["time_this_iter_s"]))
        assert not {"pid", "timestamp", "done", "training_iteration", "config/lr"} & set(run.keys())

        if lr == FAILING_LR:
            assert steps == [1]
            assert run.status == "crashed"
            assert "lr 0.3 diverged" in run.error
            assert [f["kind"] for f in run.files()] == ["error"]
        else:
            assert steps == list(range(1, ITERATIONS + 1))
            assert run.status == "finished" and run.error is None
            assert math.isclose(run.summary["loss"], lr)
    assert failures() == {}


@pytest.mark.slow
def test_init_ray_tune_tracker_groups_trials_under_the_integration_run(ray_cluster, tmp_path):
    from seetrain.integration import init_ray_tune

    integration = init_ray_tune(project="ray-int", experiment_name="sweep-b")
    callback = integration.get_tracker()
    assert isinstance(callback, SeeTrainLoggerCallback) and callback.run is integration.run
    results = fit(callback, tmp_path, "tune-name", [0.1, FAILING_LR])
    integration.finish()
    assert len(results.errors) == 1

    parent, *trials = seetrain.Api().runs(project="ray-int")
    assert parent.name == "sweep-b" and parent.status == "finished" and parent.frameworks == ["ray"]
    assert parent.config["ray"]["total_num_samples"] == 2
    assert {t.group for t in trials} == {"sweep-b"}
    assert sorted(t.status for t in trials) == ["crashed", "finished"]
    assert parent.summary["trials"] == {t.name: {"run_id": t.id, "status": t.status} for t in trials}
    assert parent.scalars("trials/finished")[-1] == (2, 1.0)
    assert parent.scalars("trials/errored")[-1] == (2, 1.0)


def test_the_callback_survives_the_pickling_tuner_does_for_restore():
    run = seetrain.init(project="ray-pickle")
    callback = SeeTrainLoggerCallback(run=run, group="g", config={"seed": 3})
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.run is None and copy.group == "g" and copy.config == {"seed": 3}
    assert run.frameworks == ["ray"]


def test_a_failure_inside_seetrain_is_counted_and_tune_goes_on(monkeypatch):
    from ray.tune.experiment import Trial

    # a real Trial object, not scheduled: the callback is driven the way Tune drives it
    trial = Trial("trainable", config={"lr": 0.1}, trial_id="abcde_00000", stub=True)
    callback = SeeTrainLoggerCallback(project="ray-broken")
    callback.log_trial_start(trial)
    trial_run = callback._trial_runs[trial.trial_id]

    def broken_log(data, step=None):
        raise OSError("disk gone")

    # the one fault that cannot be produced through Tune itself: the run failing under us
    monkeypatch.setattr(trial_run, "log", broken_log)
    callback.log_trial_result(1, trial, {"loss": 1.0, "training_iteration": 1})
    callback.log_trial_end(trial, failed=False)
    stats = get_integration_error_stats("ray")["ray"]
    assert stats["log_trial_result"]["failures"] == 1 and "disk gone" in stats["log_trial_result"]["last_error"]
    (stored,) = seetrain.Api().runs(project="ray-broken")
    assert stored.status == "finished" and stored.config["lr"] == 0.1


def test_wrong_arguments_are_refused_with_the_argument_named():
    with pytest.raises(TypeError, match="run must be a seetrain.Run"):
        SeeTrainLoggerCallback(run="parent")
    with pytest.raises(TypeError, match="config must be a mapping"):
        SeeTrainLoggerCallback(config=[("lr", 1)])


def test_discovery_aliases_and_import_do_not_import_ray():
    from seetrain.adapters import find_adapter, load_adapter

    info = find_adapter("ray_tune")
    assert (info.name, info.mode, info.requirements) == ("ray", "tracker", ("ray>=2.9",))
    assert load_adapter("raytune") is load_adapter("ray")
    code = "import sys, seetrain_ray; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
