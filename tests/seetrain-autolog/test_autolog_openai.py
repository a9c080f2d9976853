"""OpenAI autolog against the real ``openai`` SDK talking to a local server.

Every value is read back through ``seetrain.Api`` and compared with what the SDK itself
returned (usage, model, text, finish reason) and with what the server received (the params).
"""

from __future__ import annotations

import asyncio
import gc
import json

import openai
import pytest

import seetrain
import seetrain_autolog
from autolog_server import JsonReply, SseReply, openai_chat, read_back, steps, texts
from seetrain.errors import get_integration_error_stats

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"}]


def test_chat_completion_is_one_step_with_usage_model_text_and_params(run, openai_client, llm_server):
    seetrain_autolog.autolog("openai", run=run).enable()
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100,
                                                     temperature=0.2)
    assert type(response) is openai.types.chat.ChatCompletion

    api_run = read_back(run)
    [step] = steps(api_run)
    assert step["step"] == 0
    assert step["api"] == "openai.chat.completions.create"
    assert step["model"] == response.model == "gpt-4o-mini-2024-07-18"
    assert step["usage/prompt_tokens"] == response.usage.prompt_tokens
    assert step["usage/completion_tokens"] == response.usage.completion_tokens
    assert step["usage/total_tokens"] == response.usage.total_tokens
    assert step["usage/prompt_tokens_details/cached_tokens"] == response.usage.prompt_tokens_details.cached_tokens
    assert step["finish_reason"] == response.choices[0].finish_reason == "stop"
    assert step["response/text"] == response.choices[0].message.content
    assert step["response/id"] == response.id
    assert step["latency_ms"] > 0 and step["stream"] == 0 and step["error"] == 0
    sent = llm_server.last("/v1/chat/completions").body
    assert json.loads(step["request/messages"]) == sent["messages"] == MESSAGES
    assert json.loads(step["request/params"]) == {"model": "gpt-4o-mini", "max_tokens": 100, "temperature": 0.2}
    assert api_run.frameworks == ["openai"]
    assert api_run.summary["openai/calls"] == 1 and api_run.summary["openai/errors"] == 0


def test_capture_content_off_keeps_params_and_usage_but_no_content(run, openai_client):
    seetrain_autolog.autolog("openai", run=run, capture_content=False).enable()
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    api_run = read_back(run)
    keys = api_run.keys()
    assert "request/messages" not in keys and "response/text" not in keys
    assert texts(api_run, "request/params") == ['{"model": "gpt-4o-mini"}']
    assert api_run.scalars("usage/total_tokens") == [(0, response.usage.total_tokens)]


def _chunks(stream):
    return [chunk.model_dump() for chunk in stream]


