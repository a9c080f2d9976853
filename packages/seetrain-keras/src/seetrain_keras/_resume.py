"""Reopening the callback's own run after ``on_train_end`` ended it.

``model.fit`` ends the run the callback started (``on_train_end``); a following
``model.evaluate`` / ``model.predict`` with the same callback belongs to that same run, so the
callback reopens it instead of starting another.

The core has no public "resume a run by id" call yet (seetrain_lightning carries the same
workaround for the same reason): this builds a :class:`seetrain.Run` handle on the finished
run's id. It relies on two facts of the local store: values are appended to a run by id, and
the run's row is updated, not re-created. When the core grows ``seetrain.init(resume=<id>)``,
this module becomes a call to it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["reopen_run"]


def reopen_run(finished: Any) -> Any:
    """A live handle on the finished run ``finished``, marked ``running`` again and ended at
    interpreter exit like any run of :func:`seetrain.init` if nobody ends it before."""
    from seetrain import run as run_module

    run = run_module.Run(project=finished.project, name=finished.name, dir=finished.dir,
                         description=finished.description, tags=finished.tags, group=finished.group,
                         mode=finished.mode)
    run.id = finished.id
    run.created_at = finished.created_at
    run._step = finished.step  # so that log() without a step continues after the last one
    run.config.update_silently(finished.config.as_dict())
    if run.mode == "disabled":
        return run
    run._store_call("set_fields", run.id, status="running", finished_at=None, error=None)
    run_module._install_lifecycle()
    with run_module._active_lock:
        run_module._active.append(run)
    return run
