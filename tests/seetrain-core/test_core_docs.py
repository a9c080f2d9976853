"""The code examples of the README and of the core's docs run.

Blocks fenced as ``python`` are executed (each file's blocks in order, in one namespace, in a
temporary folder); blocks fenced as ``py`` are illustrations that need a framework and are
executed by that adapter's tests instead.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parents[2]
DOCS = ["README.md", "docs/plugins.md", "docs/integration.md", "docs/writing-adapters.md", "docs/architecture.md"]


@pytest.mark.parametrize("doc", DOCS)
def test_examples_run(doc, tmp_path, monkeypatch):
    text = (ROOT / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    if doc == "README.md":
        assert blocks, "the README must show a runnable example"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"doc:{doc}"}
    for code in blocks:
        exec(compile(code, doc, "exec"), namespace)
    import seetrain.integration

    seetrain.integration.finish()