def test_stream_relays_the_sdk_chunks_and_records_text_and_usage_at_the_end(run, openai_client):
    kwargs = dict(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    plain_chunks = _chunks(openai_client.chat.completions.create(**kwargs))  # not recorded: autolog is off

    handle = seetrain_autolog.autolog("openai", run=run).enable()
    stream = openai_client.chat.completions.create(**kwargs)
    assert type(stream) is openai.Stream
    assert run.step == -1  # nothing recorded before the stream ends
    recorded_chunks = _chunks(stream)
    handle.disable()

    assert recorded_chunks == plain_chunks
    usage = recorded_chunks[-1]["usage"]
    [step] = steps(read_back(run))
    assert step["stream"] == 1 and step["partial"] == 0
    assert step["stream/chunks"] == len(recorded_chunks)
    assert step["response/text"] == "".join(c["choices"][0]["delta"]["content"] or "" for c in recorded_chunks
                                            if c["choices"])
    assert step["usage/prompt_tokens"] == usage["prompt_tokens"]
    assert step["usage/completion_tokens"] == usage["completion_tokens"]
    assert step["usage/total_tokens"] == usage["total_tokens"]
    assert step["finish_reason"] == "stop"
    assert 0 < step["time_to_first_chunk_ms"] <= step["latency_ms"]


def test_each_chunk_reaches_the_user_while_the_server_is_still_sending(run, openai_client, llm_server):
    # the server sends 2 events, then waits until the test has the first chunks in hand
    reply = openai_chat({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})
    reply.gate_after = 2
    llm_server.queue("/v1/chat/completions", reply)
    seetrain_autolog.autolog("openai", run=run).enable()
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    first, second = next(stream), next(stream)
    assert reply.gate_opened is None  # the server is still holding the rest back
    assert second.choices[0].delta.content == "Hello"
    reply.gate.set()
    rest = list(stream)
    assert reply.gate_opened is True
    assert "".join(c.choices[0].delta.content or "" for c in [first, second, *rest]) == \
        texts(read_back(run), "response/text")[0]


def test_a_stream_closed_early_is_recorded_as_partial(run, openai_client):
    seetrain_autolog.autolog("openai", run=run).enable()
    with openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        got = [next(stream) for _ in range(3)]
        assert run.step == -1
    # leaving the block closed the response: recorded now, with the text received so far
    assert run.step == 0
    [step] = steps(read_back(run))
    assert step["partial"] == 1 and step["stream/chunks"] == 3
    assert step["response/text"] == "".join(c.choices[0].delta.content for c in got)


def test_a_stream_dropped_without_close_is_recorded_as_partial(run, openai_client):
    seetrain_autolog.autolog("openai", run=run).enable()
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:  # read one chunk, then walk away
        break
    del stream, _
    gc.collect()
    [step] = steps(read_back(run))
    assert step["partial"] == 1 and step["stream/chunks"] == 1


def test_the_stream_helper_is_recorded_once(run, openai_client):
    seetrain_autolog.autolog("openai", run=run).enable()
    with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    [step] = steps(read_back(run))
    assert step["api"] == "openai.chat.completions.create"
    assert step["response/text"] == final.choices[0].message.content and step["partial"] == 0


def test_async_client_calls_and_streams_are_recorded(run, async_openai_client):
    seetrain_autolog.autolog("openai", run=run).enable()

    async def main():
        response = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        assert type(stream) is openai.AsyncStream
        chunks = [chunk async for chunk in stream]
        return response, chunks

    response, chunks = asyncio.run(main())
    first, second = steps(read_back(run))
    assert first["usage/total_tokens"] == response.usage.total_tokens and first["stream"] == 0
    assert first["response/text"] == response.choices[0].message.content
    assert second["stream"] == 1 and second["partial"] == 0
    assert second["usage/total_tokens"] == chunks[-1].usage.total_tokens
    assert second["response/text"] == "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_completions_embeddings_and_responses_are_recorded(run, openai_client, llm_server):
    seetrain_autolog.autolog("openai", run=run).enable()
    completion = openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=7)
    embeddings = openai_client.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"],
                                                 dimensions=4)
    response = openai_client.responses.create(model="gpt-4.1-mini", input="Hello!", instructions="Be terse.")
    events = list(openai_client.responses.create(model="gpt-4.1-mini", input="Hello!", stream=True))

    c, e, r, rs = steps(read_back(run))
    assert c["api"] == "openai.completions.create" and c["request/prompt"] == "Say hi"
    assert c["response/text"] == completion.choices[0].text and c["finish_reason"] == "length"
    assert c["usage/total_tokens"] == completion.usage.total_tokens

    assert e["api"] == "openai.embeddings.create"
    assert e["embeddings/count"] == 2 and e["embeddings/dimensions"] == 4 == len(embeddings.data[0].embedding)
    assert e["usage/prompt_tokens"] == embeddings.usage.prompt_tokens and json.loads(e["request/input"]) == [
        "a cat", "a dog"]

    assert r["api"] == "openai.responses.create" and r["response/text"] == response.output_text
    assert r["usage/input_tokens"] == r["usage/prompt_tokens"] == response.usage.input_tokens
    assert r["usage/output_tokens"] == r["usage/completion_tokens"] == response.usage.output_tokens
    assert r["request/instructions"] == "Be terse." and r["finish_reason"] == "completed"

    final = events[-1].response
    assert rs["stream"] == 1 and rs["response/text"] == final.output_text
    assert rs["usage/total_tokens"] == final.usage.total_tokens and rs["model"] == final.model


def test_an_api_error_reaches_the_caller_unchanged_and_is_recorded(run, openai_client, llm_server):
    body = {"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.",
                      "type": "invalid_request_error", "param": None, "code": "model_not_found"}}
    llm_server.queue("/v1/chat/completions", JsonReply(body, status=404))
    seetrain_autolog.autolog("openai", run=run).enable()
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert info.value.status_code == 404 and info.value.code == "model_not_found"

    api_run = read_back(run)
    [step] = steps(api_run)
    assert step["error"] == 1 and step["error/status_code"] == 404
    assert step["error/type"] == "openai.NotFoundError"
    assert "does not exist" in step["error/message"] and step["model"] == "gpt-9"
    assert api_run.summary["openai/errors"] == 1


