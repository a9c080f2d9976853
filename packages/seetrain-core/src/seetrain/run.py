"""The run lifecycle: :func:`init`, :class:`Run`, :func:`log`, :func:`finish`.

``Run.log`` is the hot path. It validates and copies the values in the caller's thread
(errors in what the user passed are raised here, naming the key) and hands one tuple to the
dispatcher; it never runs plugin code, touches disk or the network.
"""

from __future__ import annotations

import atexit
import numbers
import operator
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, Iterable

from .configuration import Config, to_config_dict
from .dispatcher import CALL, CONFIG, FINISH, INIT, LOG, get_dispatcher
from .media import Media, Text

__all__ = ["Run", "init", "attach", "log", "finish", "active_run", "STATUSES"]

from .errors import log as log_  # noqa: E402

#: the statuses a run can end with
STATUSES = ("finished", "crashed", "interrupted")
_STATUS_ALIASES = {"success": "finished", "failed": "crashed", "failure": "crashed", "error": "crashed",
                   "killed": "interrupted", "aborted": "interrupted"}
MODES = ("local", "remote", "disabled")
FINISH_TIMEOUT = float(os.environ.get("SEETRAIN_FINISH_TIMEOUT", "30"))
#: how long init waits for the run to be recorded before it returns anyway
INIT_TIMEOUT = 10.0

_active: list[Run] = []
_active_lock = threading.RLock()
_pending_config = Config()
_exit_status: list[tuple[str, str | None]] = []
_lifecycle_installed = False


def _new_run_id() -> str:
    # time-sortable, unique across processes and machines
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


