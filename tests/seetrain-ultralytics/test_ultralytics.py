"""seetrain-ultralytics against real YOLO trainings, read back through ``seetrain.Api``."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

import seetrain
from seetrain.errors import get_integration_error_stats

pytest.importorskip("ultralytics")

from seetrain_ultralytics import SeeTrainCallbacks, add_seetrain_callback  # noqa: E402


def failures() -> dict[str, int]:
    """Failures counted per integration/operation (the core also counts calls there)."""
    return {f"{name}/{op}": entry["failures"] for name, ops in get_integration_error_stats().items()
            for op, entry in ops.items() if entry["failures"]}

EPOCHS = 2


def train(model, data, save_root, name, epochs=EPOCHS, plots=True):
    return model.train(data=data, epochs=epochs, imgsz=64, batch=4, workers=0, amp=False, device="cpu",
                       project=str(save_root), name=name, exist_ok=True, verbose=False, seed=0, plots=plots)


def results_csv(save_dir) -> list[dict[str, float]]:
    """What Ultralytics itself recorded for each epoch."""
    with open(os.path.join(save_dir, "results.csv"), newline="") as fh:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def assert_epochs_match(run, rows):
    """Every column of results.csv, at step = its epoch (1-based); csv values have 6 digits."""
    for key in rows[0]:
        if key in ("epoch", "time"):
            continue
        stored = run.scalars(key)
        assert [s for s, _ in stored] == [int(r["epoch"]) for r in rows], key
        for (_, value), row in zip(stored, rows):
            assert math.isclose(value, row[key], rel_tol=1e-5, abs_tol=1e-9), (key, value, row[key])


def only_run(project):
    runs = seetrain.Api().runs(project=project)
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_add_seetrain_callback_records_every_epoch_args_and_plots(tiny_dataset, tmp_path):
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")  # built from its yaml: no weights
    callbacks = add_seetrain_callback(model, project="yolo-tests", experiment_name="tiny", config={"note": "ci"})
    assert isinstance(callbacks, SeeTrainCallbacks)
    train(model, tiny_dataset, tmp_path / "runs", "detect")
    trainer = model.trainer

    run = only_run("yolo-tests")
    assert (run.name, run.status, run.frameworks) == ("tiny", "finished", ["ultralytics"])

    # losses, learning rates and validation metrics, each at the epoch it belongs to
    rows = results_csv(trainer.save_dir)
    assert len(rows) == EPOCHS
    assert {"train/box_loss", "lr/pg0", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss"} <= set(rows[0])
    assert_epochs_match(run, rows)
    # the validation of best.pt after the last epoch is no extra epoch: it is the summary
    assert [s for s, _ in run.scalars("metrics/mAP50(B)")] == list(range(1, EPOCHS + 1))
    for key, value in trainer.metrics.items():
        assert math.isclose(run.summary[f"best/{key}"], float(value), rel_tol=1e-9, abs_tol=1e-12), key
    assert run.summary["model/parameters"] > 0

    # the trainer arguments as config, as Ultralytics resolved them (optimizer "auto" -> AdamW)
    args = vars(trainer.args)
    assert args["optimizer"] != "auto"
    for key in ("epochs", "imgsz", "batch", "optimizer", "lr0", "seed", "amp", "workers"):
        assert run.config[key] == args[key], key
    assert run.config["note"] == "ci"
    assert run.config["save_dir"] == str(trainer.save_dir)

    # the plots Ultralytics wrote, as images at the last epoch
    keys = set(run.keys()) | set(run.key_kinds())
    for plot in ("results", "confusion_matrix", "labels", "train_batch0", "val_batch0_pred", "BoxPR_curve"):
        (item,) = run.media(f"plots/{plot}")
        assert item.kind == "image" and item.step == EPOCHS and os.path.exists(item.path), plot
    assert "plots/results" in keys
    checkpoints = {f["meta"]["name"]: f["path"] for f in run.files() if f["kind"] == "checkpoint"}
    assert checkpoints == {"best": str(trainer.best), "last": str(trainer.last)}
    assert failures() == {}


@pytest.mark.slow
def test_init_ultralytics_callbacks_mapping_and_a_crashed_training(tiny_dataset, tmp_path):
    from ultralytics import YOLO

    from seetrain.integration import init_ultralytics

    integration = init_ultralytics(project="yolo-int", experiment_name="one-epoch")
    callbacks = integration.get_callback()
    assert isinstance(callbacks, Mapping)
    assert set(callbacks) == {"on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_epoch_end", "on_fit_epoch_end",
                              "on_train_end", "teardown"}
    model = YOLO("yolov8n.yaml")
    for event, fn in callbacks.items():
        model.add_callback(event, fn)
    train(model, tiny_dataset, tmp_path / "runs", "int", epochs=1, plots=False)
    assert not integration.run.finished  # the integration's run is the integration's to end
    integration.finish()
    run = only_run("yolo-int")
    assert run.status == "finished" and run.frameworks == ["ultralytics"]
    assert_epochs_match(run, results_csv(model.trainer.save_dir))

    # a training that raises: the run the callbacks started ends as crashed (teardown)
    class Stop(RuntimeError):
        pass

    def fail(trainer):
        raise Stop("user callback failed")

    model = YOLO("yolov8n.yaml")
    add_seetrain_callback(model, project="yolo-crash")
    model.add_callback("on_train_start", fail)
    with pytest.raises(Stop):
        train(model, tiny_dataset, tmp_path / "runs", "crash", epochs=1, plots=False)
    run = only_run("yolo-crash")
    assert run.name == "crash" and run.status == "crashed" and "on_train_end" in run.error
    assert run.config["epochs"] == 1


class _BrokenTrainer:
    """Stands in for a trainer whose attributes do not look like the ones SeeTrain reads.

    A real trainer cannot be made to break SeeTrain's callbacks, and training a model only
    to corrupt its trainer would take seconds for what this shows in microseconds."""

    epoch = 0
    args = None
    save_dir = "nowhere"


def test_a_failure_inside_a_callback_is_counted_and_never_raised():
    run = seetrain.init(project="yolo-broken")
    callbacks = SeeTrainCallbacks()
    assert callbacks.run is run  # the active run
    for event in callbacks:
        callbacks[event](_BrokenTrainer())  # must not raise
    stats = get_integration_error_stats("ultralytics")["ultralytics"]
    assert stats["on_pretrain_routine_start"]["failures"] == 1
    assert not run.finished  # not its run


def test_only_the_main_process_logs(monkeypatch):
    import ultralytics.utils

    monkeypatch.setattr(ultralytics.utils, "RANK", 1)
    callbacks = SeeTrainCallbacks(project="yolo-rank")
    callbacks["on_pretrain_routine_start"](_BrokenTrainer())
    assert callbacks.run is None and failures() == {}


def test_wrong_arguments_are_refused_with_the_argument_named():
    with pytest.raises(TypeError, match="model must be an Ultralytics YOLO model"):
        add_seetrain_callback("yolov8n.pt")
    with pytest.raises(TypeError, match="run must be a seetrain.Run"):
        SeeTrainCallbacks(run="my-run")


def test_discovery_and_import_do_not_import_ultralytics():
    from seetrain.adapters import find_adapter, load_adapter

    info = find_adapter("ultralytics")
    assert (info.mode, info.requirements) == ("callback", ("ultralytics>=8.1",))
    assert load_adapter("ultralytics").mode == "callback"
    code = ("import sys, seetrain_ultralytics; "
            "assert not {'ultralytics', 'torch'} & set(sys.modules), 'framework imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