def test_an_error_in_the_middle_of_a_stream_is_recorded_and_raised(run, openai_client, llm_server):
    events = [(None, json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                 "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]})),
              (None, json.dumps({"error": {"message": "overloaded", "type": "server_error"}}))]
    llm_server.queue("/v1/chat/completions", SseReply(events))
    seetrain_autolog.autolog("openai", run=run).enable()
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="overloaded"):
        list(stream)
    [step] = steps(read_back(run))
    assert step["error"] == 1 and step["error/type"] == "openai.APIError" and step["response/text"] == "Hi"


def test_a_failure_inside_seetrain_is_counted_and_the_call_returns_normally(run, openai_client, monkeypatch):
    from seetrain_autolog import _recording

    def broken(call, capture_content):
        raise RuntimeError("recording broke")

    monkeypatch.setattr(_recording, "build_log_data", broken)
    seetrain_autolog.autolog("openai", run=run).enable()
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(response) is openai.types.chat.ChatCompletion
    assert response.choices[0].message.content == "Hello! How can I help you today?"
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(chunks) == 7

    stats = get_integration_error_stats()["openai"]["record"]
    assert stats["calls"] == 2 and stats["failures"] == 2 and "recording broke" in stats["last_error"]
    assert run.step == -1


def test_a_failure_reading_a_chunk_stops_reading_but_not_relaying(run, openai_client, monkeypatch):
    from seetrain_autolog import _resolvers

    def broken(self, chunk):
        raise ValueError("bad chunk")

    monkeypatch.setattr(_resolvers._ChatChunks, "add", broken)
    seetrain_autolog.autolog("openai", run=run).enable()
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(chunks) == 7
    assert get_integration_error_stats()["openai"]["stream"]["failures"] == 1
    [step] = steps(read_back(run))
    assert step["stream/chunks"] == 7 and "response/text" not in step


def test_the_seed_example_runs_and_records_the_module_level_call(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    openai._reset_client()

    from seetrain.integration import enable_openai_autolog

    # 启用OpenAI自动日志记录
    autolog = enable_openai_autolog(
        project="openai_project",
        experiment_name="chat_completion"
    )

    # 正常使用OpenAI API，会自动记录
    import openai as openai_module
    response = openai_module.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "Hello!"}],
        max_tokens=100
    )

    # 禁用自动日志记录
    autolog.disable()

    openai_module.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "again"}])
    autolog.finish()
    [api_run] = seetrain.Api().runs(project="openai_project")
    assert api_run.name == "chat_completion" and api_run.frameworks == ["openai"]
    [step] = steps(api_run)  # the call after disable() is not recorded
    assert step["usage/total_tokens"] == response.usage.total_tokens
    assert step["response/text"] == response.choices[0].message.content
    assert json.loads(step["request/messages"]) == [{"role": "user", "content": "Hello!"}]
    assert json.loads(step["request/params"]) == {"model": "gpt-3.5-turbo", "max_tokens": 100}


def test_an_async_stream_closed_early_is_recorded_as_partial(run, async_openai_client):
    seetrain_autolog.autolog("openai", run=run).enable()

    async def main():
        stream = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                   stream=True)
        got = [await stream.__anext__() for _ in range(2)]
        await stream.close()
        return got

    got = asyncio.run(main())
    [step] = steps(read_back(run))
    assert step["partial"] == 1 and step["stream/chunks"] == 2
    assert step["response/text"] == "".join(c.choices[0].delta.content for c in got)


def test_parse_and_the_responses_stream_helper_are_recorded_once_each(run, openai_client):
    seetrain_autolog.autolog("openai", run=run).enable()
    parsed = openai_client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES)
    with openai_client.responses.stream(model="gpt-4.1-mini", input="Hello!") as stream:
        final = stream.get_final_response()
    p, r = steps(read_back(run))
    assert p["api"] == "openai.chat.completions.parse" and p["response/text"] == parsed.choices[0].message.content
    assert r["api"] == "openai.responses.create" and r["stream"] == 1 and r["partial"] == 0
    assert r["response/text"] == final.output_text and r["usage/total_tokens"] == final.usage.total_tokens
