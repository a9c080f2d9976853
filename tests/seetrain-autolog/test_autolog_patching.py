"""Enabling and disabling: what is patched, that it is restored exactly, idempotence,
discovery and the handle's choice of run."""

from __future__ import annotations

import subprocess
import sys

import anthropic
import openai
import pytest
import zhipuai

import seetrain
import seetrain_autolog
from autolog_server import read_back, steps
from seetrain.adapters import discover_adapters, load_adapter
from seetrain_autolog._providers import PROVIDERS

MESSAGES = [{"role": "user", "content": "Hello!"}]


def _class_attrs(provider: str) -> dict[str, object]:
    out = {}
    for target in PROVIDERS[provider].targets:
        owner, name = target.resolve()
        out[target.path] = owner.__dict__.get(name)
    return out


def test_importing_the_package_imports_no_sdk():
    code = ("import sys, seetrain_autolog; seetrain_autolog.openai_adapter; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'anthropic', 'zhipuai', 'httpx', "
            "'httpx2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_three_adapters_are_discovered_from_metadata():
    found = discover_adapters()
    for name, requirement in (("openai", "openai>=1.0"), ("anthropic", "anthropic>=0.30"),
                              ("zhipuai", "zhipuai>=2.0")):
        info = found[name]
        assert info.distribution == "seetrain-autolog" and info.mode == "autolog"
        assert info.requirements == (requirement,) and info.framework_problem() is None
        assert load_adapter(name).mode == "autolog"
    assert load_adapter("zhipu") is load_adapter("zhipuai")


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_disable_restores_every_patched_attribute_to_the_original_object(provider, run):
    before = _class_attrs(provider)
    handle = seetrain_autolog.autolog(provider, run=run)
    handle.enable()
    patched = _class_attrs(provider)
    assert all(patched[path] is not before[path] for path in before), "every target is patched"
    assert all(patched[path].__wrapped__ is before[path] for path in before)
    assert handle.instrumentor.skipped == {}
    handle.disable()
    after = _class_attrs(provider)
    assert all(after[path] is before[path] for path in before)
    # and again: enable after disable patches anew, disable restores anew
    handle.enable()
    assert _class_attrs(provider) != before
    handle.disable()
    assert all(_class_attrs(provider)[path] is before[path] for path in before)


def test_async_methods_stay_coroutine_functions_and_keep_their_signature(run):
    import inspect

    original = openai.resources.chat.completions.AsyncCompletions.parse
    with seetrain_autolog.autolog("openai", run=run):
        patched = openai.resources.chat.completions.AsyncCompletions.parse
        assert patched is not original and inspect.iscoroutinefunction(patched)
        assert inspect.signature(patched) == inspect.signature(original)


def test_clients_made_before_enable_and_after_are_recorded(run, llm_server):
    before = openai.OpenAI(api_key="test", base_url=llm_server.url + "/v1", max_retries=0)
    with seetrain_autolog.autolog("openai", run=run):
        after = openai.OpenAI(api_key="test", base_url=llm_server.url + "/v1", max_retries=0)
        before.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        after.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    before.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # disabled: not recorded
    assert [s["step"] for s in steps(read_back(run))] == [0, 1]


def test_enabling_twice_records_once_and_enable_after_disable_works(run, openai_client):
    handle = seetrain_autolog.autolog("openai", run=run)
    assert handle.enable() is handle and handle.enable() is handle and handle.enabled
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    handle.disable()
    handle.disable()
    assert not handle.enabled
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    handle.enable()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    handle.disable()
    assert len(steps(read_back(run))) == 2 and handle.calls == 2


def test_two_handles_on_one_run_record_once_on_two_runs_once_each(run, openai_client):
    other = seetrain.init(project="autolog-tests", experiment_name="other")
    first = seetrain_autolog.autolog("openai", run=run).enable()
    seetrain_autolog.autolog("openai", run=run).enable()
    seetrain_autolog.autolog("openai", run=other, capture_content=False).enable()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    first.disable()
    mine, theirs = read_back(run), read_back(other)
    assert len(steps(mine)) == 1 and "response/text" in steps(mine)[0]
    assert len(steps(theirs)) == 1 and "response/text" not in steps(theirs)[0]


def test_the_patches_stay_while_any_handle_is_enabled(run):
    original = anthropic.resources.messages.Messages.create
    first = seetrain_autolog.autolog("anthropic", run=run).enable()
    second = seetrain_autolog.autolog("anthropic", run=run).enable()
    first.disable()
    assert anthropic.resources.messages.Messages.create is not original
    second.disable()
    assert anthropic.resources.messages.Messages.create is original


def test_a_wrapper_stacked_on_top_is_left_in_place_and_ours_goes_quiet(run, openai_client):
    cls = openai.resources.chat.completions.Completions
    original = cls.__dict__["create"]
    handle = seetrain_autolog.autolog("openai", run=run).enable()
    ours = cls.__dict__["create"]

    def theirs(self, *args, **kwargs):
        return ours(self, *args, **kwargs)

    cls.create = theirs
    try:
        handle.disable()
        assert cls.__dict__["create"] is theirs
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert run.step == -1  # our wrapper inside theirs passes the call through
    finally:
        cls.create = original


def test_without_a_run_the_handle_uses_the_active_run(run, openai_client):
    handle = seetrain_autolog.autolog("openai").enable()
    assert handle.run is run and run.frameworks == ["openai"]
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    handle.disable()
    assert not run.finished  # not the handle's run to finish
    assert len(steps(read_back(run))) == 1


def test_without_any_run_the_handle_starts_one_and_finishes_it_on_disable(openai_client):
    assert seetrain.active_run() is None
    handle = seetrain_autolog.autolog("openai").enable()
    own = handle.run
    assert own.project == "autolog" and own.frameworks == ["openai"]
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    handle.disable()
    assert own.finished
    [api_run] = seetrain.Api().runs(project="autolog")
    assert api_run.status == "finished" and len(steps(api_run)) == 1


def test_a_finished_run_records_nothing(run, openai_client):
    handle = seetrain_autolog.autolog("openai", run=run).enable()
    run.finish()
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert response.choices
    handle.disable()
    assert steps(seetrain.Api().run(run.id)) == []


def test_wrong_options_and_providers_are_clear_errors(run):
    from seetrain.integration import enable_openai_autolog

    with pytest.raises(TypeError, match=r"unknown option\(s\) 'capture'.*capture_content"):
        enable_openai_autolog(project="p", capture="yes")
    with pytest.raises(ValueError, match="unknown provider 'cohere'.*anthropic, openai, zhipuai"):
        seetrain_autolog.autolog("cohere")
    with pytest.raises(TypeError, match="capture_content must be True or False"):
        seetrain_autolog.autolog("openai", capture_content="no")


def test_the_integration_enables_at_init_and_marks_the_frameworks(llm_server):
    from seetrain.integration import enable_anthropic_autolog, enable_openai_autolog

    oa = enable_openai_autolog(project="multi", experiment_name="both")
    an = enable_anthropic_autolog(project="multi", experiment_name="both")
    assert oa.run is an.run and oa.get_stats()["mode"] == "autolog"
    openai.OpenAI(api_key="t", base_url=llm_server.url + "/v1", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES)
    anthropic.Anthropic(api_key="t", base_url=llm_server.url, max_retries=0).messages.create(
        model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES)
    oa.disable()
    oa.enable()  # the same handle again: still one record per call
    openai.OpenAI(api_key="t", base_url=llm_server.url + "/v1", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES)
    oa.finish()
    an.finish()
    [api_run] = seetrain.Api().runs(project="multi")
    assert api_run.frameworks == ["openai", "anthropic"]
    assert [s["api"] for s in steps(api_run)] == [
        "openai.chat.completions.create", "anthropic.messages.create", "openai.chat.completions.create"]


def test_zhipuai_sdk_imported_is_the_one_patched():
    # the dotted paths name the very classes the clients use
    client_cls = zhipuai.ZhipuAI(api_key="k", base_url="http://127.0.0.1:9").chat.completions.__class__
    owner, _ = PROVIDERS["zhipuai"].targets[0].resolve()
    assert client_cls is owner


def test_a_missing_sdk_is_a_clear_error_and_a_missing_method_is_skipped(run):
    from seetrain.adapters import FrameworkMissingError
    from seetrain_autolog._instrumentor import Instrumentor
    from seetrain_autolog._providers import Provider, Target

    # an SDK that is not installed: the error names the requirement from the metadata
    missing = Instrumentor(Provider("openai", (
        Target("openai_not_here.resources:Chat.create", "openai.chat.completions"),
    )))
    handle = seetrain_autolog.autolog("openai", run=run)
    with pytest.raises(FrameworkMissingError, match=r'openai_not_here.*pip install "openai>=1.0"'):
        missing.attach(handle)
    assert missing.handles == ()

    # an SDK version without one of the methods: the others are patched, the gap is reported
    original = openai.resources.embeddings.Embeddings.create
    partial = Instrumentor(Provider("openai", (
        Target("openai.resources.embeddings:Embeddings.create", "openai.embeddings"),
        Target("openai.resources.embeddings:Embeddings.create_many", "openai.embeddings"),
    )))
    assert partial.attach(handle)
    assert openai.resources.embeddings.Embeddings.create is not original
    assert list(partial.skipped) == ["openai.resources.embeddings:Embeddings.create_many"]
    partial.detach(handle)
    assert openai.resources.embeddings.Embeddings.create is original
