"""The Ultralytics training callbacks.

Ultralytics calls each callback as ``fn(trainer)`` for an event name. The events used, in
the order a training fires them:

``on_pretrain_routine_start``
    the run is chosen (or started) and the trainer arguments become its config;
``on_pretrain_routine_end``
    the arguments Ultralytics resolved while setting up (``optimizer="auto"`` -> ``AdamW``,
    an automatic batch size …) update the config;
``on_train_epoch_end``
    the epoch's mean training losses (``train/box_loss`` …) and learning rates (``lr/pg0`` …);
``on_fit_epoch_end``
    the epoch's validation metrics (``metrics/mAP50(B)``, ``val/box_loss`` …). It fires once
    more after the last epoch, for the validation of ``best.pt``: those metrics belong to no
    epoch and go to the run's summary as ``best/<name>``;
``on_train_end``
    the plots Ultralytics wrote, as images; ``best.pt`` and ``last.pt`` as checkpoint files;
``teardown``
    fires even when training raised: a run the callbacks started is ended as ``crashed`` if
    ``on_train_end`` was not reached.

Steps are 1-based epochs, as in Ultralytics' ``results.csv`` and its own loggers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Iterable

import ultralytics.utils

import seetrain
from seetrain.errors import record_failure

__all__ = ["SeeTrainCallbacks", "add_seetrain_callback", "create"]

_KEY = "ultralytics"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _is_main_process() -> bool:
    # read at call time: Ultralytics sets RANK from the environment of each DDP worker
    return ultralytics.utils.RANK in (-1, 0)


class SeeTrainCallbacks(Mapping):
    """The SeeTrain callbacks of an Ultralytics training, as a mapping event -> function.

    Register them on a ``YOLO`` model (or a trainer) with :meth:`attach`, or one by one::

        callbacks = SeeTrainCallbacks(project="detection")
        for event, fn in callbacks.items():
            model.add_callback(event, fn)

    Which run they record in: ``run=`` if given, else the run active when they are built,
    else one they start when training starts (project ``project=``, else the name of
    Ultralytics' ``project`` folder; name ``experiment_name=``, else the name of the save
    folder, e.g. ``train2``) and end when training ends. A run they did not start is left
    open for its owner. Only the main process (``RANK`` -1 or 0) logs.

    :param project: project of the run they start.
    :param experiment_name: name of the run they start.
    :param description: description of the run they start.
    :param config: extra config (added to the trainer arguments).
    :param tags: tags of the run they start.
    :param group: group of the run they start.
    :param dir: store directory of the run they start.
    :param mode: ``"local"`` or ``"disabled"``.
    :param run: the run to record in.
    :param log_plots: log the plots Ultralytics wrote at the end of training.
    """

    #: the Ultralytics events these callbacks handle
    EVENTS = ("on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_epoch_end", "on_fit_epoch_end", "on_train_end", "teardown")

    def __init__(
        self,
        project: str | None = None,
        experiment_name: str | None = None,
        description: str | None = None,
        config: Any = None,
        *,
        tags: Iterable[str] | None = None,
        group: str | None = None,
        dir: str | None = None,
        mode: str = "local",
        run: seetrain.Run | None = None,
        log_plots: bool = True,
    ) -> None:
        if run is not None and not isinstance(run, seetrain.Run):
            raise TypeError(f"seetrain_ultralytics: run must be a seetrain.Run, got {type(run).__name__}; "
                            "pass the object seetrain.init() returned, or leave run out")
        self.project = project
        self.experiment_name = experiment_name
        self.description = description
        self.tags = list(tags or ())
        self.group = group
        self.dir = dir
        self.mode = mode
        self.log_plots = log_plots
        self._config = config
        self._given_run = run if run is not None else seetrain.active_run()
        self.run: seetrain.Run | None = self._given_run
        self._own_run = False
        self._lock = threading.Lock()
        self._trained_epoch: int | None = None  # last epoch on_train_epoch_end saw
        self._validated: set[int] = set()  # epochs whose metrics were logged
        self._ended = False
        self._start_args: dict[str, Any] = {}
        self._functions: dict[str, Callable[[Any], None]] = {
            event: self._guarded(event, getattr(self, f"_{event}")) for event in self.EVENTS
        }

    # -- the mapping ---------------------------------------------------------------------
    def __getitem__(self, event: str) -> Callable[[Any], None]:
        return self._functions[event]

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def __len__(self) -> int:
        return len(self._functions)

    def __repr__(self) -> str:
        return f"<SeeTrainCallbacks events={list(self._functions)} run={self.run.id if self.run else None}>"

    def attach(self, model: Any) -> SeeTrainCallbacks:
        """Register every callback on ``model`` (a ``YOLO`` model or a trainer)."""
        add_callback = getattr(model, "add_callback", None)
        if not callable(add_callback):
            raise TypeError(f"seetrain_ultralytics: model must be an Ultralytics YOLO model or trainer (an object "
                            f"with add_callback), got {type(model).__name__}")
        for event, fn in self._functions.items():
            add_callback(event, fn)
        return self

    def _guarded(self, event: str, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        def callback(trainer: Any) -> None:
            if not _is_main_process():
                return
            try:
                fn(trainer)
            except Exception as exc:  # never break training for SeeTrain's sake
                record_failure("ultralytics", event, exc)

        callback.__name__ = callback.__qualname__ = f"seetrain_{event}"
        callback.__doc__ = f"SeeTrain's {event} callback."
        return callback

    # -- events ----------------------------------------------------------------------------
    def _on_pretrain_routine_start(self, trainer: Any) -> None:
        args = dict(vars(trainer.args))
        with self._lock:
            self._trained_epoch = None
            self._validated = set()
            self._ended = False
            if self._given_run is None:
                # a new training of the same callbacks gets a new run
                self.run = seetrain.init(
                    project=self.project or (Path(str(args["project"])).name if args.get("project") else None),
                    experiment_name=self.experiment_name or Path(str(trainer.save_dir)).name,
                    description=self.description, config=self._config, dir=self.dir, mode=self.mode,
                    tags=self.tags, group=self.group,
                    # given to init, not added afterwards, so the store's run row has it from the start
                    framework=_KEY,
                )
                self._own_run = True
            else:
                self.run = self._given_run
                self._own_run = False
                self.run.add_framework(_KEY)
                if self._config is not None:
                    self.run.config.update(self._config)
        self._start_args = args
        # keep what the user (or a sweep) already configured
        self.run.config.setdefaults(args)
        self.run.config.setdefaults({"save_dir": str(trainer.save_dir)})

    def _on_pretrain_routine_end(self, trainer: Any) -> None:
        run = self._live_run()
        if run is None:
            return
        resolved = {k: v for k, v in vars(trainer.args).items()
                    if k not in self._start_args or self._start_args[k] != v}
        if resolved:
            run.config.update(resolved)

    def _on_train_epoch_end(self, trainer: Any) -> None:
        run = self._live_run()
        if run is None:
            return
        self._trained_epoch = trainer.epoch
        data = dict(trainer.label_loss_items(trainer.tloss, prefix="train"))
        data.update(trainer.lr or {})
        run.log(data, step=trainer.epoch + 1)

    def _on_fit_epoch_end(self, trainer: Any) -> None:
        run = self._live_run()
        if run is None:
            return
        metrics = {k: v for k, v in (trainer.metrics or {}).items() if k != "fitness"}
        epoch = trainer.epoch
        if epoch == self._trained_epoch and epoch not in self._validated:
            self._validated.add(epoch)
            run.log(metrics, step=epoch + 1)
            if len(self._validated) == 1:
                self._log_model_info(run, trainer)
        else:
            # the validation of best.pt after the last epoch (Ultralytics >= 8.4 raises
            # trainer.epoch by one for it, older releases repeat the last epoch)
            run.summary.update({f"best/{k}": float(v) for k, v in metrics.items()})

    def _on_train_end(self, trainer: Any) -> None:
        run = self._live_run()
        if run is None:
            return
        step = (self._trained_epoch if self._trained_epoch is not None else trainer.epoch) + 1
        if self.log_plots:
            images = {f"plots/{path.stem}": seetrain.Image(str(path), caption=path.name)
                      for path in _plot_files(trainer)}
            if images:
                run.log(images, step=step)
        for name in ("best", "last"):
            path = getattr(trainer, name, None)
            if path is not None and Path(path).exists():
                run.add_file(path, kind="checkpoint", name=name, epoch=step)
        self._ended = True
        if self._own_run:
            run.finish("finished")

    def _teardown(self, trainer: Any) -> None:
        if self._own_run and self.run is not None and not self.run.finished and not self._ended:
            self.run.finish("crashed", error="Ultralytics training ended before on_train_end (it raised or "
                                             "was interrupted)")

    # -- internals ---------------------------------------------------------------------------
    def _live_run(self) -> seetrain.Run | None:
        run = self.run
        return run if run is not None and not run.finished else None

    def _log_model_info(self, run: seetrain.Run, trainer: Any) -> None:
        from ultralytics.utils.torch_utils import model_info_for_loggers

        try:
            info = model_info_for_loggers(trainer)
        except Exception as exc:  # model profiling is a nicety; never let it cost the epoch
            record_failure("ultralytics", "model_info", exc, quiet=True)
            return
        run.summary.update({k: v for k, v in info.items() if isinstance(v, (int, float))})


def _plot_files(trainer: Any) -> list[Path]:
    """The image files Ultralytics registered as plots (trainer and validator), in order."""
    seen: dict[Path, None] = {}
    validator = getattr(trainer, "validator", None)
    for plots in (getattr(trainer, "plots", None) or {}, getattr(validator, "plots", None) or {}):
        for path in plots:
            path = Path(path)
            if path.suffix.lower() in _IMAGE_SUFFIXES and path.exists():
                seen.setdefault(path, None)
    return list(seen)


def add_seetrain_callback(
    model: Any,
    project: str | None = None,
    experiment_name: str | None = None,
    description: str | None = None,
    config: Any = None,
    **options: Any,
) -> SeeTrainCallbacks:
    """Register SeeTrain's callbacks on an Ultralytics ``YOLO`` model and return them.

    ``options`` are those of :class:`SeeTrainCallbacks` (``run``, ``tags``, ``group``,
    ``dir``, ``mode``, ``log_plots``).

    >>> model = YOLO("yolov8n.yaml")                                        # doctest: +SKIP
    >>> add_seetrain_callback(model, project="detection")                   # doctest: +SKIP
    >>> model.train(data="data.yaml", epochs=10)                            # doctest: +SKIP
    """
    callbacks = SeeTrainCallbacks(project=project, experiment_name=experiment_name, description=description,
                                  config=config, **options)
    return callbacks.attach(model)


def create(run: seetrain.Run, **options: Any) -> SeeTrainCallbacks:
    """The adapter factory: :class:`SeeTrainCallbacks` recording into ``run``."""
    return SeeTrainCallbacks(run=run, **options)
