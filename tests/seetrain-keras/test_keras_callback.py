"""SeeTrainCallback against real Keras 3 on the torch backend (KERAS_BACKEND=torch, set by the
root conftest before any import), with a tiny model on synthetic data.

Every value is read back through ``seetrain.Api`` and compared with what Keras itself
reported (``History.history``, the dict ``evaluate`` returns, ``predict``'s output).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import seetrain

keras = pytest.importorskip("keras")
from seetrain_keras import SeeTrainCallback  # noqa: E402

N, BATCH = 64, 16  # 4 batches per epoch


def make_data(n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) * 2 + 1).astype("float32")
    return x, y


def make_model(learning_rate=0.01):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse", metrics=["mae"])
    return model


def only_run():
    runs = seetrain.Api().runs()
    assert len(runs) == 1, runs
    return runs[0]


def eventually(read, timeout=10.0):
    """``read()`` once it stops raising: values of a run still going reach the store within
    the dispatcher's flush interval, not at once."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def values(points):
    return [v for _, v in points]


def test_import_is_lazy():
    code = "import sys, seetrain_keras; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
    assert issubclass(SeeTrainCallback, keras.callbacks.Callback)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="log_every_n_batches must be an int >= 1"):
        SeeTrainCallback(log_every_n_batches=0)
    with pytest.raises(TypeError, match="unexpected keyword argument.*epochs"):
        SeeTrainCallback(epochs=3)


def test_fit_evaluate_predict_in_one_run():
    x, y = make_data()
    xv, yv = make_data(32, seed=1)
    model = make_model()
    callback = SeeTrainCallback(project="keras", experiment_name="fit", config={"data": "synthetic"},
                                log_every_n_batches=2)
    history = model.fit(x, y, validation_data=(xv, yv), epochs=3, batch_size=BATCH, verbose=0,
                        callbacks=[callback])
    assert callback.run.finished  # its own run ended at on_train_end
    scores = model.evaluate(xv, yv, batch_size=BATCH, verbose=0, return_dict=True, callbacks=[callback])
    predictions = model.predict(xv, batch_size=BATCH, verbose=0, callbacks=[callback])

    run = only_run()  # evaluate and predict went into the fit's run
    assert (run.project, run.name, run.status, run.frameworks) == ("keras", "fit", "finished", ["keras"])
    # epoch values: training and validation kept apart, equal to History.history, at the
    # number of batches trained so far
    for keras_key, name in (("loss", "train/loss"), ("mae", "train/mae"),
                            ("val_loss", "val/loss"), ("val_mae", "val/mae")):
        assert values(run.scalars(name)) == history.history[keras_key], name
        assert [s for s, _ in run.scalars(name)] == [4, 8, 12]
    assert run.scalars("epoch") == [(4, 0.0), (8, 1.0), (12, 2.0)]
    assert values(run.scalars("train/lr")) == pytest.approx([0.01] * 3)
    # batch values every 2 batches
    assert [s for s, _ in run.scalars("batch/loss")] == [2, 4, 6, 8, 10, 12]
    assert {"batch/loss", "batch/mae"} <= set(run.keys())
    # evaluate and predict under their own prefixes
    assert run.scalars("eval/loss") == [(12, scores["loss"])]
    assert run.scalars("eval/mae") == [(12, scores["mae"])]
    assert run.scalars("predict/batches") == [(12, 2.0)]
    assert run.scalars("predict/samples") == [(12, float(len(predictions)))]
    # config: the user's, the fit parameters, the optimizer's config, the parameter count
    assert run.config["data"] == "synthetic"
    described = run.config["keras"]
    assert described["fit"]["epochs"] == 3 and described["fit"]["steps_per_epoch"] == 4
    assert described["optimizer"]["class"] == "SGD"
    assert described["optimizer"]["learning_rate"] == pytest.approx(0.01)
    assert described["model"]["params"] == model.count_params() == 4 * 8 + 8 + 8 + 1
    assert described["backend"] == "torch"
    assert "tensorflow" not in sys.modules


def test_learning_rate_schedule_is_followed():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model = make_model(learning_rate=schedule)
    x, y = make_data()
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[SeeTrainCallback(project="keras")])
    run = only_run()
    expected = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (4, 8)]
    assert values(run.scalars("train/lr")) == pytest.approx(expected)  # 0.05, 0.025


def test_joins_the_active_run_and_leaves_it_open():
    run = seetrain.init(project="keras", experiment_name="mine", framework="keras")
    model = make_model()
    x, y = make_data()
    callback = SeeTrainCallback(config={"extra": 1})
    history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[callback])
    assert callback.run is run and not run.finished
    run.finish()
    stored = only_run()
    assert stored.id == run.id and stored.frameworks == ["keras"] and stored.config["extra"] == 1
    assert values(stored.scalars("train/loss")) == history.history["loss"]


