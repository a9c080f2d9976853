"""The Accelerate adapter: :class:`SeeTrainTracker`, an ``accelerate.tracking.GeneralTracker``.

Imported on first use only (``seetrain_hf.SeeTrainTracker``, ``init_accelerate``,
``seetrain.init(framework="accelerate")``): it imports Accelerate. Importing it registers the
tracker under the name ``"seetrain"`` through Accelerate's public ``register_tracker_class``
(Accelerate >= 1.15), so that ``Accelerator(log_with="seetrain")`` works.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Iterable

import accelerate.tracking
from accelerate.tracking import GeneralTracker, on_main_process

import seetrain

from ._binding import RunBinding

if TYPE_CHECKING:
    from seetrain.run import Run

__all__ = ["SeeTrainTracker", "create", "register_accelerate_tracker", "TRACKER_NAME"]

log = logging.getLogger("seetrain")

_ADAPTER = "accelerate"
#: the name of the tracker in ``Accelerator(log_with=...)``, ``init_kwargs`` and ``get_tracker``
TRACKER_NAME = "seetrain"


class SeeTrainTracker(GeneralTracker):
    """An Accelerate tracker that logs to SeeTrain.

    >>> from accelerate import Accelerator
    >>> from seetrain_hf import SeeTrainTracker
    >>> accelerator = Accelerator(log_with=[SeeTrainTracker(experiment_name="run-1")])  # doctest: +SKIP
    >>> accelerator.init_trackers("my-project", config={"lr": 1e-3})                    # doctest: +SKIP
    >>> accelerator.log({"train/loss": 0.5}, step=10)                                  # doctest: +SKIP
    >>> accelerator.end_training()                                                     # doctest: +SKIP

    By name, ``Accelerator(log_with="seetrain")`` builds it as ``SeeTrainTracker(project_name,
    **init_kwargs["seetrain"])`` (Accelerate's convention for every tracker).

    It logs to the run given as ``run=``, else the active run, else a run of its own that it
    starts on :meth:`start` (or on the first call), on the main process only.
    :meth:`store_init_configuration` updates the run config, :meth:`log` logs at the given
    step, :meth:`finish` (``accelerator.end_training()``) ends the run.

    :param run_name: what Accelerate passes as ``init_trackers(project_name)``: the project of
        a run the tracker starts, unless ``project=`` is given (as for Accelerate's wandb and
        trackio trackers).
    :param run: a run to log to.
    :param project: project of a run the tracker starts itself.
    :param experiment_name: name of that run.
    :param description, config, dir, mode, tags, group: the other ``seetrain.init`` options
        for such a run.
    """

    name = TRACKER_NAME
    requires_logging_directory = False
    main_process_only = True

    def __init__(
        self,
        run_name: str | None = None,
        *,
        run: Run | None = None,
        project: str | None = None,
        experiment_name: str | None = None,
        description: str | None = None,
        config: Any = None,
        dir: str | os.PathLike | None = None,
        mode: str | None = None,
        tags: Iterable[str] | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__()
        self.run_name = run_name
        self._binding = RunBinding(_ADAPTER, run=run, init_options=dict(
            project=project or run_name, experiment_name=experiment_name, description=description,
            config=config, dir=dir, mode=mode, tags=tags, group=group,
        ))

    @property
    def tracker(self) -> Run | None:
        """The SeeTrain run (Accelerate's ``get_tracker("seetrain", unwrap=True)``)."""
        return self._binding.run

    @on_main_process
    def start(self) -> None:
        """Resolve the run: called by ``accelerator.init_trackers``."""
        self._binding.resolve()

    @on_main_process
    def store_init_configuration(self, values: dict) -> None:
        """Put ``values`` (``init_trackers(config=...)``) in the run config."""
        self._binding.resolve().config.update(dict(values or {}))

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        """Log ``values`` at ``step`` (by default the run's last step + 1).

        Values are those of :meth:`seetrain.Run.log`: numbers, 0-d tensors, strings (stored as
        text), ``seetrain.Image`` / ``Audio`` / ``Text``; nested dicts are flattened with
        ``/``. A value of another type raises ``TypeError`` naming its key.
        """
        if kwargs:
            raise TypeError(f"SeeTrainTracker.log: unexpected keyword arguments {sorted(kwargs)} "
                            f"(from accelerator.log(log_kwargs={{{TRACKER_NAME!r}: ...}}))")
        self._binding.resolve().log(values, step=step)

    @on_main_process
    def log_images(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        """Log images: each value an image or a list of images (numpy HxW/HxWxC, PIL, CHW tensor)."""
        media = {}
        for key, images in values.items():
            if isinstance(images, (list, tuple)):
                media[key] = [img if isinstance(img, seetrain.Image) else seetrain.Image(img) for img in images]
            else:
                media[key] = images if isinstance(images, seetrain.Image) else seetrain.Image(images)
        self._binding.resolve().log(media, step=step)

    @on_main_process
    def finish(self) -> None:
        """End the run (``accelerator.end_training()``)."""
        self._binding.end("finished")


def register_accelerate_tracker() -> type[SeeTrainTracker]:
    """Register :class:`SeeTrainTracker` under ``"seetrain"`` for ``Accelerator(log_with="seetrain")``.

    Idempotent; done when this module is first imported. Needs Accelerate's public
    ``accelerate.tracking.register_tracker_class`` (Accelerate >= 1.15); with an older
    Accelerate pass an instance instead: ``Accelerator(log_with=[SeeTrainTracker()])``.

    :raises RuntimeError: this Accelerate has no ``register_tracker_class``.
    """
    register = getattr(accelerate.tracking, "register_tracker_class", None)
    if register is None:
        raise RuntimeError(
            f"accelerate {accelerate.__version__} has no accelerate.tracking.register_tracker_class, so "
            "log_with='seetrain' cannot be registered; pass an instance: "
            "Accelerator(log_with=[seetrain_hf.SeeTrainTracker()]), or upgrade: pip install \"accelerate>=1.15\""
        )
    registered = getattr(accelerate.tracking, "LOGGER_TYPE_TO_CLASS", {}).get(TRACKER_NAME)
    if registered is not SeeTrainTracker:
        register(SeeTrainTracker)
    return SeeTrainTracker


try:
    register_accelerate_tracker()
except RuntimeError as _exc:  # an older Accelerate: instances still work
    log.debug("seetrain: %s", _exc)


def create(run: Run, **options: Any) -> SeeTrainTracker:
    """The adapter factory: a tracker bound to ``run`` (``init_accelerate(...).get_tracker()``)."""
    return SeeTrainTracker(run=run, **options)
