"""Streams: read every chunk as the SDK yields it, without changing the stream the user holds.

The SDKs' stream objects (``openai.Stream`` / ``AsyncStream``, ``anthropic.Stream`` /
``AsyncStream``, ``zhipuai.core.StreamResponse``) all pull their chunks from one iterator
attribute (``_iterator``, ``_stream_chunks``). That attribute is replaced, on this one
instance, by a relay generator that hands each chunk on unchanged the moment it arrives and
notes it for the record -- so the user keeps the SDK's own object (same type, same identity,
same methods, same helpers such as ``text_stream`` or ``get_final_message()``).

How a stream ends decides how it is recorded:

* read to its end -> a complete record; an exception from the SDK -> an error record
  (the exception goes on to the user unchanged);
* closed by the user before its end (``stream.close()``, leaving a ``with`` block, a helper's
  ``close()``: all of them close the HTTP response) -> a partial record. The response's own
  ``close`` is hooked on the instance for that; a close the SDK does itself while the relay is
  reading (at the end of the body) is told apart by :attr:`Call.reading`;
* dropped without closing -> a partial record when the relay is garbage-collected.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ._recording import Call

__all__ = ["is_stream", "instrument_stream", "instrument_stream_manager"]

#: the attribute each SDK's stream pulls its chunks from
_ITERATOR_ATTRS = ("_iterator", "_stream_chunks")
# the name-mangled attribute holding the request of Anthropic's (Async)MessageStreamManager
_MANAGER_REQUEST_SUFFIX = "__api_request"


def is_stream(result: Any) -> bool:
    """Whether an SDK method returned a stream of chunks (rather than a response)."""
    cls = type(result)
    return (hasattr(cls, "__next__") or hasattr(cls, "__anext__")) and hasattr(result, "response")


def _iterator_attr(stream: Any) -> str:
    for name in _ITERATOR_ATTRS:
        if name in getattr(stream, "__dict__", {}) or hasattr(type(stream), name):
            return name
    raise TypeError(f"{type(stream).__module__}.{type(stream).__qualname__} has none of the iterator attributes "
                    f"{', '.join(_ITERATOR_ATTRS)}; this SDK version's streams are not supported")


def instrument_stream(stream: Any, call: Call) -> None:
    """Relay ``stream``'s chunks through ``call`` (the stream object itself is returned as is).

    :raises TypeError: a stream of an unknown layout (the caller counts it and leaves the
        stream untouched).
    """
    name = _iterator_attr(stream)
    is_async = hasattr(type(stream), "__anext__")
    inner = getattr(stream, name)  # Anthropic makes it on first access (a cached_property)
    call.start_stream()
    setattr(stream, name, _arelay(inner, call) if is_async else _relay(inner, call))
    _hook_response_close(getattr(stream, "response", None), call, is_async)


def _relay(inner: Iterator[Any], call: Call) -> Iterator[Any]:
    # holds no reference to the stream: a dropped stream is freed (and this closed) at once
    try:
        while True:
            call.reading = True
            try:
                item = next(inner)
            except StopIteration:
                break
            finally:
                call.reading = False
            call.chunk(item)
            yield item
    except GeneratorExit:
        call.end(partial=True)
        raise
    except BaseException as exc:
        call.end(error=exc)
        raise
    call.end()


async def _arelay(inner: AsyncIterator[Any], call: Call) -> AsyncIterator[Any]:
    try:
        while True:
            call.reading = True
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                break
            finally:
                call.reading = False
            call.chunk(item)
            yield item
    except (GeneratorExit, asyncio.CancelledError):
        call.end(partial=True)
        raise
    except BaseException as exc:
        call.end(error=exc)
        raise
    call.end()


def _hook_response_close(response: Any, call: Call, is_async: bool) -> None:
    """Make a close of the HTTP response from outside the relay end the record as partial."""
    if response is None or not hasattr(response, "__dict__"):
        return
    name = "aclose" if is_async else "close"
    if not callable(getattr(response, name, None)):
        return
    # a weak reference: a hook held by the response must not keep the response alive
    ref = weakref.ref(response)
    own = response.__dict__.get(name)  # an instance-level close someone set before us

    def original() -> Any:
        target = ref()
        if target is None:
            return None
        return own() if own is not None else getattr(type(target), name)(target)

    if is_async:
        async def aclose() -> None:
            try:
                await original()
            finally:
                if not call.reading:
                    call.end(partial=True)

        setattr(response, name, aclose)
    else:
        def close() -> None:
            try:
                original()
            finally:
                if not call.reading:
                    call.end(partial=True)

        setattr(response, name, close)


def instrument_stream_manager(manager: Any, new_call: Callable[[float], Call | None]) -> None:
    """Record the request that Anthropic's ``(Async)MessageStreamManager`` makes on ``__enter__``.

    ``messages.stream()`` builds its request itself (a ``functools.partial`` of ``_post``,
    or the coroutine of it for the async client) instead of calling ``create``. The manager
    keeps it in a name-mangled attribute; on this one manager it is replaced by a request that
    starts the clock, makes the original request and relays the raw stream it returns.

    :param new_call: makes the :class:`Call` given the ``perf_counter`` start (``None`` if
        that failed; the failure is counted by it).
    :raises TypeError: a manager of an unknown layout.
    """
    import time

    names = [n for n in vars(manager) if n.endswith(_MANAGER_REQUEST_SUFFIX)]
    if len(names) != 1:
        raise TypeError(f"{type(manager).__qualname__} has no single *{_MANAGER_REQUEST_SUFFIX} attribute; "
                        "this SDK version's stream managers are not supported")
    name = names[0]
    request = getattr(manager, name)

    if callable(request):
        def instrumented() -> Any:
            started = time.perf_counter()
            try:
                raw = request()
            except BaseException as exc:
                _end_with_error(new_call(started), exc)
                raise
            _relay_raw(raw, new_call(started))
            return raw

        setattr(manager, name, instrumented)
    elif hasattr(request, "__await__"):
        async def ainstrumented() -> Any:
            started = time.perf_counter()
            try:
                raw = await request
            except BaseException as exc:
                _end_with_error(new_call(started), exc)
                raise
            _relay_raw(raw, new_call(started))
            return raw

        setattr(manager, name, ainstrumented())
    else:
        raise TypeError(f"{type(manager).__qualname__}.{name} is neither callable nor awaitable")


def _end_with_error(call: Call | None, exc: BaseException) -> None:
    if call is not None:
        call.end(error=exc)


def _relay_raw(raw: Any, call: Call | None) -> None:
    from seetrain.errors import record_failure

    if call is None:
        return
    try:
        instrument_stream(raw, call)
    except Exception as exc:
        record_failure(call.provider, "stream", exc)
