"""The framework-facing class: imported on first use only (it imports the framework)."""

from __future__ import annotations

from typing import Any

import seetrain
from seetrain import errors

# import yourframework  # the framework is imported here, never in __init__.py


class SeeTrainCallback:  # (yourframework.Callback)
    """Logs YourFramework's metrics into a SeeTrain run.

    Uses the run given as ``run=``, else the active run, else starts its own (and ends it
    when training ends).
    """

    def __init__(self, project: str | None = None, experiment_name: str | None = None, *, run: Any = None,
                 **init_options: Any) -> None:
        self._run = run
        self._owns_run = False
        self._init = dict(project=project, experiment_name=experiment_name, **init_options)

    @property
    def run(self) -> Any:
        if self._run is None:
            self._run = seetrain.active_run()
            if self._run is None:
                # no framework= here: this class is only reachable once the framework imports
                self._run = seetrain.init(**self._init)
                self._owns_run = True
        self._run.add_framework("yourframework")
        return self._run

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        try:
            self.run.log({f"train/{k}": v for k, v in metrics.items()}, step=epoch)
        except TypeError:
            raise  # the user's value: let them see it
        except Exception as exc:  # SeeTrain's own failure must not break training
            errors.record_failure("yourframework", "on_epoch_end", exc)

    def on_train_end(self) -> None:
        if self._owns_run and self._run is not None:
            self._run.finish()


def create(run: Any, **options: Any) -> SeeTrainCallback:
    """The adapter's factory: the callback bound to an existing run."""
    return SeeTrainCallback(run=run, **options)
