"""SeeTrainLogger against the real PyTorch Lightning Trainer, on CPU, with a tiny model.

Every value is read back through ``seetrain.Api`` and compared with what Lightning itself
reported (``trainer.callback_metrics`` / ``trainer.logged_metrics``, the CSVLogger's file).
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import seetrain

lightning = pytest.importorskip("lightning")
from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger, Logger  # noqa: E402
from lightning_tiny import MetricsRecorder, TinyRegressor, make_loader  # noqa: E402

from seetrain_lightning import SeeTrainLogger  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def make_trainer(root, logger, **options) -> Trainer:
    settings = dict(default_root_dir=str(root), max_epochs=2, limit_train_batches=4, limit_val_batches=2,
                    num_sanity_val_steps=0, log_every_n_steps=1, accelerator="cpu", devices=1,
                    enable_progress_bar=False, enable_model_summary=False, logger=logger)
    settings.update(options)
    return Trainer(**settings)


def only_run():
    runs = seetrain.Api().runs()
    assert len(runs) == 1, runs
    return runs[0]


# -- import and shape -------------------------------------------------------------------------

def test_import_is_lazy_and_class_is_a_lightning_logger():
    code = "import sys, seetrain_lightning; print('lightning' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert issubclass(SeeTrainLogger, Logger)
    from seetrain.adapters import load_adapter

    adapter = load_adapter("pytorch_lightning")  # the alias resolves to this adapter
    assert adapter.name == "lightning" and adapter.mode == "callback"


def test_plain_properties_never_start_a_run(tmp_path):
    logger = SeeTrainLogger(project="props", experiment_name="p1", save_dir=tmp_path)
    assert (logger.name, logger.version, logger.save_dir) == ("props", None, str(tmp_path))
    assert logger.root_dir == os.path.join(str(tmp_path), "props") and logger.log_dir is None
    assert seetrain.active_run() is None
    assert not os.path.exists(os.environ["SEETRAIN_DIR"])  # not even the store was created
    run = logger.experiment
    assert logger.version == run.id and logger.log_dir == os.path.join(str(tmp_path), "props", run.id)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="unexpected keyword argument.*projekt"):
        SeeTrainLogger(projekt="typo")
    with pytest.raises(TypeError, match="run= must be a seetrain.Run"):
        SeeTrainLogger(run="abc")


# -- a real fit --------------------------------------------------------------------------------

def test_fit_with_checkpoints_and_a_second_logger(tmp_path):
    logger = SeeTrainLogger(project="lit", experiment_name="fit", config={"data": {"n": 32}})
    csv_logger = CSVLogger(tmp_path, name="csv")
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)
    recorder = MetricsRecorder()
    model = TinyRegressor(hidden=4, lr=0.05, optimizer={"name": "sgd", "momentum": 0.0})
    trainer = make_trainer(tmp_path, [logger, csv_logger], max_epochs=3, callbacks=[checkpoint, recorder])
    trainer.fit(model, make_loader(), make_loader(16, seed=1))

    run = only_run()
    assert (run.project, run.name, run.status) == ("lit", "fit", "finished")
    assert run.frameworks == ["lightning"]
    # save_hyperparameters() reached the config, nested dicts kept nested, next to config=
    assert run.config["hidden"] == 4 and run.config["lr"] == 0.05
    assert run.config["optimizer"] == {"name": "sgd", "momentum": 0.0}
    assert run.config["data"] == {"n": 32}

    # what Lightning handed its loggers, as the CSVLogger wrote it down
    with open(csv_logger.experiment.metrics_file_path, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def column(key):  # the store keeps one point per step, the last one logged at it
        points = {int(r["step"]): float(r[key]) for r in rows if r.get(key)}
        return sorted(points.items())

    # val_loss: one point per epoch, at Lightning's step, equal to callback_metrics (floats of
    # the same tensors: exact)
    assert len(recorder.val) == 3
    assert [v for _, v in run.scalars("val_loss")] == [v for _, v in recorder.val]
    assert run.scalars("val_loss") == column("val_loss")
    assert len(column("train_loss_step")) == 12
    for key in ("train_loss_step", "train_loss_epoch", "epoch"):
        assert run.scalars(key) == column(key), key
    # every last value equals what Lightning logged
    logged = {k: float(v) for k, v in trainer.logged_metrics.items()}
    assert {"train_loss_step", "train_loss_epoch", "val_loss"} <= set(logged)
    for key, value in logged.items():
        assert run.summary[key] == value, key
    assert float(trainer.callback_metrics["train_loss_epoch"]) == run.summary["train_loss_epoch"]

    # checkpoints: in <root>/<name>/<run id>/checkpoints, every saved file recorded once per save
    files = run.files()
    paths = {f["path"] for f in files}
    assert all(f["kind"] == "checkpoint" for f in files)
    assert os.path.abspath(checkpoint.best_model_path) in paths
    assert os.path.abspath(checkpoint.last_model_path) in paths
    assert os.path.dirname(checkpoint.best_model_path) == os.path.join(str(tmp_path), "lit", run.id, "checkpoints")
    best = next(f for f in files if f["path"] == os.path.abspath(checkpoint.best_model_path))
    assert best["meta"]["monitor"] == "val_loss"
    assert best["meta"]["score"] == pytest.approx(float(checkpoint.best_model_score))


def test_failing_training_step_marks_the_run_crashed(tmp_path):
    logger = SeeTrainLogger(project="lit", experiment_name="boom")
    trainer = make_trainer(tmp_path, logger, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="boom at global step 2"):
        trainer.fit(TinyRegressor(fail_at_batch=2), make_loader(), make_loader(16))
    run = only_run()
    assert run.status == "crashed"
    assert "boom at global step 2" in run.error
    assert [s for s, _ in run.scalars("train_loss_step")] == [0, 1]  # what came before is kept


def test_fit_then_test_continue_the_same_run(tmp_path):
    logger = SeeTrainLogger(project="lit", experiment_name="fit+test")
    trainer = make_trainer(tmp_path, logger, max_epochs=1, enable_checkpointing=False)
    model = TinyRegressor()
    trainer.fit(model, make_loader(), make_loader(16))
    assert only_run().status == "finished"  # finalize("success") ended it
    trainer.test(model, make_loader(16, seed=2), verbose=False)

    run = only_run()  # still one run: test() reopened it
    assert run.status == "finished"
    assert run.summary["test_loss"] == pytest.approx(float(trainer.callback_metrics["test_loss"]))
    assert len(run.scalars("train_loss_step")) == 4


def test_joins_an_active_run_and_leaves_it_open(tmp_path):
    run = seetrain.init(project="lit", experiment_name="mine", framework="lightning", config={"seed": 1})
    logger = SeeTrainLogger(config={"extra": True})
    trainer = make_trainer(tmp_path, logger, max_epochs=1, enable_checkpointing=False)
    trainer.fit(TinyRegressor(), make_loader(), make_loader(16))
    assert logger.experiment is run and not run.finished  # the owner ends it, not the logger
    run.log({"after": 1.0}, step=100)
    run.finish()
    stored = only_run()
    assert stored.id == run.id and stored.status == "finished"
    assert stored.config["seed"] == 1 and stored.config["extra"] is True and stored.config["lr"] == 0.05
    assert stored.frameworks == ["lightning"]
    assert len(stored.scalars("train_loss_step")) == 4 and stored.scalars("after") == [(100, 1.0)]


def test_given_run_is_used_and_not_ended(tmp_path):
    other = seetrain.init(project="lit", experiment_name="other")
    mine = seetrain.init(project="lit", experiment_name="given")
    logger = SeeTrainLogger(run=other)
    assert logger.version == other.id
    trainer = make_trainer(tmp_path, logger, max_epochs=1, enable_checkpointing=False)
    trainer.fit(TinyRegressor(), make_loader(), make_loader(16))
    assert not other.finished
    other.finish()
    mine.finish()
    by_name = {r.name: r for r in seetrain.Api().runs()}
    assert len(by_name["given"].keys()) == 0 and "val_loss" in by_name["other"].keys()
    assert by_name["other"].frameworks == ["lightning"]


# -- direct calls --------------------------------------------------------------------------------

def test_log_hyperparams_accepts_dicts_nested_dicts_and_namespaces():
    logger = SeeTrainLogger(project="hp")
    logger.log_hyperparams({"lr": 0.1, "model": {"depth": 3, "act": "relu"}})
    logger.log_hyperparams(argparse.Namespace(batch_size=16, schedule=argparse.Namespace(warmup=5)))
    logger.log_metrics({"loss": 0.5}, step=3)
    logger.log_metrics({"loss": 0.25}, step=7)
    logger.finalize("success")
    run = only_run()
    assert run.config["lr"] == 0.1 and run.config["model"] == {"depth": 3, "act": "relu"}
    assert run.config["batch_size"] == 16 and run.config["schedule"] == {"warmup": 5}
    assert run.scalars("loss") == [(3, 0.5), (7, 0.25)]
    with pytest.raises(TypeError, match="config must be"):
        logger.log_hyperparams(42)


def test_media_helpers():
    logger = SeeTrainLogger(project="media")
    images = [np.zeros((8, 8, 3), dtype=np.uint8), np.ones((4, 6), dtype=np.float32)]
    logger.log_image("samples", images, step=1, caption=["black", "white"])
    logger.log_audio("clip", np.zeros(800, dtype=np.float32), step=1, sample_rate=8000, caption="silence")
    logger.log_text("note", ["first", "second"], step=2)
    with pytest.raises(ValueError, match="caption has 1 items for 2 media"):
        logger.log_image("samples", images, caption=["only one"])
    with pytest.raises(TypeError, match="'bad'"):
        logger.log_metrics({"bad": object()}, step=3)
    logger.finalize("success")
    run = only_run()
    imgs = run.media("samples")
    assert [(m.kind, m.step, m.caption) for m in imgs] == [("image", 1, "black"), ("image", 1, "white")]
    assert all(os.path.isfile(os.path.join(os.environ["SEETRAIN_DIR"], m.path)) for m in imgs)
    assert [(m.kind, m.caption) for m in run.media("clip")] == [("audio", "silence")]
    assert [m.text for m in run.media("note")] == ["first", "second"]


def test_other_ranks_create_and_log_nothing(monkeypatch):
    from lightning.pytorch.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = SeeTrainLogger(project="ranks")
    logger.log_hyperparams({"lr": 1.0})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert type(logger.experiment).__name__ == "_DummyExperiment"
    assert logger.version is None and seetrain.active_run() is None
    assert not os.path.exists(os.environ["SEETRAIN_DIR"])


def test_a_failure_inside_seetrain_does_not_break_training(tmp_path, monkeypatch):
    from seetrain.errors import get_integration_error_stats

    def broken_add_file(self, *args, **kwargs):
        # stands in for any internal failure while handling Lightning's checkpoint hook
        raise OSError("disk gone")

    monkeypatch.setattr(seetrain.Run, "add_file", broken_add_file)
    logger = SeeTrainLogger(project="lit")
    trainer = make_trainer(tmp_path, logger, max_epochs=1, callbacks=[ModelCheckpoint(monitor="val_loss")])
    trainer.fit(TinyRegressor(), make_loader(), make_loader(16))
    assert only_run().status == "finished"
    stats = get_integration_error_stats("lightning")["lightning"]["after_save_checkpoint"]
    assert stats["failures"] >= 1 and "disk gone" in stats["last_error"]


# -- pickling (spawn-based strategies) -------------------------------------------------------------

@pytest.mark.slow
def test_pickled_logger_continues_its_run_in_another_process(tmp_path):
    bound = SeeTrainLogger(project="pickle", experiment_name="spawned", config={"a": 1})
    bound.log_metrics({"loss": 1.0}, step=0)
    same = pickle.loads(pickle.dumps(bound))
    assert same.experiment is bound.experiment  # same process: the live run is reused
    unbound = SeeTrainLogger(project="pickle", experiment_name="fresh")

    (tmp_path / "bound.pkl").write_bytes(pickle.dumps(bound))
    (tmp_path / "unbound.pkl").write_bytes(pickle.dumps(unbound))
    # the worker of a spawn-based strategy: a fresh interpreter that unpickles the loggers
    worker = textwrap.dedent(f"""
        import pickle
        bound = pickle.load(open({str(tmp_path / "bound.pkl")!r}, "rb"))
        bound.log_metrics({{"loss": 0.5}}, step=1)
        bound.log_hyperparams({{"worker": True}})
        bound.finalize("success")     # the parent's run: drained here, never ended
        unbound = pickle.load(open({str(tmp_path / "unbound.pkl")!r}, "rb"))
        unbound.log_metrics({{"loss": 0.5}}, step=1)
        unbound.finalize("success")   # started in the worker: ended there
    """)
    subprocess.run([sys.executable, "-c", worker], check=True, env=os.environ.copy(), timeout=120)
    bound.log_metrics({"loss": 0.25}, step=2)
    bound.finalize("success")
    runs = {r.name: r for r in seetrain.Api().runs()}
    assert set(runs) == {"spawned", "fresh"}
    spawned, fresh = runs["spawned"], runs["fresh"]
    assert spawned.id == bound.version and spawned.status == "finished"
    assert spawned.scalars("loss") == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert spawned.config["a"] == 1 and spawned.config["worker"] is True
    assert (fresh.status, fresh.scalars("loss"), fresh.frameworks) == ("finished", [(1, 0.5)], ["lightning"])


# -- the integration contract and the seed's example -----------------------------------------------

def test_init_pytorch_lightning_gives_this_logger(tmp_path):
    from seetrain.integration import init_pytorch_lightning

    integration = init_pytorch_lightning(project="lit", experiment_name="via-integration")
    logger = integration.get_callback()
    assert isinstance(logger, SeeTrainLogger) and logger.experiment is integration.run
    trainer = make_trainer(tmp_path, logger, max_epochs=1, enable_checkpointing=False)
    trainer.fit(TinyRegressor(), make_loader(), make_loader(16))
    assert not integration.run.finished  # the integration owns the run
    integration.finish()
    run = only_run()
    assert run.status == "finished" and run.frameworks == ["lightning"]
    assert run.summary["val_loss"] == pytest.approx(float(trainer.callback_metrics["val_loss"]))


def test_the_seed_example_runs():
    # the seed's Callback-mode example, verbatim but for the loop values
    from seetrain.integration import init_pytorch_lightning

    num_epochs = 3
    losses = [0.9, 0.6, 0.4]
    accuracies = [0.5, 0.7, 0.8]

    integration = init_pytorch_lightning(
        project="my_project",
        experiment_name="experiment_1",
        description="PyTorch Lightning训练实验"
    )

    # 获取Lightning Logger
    logger = integration.get_callback()

    # 在训练循环中使用
    for epoch in range(num_epochs):
        train_loss, train_acc = losses[epoch], accuracies[epoch]
        # 记录指标
        logger.log_metrics({
            'train/loss': train_loss,
            'train/accuracy': train_acc
        }, step=epoch)

        # 记录超参数
        logger.log_hyperparams({
            'learning_rate': 0.001,
            'batch_size': 32
        })

    integration.finish()

    run = only_run()
    assert (run.project, run.name, run.description) == ("my_project", "experiment_1", "PyTorch Lightning训练实验")
    assert run.status == "finished" and run.frameworks == ["lightning"]
    assert run.scalars("train/loss") == [(0, 0.9), (1, 0.6), (2, 0.4)]
    assert run.scalars("train/accuracy") == [(0, 0.5), (1, 0.7), (2, 0.8)]
    assert run.config["learning_rate"] == 0.001 and run.config["batch_size"] == 32


# -- processes ----------------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_make_exactly_one_run(tmp_path):
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), PYTHONPATH=HERE,
               GLOO_SOCKET_IFNAME="lo")
    out = tmp_path / "ddp.json"
    proc = subprocess.run([sys.executable, os.path.join(HERE, "ddp_train.py"), str(tmp_path), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import json

    reported = json.loads(out.read_text())
    run = only_run()  # rank 1 created nothing
    assert run.status == "finished" and run.frameworks == ["lightning"]
    # every training step of both epochs, logged once (by rank 0)
    assert [s for s, _ in run.scalars("train_loss_step")] == list(range(reported["global_step"]))
    assert sorted({int(v) for _, v in run.scalars("epoch")}) == [0, 1]  # every epoch is in the run
    assert len(run.scalars("val_loss")) == 2
    assert run.summary["val_loss"] == pytest.approx(reported["val_loss"])
    assert run.config["lr"] == 0.05


@pytest.mark.slow
def test_works_where_only_pytorch_lightning_is_installed(tmp_path):
    # hide the unified `lightning` package from the interpreter, as on an install of the
    # standalone `pytorch_lightning` distribution alone
    script = textwrap.dedent(f"""
        import sys
        class HideLightning:
            def find_spec(self, name, path=None, target=None):
                if name == "lightning" or name.startswith("lightning."):
                    raise ModuleNotFoundError("No module named 'lightning'", name=name)
        sys.meta_path.insert(0, HideLightning())
        import torch, pytorch_lightning as pl
        from torch.utils.data import DataLoader, TensorDataset
        from seetrain_lightning import SeeTrainLogger
        from seetrain_lightning._logger import LIGHTNING_NAMESPACE
        assert LIGHTNING_NAMESPACE == "pytorch_lightning"
        assert issubclass(SeeTrainLogger, pl.loggers.Logger)
        assert "lightning" not in sys.modules

        class M(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.save_hyperparameters({{"lr": 0.1}})
                self.layer = torch.nn.Linear(2, 1)
            def training_step(self, batch, i):
                loss = self.layer(batch[0]).pow(2).mean()
                self.log("loss", loss)
                return loss
            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
        trainer = pl.Trainer(default_root_dir={str(tmp_path)!r}, max_epochs=1, logger=SeeTrainLogger(project="pl"),
                             accelerator="cpu", log_every_n_steps=1, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False)
        trainer.fit(M(), data)
        print(float(trainer.callback_metrics["loss"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run()
    assert run.status == "finished" and run.frameworks == ["lightning"] and run.config["lr"] == 0.1
    assert run.summary["loss"] == pytest.approx(float(proc.stdout.split()[-1]))
