"""The distribution's contract: metadata, discovery, lazy imports, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_discovery_reads_modes_and_requirements():
    from seetrain.adapters import discover_adapters, find_adapter

    found = discover_adapters()
    assert (found["wandb"].mode, found["wandb"].requirements) == ("tracker", ("wandb>=0.16",))
    assert (found["mlflow"].mode, found["mlflow"].requirements) == ("visbackend", ("mlflow-skinny>=2.15",))
    # either TensorBoard writer serves: no requirement a tensorboardX-only user would fail
    assert (found["tensorboard"].mode, found["tensorboard"].requirements) == ("visbackend", ())
    assert find_adapter("tensorboardX").name == "tensorboard"  # the core's alias
    for name in ("wandb", "tensorboard", "mlflow"):
        assert found[name].distribution == "seetrain-bridges" and found[name].framework_problem() is None


def test_import_is_cheap():
    code = ("import sys, seetrain_bridges; "
            "print(sorted(m for m in ('wandb', 'torch', 'tensorboard', 'tensorboardX', 'mlflow', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_tensorboard_writer_gives_the_fix(monkeypatch):
    from seetrain.adapters import FrameworkMissingError

    import seetrain_bridges._tensorboard as tb

    bridge = tb.TensorBoardBridge()
    monkeypatch.setattr(tb, "writer_classes", lambda: [])  # stands for an environment without either
    with pytest.raises(FrameworkMissingError, match=r"pip install tensorboard\).*pip install tensorboardX"):
        bridge.enable()
    assert not bridge.enabled


def test_unknown_bridge_name():
    from seetrain_bridges._bridge import get_bridge

    with pytest.raises(KeyError, match="wandb, tensorboard, mlflow"):
        get_bridge("comet")
