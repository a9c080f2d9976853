"""Every Python example of docs/adapters/hf.md runs, in order, as a reader would paste them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import seetrain

pytest.importorskip("transformers")

DOC = Path(__file__).resolve().parents[2] / "docs" / "adapters" / "hf.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.slow
def test_the_examples_of_the_docs_run(tmp_path, monkeypatch, clean_accelerate_state):
    monkeypatch.chdir(tmp_path)  # the examples write Trainer output to ./out
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "hf_docs_example"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[python block {i}]", "exec"), namespace)

    api = seetrain.Api()
    by_name = {(r.project, r.name): r for r in api.runs()}
    first = by_name[("gpt2-tiny", "first")]
    assert first.status == "finished" and first.scalars("train/loss")
    assert [s for s, _ in first.scalars("eval/loss")] == [2, 4]
    via = by_name[("gpt2-tiny", "via-integration")]
    assert via.status == "finished" and via.config["dataset"] == "random tokens"
    assert "train_runtime" in via.summary
    linear = by_name[("acc-demo", "linear")]
    assert linear.config["batch_size"] == 4 and len(linear.scalars("train/loss")) == 4
    assert namespace["run"].id == linear.id
    assert by_name[("acc-demo", "by-name")].tags == ["cpu"]
    seed = by_name[("accelerate_project", "distributed_training")]
    assert seed.scalars("train/accuracy") == [(0, 0.5), (1, 0.6)]
    assert seed.config["learning_rate"] == 1e-4
    assert all(r.status == "finished" for r in api.runs())
