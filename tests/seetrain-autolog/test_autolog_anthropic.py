"""Anthropic autolog against the real ``anthropic`` SDK talking to a local server:
``messages.create`` (plain and ``stream=True``) and ``messages.stream()``, sync and async."""

from __future__ import annotations

import asyncio
import json

import anthropic
import pytest

import seetrain_autolog
from autolog_server import REPLY_TEXT, JsonReply, read_back, steps
from seetrain.errors import get_integration_error_stats

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Hello, Claude"}]


def test_messages_create_is_one_step(run, anthropic_client, llm_server):
    seetrain_autolog.autolog("anthropic", run=run).enable()
    message = anthropic_client.messages.create(model=MODEL, max_tokens=256, system="Be brief.", messages=MESSAGES)
    assert type(message) is anthropic.types.Message

    [step] = steps(read_back(run))
    usage = message.usage
    assert step["api"] == "anthropic.messages.create" and step["model"] == message.model
    assert step["usage/input_tokens"] == usage.input_tokens
    assert step["usage/output_tokens"] == step["usage/completion_tokens"] == usage.output_tokens
    assert step["usage/cache_read_input_tokens"] == usage.cache_read_input_tokens
    # Anthropic's input_tokens leave cached input out; prompt_tokens counts all of it
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    assert step["usage/prompt_tokens"] == prompt
    assert step["usage/total_tokens"] == prompt + usage.output_tokens
    assert step["finish_reason"] == message.stop_reason == "end_turn"
    assert step["response/text"] == message.content[0].text
    assert step["request/system"] == "Be brief."
    assert json.loads(step["request/messages"]) == llm_server.last("/v1/messages").body["messages"]
    assert json.loads(step["request/params"]) == {"model": MODEL, "max_tokens": 256}


def test_messages_stream_manager_is_recorded_when_the_stream_ends(run, anthropic_client):
    seetrain_autolog.autolog("anthropic", run=run).enable()
    manager = anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert type(manager).__name__ == "MessageStreamManager"
    with manager as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    [step] = steps(read_back(run))
    assert step["api"] == "anthropic.messages.stream" and step["stream"] == 1 and step["partial"] == 0
    assert step["response/text"] == text == final.content[0].text
    assert step["usage/output_tokens"] == final.usage.output_tokens
    assert step["usage/input_tokens"] == final.usage.input_tokens
    assert step["finish_reason"] == final.stop_reason
    # start, block start, 5 deltas, block stop, message delta, stop: the SDK drops the ping itself
    assert step["stream/chunks"] == 10


def test_events_of_create_stream_true_are_relayed_unchanged(run, anthropic_client):
    kwargs = dict(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    plain = [event.model_dump() for event in anthropic_client.messages.create(**kwargs)]
    handle = seetrain_autolog.autolog("anthropic", run=run).enable()
    stream = anthropic_client.messages.create(**kwargs)
    assert type(stream) is anthropic.Stream
    recorded = [event.model_dump() for event in stream]
    handle.disable()
    assert recorded == plain
    [step] = steps(read_back(run))
    assert step["api"] == "anthropic.messages.create" and step["usage/output_tokens"] == 12


def test_leaving_a_stream_manager_early_records_a_partial_call(run, anthropic_client):
    seetrain_autolog.autolog("anthropic", run=run).enable()
    with anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    [step] = steps(read_back(run))
    assert step["partial"] == 1 and step["response/text"] == "Hello"


def test_async_create_and_stream_manager(run, async_anthropic_client):
    seetrain_autolog.autolog("anthropic", run=run).enable()

    async def main():
        message = await async_anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        async with async_anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        return message, text, final

    message, text, final = asyncio.run(main())
    first, second = steps(read_back(run))
    assert first["response/text"] == message.content[0].text and first["stream"] == 0
    assert second["api"] == "anthropic.messages.stream" and second["response/text"] == text
    assert second["usage/output_tokens"] == final.usage.output_tokens


def test_an_api_error_reaches_the_caller_and_is_recorded(run, anthropic_client, llm_server):
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    llm_server.queue("/v1/messages", JsonReply(body, status=529))
    seetrain_autolog.autolog("anthropic", run=run).enable()
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert info.value.status_code == 529
    [step] = steps(read_back(run))
    assert step["error"] == 1 and step["error/status_code"] == 529
    assert step["error/type"] == f"anthropic.{type(info.value).__qualname__}"


def test_a_stream_manager_whose_request_fails_is_recorded_as_an_error(run, anthropic_client, llm_server):
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too large"}}
    llm_server.queue("/v1/messages", JsonReply(body, status=400))
    seetrain_autolog.autolog("anthropic", run=run).enable()
    with pytest.raises(anthropic.BadRequestError):
        with anthropic_client.messages.stream(model=MODEL, max_tokens=10**9, messages=MESSAGES):
            pass
    [step] = steps(read_back(run))
    assert step["api"] == "anthropic.messages.stream" and step["error/status_code"] == 400


def test_a_failure_inside_seetrain_is_counted_and_the_stream_still_works(run, anthropic_client, monkeypatch):
    from seetrain_autolog import _recording

    def broken(call, capture_content):
        raise RuntimeError("recording broke")

    monkeypatch.setattr(_recording, "build_log_data", broken)
    seetrain_autolog.autolog("anthropic", run=run).enable()
    with anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        assert stream.get_final_text() == "".join(REPLY_TEXT)
    assert get_integration_error_stats()["anthropic"]["record"]["failures"] == 1
