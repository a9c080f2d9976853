"""Resolvers: what one API's request and response say, read without changing either.

A resolver splits the keyword arguments of a call into its *parameters* (model, temperature,
max_tokens … recorded always) and its *content* (messages, prompt, input, system … recorded
only with ``capture_content``), and reads a response -- or the chunks of a stream, through an
:class:`Accumulator` -- into a :class:`Reply`. It only reads: it never consumes an iterator the
user passed, never calls a method with side effects on the response, and works on the SDK's
pydantic models and on plain dicts alike (attribute or key access).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Reply", "Resolver", "Accumulator", "RESOLVERS", "plain", "is_given"]

# the SDKs' "argument not passed" sentinels (openai/anthropic NotGiven and Omit, zhipuai NotGiven)
_SENTINELS = ("NotGiven", "Omit")
# request arguments never recorded: headers may carry credentials
_NEVER_RECORDED = frozenset({"extra_headers"})
_MAX_DEPTH = 20
_SCALARS = frozenset({str, int, float, bool})
_MISSING = object()


def is_given(value: Any) -> bool:
    """``False`` for the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels."""
    return type(value).__name__ not in _SENTINELS


def plain(value: Any, _depth: int = 0) -> Any:
    """A JSON-serialisable copy of a request or response value.

    Only containers that can be read without side effects are walked (dicts, lists,
    tuples, pydantic models); any other iterable -- a generator of messages, say -- is
    recorded by its ``repr`` rather than consumed, so the SDK still gets all of it.
    """
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value
    if _depth > _MAX_DEPTH:
        return repr(value)
    if kind is dict or isinstance(value, Mapping):
        return {str(k): plain(v, _depth + 1) for k, v in value.items() if type(v).__name__ not in _SENTINELS}
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [plain(v, _depth + 1) for v in value]
    if isinstance(value, (bool, int, float, str)):  # subclasses (enums of str …)
        return value
    if isinstance(value, type):  # response_format=MyModel in parse()
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return plain(dump(mode="json", exclude_none=True), _depth + 1)
        except Exception:  # a model that cannot dump itself is recorded by its repr
            return repr(value)
    return repr(value)


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]``, whichever the object has."""
    if obj is None:
        return default
    if type(obj) is dict:
        return obj.get(name, default)
    value = getattr(obj, name, _MISSING)
    if value is not _MISSING:
        return value
    return obj.get(name, default) if isinstance(obj, Mapping) else default


def _usage_numbers(usage: Any) -> dict[str, float]:
    """The numeric leaves of a usage object, flattened with ``/`` (``prompt_tokens_details/cached_tokens``)."""
    dump = getattr(usage, "model_dump", None)
    data = dump(exclude_none=True) if callable(dump) else usage
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        _numeric_leaves(data, "", out)
    return out


def _numeric_leaves(data: Mapping, prefix: str, out: dict[str, float]) -> None:
    for key, value in data.items():
        kind = type(value)
        if kind is int or kind is float:
            out[prefix + key] = float(value)
        elif isinstance(value, Mapping):
            _numeric_leaves(value, f"{prefix}{key}/", out)
        elif hasattr(value, "model_dump"):  # a nested model in a dict someone built by hand
            _numeric_leaves(value.model_dump(exclude_none=True), f"{prefix}{key}/", out)


@dataclass
class Reply:
    """What a response (or the chunks of a stream) said."""

    model: str | None = None
    id: str | None = None
    #: text parts per choice index, joined at the end
    texts: dict[int, list[str]] = field(default_factory=dict)
    finish_reasons: dict[int, str] = field(default_factory=dict)
    #: the provider's own usage names, flattened
    usage: dict[str, float] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: further numbers to log (``embeddings/count`` …)
    scalars: dict[str, float] = field(default_factory=dict)
    #: further labels to log as text (``task/status`` …)
    labels: dict[str, str] = field(default_factory=dict)

    def add_text(self, index: int, text: Any) -> None:
        if isinstance(text, str):
            self.texts.setdefault(int(index or 0), []).append(text)

    def set_usage(self, usage: Any) -> None:
        """Merge a usage object: a later report of a name replaces the earlier one (Anthropic
        streams report ``output_tokens`` cumulatively)."""
        if usage is not None:
            self.usage.update(_usage_numbers(usage))

    def set_finish_reason(self, index: int, reason: Any) -> None:
        if reason is not None and is_given(reason):
            self.finish_reasons[int(index or 0)] = str(reason)

    def note_model(self, obj: Any) -> None:
        model, ident = field_of(obj, "model"), field_of(obj, "id")
        if isinstance(model, str) and model:
            self.model = model
        if isinstance(ident, str) and ident:
            self.id = ident

    @property
    def text(self) -> str | None:
        """The response text; several choices are separated by a ``[choice i]`` header."""
        if not self.texts:
            return None
        if len(self.texts) == 1:
            return "".join(next(iter(self.texts.values())))
        return "\n\n".join(f"[choice {i}]\n{''.join(parts)}" for i, parts in sorted(self.texts.items()))

    @property
    def finish_reason(self) -> str | None:
        if not self.finish_reasons:
            return None
        return ",".join(reason for _, reason in sorted(self.finish_reasons.items()))


