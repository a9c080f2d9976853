"""The MMEngine VisBackend that writes to SeeTrain, registered as ``SeeTrainVisBackend``.

Importing this module imports MMEngine and registers the class in ``mmengine.registry.
VISBACKENDS``; ``custom_imports=dict(imports=["seetrain_mm.visbackend"])`` in a config does it.

MMEngine calls a backend from its ``Visualizer`` (only on the main process, through
``master_only``) and from the ``LoggerHook``: ``add_config`` once when the ``Runner`` is built
with a config, ``add_scalars(tag, step=iter + 1)`` every ``LoggerHook.interval`` train
iterations, ``add_scalars(val_tag, step=epoch)`` (or ``step=iter`` with
``log_metric_by_epoch=False``) after each validation, and ``close`` at the end of
``train()`` / ``val()`` / ``test()``. The names and steps are kept as MMEngine gives them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, Sequence

from mmengine.registry import VISBACKENDS
from mmengine.visualization import BaseVisBackend
from mmengine.visualization.vis_backend import force_init_env

import seetrain
from seetrain.errors import record_failure

__all__ = ["SeeTrainVisBackend", "create_mmengine", "create_mmdetection", "INIT_KWARGS"]

#: the keys ``init_kwargs`` may hold: the arguments of :func:`seetrain.init` that describe a run
INIT_KWARGS = ("project", "experiment_name", "description", "config", "dir", "mode", "tags", "group")

#: the key under which add_config logs the text of the MMEngine config (a text media item)
CONFIG_TEXT_KEY = "config"


@VISBACKENDS.register_module(force=True)  # force: a re-import (importlib.reload) must not fail
class SeeTrainVisBackend(BaseVisBackend):
    """An MMEngine VisBackend that logs to a SeeTrain run.

    >>> visualizer = dict(type="Visualizer", vis_backends=[dict(  # doctest: +SKIP
    ...     type="SeeTrainVisBackend", init_kwargs=dict(project="mm", experiment_name="r1"))])

    The run is resolved on first use (MMEngine's ``force_init_env`` convention), on the main
    process only; on other ranks every method does nothing. It is, in this order:

    1. ``run``, when given (``seetrain.integration.init_mmengine(...).get_backend()`` passes it);
    2. the active run (:func:`seetrain.active_run`), when ``init_kwargs`` is empty or names
       its project (and experiment name, if it names one);
    3. a run of its own, ``seetrain.init(**init_kwargs)``, named after the Runner's experiment
       unless ``init_kwargs`` names it.

    :param save_dir: the directory MMEngine's ``Visualizer`` passes to every backend
        (``<work_dir>/<timestamp>/vis_data``). SeeTrain does not write there: the run goes to
        the SeeTrain store (``init_kwargs["dir"]``, ``SEETRAIN_DIR`` or ``./seetrain``).
    :param init_kwargs: arguments of :func:`seetrain.init` for a run the backend starts:
        ``project``, ``experiment_name``, ``description``, ``config``, ``dir``, ``mode``,
        ``tags``, ``group``.
    :param run: the run to log to.
    :param finish_on_close: whether :meth:`close` finishes the run. By default it does when
        the backend started the run itself, and not for a run it was given or joined (its
        owner finishes it). ``init_mmengine`` / ``init_mmdetection`` pass ``True``.
    :raises TypeError: ``init_kwargs`` holds a key :func:`seetrain.init` does not take.
    """

    #: the integration name under which the run is marked and failures are counted
    integration = "mmengine"

    def __init__(
        self,
        save_dir: str | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        run: Any = None,
        finish_on_close: bool | None = None,
    ) -> None:
        # save_dir has a default: MMEngine's Visualizer drops a backend whose save_dir is a
        # required argument when it has no save_dir to give (a Visualizer built outside a Runner)
        super().__init__(save_dir)  # type: ignore[arg-type]
        kwargs = dict(init_kwargs or {})
        unknown = sorted(set(kwargs) - set(INIT_KWARGS))
        if unknown:
            raise TypeError(
                f"SeeTrainVisBackend: init_kwargs has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"it takes the arguments of seetrain.init: {', '.join(INIT_KWARGS)}"
            )
        if run is not None and kwargs:
            raise TypeError(
                "SeeTrainVisBackend: pass either run= (log to that run) or init_kwargs= (start a "
                f"run with them), not both; got init_kwargs keys {', '.join(sorted(kwargs))}"
            )
        self._init_kwargs = kwargs
        self._given_run = run
        self._finish_on_close = finish_on_close
        self._run: Any = None
        self._owns_run = False

    # -- MMEngine's lazy initialisation ----------------------------------------------------
    def _init_env(self) -> None:
        """Resolve the run (see the class docstring); nothing on a non-main rank."""
        from mmengine.dist import is_main_process

        self._run = None
        self._owns_run = False
        if not is_main_process():
            return
        try:
            self._run, self._owns_run = self._resolve_run()
            self._run.add_framework(self.integration)
        except Exception as exc:  # the run cannot start (store not writable ...): train on
            record_failure(self.integration, "init", exc)
            self._run = None

    def _resolve_run(self) -> tuple[Any, bool]:
        given = self._given_run
        if given is not None and not given.finished:
            return given, False
        active = seetrain.active_run()
        if active is not None and self._matches(active):
            return active, False
        kwargs = dict(self._init_kwargs)
        if given is not None:  # the given run was closed (train() then val()): continue its name
            kwargs.setdefault("project", given.project)
            kwargs.setdefault("experiment_name", given.name)
        kwargs.setdefault("experiment_name", _runner_experiment_name())
        # framework= rather than add_framework() afterwards: the store records the frameworks
        # column when the run is created
        return seetrain.init(framework=self.integration, **kwargs), True

    def _matches(self, run: Any) -> bool:
        project = self._init_kwargs.get("project")
        name = self._init_kwargs.get("experiment_name")
        return (project is None or project == run.project) and (name is None or name == run.name)

    @property  # type: ignore[misc]
    @force_init_env
    def experiment(self) -> Any:
        """The :class:`seetrain.Run` logged to (``None`` on a non-main rank)."""
        return self._run

    # -- what MMEngine records --------------------------------------------------------------
    @force_init_env
    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Record an MMEngine ``Config``: its values become the run config (tuples as lists,
        classes and functions by their repr), its text is logged as text under ``config``,
        and the file it was read from is recorded as a file of kind ``config``."""
        run = self._run
        if run is None:
            return
        try:
            values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
            run.config.update(values)
            scope = values.get("default_scope")
            if isinstance(scope, str) and scope.startswith("mmdet"):
                run.add_framework("mmdetection")
        except Exception as exc:
            record_failure(self.integration, "add_config", exc)
        try:
            run.log({CONFIG_TEXT_KEY: seetrain.Text(_config_text(config))}, step=max(run.step, 0))
            filename = getattr(config, "filename", None)
            if filename and os.path.isfile(filename):
                run.add_file(os.path.abspath(filename), kind="config")
        except Exception as exc:
            record_failure(self.integration, "add_config", exc)

    @force_init_env
    def add_graph(self, model: Any, data_batch: Sequence[dict] | None = None, **kwargs: Any) -> None:
        """Accepted and ignored: SeeTrain does not draw model graphs."""

    @force_init_env
    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Log an image (an RGB ``HxWx3`` uint8 array, as MMEngine passes it) at ``step``."""
        if self._run is None:
            return
        try:
            self._run.log({name: seetrain.Image(image)}, step=step)
        except Exception as exc:
            record_failure(self.integration, "add_image", exc)

    @force_init_env
    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        """Log one scalar (a number, numpy scalar or 0-d tensor) at MMEngine's ``step``."""
        self._log_scalars({name: value}, step, "add_scalar")

    @force_init_env
    def add_scalars(self, scalar_dict: Mapping[str, Any], step: int = 0, file_path: str | None = None,
                    **kwargs: Any) -> None:
        """Log scalars at MMEngine's ``step`` under their MMEngine names (``loss``, ``lr``,
        ``time``, the metric names of the evaluator …). ``file_path`` is LocalVisBackend's
        and is ignored."""
        self._log_scalars(scalar_dict, step, "add_scalars")

    def _log_scalars(self, values: Mapping[str, Any], step: int, operation: str) -> None:
        run = self._run
        if run is None:
            return
        try:
            run.log(values, step=step)
            return
        except Exception as exc:
            if not isinstance(exc, (TypeError, ValueError)) or not isinstance(values, Mapping):
                record_failure(self.integration, operation, exc)
                return
        # one value the run refuses (a list, a 1-element tensor ...) must not cost the others
        for key, value in values.items():
            try:
                run.log({key: value}, step=step)
            except Exception as exc:
                record_failure(self.integration, operation, exc)

    def close(self) -> None:
        """End the run if the backend is to finish it (see ``finish_on_close``). A later
        ``add_*`` call (``runner.val()`` after ``runner.train()``) starts a run again."""
        run = self._run
        if run is None or not self._env_initialized:
            return
        finish = self._owns_run if self._finish_on_close is None else self._finish_on_close
        if not finish:
            return
        try:
            _finish(run, self.integration)
        except Exception as exc:
            record_failure(self.integration, "close", exc)
        self._env_initialized = False
        self._run = None


def _finish(run: Any, framework: str) -> None:
    # A run made by seetrain.integration is finished through its Integration, which ends the
    # run only when no other integration (init_mmengine and init_mmdetection for the same
    # experiment) still shares it.
    integration_module = sys.modules.get("seetrain.integration")
    if integration_module is not None:
        for integration in integration_module.active_integrations():
            if integration.run is run and integration.framework == framework:
                integration.finish()
                return
    run.finish()


def _config_text(config: Any) -> str:
    # pretty_text runs yapf over the config, which fails on some values (a class in a
    # pure-Python config); the text it was read from, or the dict, still says what ran
    try:
        return config.pretty_text
    except Exception:
        text = getattr(config, "text", None)
        return text if isinstance(text, str) and text else repr(config)


def _runner_experiment_name() -> str | None:
    """The experiment name of the Runner being built or run (its MessageHub's name)."""
    from mmengine.logging import MessageHub

    try:
        name = MessageHub.get_current_instance().instance_name
    except Exception:  # pragma: no cover - no MessageHub at all
        return None
    return None if name == "mmengine" else name  # "mmengine": the default hub, no Runner


def create_mmengine(run: Any, **options: Any) -> SeeTrainVisBackend:
    """The factory of the ``mmengine`` adapter: a backend bound to ``run`` whose ``close()``
    finishes it (the seed's example ends the run with ``backend.close()``)."""
    options.setdefault("finish_on_close", True)
    return SeeTrainVisBackend(run=run, **options)


def create_mmdetection(run: Any, **options: Any) -> SeeTrainVisBackend:
    """The factory of the ``mmdetection`` adapter: the same backend, counting failures and
    marking the run as ``mmdetection``."""
    backend = create_mmengine(run, **options)
    backend.integration = "mmdetection"
    return backend
