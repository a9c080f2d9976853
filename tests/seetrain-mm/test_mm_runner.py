"""A real MMEngine Runner, built from a config dict that names SeeTrainVisBackend, trains a
tiny BaseModel with a validation loop and a metric; what MMEngine logged is read back through
seetrain.Api and compared with MMEngine's own records: LocalVisBackend's scalars.json (the
same add_scalars calls, same steps) and the Runner's MessageHub (every iteration's values)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image as PILImage

import seetrain
from mm_components import local_scalars, preview_image, runner_config



def _expected_by_key(lines: list[dict]) -> dict[str, dict[int, float]]:
    """MMEngine's scalars.json as key -> {step: value}; a later line at the same step wins,
    as it does in the SeeTrain store."""
    out: dict[str, dict[int, float]] = {}
    for line in lines:
        step = line["step"]
        for key, value in line.items():
            if key != "step":
                out.setdefault(key, {})[step] = float(value)
    return out


@pytest.mark.parametrize("hierarchy", [False, True], ids=["flat-names", "log_with_hierarchy"])
def test_runner_scalars_land_at_mmengine_steps(tmp_path, hierarchy):
    work_dir = str(tmp_path / "work_dirs")
    cfg = Config(runner_config(work_dir, init_kwargs={"project": "mm-runner"},
                               log_processor={"window_size": 1, "log_with_hierarchy": hierarchy}))
    runner = Runner.from_cfg(cfg)
    runner.train()

    [run] = seetrain.Api().runs(project="mm-runner")
    assert run.status == "finished"  # LoggerHook.after_run closed the visualizer
    assert run.name == runner.experiment_name  # the run is named after the Runner's experiment
    assert run.frameworks == ["mmengine"]

    # every (key, step) MMEngine wrote to scalars.json is in the store, with its value
    expected = _expected_by_key(local_scalars(work_dir))
    for key, by_step in expected.items():
        assert dict(run.scalars(key)) == pytest.approx(by_step), key

    loss_key, lr_key = ("train/loss", "train/lr") if hierarchy else ("loss", "lr")
    acc_key = "val/tiny/accuracy" if hierarchy else "tiny/accuracy"  # "tiny": the metric's prefix
    # train values every LoggerHook interval (2) of the 8 iterations, at step iter + 1 ...
    assert [s for s, _ in run.scalars(loss_key)] == [2, 4, 6, 8]
    assert [s for s, _ in run.scalars(lr_key)] == [2, 4, 6, 8]
    # ... equal to what the MessageHub holds for that iteration (window_size=1)
    hub = runner.message_hub
    loss_history = hub.get_scalar("train/loss").data[0]
    lr_history = hub.get_scalar("train/lr").data[0]
    assert dict(run.scalars(loss_key)) == pytest.approx({s: loss_history[s - 1] for s in (2, 4, 6, 8)})
    assert dict(run.scalars(lr_key)) == pytest.approx({s: lr_history[s - 1] for s in (2, 4, 6, 8)})
    assert len({v for _, v in run.scalars(lr_key)}) > 1  # the warm-up is visible
    # the validation metric after each epoch, at step = epoch (LoggerHook's log_metric_by_epoch)
    accuracy_history = hub.get_scalar("val/tiny/accuracy").data[0]
    assert dict(run.scalars(acc_key)) == pytest.approx({1: accuracy_history[0], 2: accuracy_history[1]})


def test_runner_config_and_image(tmp_path):
    work_dir = str(tmp_path / "work_dirs")
    cfg = Config(runner_config(work_dir, init_kwargs={"project": "mm-image", "experiment_name": "tiny",
                                                      "tags": ["mm"]}))
    runner = Runner.from_cfg(cfg)
    runner.train()

    [run] = seetrain.Api().runs(project="mm-image")
    assert (run.name, run.tags) == ("tiny", ["mm"])
    # add_config: the Config, nested, tuples as lists, is the run config
    assert run.config["model"] == {"type": "SeeTrainTinyNet"}
    assert run.config["shapes"] == {"input": [4], "classes": [0, 1]}
    assert run.config["optim_wrapper"]["optimizer"]["lr"] == 0.1
    assert run.config["visualizer"]["vis_backends"][1]["type"] == "SeeTrainVisBackend"
    assert run.config["seetrain"]["frameworks"] == ["mmengine"]
    # ... and its text is kept
    [text] = run.media("config")
    assert text.kind == "text" and text.text == runner.cfg.pretty_text

    # the image the hook gave runner.visualizer.add_image after each validation epoch
    images = run.media("preview")
    assert [(m.step, m.kind) for m in images] == [(1, "image"), (2, "image")]
    for item in images:
        stored = np.asarray(PILImage.open(os.path.join(seetrain.Api().dir, item.path)
                                          if not os.path.isabs(item.path) else item.path).convert("RGB"))
        assert np.array_equal(stored, preview_image(item.step))  # RGB kept as RGB
    # LocalVisBackend got the same calls (same names and steps)
    vis_images = sorted(f for _r, _d, fs in os.walk(work_dir) for f in fs if f.endswith(".png"))
    assert vis_images == ["preview_1.png", "preview_2.png"]


def test_runner_joins_active_run(tmp_path):
    """A run the user started is the one the backend logs to; it stays theirs to finish."""
    work_dir = str(tmp_path / "work_dirs")
    run = seetrain.init(project="mm-joined", experiment_name="mine", config={"note": "user"})
    runner = Runner.from_cfg(Config(runner_config(work_dir, train_cfg={"by_epoch": True, "max_epochs": 1,
                                                                        "val_interval": 1})))
    runner.train()
    assert not run.finished
    run.log({"after": 1.0})
    run.finish()

    [stored] = seetrain.Api().runs(project="mm-joined")
    assert stored.name == "mine" and stored.config["note"] == "user"
    assert stored.frameworks == stored.config["seetrain"]["frameworks"] == ["mmengine"]
    assert [s for s, _ in stored.scalars("loss")] == [2, 4]
    assert {"loss", "lr", "tiny/accuracy", "after"} <= set(stored.keys())
