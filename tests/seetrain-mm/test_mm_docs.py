"""Every Python example of docs/adapters/mm.md runs, in order, as a reader would paste them."""

from __future__ import annotations

import re
from pathlib import Path

import seetrain

DOC = Path(__file__).resolve().parents[2] / "docs" / "adapters" / "mm.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_examples_of_the_docs_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Runner example writes to ./work_dirs
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 4
    namespace: dict = {"__name__": "mm_docs_example"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[python block {i}]", "exec"), namespace)

    # block 0 is a config file: what it declares is what the docs say
    assert namespace["custom_imports"]["imports"] == ["seetrain_mm"]
    api = seetrain.Api()
    runs = {(r.project, r.name): r for r in api.runs()}
    tiny = runs[("mm-docs", "tiny")]
    assert [s for s, _ in tiny.scalars("loss")] == [2, 4, 6, 8]
    assert [s for s, _ in tiny.scalars("docs/accuracy")] == [1, 2]
    seed = runs[("mmengine_project", "detection_model")]
    assert seed.config["model"]["strides"] == [8, 16, 32]
    assert seed.scalars("val/mAP") == [(100, 0.31)]
    assert [m.step for m in seed.media("prediction")] == [100]
    det = runs[("mmdet_project", "retinanet")]
    assert det.frameworks == ["mmdetection"] and det.scalars("coco/bbox_mAP") == [(1, 0.21)]
    assert all(r.status == "finished" for r in api.runs())
