"""Continuing a run that this process did not start, or that was already finished.

Lightning needs this twice: ``finalize("success")`` ends the logger's run after ``fit``, and a
later ``trainer.test()`` on the same logger must log into that same run; and a logger pickled
into a ``ddp_spawn`` worker must log into the run of the parent process.

The core has no public "resume a run by id" call yet, so this module builds a :class:`seetrain.Run`
handle for an existing id from the run's identity (:func:`run_reference`). It relies on two facts
of the local store: values are appended to a run by id, and the run's row is updated, not
re-created. Sinks therefore see ``on_log``/``on_finish`` for the run without a fresh
``on_init`` in this process. When the core grows ``seetrain.init(resume=<id>)``, this module
becomes a call to it.
"""

from __future__ import annotations

import atexit
from typing import Any

__all__ = ["run_reference", "resume_run"]


def run_reference(run: Any) -> dict[str, Any]:
    """What is needed to continue ``run`` elsewhere: picklable, no live objects."""
    return {
        "id": run.id,
        "project": run.project,
        "name": run.name,
        "dir": run.dir,
        "description": run.description,
        "tags": list(run.tags),
        "group": run.group,
        "mode": run.mode,
        "created_at": run.created_at,
        "step": run.step,
        "config": run.config.as_dict(),
    }


def resume_run(ref: dict[str, Any], *, owned: bool) -> Any:
    """A live handle on the run ``ref`` describes, marked ``running`` again.

    :param owned: the caller ends the run itself (it is then also ended at interpreter exit
        with the process's status, like a run from :func:`seetrain.init`). A run owned by
        someone else is only drained at exit, never ended here.
    """
    from seetrain import run as run_module

    run = run_module.Run(project=ref["project"], name=ref["name"], dir=ref["dir"],
                         description=ref["description"], tags=ref["tags"], group=ref["group"],
                         mode=ref["mode"])
    run.id = ref["id"]
    run.created_at = ref["created_at"]
    run._step = ref["step"]  # so that log() without a step continues after the last one
    run.config.update_silently(ref["config"])
    if run.mode == "disabled":
        return run
    run._store_call("set_fields", run.id, status="running", finished_at=None, error=None)
    if owned:
        run_module._install_lifecycle()
        with run_module._active_lock:
            run_module._active.append(run)
    else:
        atexit.register(_drain, run)
    return run


def _drain(run: Any) -> None:
    # a worker process ends: deliver what it logged into a run another process owns
    dispatcher = run._dispatcher
    if dispatcher is not None and not run.finished:
        dispatcher.barrier(10.0)
