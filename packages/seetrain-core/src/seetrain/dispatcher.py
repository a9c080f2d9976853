"""The dispatcher: one background thread per process that writes the store and hands every
event on to the plugins.

The caller's thread only appends a tuple to a deque (atomic in CPython, no lock taken on
the hot path). The dispatcher thread:

1. takes events in order, waits for the media of a step to be encoded (encoding started in
   a pool when ``log`` was called), and gives each event to the **inline** plugins first:
   the local store (the write-ahead log) and the other built-ins that mark themselves
   ``seetrain_inline`` (O(1), never blocking);
2. hands the event to every other plugin's **lane**: a bounded queue and a thread of its own
   per plugin. A slow or hung plugin delays only itself; once its lane is full its ``on_log``
   events are dropped for it alone, counted in
   :func:`seetrain.errors.get_integration_error_stats` with one warning naming it;
3. flushes the store **on time**: at least every ``FLUSH_INTERVAL`` seconds whatever the
   producer does (not only when the queue is empty), so the store is never more than about
   a second behind and a SIGKILL loses at most the last second;
4. yields the GIL after every few dozen events, so the training loop's ``log`` never waits
   long for the interpreter.

The queue is bounded: when it holds ``MAX_QUEUE`` events the caller waits for the
dispatcher (back-pressure) rather than dropping data. The dispatcher never waits for a
plugin, so that wait is bounded by the store's speed alone.
"""

from __future__ import annotations

import operator
import os
import sys
import threading
import time
from collections import deque
from typing import Any

from . import errors
from .errors import log

__all__ = ["Dispatcher", "get_dispatcher"]

INIT, CONFIG, LOG, FINISH, BARRIER, CALL, STOP = range(7)

#: seconds between two flushes of the store, whatever the load
FLUSH_INTERVAL = 0.25
#: events after which the store is flushed sooner (keeps each flush short)
FLUSH_EVENTS = 8192
#: queue length at which the caller wakes the dispatcher early
HIGH_WATER = 1_000
#: queue length at which the caller waits for the dispatcher (back-pressure) ...
MAX_QUEUE = int(os.environ.get("SEETRAIN_MAX_QUEUE", "20000"))
#: ... until the queue is down to this length: few calls wait, rather than every call a bit
LOW_WATER = MAX_QUEUE // 2
#: events waiting for one plugin past which its on_log events are dropped for it
PLUGIN_QUEUE = int(os.environ.get("SEETRAIN_PLUGIN_QUEUE", "10000"))
#: seconds a plugin may spend in one call before it counts as hung (a barrier stops waiting)
PLUGIN_STUCK_AFTER = float(os.environ.get("SEETRAIN_PLUGIN_TIMEOUT", "10"))
#: events between two looks at the clock on the dispatcher thread
SLICE = 16
#: seconds of work after which the dispatcher yields the GIL to the training thread (unless
#: that thread waits in back-pressure, when yielding would only slow the drain)
YIELD_EVERY = float(os.environ.get("SEETRAIN_YIELD_EVERY", "0.0003"))

#: the hook of each event kind, and where each hook argument sits in the event tuple
_HOOKS = {
    INIT: ("on_init", {"run": 1}),
    CONFIG: ("on_config", {"run": 1, "config": 2, "changed": 3}),
    # queued as (LOG, run slot, step, keys, values, timestamp, has_media); plugins get
    # (LOG, run, step, data, timestamp)
    LOG: ("on_log", {"run": 1, "step": 2, "data": 3, "timestamp": 4}),
    FINISH: ("on_finish", {"run": 1, "status": 2, "error": 3}),
}
_KIND_OF_HOOK = {name: kind for kind, (name, _) in _HOOKS.items()}


def _getter(kind: int, argnames: tuple) -> Any:
    """A function: event tuple -> the positional arguments an implementation asks for."""
    positions = _HOOKS[kind][1]
    idx = [positions[name] for name in argnames]
    if not idx:
        return lambda event: ()
    if len(idx) == 1:
        i = idx[0]
        return lambda event: (event[i],)
    return operator.itemgetter(*idx)


class _Barrier:
    """Passed when the store has written every event before it, and each lane has delivered
    them."""

    __slots__ = ("store", "lanes")

    def __init__(self) -> None:
        self.store = threading.Event()
        self.lanes: list[tuple[_Lane, threading.Event]] = []


