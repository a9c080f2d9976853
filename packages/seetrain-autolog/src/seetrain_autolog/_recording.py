"""One recorded SDK call (:class:`Call`) and the step it becomes (:func:`build_log_data`).

A call is recorded once: when the method returns (or raises), or -- for a stream -- when
the stream ends, fails, is closed early or is garbage-collected. Everything here runs in the
caller's thread and costs microseconds: reading a few attributes of the response, one JSON
encoding of the request, one ``run.log``. Nothing here may raise into the caller: the
instrumentor catches and counts whatever goes wrong (``seetrain.errors``).
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from seetrain.errors import record_failure
from seetrain.media import Text

from ._resolvers import Accumulator, Reply, Resolver, plain

if TYPE_CHECKING:
    from ._instrumentor import Instrumentor

__all__ = ["Call", "build_log_data", "MAX_ERROR_MESSAGE"]

#: error messages are cut to this many characters
MAX_ERROR_MESSAGE = 2000


class Call:
    """One SDK call being recorded.

    :param instrumentor: where the finished record is delivered (to every attached run).
    :param api: the label of the call (``"openai.chat.completions.create"``).
    :param resolver: reads the request, the response and the chunks.
    :param args: the positional arguments after ``self``.
    :param kwargs: the keyword arguments.
    :param started: ``time.perf_counter()`` when the SDK method was entered.
    """

    def __init__(self, instrumentor: Instrumentor, api: str, resolver: Resolver, args: tuple,
                 kwargs: dict[str, Any], started: float) -> None:
        self.instrumentor = instrumentor
        self.provider = instrumentor.provider.name
        self.api = api
        self.resolver = resolver
        self.started = started
        # a snapshot now: the user may change the messages list before a stream ends
        self.params, self.content = resolver.split_request(args, kwargs, instrumentor.wants_content())
        model = kwargs.get("model")
        self.request_model = model if isinstance(model, str) else None
        self.reply = Reply()
        self.stream = False
        self.partial = False
        self.error: BaseException | None = None
        self.latency_ms: float | None = None
        self.first_chunk_ms: float | None = None
        self.chunks = 0
        #: set while the SDK's own iterator is being advanced (see _streams)
        self.reading = False
        self._accumulator: Accumulator | None = None
        self._ended = False
        self._lock = threading.Lock()

    # -- streams ------------------------------------------------------------------------------
    def start_stream(self) -> None:
        """Mark the call as a stream whose chunks :meth:`chunk` will receive."""
        self.stream = True
        self._accumulator = self.resolver.accumulator()
        if self._accumulator is not None:
            self.reply = self._accumulator.reply

    def chunk(self, item: Any) -> None:
        """Read one chunk, as the SDK yielded it. Never raises."""
        if self.first_chunk_ms is None:
            self.first_chunk_ms = (time.perf_counter() - self.started) * 1000.0
        self.chunks += 1
        accumulator = self._accumulator
        if accumulator is None:
            return
        try:
            accumulator.add(item)
        except Exception as exc:
            # stop reading this stream, keep relaying it; what was read so far is still recorded
            self._accumulator = None
            record_failure(self.provider, "stream", exc)

    # -- end ------------------------------------------------------------------------------------
    def read(self, result: Any) -> None:
        """Read a complete response."""
        self.resolver.read(result, self.reply)

    def end(self, error: BaseException | None = None, partial: bool = False) -> None:
        """Record the call (the first time only). Never raises."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.latency_ms = (time.perf_counter() - self.started) * 1000.0
        self.error = error
        self.partial = partial
        try:
            self.instrumentor.deliver(self)
        except Exception as exc:
            record_failure(self.provider, "record", exc)

    @property
    def ended(self) -> bool:
        return self._ended


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if code is None:
        code = getattr(getattr(exc, "response", None), "status_code", None)
    return code if isinstance(code, int) else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def build_log_data(call: Call, capture_content: bool) -> dict[str, Any]:
    """The values one call logs as one step (see ``docs/adapters/autolog.md`` for the keys)."""
    reply = call.reply
    data: dict[str, Any] = {
        "api": Text(call.api),
        "latency_ms": call.latency_ms,
        "stream": 1.0 if call.stream else 0.0,
        "error": 1.0 if call.error is not None else 0.0,
        "request/params": Text(_json(call.params)),
    }
    model = reply.model or call.request_model
    if model:
        data["model"] = Text(model)
    if call.stream:
        data["partial"] = 1.0 if call.partial else 0.0
        data["stream/chunks"] = float(call.chunks)
        if call.first_chunk_ms is not None:
            data["time_to_first_chunk_ms"] = call.first_chunk_ms
    data.update(usage_values(reply.usage))
    if reply.finish_reason:
        data["finish_reason"] = Text(reply.finish_reason)
    if reply.id:
        data["response/id"] = Text(reply.id)
    data.update(reply.scalars)
    data.update({key: Text(value) for key, value in reply.labels.items()})
    if call.error is not None:
        exc = call.error
        data["error/type"] = Text(f"{type(exc).__module__.partition('.')[0]}.{type(exc).__qualname__}")
        data["error/message"] = Text(str(exc)[:MAX_ERROR_MESSAGE])
        code = _status_code(exc)
        if code is not None:
            data["error/status_code"] = float(code)
    if capture_content:
        for name, value in call.content.items():
            data[f"request/{name}"] = Text(value if isinstance(value, str) else _json(value))
        text = reply.text
        if text is not None:
            data["response/text"] = Text(text)
        if reply.tool_calls:
            data["response/tool_calls"] = Text(_json(plain(reply.tool_calls)))
    return data


def usage_values(usage: dict[str, float]) -> dict[str, float]:
    """``usage/...`` values: the provider's own names, plus ``prompt_tokens``,
    ``completion_tokens`` and ``total_tokens`` computed where the provider names them otherwise.

    Anthropic's ``input_tokens`` leaves out cached input, so ``prompt_tokens`` there is
    ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``.
    """
    if not usage:
        return {}
    out = {f"usage/{name}": value for name, value in usage.items()}
    prompt = usage.get("prompt_tokens")
    if prompt is None and "input_tokens" in usage:
        prompt = usage["input_tokens"] + usage.get("cache_creation_input_tokens", 0.0) + usage.get(
            "cache_read_input_tokens", 0.0)
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    total = usage.get("total_tokens")
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    for name, value in (("prompt_tokens", prompt), ("completion_tokens", completion), ("total_tokens", total)):
        if value is not None:
            out[f"usage/{name}"] = value
    return out
