"""seetrain.config: a mapping with attribute access whose changes reach the store and on_config."""

import argparse
import dataclasses
import pathlib

import pytest

import seetrain


@dataclasses.dataclass
class TrainArgs:
    lr: float = 0.1
    layers: tuple = (64, 32)
    out: pathlib.Path = pathlib.Path("/tmp/out")


def test_config_sources_and_access(_isolated_store):
    run = seetrain.init(project="p", config=argparse.Namespace(batch_size=32, model="resnet"))
    seetrain.config.update(TrainArgs())
    seetrain.config.update({"optimizer": {"name": "adam", "betas": (0.9, 0.99)}}, epochs=3)
    seetrain.config.dropout = 0.5
    seetrain.config["seed"] = 7
    assert seetrain.config.batch_size == 32 and seetrain.config["lr"] == 0.1
    assert seetrain.config.layers == [64, 32] and seetrain.config.out == "/tmp/out"
    with pytest.raises(AttributeError, match="no key 'nope'"):
        seetrain.config.nope
    del seetrain.config["seed"]
    run.finish()
    stored = seetrain.Api().run(run.id).config
    assert stored == {"batch_size": 32, "model": "resnet", "lr": 0.1, "layers": [64, 32], "out": "/tmp/out",
                      "optimizer": {"name": "adam", "betas": [0.9, 0.99]}, "epochs": 3, "dropout": 0.5}


def test_config_before_init_is_taken_over(_isolated_store):
    seetrain.config.update({"warmup": 100})
    run = seetrain.init(project="p", config={"lr": 1})
    assert dict(run.config) == {"warmup": 100, "lr": 1}
    run.finish()
    assert seetrain.Api().run(run.id).config == {"warmup": 100, "lr": 1}


def test_on_config_hook_sees_every_change(recording_sink, _isolated_store):
    run = seetrain.init(project="p", config={"a": 1})
    run.config.update({"b": 2})
    run.config.c = 3
    run.finish()
    configs = [kw for name, kw in recording_sink.calls if name == "on_config"]
    assert [c["changed"] for c in configs] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert configs[-1]["config"] == {"a": 1, "b": 2, "c": 3}


def test_unserialisable_values_become_text(_isolated_store):
    run = seetrain.init(project="p", config={"fn": len, "nan": float("nan"), "cls": int})
    run.finish()
    cfg = seetrain.Api().run(run.id).config
    assert cfg == {"fn": "<built-in function len>", "nan": "nan", "cls": "<class 'int'>"}
