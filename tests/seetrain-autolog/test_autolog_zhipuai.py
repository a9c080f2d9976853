"""ZhipuAI autolog against the real ``zhipuai`` SDK talking to a local server: chat
completions (plain and streamed) and async-task completions (submit, then poll)."""

from __future__ import annotations

import json

import pytest
import zhipuai

import seetrain
import seetrain_autolog
from autolog_server import JsonReply, read_back, steps

MESSAGES = [{"role": "user", "content": "你好"}]


def test_chat_completion_and_stream(run, zhipu_client, llm_server):
    seetrain_autolog.autolog("zhipuai", run=run).enable()
    response = zhipu_client.chat.completions.create(model="glm-4-flash", messages=MESSAGES, temperature=0.5)
    chunks = list(zhipu_client.chat.completions.create(model="glm-4-flash", messages=MESSAGES, stream=True))
    assert type(chunks[0]).__name__ == "ChatCompletionChunk"

    plain, streamed = steps(read_back(run))
    assert plain["api"] == "zhipuai.chat.completions.create" and plain["model"] == response.model
    assert plain["response/text"] == response.choices[0].message.content
    assert plain["usage/prompt_tokens"] == response.usage.prompt_tokens
    assert plain["usage/total_tokens"] == response.usage.total_tokens
    assert json.loads(plain["request/params"]) == {"model": "glm-4-flash", "temperature": 0.5}
    assert json.loads(plain["request/messages"]) == MESSAGES

    assert streamed["stream"] == 1 and streamed["partial"] == 0 and streamed["stream/chunks"] == len(chunks)
    assert streamed["response/text"] == "".join(c.choices[0].delta.content for c in chunks)
    assert streamed["usage/total_tokens"] == chunks[-1].usage.total_tokens
    assert streamed["finish_reason"] == "stop"


def test_async_task_is_recorded_at_submission_and_when_its_result_arrives(run, zhipu_client):
    seetrain_autolog.autolog("zhipuai", run=run).enable()
    task = zhipu_client.chat.asyncCompletions.create(model="glm-4-plus", messages=MESSAGES)
    polls = [zhipu_client.chat.asyncCompletions.retrieve_completion_result(id=task.id)]
    while polls[-1].task_status == "PROCESSING":
        polls.append(zhipu_client.chat.asyncCompletions.retrieve_completion_result(id=task.id))
    result = polls[-1]
    assert len(polls) == 2 and result.task_status == "SUCCESS"

    submitted, done = steps(read_back(run))  # the "PROCESSING" poll is not a record
    assert submitted["api"] == "zhipuai.chat.asyncCompletions.create"
    assert submitted["task/id"] == task.id and submitted["task/status"] == "PROCESSING"
    assert done["api"] == "zhipuai.chat.asyncCompletions.retrieve_completion_result"
    assert done["task/status"] == "SUCCESS" and done["response/text"] == result.choices[0].message.content
    assert done["usage/total_tokens"] == result.usage.total_tokens and done["task/wait_ms"] > 0
    assert json.loads(done["request/params"]) == {"id": task.id}


def test_an_api_error_is_recorded_and_raised(run, zhipu_client, llm_server):
    body = {"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}}
    llm_server.queue("/api/paas/v4/chat/completions", JsonReply(body, status=400))
    seetrain_autolog.autolog("zhipuai", run=run).enable()
    with pytest.raises(zhipuai.APIRequestFailedError) as info:
        zhipu_client.chat.completions.create(model="glm-0", messages=MESSAGES)
    [step] = steps(read_back(run))
    assert step["error/status_code"] == 400 == info.value.status_code
    assert step["error/type"] == "zhipuai.APIRequestFailedError"


def test_enable_zhipuai_autolog_through_the_integration(llm_server):
    from seetrain.integration import enable_zhipuai_autolog

    autolog = enable_zhipuai_autolog(project="glm", experiment_name="chat", capture_content=False)
    client = zhipuai.ZhipuAI(api_key="test", base_url=llm_server.url + "/api/paas/v4", max_retries=0)
    response = client.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    autolog.finish()
    [api_run] = seetrain.Api().runs(project="glm")
    assert api_run.frameworks == ["zhipuai"]
    [step] = steps(api_run)
    assert step["usage/total_tokens"] == response.usage.total_tokens and "response/text" not in step