class Accumulator:
    """Reads the chunks of one stream, in order, into a :class:`Reply`."""

    def __init__(self) -> None:
        self.reply = Reply()

    def add(self, chunk: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Resolver:
    """Reads the requests and responses of one API (``openai.chat.completions`` …)."""

    #: the API's name, the prefix of the ``api`` label of each record
    api: str = ""
    #: keyword arguments that carry conversation content (recorded with capture_content only)
    content_params: tuple[str, ...] = ()
    #: names of positional arguments after ``self``, in order
    positional: tuple[str, ...] = ()

    def split_request(self, args: tuple, kwargs: Mapping[str, Any], with_content: bool
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(parameters, content)`` of a call, both JSON-safe snapshots."""
        given = dict(zip(self.positional, args, strict=False))
        given.update(kwargs)
        params: dict[str, Any] = {}
        content: dict[str, Any] = {}
        for key, value in given.items():
            if not is_given(value) or key in _NEVER_RECORDED:
                continue
            if value is None and key.startswith("extra_"):  # helpers pass extra_body=None through
                continue
            if key in self.content_params:
                if with_content:
                    content[key] = value if isinstance(value, str) else plain(value)
            else:
                params[key] = plain(value)
        return params, content

    def should_record(self, result: Any) -> bool:
        """Whether a returned value makes a record (a polling call that says "not yet" does not)."""
        return True

    def read(self, result: Any, reply: Reply) -> None:
        """Read a complete (non-stream) response into ``reply``."""
        reply.note_model(result)
        reply.set_usage(field_of(result, "usage"))

    def accumulator(self) -> Accumulator | None:
        """A fresh accumulator for a stream of this API (``None``: streams are not read)."""
        return None


# -- OpenAI and OpenAI-shaped APIs --------------------------------------------------------------

def _tool_call(tc: Any) -> dict[str, Any]:
    fn = field_of(tc, "function")
    return {"id": field_of(tc, "id"), "name": field_of(fn, "name"), "arguments": field_of(fn, "arguments")}


class ChatCompletions(Resolver):
    """OpenAI ``chat.completions`` (and ZhipuAI's, which has the same shape)."""

    content_params = ("messages",)

    def __init__(self, api: str) -> None:
        self.api = api

    def read(self, result: Any, reply: Reply) -> None:
        super().read(result, reply)
        for choice in field_of(result, "choices") or ():
            index = field_of(choice, "index", 0)
            message = field_of(choice, "message")
            reply.add_text(index, field_of(message, "content"))
            reply.set_finish_reason(index, field_of(choice, "finish_reason"))
            reply.tool_calls.extend(_tool_call(tc) for tc in field_of(message, "tool_calls") or ())

    def accumulator(self) -> Accumulator:
        return _ChatChunks()


class _ChatChunks(Accumulator):
    def __init__(self) -> None:
        super().__init__()
        self._tools: dict[tuple[int, int], dict[str, Any]] = {}

    def add(self, chunk: Any) -> None:
        reply = self.reply
        reply.note_model(chunk)
        for choice in field_of(chunk, "choices") or ():
            index = field_of(choice, "index", 0)
            delta = field_of(choice, "delta")
            reply.add_text(index, field_of(delta, "content"))
            reply.set_finish_reason(index, field_of(choice, "finish_reason"))
            for tc in field_of(delta, "tool_calls") or ():
                key = (int(index or 0), int(field_of(tc, "index", 0) or 0))
                call = self._tools.get(key)
                if call is None:
                    call = self._tools[key] = {"id": None, "name": None, "arguments": ""}
                    reply.tool_calls.append(call)
                fn = field_of(tc, "function")
                call["id"] = field_of(tc, "id") or call["id"]
                call["name"] = field_of(fn, "name") or call["name"]
                call["arguments"] += field_of(fn, "arguments") or ""
        usage = field_of(chunk, "usage")
        if usage is not None:  # the last chunk with stream_options={"include_usage": True}
            reply.set_usage(usage)


class Completions(Resolver):
    """OpenAI legacy ``completions``."""

    api = "openai.completions"
    content_params = ("prompt", "suffix")

    def read(self, result: Any, reply: Reply) -> None:
        super().read(result, reply)
        _read_completion_choices(result, reply)

    def accumulator(self) -> Accumulator:
        return _CompletionChunks()


def _read_completion_choices(obj: Any, reply: Reply) -> None:
    for choice in field_of(obj, "choices") or ():
        index = field_of(choice, "index", 0)
        reply.add_text(index, field_of(choice, "text"))
        reply.set_finish_reason(index, field_of(choice, "finish_reason"))


class _CompletionChunks(Accumulator):
    def add(self, chunk: Any) -> None:
        self.reply.note_model(chunk)
        _read_completion_choices(chunk, self.reply)
        if field_of(chunk, "usage") is not None:
            self.reply.set_usage(field_of(chunk, "usage"))


class Embeddings(Resolver):
    """OpenAI ``embeddings``: how many vectors of which size, and the tokens used."""

    api = "openai.embeddings"
    content_params = ("input",)

    def read(self, result: Any, reply: Reply) -> None:
        super().read(result, reply)
        data = field_of(result, "data") or []
        reply.scalars["embeddings/count"] = float(len(data))
        first = field_of(data[0], "embedding") if data else None
        if isinstance(first, list):  # a str when encoding_format="base64"
            reply.scalars["embeddings/dimensions"] = float(len(first))


class Responses(Resolver):
    """OpenAI ``responses``."""

    api = "openai.responses"
    content_params = ("input", "instructions")

    def read(self, result: Any, reply: Reply, *, text: bool = True) -> None:
        super().read(result, reply)
        status = field_of(result, "status")
        reason = field_of(field_of(result, "incomplete_details"), "reason")
        reply.set_finish_reason(0, reason or status)
        for item in field_of(result, "output") or ():
            kind = field_of(item, "type")
            if kind == "function_call":
                reply.tool_calls.append({"id": field_of(item, "call_id"), "name": field_of(item, "name"),
                                         "arguments": field_of(item, "arguments")})
            elif kind == "message" and text:
                for part in field_of(item, "content") or ():
                    if field_of(part, "type") == "output_text":
                        reply.add_text(0, field_of(part, "text"))

    def accumulator(self) -> Accumulator:
        return _ResponseEvents(self)


class _ResponseEvents(Accumulator):
    _FINAL = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self, resolver: Responses) -> None:
        super().__init__()
        self._resolver = resolver

    def add(self, event: Any) -> None:
        kind = field_of(event, "type")
        if kind == "response.output_text.delta":
            self.reply.add_text(0, field_of(event, "delta"))
        elif kind in self._FINAL:
            # the text came as deltas already; the final event brings usage, status, tool calls
            self._resolver.read(field_of(event, "response"), self.reply, text=False)
        elif kind == "response.created":
            self.reply.note_model(field_of(event, "response"))


# -- Anthropic ------------------------------------------------------------------------------------

class AnthropicMessages(Resolver):
    """Anthropic ``messages`` (``create``, ``parse`` and the events of ``stream``)."""

    api = "anthropic.messages"
    content_params = ("messages", "system")

    def read(self, result: Any, reply: Reply) -> None:
        super().read(result, reply)
        for block in field_of(result, "content") or ():
            kind = field_of(block, "type")
            if kind == "text":
                reply.add_text(0, field_of(block, "text"))
            elif kind == "tool_use":
                reply.tool_calls.append({"id": field_of(block, "id"), "name": field_of(block, "name"),
                                         "arguments": json.dumps(plain(field_of(block, "input")), sort_keys=True)})
        reply.set_finish_reason(0, field_of(result, "stop_reason"))

    def accumulator(self) -> Accumulator:
        return _AnthropicEvents()


class _AnthropicEvents(Accumulator):
    def __init__(self) -> None:
        super().__init__()
        self._tools: dict[int, dict[str, Any]] = {}

    def add(self, event: Any) -> None:
        kind = field_of(event, "type")
        reply = self.reply
        if kind == "content_block_delta":
            delta = field_of(event, "delta")
            dtype = field_of(delta, "type")
            if dtype == "text_delta":
                reply.add_text(0, field_of(delta, "text"))
            elif dtype == "input_json_delta":
                call = self._tools.get(field_of(event, "index", 0))
                if call is not None:
                    call["arguments"] += field_of(delta, "partial_json") or ""
        elif kind == "message_start":
            message = field_of(event, "message")
            reply.note_model(message)
            reply.set_usage(field_of(message, "usage"))
        elif kind == "content_block_start":
            block = field_of(event, "content_block")
            if field_of(block, "type") == "tool_use":
                call = {"id": field_of(block, "id"), "name": field_of(block, "name"), "arguments": ""}
                self._tools[field_of(event, "index", 0)] = call
                reply.tool_calls.append(call)
            elif field_of(block, "type") == "text":
                reply.add_text(0, field_of(block, "text"))
        elif kind == "message_delta":
            reply.set_finish_reason(0, field_of(field_of(event, "delta"), "stop_reason"))
            reply.set_usage(field_of(event, "usage"))


# -- ZhipuAI async tasks ----------------------------------------------------------------------------

class _TaskClock:
    """When each async task was submitted (bounded: polling code may never fetch a result)."""

    def __init__(self, size: int = 1024) -> None:
        self._lock = threading.Lock()
        self._submitted: OrderedDict[str, float] = OrderedDict()
        self._size = size

    def submitted(self, task_id: str) -> None:
        with self._lock:
            self._submitted[task_id] = time.monotonic()
            while len(self._submitted) > self._size:
                self._submitted.popitem(last=False)

    def waited_ms(self, task_id: str) -> float | None:
        with self._lock:
            start = self._submitted.pop(task_id, None)
        return None if start is None else (time.monotonic() - start) * 1000.0


_task_clock = _TaskClock()


class ZhipuAsyncSubmit(Resolver):
    """ZhipuAI ``chat.asyncCompletions.create``: the task is submitted, its id and status recorded."""

    api = "zhipuai.chat.asyncCompletions"
    content_params = ("messages",)

    def read(self, result: Any, reply: Reply) -> None:
        super().read(result, reply)
        task_id, status = field_of(result, "id"), field_of(result, "task_status")
        if isinstance(task_id, str):
            reply.labels["task/id"] = task_id
            _task_clock.submitted(task_id)
        if status is not None:
            reply.labels["task/status"] = str(status)


class ZhipuAsyncResult(ChatCompletions):
    """ZhipuAI ``chat.asyncCompletions.retrieve_completion_result``: recorded once the task is
    done (``SUCCESS`` or ``FAIL``); the polls that answer ``PROCESSING`` are not records."""

    positional = ("id",)
    content_params = ()
    _DONE = ("SUCCESS", "FAIL")

    def __init__(self) -> None:
        super().__init__("zhipuai.chat.asyncCompletions")

    def should_record(self, result: Any) -> bool:
        return field_of(result, "task_status") in self._DONE

    def read(self, result: Any, reply: Reply) -> None:
        super().read(result, reply)
        task_id = field_of(result, "id")
        reply.labels["task/status"] = str(field_of(result, "task_status"))
        if isinstance(task_id, str):
            reply.labels["task/id"] = task_id
            waited = _task_clock.waited_ms(task_id)
            if waited is not None:
                reply.scalars["task/wait_ms"] = waited

    def accumulator(self) -> None:
        return None


#: resolvers by the names :mod:`seetrain_autolog._providers` uses
RESOLVERS: dict[str, Resolver] = {
    "openai.chat.completions": ChatCompletions("openai.chat.completions"),
    "openai.completions": Completions(),
    "openai.embeddings": Embeddings(),
    "openai.responses": Responses(),
    "anthropic.messages": AnthropicMessages(),
    "zhipuai.chat.completions": ChatCompletions("zhipuai.chat.completions"),
    "zhipuai.chat.asyncCompletions": ZhipuAsyncSubmit(),
    "zhipuai.chat.asyncCompletions.result": ZhipuAsyncResult(),
}
