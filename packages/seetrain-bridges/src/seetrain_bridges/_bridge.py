"""What every bridge shares: patches that restore exactly, a re-entrancy guard, counted
failures, and the choice of the SeeTrain run a foreign run is mirrored into.

A bridge wraps a few methods of another tracker's classes. The wrapper always calls the
original with exactly the arguments it got and returns (or raises) exactly what the original
returned (or raised); SeeTrain's own work happens before (reading what must be read before
the tracker moves it, e.g. a W&B media file) and after the original succeeded. Anything that
fails in SeeTrain's part is counted with :func:`seetrain.errors.record_failure` and swallowed.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from typing import Any, Callable, Iterable, NamedTuple

__all__ = ["Bridge", "get_bridge", "BRIDGES"]

log = logging.getLogger("seetrain")

#: adapter name -> ``module:class`` of its bridge (one process-wide instance each)
BRIDGES = {
    "wandb": "seetrain_bridges._wandb:WandbBridge",
    "tensorboard": "seetrain_bridges._tensorboard:TensorBoardBridge",
    "mlflow": "seetrain_bridges._mlflow:MlflowBridge",
}
_instances: dict[str, Bridge] = {}
_instances_lock = threading.Lock()


def get_bridge(name: str) -> Bridge:
    """The process-wide bridge for ``name`` (``wandb``, ``tensorboard``, ``mlflow``)."""
    with _instances_lock:
        bridge = _instances.get(name)
        if bridge is None:
            if name not in BRIDGES:
                raise KeyError(f"no SeeTrain bridge named {name!r}; the bridges are {', '.join(BRIDGES)}")
            import importlib

            module, _, cls = BRIDGES[name].partition(":")
            bridge = _instances[name] = getattr(importlib.import_module(module), cls)()
        return bridge


def existing_bridges() -> list[Bridge]:
    """The bridges built so far in this process (none is built just to be listed)."""
    with _instances_lock:
        return list(_instances.values())


class _Patch(NamedTuple):
    owner: type
    attr: str
    #: what ``owner.__dict__[attr]`` held before, or ``_INHERITED`` when it was inherited
    raw: Any
    wrapper: Callable


_INHERITED = object()


class Bridge:
    """Base of the bridges: ``enable()`` patches once, ``disable()`` restores exactly.

    Subclasses set :attr:`name`, install their patches in :meth:`_install` with
    :meth:`_patch`, and flush what they hold in :meth:`_on_disable`.
    """

    #: the adapter name; failures are counted under it in ``get_integration_error_stats()``
    name = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._patches: list[_Patch] = []
        self._enabled = False
        self._run: Any = None
        self._run_options: dict[str, Any] = {}
        # per thread: how deep we are inside a patched call of this bridge
        self._local = threading.local()

    def __repr__(self) -> str:
        state = "enabled" if self._enabled else "disabled"
        return f"<{type(self).__name__} {state} run={getattr(self._run, 'id', None)}>"

    # -- public switch -----------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether the tracker's calls are mirrored now."""
        return self._enabled

    @property
    def run(self) -> Any:
        """The SeeTrain run given to :meth:`enable` (``None``: the active run, else one the
        bridge starts for each foreign run)."""
        return self._run

    def enable(self, run: Any = None, *, project: str | None = None, dir: str | None = None) -> Bridge:
        """Mirror the tracker's calls into SeeTrain. Enabling again patches nothing twice;
        it only changes the run (and the defaults for the runs the bridge starts).

        :param run: the SeeTrain run to record into; by default the active run, or else a
            run the bridge starts (named after the foreign run) and ends with it.
        :param project: the project of runs the bridge starts when the tracker names none.
        :param dir: the store directory of runs the bridge starts.
        """
        with self._lock:
            if run is not None:
                self._run = run
                run.add_framework(self.name)
            if project is not None:
                self._run_options["project"] = project
            if dir is not None:
                self._run_options["dir"] = dir
            if not self._enabled:
                try:
                    self._install()
                except BaseException:
                    self._restore_patches()
                    raise
                self._enabled = True
        return self

    def disable(self) -> None:
        """Stop mirroring and put back every patched attribute, the very objects that were
        there before. Pending values are delivered first; runs the bridge started end."""
        with self._lock:
            if not self._enabled:
                return
            self._enabled = False
            try:
                self._on_disable()
            except Exception as exc:
                self._failed("disable", exc)
            self._restore_patches()
            self._run = None
            self._run_options = {}

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.disable()

    # -- for subclasses -------------------------------------------------------------------------
    def _install(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _on_disable(self) -> None:
        """Deliver what is pending and end the runs the bridge started (before unpatching)."""

    def _failed(self, operation: str, exc: BaseException) -> None:
        from seetrain.errors import record_failure

        record_failure(self.name, operation, exc)

    def _patch(self, owner: type, attr: str, *, before: Callable[[dict], Any] | None = None,
               after: Callable[[dict, Any, Any], None] | None = None) -> None:
        """Replace ``owner.attr`` by a wrapper.

        ``before(arguments)`` runs before the original (its result is handed on);
        ``after(arguments, result, prepared)`` runs only when the original returned.
        ``arguments`` are the call's arguments bound to the original's signature (``self``
        included), defaults not filled in.
        """
        raw = owner.__dict__.get(attr, _INHERITED)
        original = getattr(owner, attr)
        wrapper = self._wrap(original, attr, before, after)
        setattr(owner, attr, wrapper)
        self._patches.append(_Patch(owner, attr, raw, wrapper))

    def _wrap(self, original: Callable, operation: str, before: Callable | None,
              after: Callable | None) -> Callable:
        bridge = self
        try:
            signature = inspect.signature(original)
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            signature = None
        local = self._local

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not bridge._enabled or getattr(local, "depth", 0) or signature is None:
                # disabled (a method bound while enabled outlives the patch), or a call the
                # tracker makes from inside one we mirror already: the original alone
                return original(*args, **kwargs)
            try:
                arguments = signature.bind(*args, **kwargs).arguments
            except TypeError:
                return original(*args, **kwargs)  # the original raises its own TypeError
            prepared = None
            if before is not None:
                try:
                    prepared = before(arguments)
                except Exception as exc:
                    bridge._failed(operation, exc)
                    arguments = None
            local.depth = getattr(local, "depth", 0) + 1
            try:
                result = original(*args, **kwargs)
            finally:
                local.depth -= 1
            if after is not None and arguments is not None and bridge._enabled:
                try:
                    after(arguments, result, prepared)
                except Exception as exc:
                    bridge._failed(operation, exc)
            return result

        wrapper.__seetrain_bridge__ = bridge  # type: ignore[attr-defined]
        return wrapper

    def _restore_patches(self) -> None:
        for patch in reversed(self._patches):
            current = patch.owner.__dict__.get(patch.attr)
            if current is not patch.wrapper:
                # someone patched on top of us; taking our layer out would drop theirs. Our
                # wrapper passes straight through while disabled, so leaving it is harmless.
                log.warning("seetrain: %s.%s was re-patched by someone else; the %s bridge leaves "
                            "it in place (it passes calls through unchanged)",
                            patch.owner.__qualname__, patch.attr, self.name)
                continue
            if patch.raw is _INHERITED:
                delattr(patch.owner, patch.attr)
            else:
                setattr(patch.owner, patch.attr, patch.raw)
        self._patches.clear()

    # -- which SeeTrain run ---------------------------------------------------------------------
    def _resolve_run(self, *, project: str | None, name: str | None, config: Any = None,
                     tags: Iterable[str] = (), group: str | None = None,
                     claimed: Iterable[Any] = ()) -> tuple[Any, Any]:
        """The run a new foreign run records into, and who ends it.

        The run given to :meth:`enable`, else the active run (each only if open and not
        mirroring another live foreign run already), else a new run. The second value is
        ``True`` for a run the bridge started (it ends it), the :class:`Integration` when the
        run belongs to this adapter's integration (ending that respects other integrations
        sharing the run), or ``None`` for the user's own run (left to the user).
        """
        import seetrain

        claimed = list(claimed)
        for candidate in (self._run, seetrain.active_run()):
            if candidate is None or candidate.finished or any(candidate is c for c in claimed):
                continue
            candidate.add_framework(self.name)
            if config:
                candidate.config.update(config)
            new_tags = [t for t in tags if t not in candidate.tags]
            if new_tags:
                candidate.set_tags([*candidate.tags, *new_tags])
            return candidate, self._integration_of(candidate)
        options = dict(self._run_options)
        default_project = options.pop("project", None)
        project = project or default_project
        run = seetrain.init(project=project, experiment_name=name, config=config, tags=list(tags),
                            group=group, **options)
        run.add_framework(self.name)
        return run, True

    def _integration_of(self, run: Any) -> Any:
        from seetrain import integration

        for candidate in integration.active_integrations():
            if candidate.run is run and candidate.framework == self.name:
                return candidate
        return None

    @staticmethod
    def _end(run: Any, owner: Any, status: str) -> None:
        """End ``run`` as its owner says (see :meth:`_resolve_run`)."""
        if owner is True:
            run.finish(status)
        elif owner is not None and owner is not False:
            owner.finish(status)