class Run:
    """One run: a training job's config, logged values and status.

    Created by :func:`seetrain.init`. A run is also a context manager: leaving the block
    finishes it, as ``crashed`` if an exception escaped, ``interrupted`` on Ctrl+C.

    >>> import seetrain
    >>> with seetrain.init(project="docs", mode="disabled") as run:
    ...     run.log({"loss": 0.5})
    """

    def __init__(
        self,
        *,
        project: str,
        name: str,
        dir: str,
        description: str | None = None,
        tags: Iterable[str] = (),
        group: str | None = None,
        mode: str = "local",
    ) -> None:
        self.id = _new_run_id()
        self.project = project
        self.name = name
        self.description = description
        self.tags = tuple(tags)
        self.group = group
        self.dir = dir
        self.mode = mode
        #: ``(host, api_key)`` of a ``mode="remote"`` run, set by init
        self.remote: tuple | None = None
        self.created_at = time.time()
        self.status = "running"
        #: the run existed before this handle: ``init(resume=...)`` or :func:`attach`
        self.resumed = False
        #: logs into a run another process owns (:func:`attach`): never ends it
        self.attached = False
        self._disabled = mode == "disabled"
        #: values delivered to the plugins, by kind (``scalar``, ``image`` …); dispatcher-owned
        self.counts: dict[str, int] = {}
        #: values that could not be stored (a media value that failed to encode)
        self.dropped = 0
        self._done = False
        self._step = -1
        #: the process that made this handle: a forked child never ends the run
        self._pid = os.getpid()
        #: the run's row was written by init() itself (readers see it at once)
        self._recorded = False
        self._dispatcher = None if self._disabled else get_dispatcher()
        self._keys: tuple = ()
        #: the handle's number in the dispatcher: LOG events carry it instead of the Run, so
        #: that queued events hold no reference the garbage collector must follow
        self._slot = 0 if self._disabled else self._dispatcher.register_run(self)
        self.config = Config(on_change=None if self._disabled else self._config_changed)
        self.summary = Config(on_change=None if self._disabled else self._summary_changed)

    # -- properties ---------------------------------------------------------------------
    @property
    def frameworks(self) -> list[str]:
        """The integrations that produced this run (``config["seetrain"]["frameworks"]``)."""
        meta = self.config.get("seetrain")
        return list(meta.get("frameworks", [])) if isinstance(meta, dict) else []

    @property
    def step(self) -> int:
        """The last step logged (``-1`` before the first ``log``)."""
        return self._step

    @property
    def finished(self) -> bool:
        return self._done

    def __repr__(self) -> str:
        return f"<seetrain.Run {self.id} project={self.project!r} name={self.name!r} status={self.status}>"

    # -- logging (hot path) -------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log values at a step.

        :param data: mapping of names to values: numbers (int, float, bool, numpy scalars,
            0-d arrays and tensors), :class:`~seetrain.Image`, :class:`~seetrain.Audio`,
            :class:`~seetrain.Text`, lists of those, and ``str`` (stored as text). Nested
            mappings are flattened with ``/``.
        :param step: an int >= 0; by default the last step + 1.
        :raises TypeError: a value of an unsupported type (nothing of the call is logged).
        """
        if self._disabled:
            return
        if self._done:
            raise RuntimeError(f"seetrain: run {self.id} is finished; start a new one with seetrain.init()")
        values = None
        if type(data) is dict:
            # the common case, a flat dict of floats: validated without building a copy
            values = tuple(data.values())
            for value in values:
                if type(value) is not float:
                    values = None
                    break
            else:
                keys = tuple(data)
                for key in keys:
                    if type(key) is not str or not key:
                        values = None
                        break
            media = False
        elif not isinstance(data, Mapping):
            raise TypeError(f"seetrain.log: expected a mapping of names to values, got {type(data).__name__}")
        if values is None:
            flat: dict[str, Any] = {}
            media = _flatten(data, "", flat)
            keys, values = tuple(flat), tuple(flat.values())
        if not keys:
            return
        if keys != self._keys:
            self._keys = keys
        else:
            keys = self._keys  # the same keys as last time: share one tuple
        if step is None:
            step = self._step + 1
        else:
            step = _check_step(step)
        if step > self._step:
            self._step = step
        # keys and values as two tuples, not a dict, and the run as a number: a queued event
        # holds only objects the garbage collector stops following (Dispatcher.register_run)
        self._dispatcher.submit((LOG, self._slot, step, keys, values, time.time(), media))

    # -- config / summary / files -------------------------------------------------------
    def _config_changed(self, snapshot: dict, changed: dict) -> None:
        if not self._done:
            self._dispatcher.submit((CONFIG, self, snapshot, changed))

    def _summary_changed(self, snapshot: dict, changed: dict) -> None:
        if not self._done:
            self._store_call("set_fields", self.id, summary=snapshot)

    def _store_call(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Queue a call on this run's store writer, in order with the hook events."""
        run_dir = self.dir

        def call() -> None:
            from .plugins import get_plugin_manager

            sink = get_plugin_manager().get_plugin("seetrain.store")
            if sink is not None:
                getattr(sink.writer(run_dir), method)(*args, **kwargs)

        self._dispatcher.submit((CALL, self, call))

    def add_framework(self, name: str) -> None:
        """Mark an integration as a producer of this run (idempotent)."""
        if name in self.frameworks:
            return
        meta = dict(self.config.get("seetrain") or {})
        meta["frameworks"] = [*self.frameworks, name]
        self.config.update({"seetrain": meta})

    def add_file(self, path: str | os.PathLike, kind: str = "file", **meta: Any) -> None:
        """Record a file produced by the run (a checkpoint, an export) by its path."""
        if self._disabled or self._done:
            return
        self._store_call("add_file", self.id, kind, os.fspath(path), meta or None)

    def set_tags(self, tags: Iterable[str]) -> None:
        """Replace the run's tags."""
        self.tags = tuple(str(t) for t in tags)
        if not self._disabled and not self._done:
            self._store_call("set_fields", self.id, tags=list(self.tags))

    # -- end ------------------------------------------------------------------------------
    def finish(self, status: str | None = None, error: str | BaseException | None = None,
               timeout: float | None = None) -> None:
        """End the run: deliver everything logged, call ``on_finish``, record the status.

        Returns within ``timeout`` seconds (``SEETRAIN_FINISH_TIMEOUT``, 30 by default) even
        if a plugin hangs. Finishing twice does nothing.

        :param status: ``"finished"`` (default), ``"crashed"`` or ``"interrupted"``.
        :param error: for a crash, the exception or its text.
        """
        status = _check_status(status or "finished")
        with _active_lock:
            if self._done:
                return
            self._done = True
            if self in _active:
                _active.remove(self)
        if self._disabled:
            self.status = status
            return
        budget = FINISH_TIMEOUT if timeout is None else timeout
        if self.mode == "remote":  # the uploader's own bound (SEETRAIN_UPLOAD_TIMEOUT) comes first
            from .remote.plugin import upload_timeout

            budget = max(budget, upload_timeout() + 10.0)
        if self.attached or os.getpid() != self._pid:
            # the owner ends the run (a forked child never ends its parent's run); this
            # handle only delivers what it logged
            self._dispatcher.forget_run(self)
            self._dispatcher.barrier(budget)
            return
        self.status = status
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        deadline = time.monotonic() + budget
        self._dispatcher.submit((FINISH, self, status, error))
        stored, late = self._dispatcher.barrier_detail(budget)
        if late:
            log_.warning("seetrain: plugin(s) %s did not finish run %s within %.0f s; the run is stored "
                         "and ends without waiting for them", ", ".join(late), self.id, budget)
        if not stored:
            log_.warning("seetrain: the store could not record the end of run %s within %.0f s "
                         "(SEETRAIN_FINISH_TIMEOUT); recording its status directly", self.id, budget)
            _write_status_directly(self, status, error, max(0.2, min(2.0, deadline - time.monotonic())))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("crashed", error=exc)


