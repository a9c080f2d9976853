"""The examples of docs/adapters/bridges.md run as written."""

from __future__ import annotations

import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "adapters" / "bridges.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_one_example_per_bridge():
    assert [("wandb" in b, "SummaryWriter" in b, "mlflow" in b) for b in BLOCKS] == [
        (True, False, False), (False, True, False), (False, False, True)]


@pytest.mark.parametrize("index", [0, 1, pytest.param(2, marks=pytest.mark.slow)],
                         ids=["wandb", "tensorboard", "mlflow"])
def test_doc_example_runs(index, tmp_path, monkeypatch, wandb_dir):
    monkeypatch.chdir(tmp_path)  # the examples write runs/, mlflow.db and mlruns/ where they run
    try:
        exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), {"__name__": "__doc_example__"})
    finally:
        if index == 2:
            import mlflow

            mlflow.set_tracking_uri(None)
