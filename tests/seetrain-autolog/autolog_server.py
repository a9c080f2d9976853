"""A local HTTP server that answers like the OpenAI, Anthropic and ZhipuAI APIs.

The real SDKs talk to it over a real socket on 127.0.0.1. Bodies follow the providers'
documented JSON and server-sent-event formats (ids, ``object`` fields, usage blocks, the
usage chunk of ``stream_options.include_usage``, Anthropic's ``message_start`` …
``message_stop`` events with ``ping``s, the ``[DONE]`` terminator). Every request is kept in
:attr:`LLMServer.requests` so a test can compare what the SDK sent with what was recorded.

A test can queue a reply for a path (:meth:`LLMServer.queue`), for instance an error body
with its status, or a stream that stops after a chunk until the test opens a gate -- which
shows that chunks reach the user as they arrive, not when the stream ends.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1_735_000_000
REPLY_TEXT = ["Hello", "! How", " can I", " help you", " today?"]


@dataclass
class JsonReply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SseReply:
    #: (event name or None, data string)
    events: list[tuple[str | None, str]]
    #: after this many events, wait for ``gate`` to be set (at most ``gate_timeout`` s)
    gate_after: int | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    gate_timeout: float = 10.0
    #: whether the gate was opened in time (None until the gate is reached)
    gate_opened: bool | None = None


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _words(value: Any) -> int:
    """A deterministic token count for a request's content."""
    return len(json.dumps(value, ensure_ascii=False).split())


# -- OpenAI ------------------------------------------------------------------------------------------

def openai_usage(prompt: int, completion: int) -> dict:
    return {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 2, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def openai_chat(body: dict) -> JsonReply | SseReply:
    model = body["model"] + "-2024-07-18"
    prompt = _words(body["messages"])
    n = body.get("n") or 1
    if not body.get("stream"):
        return JsonReply({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": CREATED,
            "model": model, "system_fingerprint": "fp_44709d6fcb", "service_tier": "default",
            "choices": [{"index": i, "message": {"role": "assistant", "content": "".join(REPLY_TEXT),
                                                 "refusal": None, "annotations": []},
                         "logprobs": None, "finish_reason": "stop"} for i in range(n)],
            "usage": openai_usage(prompt, 9 * n),
        })
    base = {"id": "chatcmpl-stream-1", "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "system_fingerprint": "fp_44709d6fcb", "service_tier": "default"}
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish: str | None = None) -> str:
        c = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        if include_usage:
            c["usage"] = None
        return json.dumps(c)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in REPLY_TEXT]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(json.dumps(dict(base, choices=[], usage=openai_usage(prompt, len(REPLY_TEXT)))))
    events.append("[DONE]")
    return SseReply([(None, e) for e in events])


def openai_completion(body: dict) -> JsonReply | SseReply:
    model = body["model"]
    prompt = _words(body["prompt"])
    if not body.get("stream"):
        return JsonReply({
            "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": CREATED, "model": model,
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"text": "".join(REPLY_TEXT), "index": 0, "logprobs": None, "finish_reason": "length"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 7, "total_tokens": prompt + 7},
        })
    events = [json.dumps({"id": "cmpl-s1", "object": "text_completion", "created": CREATED, "model": model,
                          "choices": [{"text": piece, "index": 0, "logprobs": None,
                                       "finish_reason": "stop" if i == len(REPLY_TEXT) - 1 else None}]})
              for i, piece in enumerate(REPLY_TEXT)]
    return SseReply([(None, e) for e in [*events, "[DONE]"]])


def openai_embeddings(body: dict) -> JsonReply:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dims = body.get("dimensions") or 8
    tokens = _words(inputs)
    return JsonReply({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [round(0.01 * (i + j), 4) for j in range(dims)]}
                 for i in range(len(inputs))],
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })


def _openai_response_object(body: dict, status: str, text: str | None) -> dict:
    prompt = _words(body.get("input"))
    output = [] if text is None else [{
        "type": "message", "id": "msg_67ccd3acc8d48190a77525dc", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }]
    return {
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac6", "object": "response", "created_at": CREATED,
        "status": status, "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body["model"] + "-2025-04-14",
        "output": output, "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "truncation": "disabled", "user": None, "metadata": {},
        "usage": None if text is None else {
            "input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + 9},
    }


def openai_responses(body: dict) -> JsonReply | SseReply:
    text = "".join(REPLY_TEXT)
    if not body.get("stream"):
        return JsonReply(_openai_response_object(body, "completed", text))
    seq = iter(range(1000))
    events: list[tuple[str | None, str]] = []

    def add(kind: str, **data: Any) -> None:
        events.append((kind, json.dumps({"type": kind, "sequence_number": next(seq), **data})))

    add("response.created", response=_openai_response_object(body, "in_progress", None))
    add("response.in_progress", response=_openai_response_object(body, "in_progress", None))
    item_id = "msg_67ccd3acc8d48190a77525dc"
    add("response.output_item.added", output_index=0,
        item={"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []})
    add("response.content_part.added", item_id=item_id, output_index=0, content_index=0,
        part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
    for piece in REPLY_TEXT:
        add("response.output_text.delta", item_id=item_id, output_index=0, content_index=0, delta=piece, logprobs=[])
    add("response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=text, logprobs=[])
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    add("response.content_part.done", item_id=item_id, output_index=0, content_index=0, part=part)
    add("response.output_item.done", output_index=0,
        item={"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]})
    add("response.completed", response=_openai_response_object(body, "completed", text))
    return SseReply(events)


# -- Anthropic -----------------------------------------------------------------------------------------

def anthropic_messages(body: dict) -> JsonReply | SseReply:
    model = body["model"]
    prompt = _words(body["messages"]) + (_words(body["system"]) if body.get("system") else 0)
    usage = {"input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4,
             "output_tokens": 12, "service_tier": "standard"}
    if not body.get("stream"):
        return JsonReply({
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "".join(REPLY_TEXT)}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage,
        })
    events: list[tuple[str | None, str]] = []

    def add(kind: str, **data: Any) -> None:
        events.append((kind, json.dumps({"type": kind, **data})))

    add("message_start", message={
        "id": "msg_01stream", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1)})
    add("content_block_start", index=0, content_block={"type": "text", "text": ""})
    add("ping")
    for piece in REPLY_TEXT:
        add("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
    add("content_block_stop", index=0)
    add("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 12})
    add("message_stop")
    return SseReply(events)


# -- ZhipuAI ----------------------------------------------------------------------------------------------

def zhipu_choice_message() -> dict:
    return {"role": "assistant", "content": "你好！有什么可以帮你的吗？"}


def zhipu_chat(body: dict) -> JsonReply | SseReply:
    prompt = _words(body["messages"])
    usage = {"prompt_tokens": prompt, "completion_tokens": 8, "total_tokens": prompt + 8}
    if not body.get("stream"):
        return JsonReply({"id": "20250825163320c3f0e1b0a8a94a1b", "created": CREATED, "model": body["model"],
                          "request_id": "20250825163320c3f0e1b0a8a94a1b",
                          "choices": [{"index": 0, "finish_reason": "stop", "message": zhipu_choice_message()}],
                          "usage": usage})
    pieces = ["你好", "！有什么", "可以帮你的吗？"]
    events = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        chunk = {"id": "20250825stream", "created": CREATED, "model": body["model"],
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                              **({"finish_reason": "stop"} if last else {})}]}
        if last:
            chunk["usage"] = usage
        events.append((None, json.dumps(chunk, ensure_ascii=False)))
    events.append((None, "[DONE]"))
    return SseReply(events)


class LLMServer:
    """The server; ``url`` is its base (``http://127.0.0.1:PORT``)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._queued: dict[str, list[JsonReply | SseReply]] = {}
        self._lock = threading.Lock()
        self._polls: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # a short poll interval: shutdown() waits up to one interval
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="llm-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def queue(self, path: str, reply: JsonReply | SseReply) -> JsonReply | SseReply:
        """Answer the next request to ``path`` with ``reply`` (instead of the default one)."""
        with self._lock:
            self._queued.setdefault(path, []).append(reply)
        return reply

    def last(self, path: str) -> Request:
        return [r for r in self.requests if r.path == path][-1]

    # -- default answers ---------------------------------------------------------------------------------
    def _default(self, method: str, path: str, body: Any) -> JsonReply | SseReply:
        routes = {
            "/v1/chat/completions": openai_chat,
            "/v1/completions": openai_completion,
            "/v1/embeddings": openai_embeddings,
            "/v1/responses": openai_responses,
            "/v1/messages": anthropic_messages,
            "/api/paas/v4/chat/completions": zhipu_chat,
        }
        if path in routes:
            return routes[path](body)
        if path == "/api/paas/v4/async/chat/completions":
            return JsonReply({"id": "task-7281", "request_id": "req-7281", "model": body["model"],
                              "task_status": "PROCESSING"})
        if path.startswith("/api/paas/v4/async-result/"):
            task_id = path.rsplit("/", 1)[1]
            with self._lock:
                self._polls[task_id] = polls = self._polls.get(task_id, 0) + 1
            if polls == 1:  # the first poll: not done yet
                return JsonReply({"id": task_id, "request_id": "req-7281", "model": "glm-4-plus",
                                  "task_status": "PROCESSING"})
            prompt = 11
            return JsonReply({"id": task_id, "request_id": "req-7281", "model": "glm-4-plus",
                              "task_status": "SUCCESS",
                              "choices": [{"index": 0, "finish_reason": "stop", "message": zhipu_choice_message()}],
                              "usage": {"prompt_tokens": prompt, "completion_tokens": 8, "total_tokens": prompt + 8}})
        return JsonReply({"error": {"message": f"Unknown path {path}", "type": "invalid_request_error"}}, 404)

    # -- HTTP -----------------------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path.split("?", 1)[0]
        self.requests.append(Request(method, path, dict(handler.headers), body))
        with self._lock:
            queued = self._queued.get(path)
            reply = queued.pop(0) if queued else None
        if reply is None:
            reply = self._default(method, path, body)
        try:
            if isinstance(reply, JsonReply):
                self._send_json(handler, reply)
            else:
                self._send_sse(handler, reply)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: fine
            handler.close_connection = True

    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, reply: JsonReply) -> None:
        data = json.dumps(reply.body, ensure_ascii=False).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("x-request-id", "req_test_123")
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    @staticmethod
    def _send_sse(handler: BaseHTTPRequestHandler, reply: SseReply) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def chunk(data: bytes) -> None:
            handler.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        for i, (event, data) in enumerate(reply.events):
            text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
            chunk(text.encode())
            if reply.gate_after is not None and i + 1 == reply.gate_after:
                reply.gate_opened = reply.gate.wait(reply.gate_timeout)
        chunk(b"")


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true (for records delivered by another thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


# -- reading what was recorded -------------------------------------------------------------------------

def read_back(run: Any) -> Any:
    """Finish ``run`` (every record delivered) and read it back through ``seetrain.Api``."""
    import seetrain

    if not run.finished:
        run.finish()
    return seetrain.Api().run(run.id)


def texts(api_run: Any, key: str) -> list[str]:
    """The texts logged under ``key``, by step."""
    return [item.text for item in api_run.media(key)]


def steps(api_run: Any) -> list[dict]:
    """One dict per step with every scalar *and* every text of it (texts as str)."""
    by_step: dict[int, dict] = {row["step"]: dict(row) for row in api_run.history()}
    for key, kind in api_run.key_kinds().items():
        if kind == "text":
            for item in api_run.media(key):
                by_step.setdefault(item.step, {"step": item.step})[key] = item.text
    return [by_step[s] for s in sorted(by_step)]