def _write_status_directly(run: Run, status: str, error: str | None, timeout: float) -> None:
    # Last resort when the store could not record the end in time: a connection of our own,
    # waiting for a lock at most ``timeout`` seconds, so that finish() stays bounded.
    import sqlite3

    from .store.schema import DB_NAME

    try:
        conn = sqlite3.connect(os.path.join(run.dir, DB_NAME), timeout=timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                         (status, error, time.time(), run.id))
        finally:
            conn.close()
    except Exception as exc:
        log_.warning("seetrain: could not record the status of run %s (%s); what it logged is kept in "
                     "memory and written when the store can be written again, while this process "
                     "lives; otherwise the run reads as crashed", run.id, exc)


# -- validation helpers (hot path) ----------------------------------------------------------

def _flatten(data: Mapping, prefix: str, out: dict) -> bool:
    """Validate and flatten ``data`` into ``out``; True if a value is not a float (media)."""
    media = False
    for key, value in data.items():
        if type(key) is not str:
            raise TypeError(f"seetrain.log: keys must be str, got {key!r} ({type(key).__name__})")
        name = prefix + key
        t = type(value)
        if t is float:
            out[name] = value
        elif t is int or t is bool:
            out[name] = _int_to_float(name, value)
        elif isinstance(value, Mapping):
            media = _flatten(value, name + "/", out) or media
        else:
            value = out[name] = _coerce(name, value)
            media = media or type(value) is not float
        if not key:
            raise ValueError(f"seetrain.log: empty key under {prefix!r}" if prefix else "seetrain.log: empty key")
    return media


def _int_to_float(name: str, value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"seetrain.log: value for key {name!r} is an int too large for a float64 "
            f"({len(str(abs(value)))} digits, the limit is about 1.8e308); log it scaled, or as text"
        ) from None


def _coerce(name: str, value: Any) -> Any:
    if isinstance(value, Media):
        value.start_encoding()  # in the media pool, off this thread
        return value
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Media) for v in value):
        for item in value:
            item.start_encoding()
        return list(value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"seetrain.log: value for key {name!r} is too large for a float64 "
                             f"({type(value).__name__}); log it scaled, or as text") from None
    if isinstance(value, numbers.Integral):
        return _int_to_float(name, int(value))
    item = getattr(value, "item", None)
    if callable(item):
        shape = getattr(value, "shape", None)
        if shape is not None and tuple(shape) != ():
            raise TypeError(
                f"seetrain.log: value for key {name!r} is an array of shape {tuple(shape)}; log a "
                "scalar (0-d), or wrap it as seetrain.Image / seetrain.Audio"
            )
        scalar = item()
        if type(scalar) is int:
            return _int_to_float(name, scalar)
        if type(scalar) in (float, bool):
            return float(scalar)
        raise TypeError(f"seetrain.log: value for key {name!r} is a {type(value).__name__} holding "
                        f"{type(scalar).__name__}; expected a real number")
    raise TypeError(
        f"seetrain.log: value for key {name!r} has unsupported type {type(value).__name__}; expected "
        "a number, str, seetrain.Image, seetrain.Audio, seetrain.Text or a list of media"
    )


def _check_step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError("seetrain.log: step must be an int >= 0, got a bool")
    try:
        step = operator.index(step)
    except TypeError:
        raise TypeError(f"seetrain.log: step must be an int >= 0, got {type(step).__name__}") from None
    if step < 0 or step > _MAX_STEP:
        raise ValueError(f"seetrain.log: step must be >= 0 and <= 2**63 - 1 (it is stored as an "
                         f"int64), got step {step}")
    return step


_MAX_STEP = 2**63 - 1