class _Lane:
    """One plugin's own queue and thread: the plugin sees its events in order, on one
    thread, and nothing else waits for it."""

    def __init__(self, name: str, plugin: Any) -> None:
        self.name = name
        self.plugin = plugin
        self.queue: deque = deque()
        self.wake = threading.Event()
        #: hook kind -> [(function, getter)] in pluggy's order
        self.calls: dict[int, list] = {}
        flush = getattr(plugin, "flush", None)
        self.flush = flush if callable(flush) else None
        self.busy_since: float | None = None
        self.dropped = 0
        self.warned = False
        self.stopped = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name=f"seetrain-plugin-{self.name}", daemon=True)
        self.thread.start()

    def stuck(self) -> bool:
        since = self.busy_since
        return self.dropped > 0 or (since is not None and time.monotonic() - since > PLUGIN_STUCK_AFTER)

    def put_log(self, event: tuple) -> None:
        if len(self.queue) >= PLUGIN_QUEUE:
            self._drop()
            return
        self.queue.append(event)

    def _drop(self) -> None:
        self.dropped += 1
        errors.record_event(self.name, "on_log", "dropped")
        if not self.warned:
            self.warned = True
            since = self.busy_since
            busy = f"its current call has been running for {time.monotonic() - since:.0f} s, " if since else ""
            log.warning(
                "seetrain: plugin %r is not keeping up (%s%d events wait for it); its on_log events are "
                "dropped for it alone from now on, counted in seetrain.errors.get_integration_error_stats(). "
                "The store and the training are not affected.", self.name, busy, len(self.queue))

    def _loop(self) -> None:
        queue = self.queue
        while not self.stopped:
            self.wake.wait(FLUSH_INTERVAL)
            self.wake.clear()
            while queue:
                try:
                    event = queue.popleft()
                except IndexError:
                    break
                self._deliver(event)
            if self.flush is not None:
                self._guarded(self.flush, (), "flush")

    def _deliver(self, event: tuple) -> None:
        kind = event[0]
        if kind == BARRIER:
            event[1].set()
            return
        if kind == STOP:
            self.stopped = True
            return
        calls = self.calls.get(kind)
        if calls:
            hook = _HOOKS[kind][0]
            for function, getter in calls:
                self._guarded(function, getter(event), hook)

    def _guarded(self, function: Any, args: tuple, operation: str) -> None:
        self.busy_since = time.monotonic()
        try:
            function(*args)
        except Exception as exc:
            errors.record_failure(self.name, operation, exc)
        finally:
            self.busy_since = None