def test_init_keras_gives_this_callback():
    from seetrain.integration import init_keras

    integration = init_keras(project="keras", experiment_name="via-integration", log_every_n_batches=4)
    callback = integration.get_callback()
    assert isinstance(callback, SeeTrainCallback) and callback.log_every_n_batches == 4
    model = make_model()
    x, y = make_data()
    history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[callback])
    assert callback.run is integration.run and not integration.run.finished  # the integration owns it
    integration.finish()
    run = only_run()
    assert run.status == "finished" and run.frameworks == ["keras"]
    assert values(run.scalars("train/loss")) == history.history["loss"]
    assert [s for s, _ in run.scalars("batch/loss")] == [4, 8]


class FailingData(keras.utils.PyDataset):
    """Synthetic batches; the ``fail_at``-th batch requested raises (a broken data pipeline)."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__()
        self.x, self.y = make_data()
        self.fail_at = fail_at
        self.served = 0

    def __len__(self) -> int:
        return N // BATCH

    def __getitem__(self, index: int):
        self.served += 1
        if self.fail_at is not None and self.served == self.fail_at:
            raise RuntimeError(f"corrupt batch {index}")
        sl = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[sl], self.y[sl]


def test_fit_raising_mid_epoch_keeps_what_was_logged():
    model = make_model()
    callback = SeeTrainCallback(project="keras", experiment_name="broken")
    with pytest.raises(RuntimeError, match="corrupt batch"):
        model.fit(FailingData(fail_at=7), epochs=3, verbose=0, callbacks=[callback])  # 2nd epoch
    first = only_run()
    assert first.status == "running"  # Keras calls no hook on an exception
    assert eventually(lambda: first.scalars("epoch")) == [(4, 0.0)]  # the completed epoch is stored
    # the next fit with this callback knows the last one never ended
    model.fit(FailingData(fail_at=None), epochs=1, verbose=0, callbacks=[callback])
    runs = seetrain.Api().runs()
    assert [(r.name, r.status) for r in runs] == [("broken", "crashed"), ("broken", "finished")]
    assert "model.fit raised" in runs[0].error


@pytest.mark.slow
def test_fit_raising_in_a_script_marks_the_run_crashed(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, keras
        from seetrain_keras import SeeTrainCallback

        class Data(keras.utils.PyDataset):
            served = 0
            def __len__(self):
                return 4
            def __getitem__(self, i):
                Data.served += 1
                if Data.served == 6:
                    raise RuntimeError("corrupt batch")
                return np.ones((8, 4), "float32"), np.ones((8, 1), "float32")

        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(Data(), epochs=3, verbose=0, callbacks=[SeeTrainCallback(project="keras", experiment_name="script")])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())
    assert proc.returncode != 0 and "corrupt batch" in proc.stderr
    run = only_run()
    assert run.status == "crashed" and "corrupt batch" in run.error
    assert run.scalars("epoch") == [(4, 0.0)]


def test_a_failure_inside_seetrain_does_not_break_training(monkeypatch):
    from seetrain.errors import get_integration_error_stats

    def broken_log(self, data, step=None):
        # stands in for any internal failure while handling Keras' epoch hook
        raise RuntimeError("store gone")

    monkeypatch.setattr(seetrain.Run, "log", broken_log)
    model = make_model()
    x, y = make_data()
    history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[SeeTrainCallback(project="keras")])
    assert len(history.history["loss"]) == 2
    stats = get_integration_error_stats("keras")["keras"]["on_epoch_end"]
    assert stats["failures"] == 2 and "store gone" in stats["last_error"]
    assert only_run().status == "finished"


def test_standalone_evaluate_and_predict_get_a_run_each():
    model = make_model()
    xv, yv = make_data(32, seed=1)
    scores = model.evaluate(xv, yv, batch_size=BATCH, verbose=0, return_dict=True,
                            callbacks=[SeeTrainCallback(project="keras", experiment_name="eval-only")])
    model.predict(xv, batch_size=8, verbose=0, callbacks=[SeeTrainCallback(project="keras", experiment_name="pred")])
    runs = {r.name: r for r in seetrain.Api().runs()}
    assert runs["eval-only"].status == "finished" and runs["eval-only"].scalars("eval/loss") == [(0, scores["loss"])]
    assert runs["pred"].status == "finished" and runs["pred"].scalars("predict/batches") == [(0, 4.0)]


def test_metrics_with_several_values_are_split_per_item():
    from seetrain_keras._callback import _scalars

    logs = {"loss": 0.5, "f1": np.array([0.25, 0.75], dtype="float32"), "acc": keras.ops.convert_to_tensor(0.5)}
    assert _scalars(logs, "on_epoch_end") == {"loss": 0.5, "f1/0": 0.25, "f1/1": 0.75, "acc": 0.5}