def _check_status(status: str) -> str:
    status = _STATUS_ALIASES.get(status, status)
    if status not in STATUSES:
        raise ValueError(f"seetrain: status must be one of {', '.join(STATUSES)}, got {status!r}")
    return status


# -- module-level API -------------------------------------------------------------------------

def init(
    project: str | None = None,
    experiment_name: str | None = None,
    description: str | None = None,
    config: Any = None,
    framework: str | Iterable[str] | None = None,
    dir: str | os.PathLike | None = None,
    mode: str = "local",
    tags: Iterable[str] | None = None,
    group: str | None = None,
    resume: str | None = None,
    host: str | None = None,
    api_key: str | None = None,
) -> Run:
    """Start a run and make it the active one.

    :param project: the project; defaults to the current folder's name.
    :param experiment_name: the run's name; defaults to its id.
    :param description: free text shown with the run.
    :param config: hyperparameters (dict, ``argparse.Namespace`` or dataclass).
    :param framework: an adapter name (``"keras"``, ``"lightning"`` …) or several; the
        adapter is loaded through the ``seetrain.adapters`` entry points and recorded in
        ``config["seetrain"]["frameworks"]``.
    :param dir: the store directory; defaults to ``SEETRAIN_DIR`` or ``./seetrain``.
    :param mode: ``"local"`` (the embedded store), ``"remote"`` (the embedded store, and an
        upload of it to a team server: see docs/remote.md) or ``"disabled"`` (every call a
        no-op). ``SEETRAIN_MODE`` overrides the default ``"local"``.
    :param tags: labels for filtering runs.
    :param group: a group name shared by related runs (a sweep, the trials of a tuner).
    :param resume: the id (or unique id prefix, or name) of a run in ``dir`` to continue: the
        same run, marked running again, its config kept (``config`` is merged in) and its
        steps continuing after the last one stored.
    :param host: the team server of ``mode="remote"`` (default ``SEETRAIN_HOST``).
    :param api_key: its API key (default ``SEETRAIN_API_KEY``, else the one ``seetrain login``
        stored for the host).

    >>> import seetrain
    >>> run = seetrain.init(project="docs", config={"lr": 1e-3}, mode="disabled")
    >>> run.log({"loss": 0.25})
    >>> run.finish()
    """
    from .store.schema import StoreError, resolve_dir

    if mode == "local" and os.environ.get("SEETRAIN_MODE"):
        mode = os.environ["SEETRAIN_MODE"]
    if mode not in MODES:
        raise ValueError(f"seetrain.init: mode must be one of {', '.join(MODES)}, got {mode!r}")
    remote = None
    if mode == "remote":
        from .remote.credentials import resolve

        remote = resolve(host, api_key)
        if remote[0] is None:
            raise ValueError("seetrain.init: mode='remote' needs a server: pass host=... or set SEETRAIN_HOST")
    project_given = project is not None
    if project is None:
        project = os.path.basename(os.getcwd()) or "default"
    if not isinstance(project, str) or not project.strip():
        raise ValueError(f"seetrain.init: project must be a non-empty str, got {project!r}")
    directory = resolve_dir(dir)
    if mode != "disabled":
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"seetrain.init: cannot create the store directory {directory!r}: {exc}") from exc
        if not os.access(directory, os.W_OK):
            raise StoreError(f"seetrain.init: the store directory {directory!r} is not writable; "
                             "pass dir=... or set SEETRAIN_DIR")
    adapters = _load_adapters(framework)
    if resume is not None:
        run = _existing_run(resume, directory, mode)
        if project != run.project and project_given:
            raise ValueError(f"seetrain.init: run {run.id} belongs to project {run.project!r}, not {project!r}")
        initial = run.config.as_dict()
        run.config.clear_silently()
        if description is not None:
            run.description = description
        if tags is not None:
            run.tags = tuple(str(t) for t in tags)
    else:
        run = Run(project=project, name="", dir=directory, description=description,
                  tags=[str(t) for t in (tags or ())], group=group, mode=mode)
        run.name = experiment_name or run.id
        initial = {}
    initial.update(_pending_config)
    initial.update(to_config_dict(config))
    _pending_config.clear_silently()
    run.config.update_silently(initial)
    for adapter in adapters:
        run.config.update_silently(_with_framework(run.config, adapter.name))
    if mode != "disabled":
        if remote is not None:
            from .remote.plugin import register

            run.remote = remote
            register()  # before on_init: the uploader sees the run from its start
        _install_lifecycle()
        for adapter in adapters:  # before on_init, so the adapter's own hooks see it
            adapter.attach(run)
        if resume is None:
            # the run's row is written here, so readers (and the dashboard) see the run as
            # soon as init returns; the plugins' on_init follow on their own threads
            from .store.writer import record_run

            run._recorded = record_run(run)
        run._dispatcher.submit((INIT, run))
        if len(run.config):
            run._dispatcher.submit((CONFIG, run, run.config.as_dict(), run.config.as_dict()))
        if resume is not None:
            run._dispatcher.barrier(INIT_TIMEOUT)
    with _active_lock:
        _active.append(run)
    return run


