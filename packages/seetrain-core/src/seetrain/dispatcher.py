"""The dispatcher: one background thread per process that delivers events to the plugins.

The caller's thread only appends a tuple to a deque (atomic in CPython, no lock taken on
the hot path). The dispatcher thread wakes at least every ``FLUSH_INTERVAL`` seconds, or at
once when the queue passes its high-water mark, encodes media, calls each hook
implementation in turn (so a failing plugin never stops the others) and then asks buffering
sinks to ``flush()``.

The queue is bounded: when it holds ``MAX_QUEUE`` events the caller waits for the
dispatcher to catch up (back-pressure) rather than dropping data.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from typing import Any

from . import errors

__all__ = ["Dispatcher", "get_dispatcher"]

log = logging.getLogger("seetrain")

INIT, CONFIG, LOG, FINISH, BARRIER, CALL = range(6)

#: seconds between two flushes of buffering sinks when events keep arriving slowly
FLUSH_INTERVAL = 0.25
#: queue length at which the caller wakes the dispatcher early
HIGH_WATER = 2_000
#: queue length at which the caller waits for the dispatcher (back-pressure)
MAX_QUEUE = int(os.environ.get("SEETRAIN_MAX_QUEUE", "50000"))


class Dispatcher:
    """Delivers run events to the plugin manager's hook implementations, in order."""

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pm = None
        self._tracing = bool(os.environ.get("SEETRAIN_TRACE_HOOKS"))
        #: hook implementations and flush methods wrapped by errors.with_graceful_degradation
        self._guarded: dict[Any, Any] = {}

    # -- caller side (any thread) -------------------------------------------------------
    def submit(self, event: tuple) -> None:
        """Queue an event. Cheap: one deque append on the common path."""
        queue = self._queue
        queue.append(event)
        if len(queue) >= HIGH_WATER:
            self._wake.set()
            if len(queue) >= MAX_QUEUE:
                self._backpressure()
        if self._thread is None:
            self._start()

    def _backpressure(self) -> None:
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return
        while len(self._queue) >= MAX_QUEUE and thread.is_alive():
            self._wake.set()
            time.sleep(0.0005)

    def barrier(self, timeout: float | None) -> bool:
        """Wait until every event queued before this call has been delivered.

        Returns False if ``timeout`` seconds passed first (a plugin hangs)."""
        if self._thread is not None and threading.current_thread() is self._thread:
            self._drain()  # called from a hook: deliver in place instead of deadlocking
            return True
        done = threading.Event()
        self.submit((BARRIER, None, done))
        self._wake.set()
        return done.wait(timeout)

    def queue_depth(self) -> int:
        return len(self._queue)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._loop, name="seetrain-dispatcher", daemon=True)
            self._thread = thread
            thread.start()

    # -- dispatcher thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # pragma: no cover - defensive: the loop must survive
                log.exception("seetrain: dispatcher error")

    def _drain(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        while queue:
            try:
                event = popleft()
            except IndexError:
                break
            self._deliver(event)
        self._flush_sinks()

    def _plugin_manager(self):
        if self._pm is None:
            from .plugins import get_plugin_manager

            self._pm = get_plugin_manager()
        return self._pm

    def reset_plugin_manager(self) -> None:
        """Forget the cached plugin manager (after :func:`seetrain.plugins.use_plugin_manager`)."""
        self._pm = None
        self._guarded = {}

    def _deliver(self, event: tuple) -> None:
        kind = event[0]
        if kind == LOG:
            _, run, step, data, ts = event
            counts = run.counts
            for value in data.values():
                if type(value) is not float:  # media: encode here, off the caller's thread
                    self._encode_and_count(run, data, counts)
                    break
            else:
                counts["scalar"] = counts.get("scalar", 0) + len(data)
            self._call("on_log", run=run, step=step, data=data, timestamp=ts)
        elif kind == CONFIG:
            _, run, config, changed = event
            self._call("on_config", run=run, config=config, changed=changed)
        elif kind == INIT:
            self._call("on_init", run=event[1])
        elif kind == FINISH:
            _, run, status, error = event
            self._flush_sinks()
            self._call("on_finish", run=run, status=status, error=error)
        elif kind == BARRIER:
            self._flush_sinks()
            event[2].set()
            return
        elif kind == CALL:
            try:
                event[2]()
            except Exception as exc:
                errors.record_failure("core", "dispatcher.call", exc)

    def _encode_and_count(self, run: Any, data: dict, counts: dict) -> None:
        """Encode the media of a step, dropping (and counting) a value that fails, and count
        the step's values by kind."""
        for key, value in list(data.items()):
            if type(value) is float:
                counts["scalar"] = counts.get("scalar", 0) + 1
                continue
            items = value if isinstance(value, list) else (value,)
            try:
                for item in items:
                    if item.encoded is None:
                        item.encode()
            except Exception as exc:
                # the value cannot be stored: drop that key, keep the rest of the step
                errors.record_failure("core", f"encode {items[0].kind}", exc)
                log.warning("seetrain: could not encode %s %r of run %s: %s",
                            items[0].kind, key, getattr(run, "id", "?"), exc)
                del data[key]
                run.dropped += 1
                continue
            kind = items[0].kind if items else "media"
            counts[kind] = counts.get(kind, 0) + 1

    def _call(self, hook_name: str, **kwargs: Any) -> None:
        hook = getattr(self._plugin_manager().hook, hook_name)
        guarded = self._guarded
        # pluggy's order: last registered first, tryfirst before, trylast after.
        for impl in reversed(hook.get_hookimpls()):
            if impl.hookwrapper or getattr(impl, "wrapper", False):
                continue
            call = guarded.get(impl)
            if call is None:
                # each implementation runs behind graceful degradation: a failure is counted
                # under the plugin's name and the other implementations still run
                call = guarded[impl] = errors.with_graceful_degradation(
                    integration=impl.plugin_name, name=hook_name, count_calls=False)(impl.function)
            if self._tracing:
                print(f"seetrain trace: {hook_name} -> {impl.plugin_name}", file=sys.stderr)
            call(*[kwargs[name] for name in impl.argnames])

    def _flush_sinks(self) -> None:
        for name, plugin in self._plugin_manager().list_name_plugin():
            flush = getattr(plugin, "flush", None)
            if callable(flush):
                call = self._guarded.get(flush)
                if call is None:
                    call = self._guarded[flush] = errors.with_graceful_degradation(
                        integration=name, name="flush", count_calls=False)(flush)
                call()

    def _after_fork_in_child(self) -> None:
        # the thread does not exist in a forked child; start a fresh one on demand
        self._queue = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = None


_dispatcher: Dispatcher | None = None
_dispatcher_lock = threading.Lock()


def get_dispatcher() -> Dispatcher:
    """The process's dispatcher, created on first use."""
    global _dispatcher
    if _dispatcher is None:
        with _dispatcher_lock:
            if _dispatcher is None:
                _dispatcher = Dispatcher()
                os.register_at_fork(after_in_child=_dispatcher._after_fork_in_child)
    return _dispatcher
