"""Which run an adapter object logs to: the adapter contract's rule, written once for both
the Transformers callback and the Accelerate tracker.

The run given as ``run=`` wins; else the active run (``seetrain.active_run()``) is joined;
else the object starts a run of its own from its init options, and it alone ends that run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import seetrain

if TYPE_CHECKING:
    from seetrain.run import Run

#: the ``seetrain.init`` arguments an adapter object accepts for a run of its own
INIT_OPTIONS = ("project", "experiment_name", "description", "config", "dir", "mode", "tags", "group")


class RunBinding:
    """Resolves, lazily, the run that one adapter object logs to.

    :param framework: the adapter name recorded in the run (``run.add_framework``).
    :param run: a run to use; the binding never ends it on its own.
    :param init_options: ``seetrain.init`` arguments for a run the binding starts itself.
    """

    def __init__(self, framework: str, run: Run | None = None, init_options: dict[str, Any] | None = None) -> None:
        if run is not None and not isinstance(run, seetrain.Run):
            raise TypeError(f"seetrain_hf: run= must be a seetrain.Run (from seetrain.init()), "
                            f"got {type(run).__name__}")
        self.framework = framework
        self._given = run
        self._run: Run | None = run
        self._owned = False
        self.init_options = {k: v for k, v in (init_options or {}).items() if v is not None}

    @property
    def run(self) -> Run | None:
        """The run resolved so far (``None`` before the first :meth:`resolve`)."""
        return self._run

    @property
    def owned(self) -> bool:
        """Whether the binding started the run itself (and so is the one to end it)."""
        return self._owned and self._run is not None

    def resolve(self) -> Run:
        """The run to log to, starting one if there is neither a given nor an active run."""
        run = self._run
        if run is not None and (not run.finished or run is self._given):
            return run
        active = seetrain.active_run()
        if active is not None and not active.finished:
            self._run, self._owned = active, False
        else:
            # framework= (not only add_framework) so the run is created with it in its record
            self._run, self._owned = seetrain.init(framework=self.framework, **self.init_options), True
        self._run.add_framework(self.framework)
        return self._run

    def reopen(self) -> Run:
        """The binding's own run again after it ended (``seetrain.init(resume=...)``): the
        same run, running again, ended by :meth:`end` or at interpreter exit."""
        run = self._run
        if run is None or not run.finished or not self._owned:
            return self.resolve()
        self._run = seetrain.init(resume=run.id, dir=run.dir) if run.mode != "disabled" else run
        return self._run

    def end(self, status: str = "finished", error: BaseException | str | None = None) -> None:
        """End the run if it is still going (whoever started it)."""
        if self._run is not None and not self._run.finished:
            self._run.finish(status, error=error)