def _existing_run(ident: str, directory: str, mode: str) -> Run:
    """A handle on a run already in the store at ``directory``."""
    from .store.reader import StoreReader

    reader = StoreReader(directory)
    try:
        row = reader.run(ident)  # RunNotFoundError names the run and the store
    finally:
        reader.close()
    run = Run(project=row["project"], name=row["name"], dir=directory, description=row["description"],
              tags=row["tags"], group=row["group_name"], mode=mode)
    run.id = row["id"]
    run.created_at = row["created_at"]
    run._step = row["last_step"] if row["last_step"] is not None else -1
    run.resumed = True
    run.config.update_silently(row["config"])
    run.summary.update_silently(row["summary"])
    return run


def attach(run_id: str, dir: str | os.PathLike | None = None) -> Run:
    """A handle that logs into a run another process owns (a spawned worker logging into its
    parent's run). It becomes the active run of this process, but never ends the run:
    its ``finish()`` and the end of this process only deliver what it logged.

    :raises seetrain.api.RunNotFoundError: there is no such run in the store.
    """
    from .store.schema import resolve_dir

    run = _existing_run(run_id, resolve_dir(dir), "local")
    run.attached = True
    _install_lifecycle()
    run._dispatcher.submit((INIT, run))
    run._dispatcher.barrier(INIT_TIMEOUT)
    with _active_lock:
        _active.append(run)
    return run


def _with_framework(config: Config, name: str) -> dict:
    meta = dict(config.get("seetrain") or {})
    frameworks = list(meta.get("frameworks", []))
    if name not in frameworks:
        frameworks.append(name)
    meta["frameworks"] = frameworks
    return {"seetrain": meta}


def _load_adapters(framework: str | Iterable[str] | None) -> list:
    if framework is None:
        return []
    from .adapters import load_adapter

    names = [framework] if isinstance(framework, str) else list(framework)
    return [load_adapter(name) for name in names]


def active_run() -> Run | None:
    """The run that module-level calls log to (the last one started), or ``None``."""
    with _active_lock:
        return _active[-1] if _active else None


def active_runs() -> list[Run]:
    with _active_lock:
        return list(_active)


def _require_run(what: str) -> Run:
    run = active_run()
    if run is None:
        raise RuntimeError(f"seetrain.{what}: no active run; call seetrain.init() first")
    return run


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log values to the active run; see :meth:`Run.log`."""
    run = _active[-1] if _active else _require_run("log")
    run.log(data, step)


def finish(status: str | None = None) -> None:
    """Finish the active run (see :meth:`Run.finish`). Without an active run, nothing."""
    run = active_run()
    if run is not None:
        run.finish(status)


def current_config() -> Config:
    """``seetrain.config``: the active run's config; before ``init``, a config whose values
    the next ``init`` takes over."""
    run = active_run()
    return run.config if run is not None else _pending_config


# -- process lifecycle ------------------------------------------------------------------------

def _install_lifecycle() -> None:
    global _lifecycle_installed
    if _lifecycle_installed:
        return
    _lifecycle_installed = True
    previous_hook = sys.excepthook

    def excepthook(exc_type, exc, tb):  # records how the process is ending
        if issubclass(exc_type, KeyboardInterrupt):
            _exit_status.append(("interrupted", None))
        else:
            _exit_status.append(("crashed", f"{exc_type.__name__}: {exc}"))
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_finish_all_at_exit)


def _finish_all_at_exit() -> None:
    status, error = _exit_status[-1] if _exit_status else ("finished", None)
    for run in reversed(active_runs()):
        try:
            run.finish(status, error=error, timeout=min(FINISH_TIMEOUT, 10.0))
        except Exception as exc:  # pragma: no cover - never fail the interpreter's exit
            log_.warning("seetrain: could not finish run %s at exit: %s", run.id, exc)

