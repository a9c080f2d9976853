"""The code examples of docs/adapters/autolog.md run as written, against the local server."""

from __future__ import annotations

import pathlib
import re
import time

import pytest

import seetrain
from autolog_server import steps

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "adapters" / "autolog.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_its_examples():
    assert len(_examples()) == 4


@pytest.mark.parametrize("index, project", [(0, "openai_project"), (1, "claude"), (2, "glm"), (3, "evals")])
def test_each_example_runs_and_records_its_calls(index, project, llm_server, monkeypatch, capsys):
    import openai

    # the SDKs' own environment variables point them at the local server
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    monkeypatch.setenv("ZHIPUAI_BASE_URL", llm_server.url + "/api/paas/v4")
    monkeypatch.setenv("ZHIPUAI_API_KEY", "test")
    openai._reset_client()
    # the polling example waits between polls; the local server needs no waiting
    monkeypatch.setattr(time, "sleep", lambda seconds: None)

    exec(compile(_examples()[index], f"{DOC.name}[{index}]", "exec"), {"__name__": "__docs__"})

    [api_run] = seetrain.Api().runs(project=project)
    recorded = steps(api_run)
    assert recorded and all(step["error"] == 0 for step in recorded)
    assert api_run.status == "finished"
    if project == "claude":
        assert capsys.readouterr().out == recorded[0]["response/text"]
    if project == "glm":
        assert [s["task/status"] for s in recorded] == ["PROCESSING", "SUCCESS"]
