"""Continuing a run that this process did not start, or that was already finished.

Lightning needs this twice: ``finalize("success")`` ends the logger's run after ``fit``, and a
later ``trainer.test()`` on the same logger must log into that same run; and a logger pickled
into a ``ddp_spawn`` worker must log into the run of the parent process. The core does both:
``seetrain.init(resume=<id>)`` continues a run this process owns, ``seetrain.attach(<id>)``
logs into a run another process owns.
"""

from __future__ import annotations

from typing import Any

import seetrain

__all__ = ["run_reference", "resume_run"]


def run_reference(run: Any) -> dict[str, Any]:
    """What is needed to continue ``run`` elsewhere: picklable, no live objects."""
    return {"id": run.id, "project": run.project, "name": run.name, "dir": run.dir, "mode": run.mode}


def resume_run(ref: dict[str, Any], *, owned: bool) -> Any:
    """A live handle on the run ``ref`` describes.

    :param owned: the caller ends the run itself (``seetrain.init(resume=...)``: running
        again, ended at interpreter exit like any run). A run owned by someone else is only
        attached to (``seetrain.attach``): what is logged is delivered, the run is never ended.
    """
    if ref["mode"] == "disabled":
        return seetrain.init(project=ref["project"], experiment_name=ref["name"], mode="disabled")
    if owned:
        return seetrain.init(resume=ref["id"], dir=ref["dir"])
    return seetrain.attach(ref["id"], dir=ref["dir"])
