"""Fixtures of the autolog tests: the local LLM server, SDK clients pointed at it, a run.

No test may leave an SDK patched: after each one every autolog handle still enabled is
disabled (and every integration still open is finished), and the SDK classes are checked
to be back to their original methods.
"""

from __future__ import annotations

import sys

import pytest

from autolog_server import LLMServer


@pytest.fixture
def llm_server():
    server = LLMServer()
    yield server
    server.close()


@pytest.fixture
def run():
    import seetrain

    run = seetrain.init(project="autolog-tests", experiment_name="calls")
    yield run
    if not run.finished:
        run.finish()


@pytest.fixture
def openai_client(llm_server):
    import openai

    return openai.OpenAI(api_key="test", base_url=llm_server.url + "/v1", max_retries=0)


@pytest.fixture
def async_openai_client(llm_server):
    import openai

    return openai.AsyncOpenAI(api_key="test", base_url=llm_server.url + "/v1", max_retries=0)


@pytest.fixture
def anthropic_client(llm_server):
    import anthropic

    return anthropic.Anthropic(api_key="test", base_url=llm_server.url, max_retries=0)


@pytest.fixture
def async_anthropic_client(llm_server):
    import anthropic

    return anthropic.AsyncAnthropic(api_key="test", base_url=llm_server.url, max_retries=0)


@pytest.fixture
def zhipu_client(llm_server):
    import zhipuai

    return zhipuai.ZhipuAI(api_key="test", base_url=llm_server.url + "/api/paas/v4", max_retries=0)


def _patched_now() -> dict[str, object]:
    from seetrain_autolog._providers import PROVIDERS

    out = {}
    for provider in PROVIDERS.values():
        for target in provider.targets:
            if target.module.split(".")[0] not in sys.modules:
                continue
            try:
                owner, name = target.resolve()
            except (ImportError, AttributeError):
                continue
            out[target.path] = owner.__dict__.get(name)
    return out


@pytest.fixture(autouse=True)
def _sdk_left_as_found():
    # import the SDKs first so that "before" sees their original methods
    import anthropic  # noqa: F401
    import openai  # noqa: F401
    import zhipuai  # noqa: F401

    before = _patched_now()
    yield
    integration = sys.modules.get("seetrain.integration")
    if integration is not None:
        for item in integration.active_integrations():
            item.finish()
    instrumentor = sys.modules.get("seetrain_autolog._instrumentor")
    if instrumentor is not None:
        for inst in instrumentor._instrumentors.values():
            for handle in inst.handles:
                handle.disable()
    openai._reset_client()
    after = _patched_now()
    changed = [path for path in before if after.get(path) is not before[path]]
    assert not changed, f"SDK attributes left patched: {changed}"
