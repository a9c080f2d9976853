"""Tiny real MMEngine components for the seetrain-mm tests, and a config that uses them.

A 4-feature linear classifier (a ``BaseModel``), a synthetic dataset, an accuracy metric
(a ``BaseMetric``) and a hook that logs an image through ``runner.visualizer.add_image``,
registered in MMEngine's own registries so that a config dict names them by type, as a
user's config names theirs.
"""

from __future__ import annotations

import itertools
import json
import os
import time

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from torch import nn
from torch.utils.data import Dataset

import seetrain_mm.visbackend  # noqa: F401  (registers SeeTrainVisBackend)

_names = itertools.count()


@MODELS.register_module(force=True)
class SeeTrainTinyNet(BaseModel):
    """Linear classifier over 4 features; ``predict`` returns (predicted, true) labels."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode="tensor"):
        logits = self.fc(inputs)
        if mode == "loss":
            return {"loss": nn.functional.cross_entropy(logits, labels)}
        if mode == "predict":
            return [(logits.argmax(1), labels)]
        return logits


@DATASETS.register_module(force=True)
class SeeTrainSynthDataset(Dataset):
    """``n`` random 4-feature points labelled by the sign of their first feature."""

    def __init__(self, n: int = 16, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=generator)
        self.y = (self.x[:, 0] > 0).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return {"inputs": self.x[index], "labels": self.y[index]}


@METRICS.register_module(force=True)
class SeeTrainAccuracy(BaseMetric):
    """Top-1 accuracy over the validation set."""

    default_prefix = "tiny"

    def process(self, data_batch, data_samples) -> None:
        for predicted, labels in data_samples:
            self.results.append(((predicted == labels).sum().item(), len(labels)))

    def compute_metrics(self, results) -> dict:
        return {"accuracy": sum(r[0] for r in results) / sum(r[1] for r in results)}


def preview_image(epoch: int) -> np.ndarray:
    """The RGB uint8 image the hook logs after validation epoch ``epoch``."""
    image = np.zeros((8, 12, 3), dtype=np.uint8)
    image[:, :, 0] = 40 * epoch
    image[2:6, 3:9, 1] = 200
    image[0, 0] = (255, 0, 255)
    return image


@HOOKS.register_module(force=True)
class SeeTrainImageHook(Hook):
    """Logs :func:`preview_image` through the runner's Visualizer after each validation."""

    def after_val_epoch(self, runner, metrics=None) -> None:
        runner.visualizer.add_image("preview", preview_image(runner.epoch), step=runner.epoch)


def unique_name(prefix: str) -> str:
    """A Visualizer / Runner name never used before in this process: MMEngine's Visualizer is
    a singleton per name, and a Runner's default name has one-second resolution."""
    return f"{prefix}-{os.getpid()}-{next(_names)}-{time.monotonic_ns()}"


def dataloader(seed: int = 0) -> dict:
    return {
        "batch_size": 4,
        "dataset": {"type": "SeeTrainSynthDataset", "n": 16, "seed": seed},
        "sampler": {"type": "DefaultSampler", "shuffle": False},
        "collate_fn": {"type": "default_collate"},
    }


def local_scalars(work_dir: str) -> list[dict]:
    """The lines LocalVisBackend wrote to ``scalars.json`` (one dict per add_scalars call)."""
    found = []
    for root, _dirs, files in os.walk(work_dir):
        if "scalars.json" in files and root.endswith("vis_data"):
            found.append(os.path.join(root, "scalars.json"))
    assert len(found) == 1, found
    with open(found[0], encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def runner_config(work_dir: str, init_kwargs: dict | None = None, **overrides) -> dict:
    """The config dict of a 2-epoch training (4 iterations an epoch, logged every 2) with
    validation, an accuracy metric, the image hook, and SeeTrainVisBackend beside MMEngine's
    LocalVisBackend (whose scalars.json is what MMEngine itself recorded)."""
    cfg = {
        "experiment_name": unique_name("exp"),
        "work_dir": work_dir,
        "model": {"type": "SeeTrainTinyNet"},
        "train_dataloader": dataloader(0),
        "val_dataloader": dataloader(1),
        "train_cfg": {"by_epoch": True, "max_epochs": 2, "val_interval": 1},
        "val_cfg": {},
        "val_evaluator": {"type": "SeeTrainAccuracy"},
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}},
        # the learning rate changes at every iteration of the warm-up, so a wrong step shows
        "param_scheduler": [{"type": "LinearLR", "start_factor": 0.25, "by_epoch": False,
                             "begin": 0, "end": 6}],
        "default_hooks": {"logger": {"type": "LoggerHook", "interval": 2},
                          "checkpoint": {"type": "CheckpointHook", "interval": 100}},
        "custom_hooks": [{"type": "SeeTrainImageHook"}],
        "log_processor": {"window_size": 1},
        "visualizer": {
            "type": "Visualizer",
            "name": unique_name("visualizer"),
            "vis_backends": [
                {"type": "LocalVisBackend"},
                {"type": "SeeTrainVisBackend", "init_kwargs": dict(init_kwargs or {})},
            ],
        },
        "randomness": {"seed": 0},
        "shapes": {"input": (4,), "classes": [0, 1]},  # a tuple and a list, nested
    }
    cfg.update(overrides)
    return cfg
