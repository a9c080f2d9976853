"""The built-in local store sink: a plugin on the four hooks that feeds :class:`StoreWriter`.

It is the write-ahead log of every run, so the dispatcher treats it apart from every other
plugin: it is called first, on the dispatcher thread itself (``seetrain_inline``), and its
``flush`` decides when a barrier (``finish``) is passed. Other plugins get their events
afterwards, each on a thread of its own, and can never hold it up.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..hookspecs import hookimpl
from .writer import StoreWriter


class LocalStoreSink:
    """Writes every run into its store directory (``run.dir``)."""

    #: called on the dispatcher thread, before any other plugin (see seetrain.dispatcher)
    seetrain_inline = True

    def __init__(self) -> None:
        self._writers: dict[str, StoreWriter] = {}

    def writer(self, directory: str) -> StoreWriter:
        writer = self._writers.get(directory)
        if writer is None:
            writer = self._writers[directory] = StoreWriter(directory)
        return writer

    @hookimpl(tryfirst=True)
    def on_init(self, run: Any) -> None:
        stale = self._writers.get(run.dir)
        if stale is not None and (stale.lost or not stale.is_current()):
            # the store was deleted (and made anew by this run's init): a new writer for it;
            # the old one says so once if it still had live runs or values to write
            stale.flush()
            del self._writers[run.dir]
        if getattr(run, "resumed", False):
            self.writer(run.dir).resume_run(run)
        else:
            self.writer(run.dir).create_run(run)

    @hookimpl(tryfirst=True)
    def on_config(self, run: Any, config: Mapping[str, Any]) -> None:
        self.writer(run.dir).set_config(run.id, dict(config))

    @hookimpl(tryfirst=True)
    def on_log(self, run: Any, step: int, data: Mapping[str, Any], timestamp: float) -> None:
        self.writer(run.dir).add(run, step, data, timestamp)

    def log_event(self, run: Any, step: int, keys: tuple, values: tuple, timestamp: float,
                  has_media: bool) -> None:
        """The dispatcher's fast path for ``on_log`` (built-ins only): the step as the
        caller queued it, keys and values apart, no mapping built."""
        writer = self._writers.get(run.dir)
        if writer is None:
            writer = self.writer(run.dir)
        writer.add_columns(run, step, keys, values, timestamp, has_media)

    @hookimpl(tryfirst=True)
    def on_finish(self, run: Any, status: str, error: str | None) -> None:
        self.writer(run.dir).finish_run(run.id, status, error)

    def flush(self) -> bool:
        """Write what is pending in every store; True when nothing is left pending."""
        ok = True
        for writer in list(self._writers.values()):
            ok = writer.flush() and ok
        return ok

    def _after_fork_in_child(self) -> None:
        # SQLite connections must not cross a fork; the child opens its own
        self._writers = {}


plugin = LocalStoreSink()

import os as _os  # noqa: E402

_os.register_at_fork(after_in_child=plugin._after_fork_in_child)
