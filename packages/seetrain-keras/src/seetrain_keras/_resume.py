"""Reopening the callback's own run after ``on_train_end`` ended it.

``model.fit`` ends the run the callback started (``on_train_end``); a following
``model.evaluate`` / ``model.predict`` with the same callback belongs to that same run, so the
callback reopens it (``seetrain.init(resume=...)``) instead of starting another.
"""

from __future__ import annotations

from typing import Any

import seetrain

__all__ = ["reopen_run"]


def reopen_run(finished: Any) -> Any:
    """A live handle on the finished run ``finished``, marked ``running`` again and ended at
    interpreter exit like any run of :func:`seetrain.init` if nobody ends it before."""
    if finished.mode == "disabled":
        return seetrain.init(project=finished.project, experiment_name=finished.name, mode="disabled")
    return seetrain.init(resume=finished.id, dir=finished.dir)