class Dispatcher:
    """Writes run events to the store and delivers them to the plugins, in order."""

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pm = None
        self._tracing = bool(os.environ.get("SEETRAIN_TRACE_HOOKS"))
        self._signature: Any = None
        #: hook kind -> [(function, getter, plugin name)] of the inline plugins, in order
        self._inline: dict[int, list] = {}
        self._flushers: list[tuple[str, Any]] = []
        self._store: Any = None
        #: the store's fast path for LOG events (the event tuple as queued)
        self._fast_log: list = []
        #: set by the dispatcher when a caller in back-pressure may go on
        self._room = threading.Event()
        #: run handles by slot (LOG events carry the slot, see Run._slot)
        self._runs: dict[int, Any] = {}
        self._next_slot = 0
        #: how many times a caller waited for the queue to drain (benchmarks read it)
        self.backpressure_waits = 0
        #: callers waiting in back-pressure right now
        self._pressed = 0
        self._lanes: dict[int, _Lane] = {}  # id(plugin) -> lane
        #: lanes that take each kind of event
        self._routes: dict[int, list[_Lane]] = {}
        self._inline_log: list = []
        self._log_lanes: list[_Lane] = []
        self._last_flush = 0.0
        self._store_ok = True
        self._waiting: list[_Barrier] = []

    # -- caller side (any thread) -------------------------------------------------------
    def register_run(self, run: Any) -> int:
        """A slot for a run handle: what its LOG events carry. A queued event then holds
        only untracked objects (ints, floats, a dict of floats), which the garbage collector
        stops following after one look, so a full queue does not slow its collections (they
        run in the training thread)."""
        with self._lock:
            self._next_slot += 1
            slot = self._next_slot
        self._runs[slot] = run
        return slot

    def forget_run(self, run: Any) -> None:
        """Drop a handle's slot once the events queued before now are delivered."""
        self.submit((CALL, run, lambda: self._runs.pop(run._slot, None)))

    def submit(self, event: tuple) -> None:
        """Queue an event. Cheap: one deque append on the common path."""
        queue = self._queue
        queue.append(event)
        if len(queue) >= HIGH_WATER:
            wake = self._wake
            if not wake.is_set():
                wake.set()
            if len(queue) >= MAX_QUEUE:
                self._backpressure()
        if self._thread is None:
            self._start()

    def _backpressure(self) -> None:
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return
        room = self._room
        self.backpressure_waits += 1
        self._pressed += 1
        try:
            while len(self._queue) > LOW_WATER and thread.is_alive():
                room.clear()
                self._wake.set()
                room.wait(0.05)
        finally:
            self._pressed -= 1

    def barrier(self, timeout: float | None) -> bool:
        """Wait until every event queued before this call is in the store and delivered to
        every plugin. Returns False if ``timeout`` seconds passed first. A plugin that is
        hung (or whose events are being dropped) is not waited for."""
        store_done, late = self.barrier_detail(timeout)
        return store_done and not late

    def barrier_detail(self, timeout: float | None) -> tuple[bool, list[str]]:
        """``(store written, names of the plugins that did not catch up in time)``."""
        current = threading.current_thread()
        if self._thread is not None and current is self._thread:
            self._drain()  # called from an inline hook: deliver in place instead of deadlocking
            return True, []
        deadline = None if timeout is None else time.monotonic() + timeout
        barrier = _Barrier()
        self.submit((BARRIER, None, barrier))
        self._wake.set()
        if not barrier.store.wait(timeout):
            return False, []
        late = []
        for lane, done in barrier.lanes:
            if lane.thread is current:
                continue  # called from this plugin's own hook
            while not done.is_set() and not lane.stuck():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                done.wait(0.05 if remaining is None else min(0.05, remaining))
            if not done.is_set():
                late.append(lane.name)
        return True, late

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
        process = self._process
        monotonic = time.monotonic
        sleep = time.sleep
        n = 0
        if self._signature is None:
            self._refresh()
        yield_at = monotonic() + YIELD_EVERY
        since_flush = 0
        while queue:
            try:
                event = popleft()
            except IndexError:
                break
            try:
                process(event)
            except Exception as exc:  # pragma: no cover - defensive: never lose the loop
                errors.record_failure("core", "dispatcher", exc)
            n += 1
            if n >= SLICE:
                n = 0
                since_flush += SLICE
                if len(queue) <= LOW_WATER:
                    self._room.set()
                now = monotonic()
                flush = since_flush >= FLUSH_EVENTS or now - self._last_flush >= FLUSH_INTERVAL
                if now >= yield_at or flush:
                    self._wake_lanes()
                    if not self._pressed:
                        sleep(0)  # let the training thread have the GIL (CPython: 5 ms otherwise)
                    yield_at = monotonic() + YIELD_EVERY
                if flush:
                    self._flush()
                    since_flush = 0
        self._room.set()
        self._wake_lanes()
        self._flush()

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        ok = True
        for name, flush in self._flushers:
            try:
                result = flush()
            except Exception as exc:
                errors.record_failure(name, "flush", exc)
                result = False
            if name == "seetrain.store":
                ok = result is not False
        self._store_ok = ok
        if ok and self._waiting:
            waiting, self._waiting = self._waiting, []
            for barrier in waiting:
                barrier.store.set()
        if time.monotonic() - self._last_refresh > FLUSH_INTERVAL:
            self._refresh()

    def _wake_lanes(self) -> None:
        for lane in self._lanes.values():
            if lane.queue:
                lane.wake.set()

    def _plugin_manager(self):
        if self._pm is None:
            from .plugins import get_plugin_manager

            self._pm = get_plugin_manager()
        return self._pm

    def reset_plugin_manager(self) -> None:
        """Forget the cached plugin manager (after :func:`seetrain.plugins.use_plugin_manager`)."""
        self._pm = None
        self._signature = None

    _last_refresh = 0.0

    def _refresh(self) -> None:
        """Rebuild who gets which event when the registered plugins changed."""
        pm = self._plugin_manager()
        self._last_refresh = time.monotonic()
        signature = (id(pm), tuple((name, id(p)) for name, p in pm.list_name_plugin()))
        if signature == self._signature:
            return
        self._signature = signature
        inline: dict[int, list] = {}
        fast_log: list = []
        lane_calls: dict[int, dict[int, list]] = {}
        owners: dict[int, tuple[str, Any]] = {}
        for kind, (hook_name, _) in _HOOKS.items():
            # pluggy's order: last registered first, tryfirst before, trylast after
            for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
                if impl.hookwrapper or getattr(impl, "wrapper", False):
                    continue
                function = impl.function
                if self._tracing:
                    function = _traced(hook_name, impl.plugin_name, function)
                getter = _getter(kind, tuple(impl.argnames))
                if getattr(impl.plugin, "seetrain_inline", False):
                    log_event = getattr(impl.plugin, "log_event", None)
                    if kind == LOG and callable(log_event) and not self._tracing:
                        # a built-in's fast path: the step as queued, no mapping built
                        fast_log.append((log_event, impl.plugin_name))
                        continue
                    inline.setdefault(kind, []).append((function, getter, impl.plugin_name))
                else:
                    owners[id(impl.plugin)] = (impl.plugin_name, impl.plugin)
                    lane_calls.setdefault(id(impl.plugin), {}).setdefault(kind, []).append((function, getter))
        flushers = []
        store = None
        for name, plugin in pm.list_name_plugin():
            if plugin is None:
                continue
            if getattr(plugin, "seetrain_inline", False):
                flush = getattr(plugin, "flush", None)
                if callable(flush):
                    flushers.append((name, flush))
                if name == "seetrain.store":
                    store = plugin
            elif id(plugin) not in owners and callable(getattr(plugin, "flush", None)):
                owners[id(plugin)] = (name, plugin)  # a sink with a flush and no hooks
        lanes: dict[int, _Lane] = {}
        for key, (name, plugin) in owners.items():
            lane = self._lanes.get(key)
            if lane is None:
                lane = _Lane(name, plugin)
                lane.start()
            lane.calls = lane_calls.get(key, {})
            lanes[key] = lane
        for key, lane in self._lanes.items():
            if key not in lanes:
                lane.queue.append((STOP,))
                lane.wake.set()
        self._lanes = lanes
        self._routes = {kind: [lane for lane in lanes.values() if kind in lane.calls] for kind in _HOOKS}
        self._inline = inline
        self._inline_log = inline.get(LOG, [])
        self._log_lanes = self._routes.get(LOG, [])
        self._flushers = flushers
        self._store = store
        self._fast_log = fast_log

    def _process(self, event: tuple) -> None:
        kind = event[0]
        if kind == LOG:
            run = self._runs.get(event[1])
            if run is None:  # pragma: no cover - a handle forgotten with events still queued
                return
            # queued: (LOG, slot, step, keys, values, timestamp, has_media)
            _, _, step, keys, values, ts, has_media = event
            data = None
            if has_media:  # wait for the encoding of the media (started at log())
                data = dict(zip(keys, values))
                self._encode_and_count(run, data, run.counts)
                keys, values = tuple(data), tuple(data.values())
            else:
                counts = run.counts
                counts["scalar"] = counts.get("scalar", 0) + len(keys)
            for log_event, name in self._fast_log:  # the store first: the write-ahead log
                try:
                    log_event(run, step, keys, values, ts, has_media)
                except Exception as exc:
                    errors.record_failure(name, "on_log", exc)
            if self._inline_log or self._log_lanes:
                if data is None:
                    data = dict(zip(keys, values))
                full = (LOG, run, step, data, ts)
                for function, getter, name in self._inline_log:
                    try:
                        function(*getter(full))
                    except Exception as exc:
                        errors.record_failure(name, "on_log", exc)
                for lane in self._log_lanes:
                    lane.put_log(full)
            return
        if kind == BARRIER:
            barrier = event[2]
            self._flush()
            for lane in self._lanes.values():
                done = threading.Event()
                lane.queue.append((BARRIER, done))
                lane.wake.set()
                barrier.lanes.append((lane, done))
            if self._store_ok:
                barrier.store.set()
            else:
                self._waiting.append(barrier)  # passed once the store could be written
            return
        if kind == CALL:
            try:
                event[2]()
            except Exception as exc:
                errors.record_failure("core", "dispatcher.call", exc)
            return
        self._refresh()  # an adapter may have registered its plugin just before on_init
        if kind == FINISH:
            self._runs.pop(getattr(event[1], "_slot", None), None)
            self._flush()
        for function, getter, name in self._inline.get(kind, ()):
            try:
                function(*getter(event))
            except Exception as exc:
                errors.record_failure(name, _HOOKS[kind][0], exc)
        if kind == FINISH and self._store is not None:
            self._store_ok = self._store.flush() is not False
        for lane in self._routes.get(kind, ()):
            lane.queue.append(event)  # control events are never dropped
            lane.wake.set()

    def _encode_and_count(self, run: Any, data: dict, counts: dict) -> None:
        """Wait for the media of a step to be encoded, dropping (and counting) a value that
        failed, and count the step's values by kind."""
        for key, value in list(data.items()):
            if type(value) is float:
                counts["scalar"] = counts.get("scalar", 0) + 1
                continue
            items = value if isinstance(value, list) else (value,)
            try:
                for item in items:
                    item.wait_encoded()
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

    def _after_fork_in_child(self) -> None:
        # no thread exists in a forked child; start fresh ones on demand
        self._queue = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self._lanes = {}
        self._routes = {}
        self._log_lanes = []
        self._signature = None
        self._waiting = []
        self._room = threading.Event()


def _traced(hook_name: str, plugin_name: str, function: Any) -> Any:
    def traced(*args: Any) -> Any:
        print(f"seetrain trace: {hook_name} -> {plugin_name}", file=sys.stderr)
        return function(*args)

    return traced


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
