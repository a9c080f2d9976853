"""The Accelerate adapter against a real ``Accelerator`` training a tiny torch model on the CPU.

Every value logged through ``accelerator.log`` is kept by the test and compared with what
``seetrain.Api`` reads back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import seetrain

pytest.importorskip("accelerate")

pytestmark = pytest.mark.usefixtures("clean_accelerate_state")


def train(accelerator, steps: int = 6) -> list[dict]:
    """A real loop through accelerator.prepare; returns what it logged, step by step."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    data = torch.utils.data.TensorDataset(torch.randn(steps * 4, 8), torch.randint(0, 2, (steps * 4,)))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    logged = []
    for step, (x, y) in enumerate(loader):
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        values = {"train/loss": loss.item(), "train/accuracy": (logits.argmax(-1) == y).float().mean().item(),
                  "train/lr": optimizer.param_groups[0]["lr"]}
        accelerator.log(values, step=step)
        logged.append({"step": step, **values})
    return logged


def series(logged: list[dict]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for record in logged:
        for key, value in record.items():
            if key != "step":
                out.setdefault(key, []).append((record["step"], float(value)))
    return out


@pytest.mark.slow
def test_accelerator_with_a_tracker_instance():
    from accelerate import Accelerator

    from seetrain_hf import SeeTrainTracker

    # Accelerate hands init_trackers' project_name only to trackers it builds by name: an
    # instance gets its project from its own arguments
    tracker = SeeTrainTracker(project="acc-instance", experiment_name="instance", tags=["cpu"])
    accelerator = Accelerator(cpu=True, log_with=[tracker])
    accelerator.init_trackers("not-seen-by-instances", config={"lr": 1e-2, "batch_size": 4, "optimizer": "AdamW"})
    run = accelerator.get_tracker("seetrain", unwrap=True)
    assert isinstance(run, seetrain.Run) and run is tracker.tracker
    assert accelerator.get_tracker("seetrain") is tracker
    logged = train(accelerator)
    accelerator.end_training()
    assert run.finished

    api_run = seetrain.Api().run(run.id)
    assert (api_run.project, api_run.name, api_run.tags, api_run.status) == (
        "acc-instance", "instance", ["cpu"], "finished")
    assert api_run.frameworks == ["accelerate"]
    assert {k: api_run.config[k] for k in ("lr", "batch_size", "optimizer")} == {
        "lr": 1e-2, "batch_size": 4, "optimizer": "AdamW"}
    expected = series(logged)
    assert sorted(api_run.keys()) == sorted(expected)
    assert {key: api_run.scalars(key) for key in expected} == expected


@pytest.mark.slow
def test_log_with_seetrain_by_name():
    """Accelerate >= 1.15 has a public register_tracker_class: importing the adapter registers
    "seetrain", and init_kwargs["seetrain"] reach the tracker."""
    import accelerate.tracking
    from accelerate import Accelerator

    import seetrain_hf

    assert accelerate.tracking.LOGGER_TYPE_TO_CLASS["seetrain"] is seetrain_hf.SeeTrainTracker
    assert seetrain_hf.register_accelerate_tracker() is seetrain_hf.SeeTrainTracker  # idempotent
    accelerator = Accelerator(cpu=True, log_with="seetrain")
    accelerator.init_trackers("acc-by-name", config={"epochs": 1},
                              init_kwargs={"seetrain": {"experiment_name": "by-name", "group": "sweep-1"}})
    tracker = accelerator.get_tracker("seetrain")
    assert isinstance(tracker, seetrain_hf.SeeTrainTracker)
    logged = train(accelerator, steps=3)
    accelerator.end_training()

    api_run = seetrain.Api().run(tracker.tracker.id)
    assert (api_run.project, api_run.name, api_run.group, api_run.status) == (
        "acc-by-name", "by-name", "sweep-1", "finished")
    assert api_run.config["epochs"] == 1
    assert {key: api_run.scalars(key) for key in series(logged)} == series(logged)


def test_the_seed_example_runs():
    # the seed's Accelerate example, as written there (integration.main is seetrain.integration)
    from seetrain.integration import init_accelerate

    integration = init_accelerate(
        project="accelerate_project",
        experiment_name="distributed_training"
    )
    tracker = integration.get_tracker()
    tracker.store_init_configuration({
        'learning_rate': 1e-4,
        'batch_size': 64
    })
    losses = [0.9, 0.7, 0.55]
    for step, loss_value in enumerate(losses):
        acc_value = 0.5 + step / 10
        tracker.log({
            'train/loss': loss_value,
            'train/accuracy': acc_value
        }, step=step)
    tracker.finish()

    from seetrain_hf import SeeTrainTracker

    assert isinstance(tracker, SeeTrainTracker) and tracker.tracker is integration.run
    api_run = seetrain.Api().runs(project="accelerate_project")[-1]
    assert api_run.name == "distributed_training" and api_run.status == "finished"
    assert api_run.frameworks == ["accelerate"]
    assert api_run.config["learning_rate"] == 1e-4 and api_run.config["batch_size"] == 64
    assert api_run.scalars("train/loss") == list(enumerate(losses))
    assert api_run.scalars("train/accuracy") == [(s, 0.5 + s / 10) for s in range(3)]


@pytest.mark.slow
def test_the_tracker_joins_the_active_run():
    from accelerate import Accelerator

    from seetrain_hf import SeeTrainTracker

    run = seetrain.init(project="user-run", experiment_name="mine")
    accelerator = Accelerator(cpu=True, log_with=[SeeTrainTracker()])
    accelerator.init_trackers("ignored-project")
    assert accelerator.get_tracker("seetrain", unwrap=True) is run
    logged = train(accelerator, steps=2)
    accelerator.end_training()  # Accelerate's end of tracking ends the run, as for its own trackers
    assert run.finished
    api_run = seetrain.Api().run(run.id)
    assert api_run.project == "user-run"
    assert api_run.config["seetrain"]["frameworks"] == ["accelerate"]
    assert api_run.scalars("train/loss") == series(logged)["train/loss"]


def test_log_images_and_text():
    import numpy as np

    from seetrain_hf import SeeTrainTracker

    tracker = SeeTrainTracker("media-project")
    tracker.start()
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    tracker.log_images({"samples": [image, image]}, step=3)
    tracker.log({"note": "epoch done", "nested": {"a": 1}}, step=3)
    tracker.finish()
    api_run = seetrain.Api().run(tracker.tracker.id)
    assert [(m.step, m.kind) for m in api_run.media("samples")] == [(3, "image"), (3, "image")]
    assert [m.text for m in api_run.media("note")] == ["epoch done"]
    assert api_run.scalars("nested/a") == [(3, 1.0)]


def test_a_value_of_the_wrong_type_names_its_key():
    from seetrain_hf import SeeTrainTracker

    tracker = SeeTrainTracker("errors")
    with pytest.raises(TypeError, match="'train/model'"):
        tracker.log({"train/model": object()}, step=0)
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        tracker.log({"x": 1.0}, step=0, commit=True)
    tracker.finish()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_only_the_main_process_tracks(tmp_path):
    """Two real ranks (gloo on the CPU, loopback only): one run, holding rank 0's values."""
    worker = Path(__file__).with_name("hf_ddp_worker.py")
    port = _free_port()
    env = {**os.environ, "HF_WORKER_OUT": str(tmp_path), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(worker)], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["num_processes"] for r in ranks] == [2, 2]
    assert [r["started"] for r in ranks] == [True, False]

    runs = seetrain.Api().runs()
    assert len(runs) == 1
    api_run = runs[0]
    assert (api_run.project, api_run.name, api_run.status) == ("ddp-project", "ddp", "finished")
    assert api_run.config["world_size"] == 2
    assert api_run.scalars("train/loss") == list(enumerate(ranks[0]["losses"]))
    assert {v for _, v in api_run.scalars("rank")} == {0.0}
    assert api_run.scalars("direct") == [(0, 0.0)]
