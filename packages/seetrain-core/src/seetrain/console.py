"""The built-in console summary: one line per run when it ends (``SEETRAIN_SILENT=1`` hides it)."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from .hookspecs import hookimpl


class ConsoleSummary:
    """Prints what a run logged and where it is stored, when the run ends."""

    #: O(1) per event and never blocking: called on the dispatcher thread, after the store
    seetrain_inline = True

    def __init__(self) -> None:
        self._seen: dict[str, list] = {}

    @hookimpl(trylast=True)
    def on_log(self, run: Any, data: Mapping[str, Any]) -> None:
        seen = self._seen.get(run.id)
        if seen is None:
            seen = self._seen[run.id] = [set(), 0]
        seen[0].update(data)
        seen[1] += 1

    def log_event(self, run: Any, step: int, keys: tuple, values: tuple, timestamp: float,
                  has_media: bool) -> None:
        """The dispatcher's fast path for ``on_log``: the same, without a mapping."""
        self.on_log(run, keys)

    @hookimpl(trylast=True)
    def on_finish(self, run: Any, status: str, error: str | None) -> None:
        keys, calls = self._seen.pop(run.id, (set(), 0))
        shown = ", ".join(sorted(keys)[:8]) + (", …" if len(keys) > 8 else "")
        line = (f"seetrain: run {run.name!r} ({run.id}) of project {run.project!r} {status}: "
                f"{calls} log calls, last step {run.step}, {len(keys)} keys ({shown or 'none'}); "
                f"stored in {run.dir}; see it with: seetrain show {run.id} --dir {run.dir}")
        if error:
            line += f"\n  error: {error}"
        print(line, file=sys.stderr, flush=True)


plugin = ConsoleSummary()
