"""The one plugin manager of SeeTrain, built lazily and idempotently.

Built-in sinks are plugins on the same hooks as third-party ones (``DEFAULT_PLUGINS``).
Third-party plugins are distributions with an entry point in the group ``seetrain.plugins``;
adapters (group ``seetrain.adapters``) register their plugin when they are loaded.

Environment switches, read when the manager is built:

``SEETRAIN_DISABLE_PLUGIN_AUTOLOAD=1``
    do not load ``seetrain.plugins`` entry points.
``SEETRAIN_PLUGINS=name1,name2``
    load only these ``seetrain.plugins`` entry points (an allow-list).
``SEETRAIN_TRACE_HOOKS=1``
    print every hook call to stderr.
``SEETRAIN_SILENT=1``
    no console summary at the end of a run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pluggy

__all__ = ["get_plugin_manager", "use_plugin_manager", "new_plugin_manager", "PLUGIN_GROUP", "DEFAULT_PLUGINS"]

#: entry-point group of third-party plugins (sinks and other hook implementations)
PLUGIN_GROUP = "seetrain.plugins"

#: built-in plugins: (name, module path); each module defines hookimpls at top level or a
#: ``plugin`` attribute holding the object to register
DEFAULT_PLUGINS = (
    ("seetrain.store", "seetrain.store.sink"),
    ("seetrain.console", "seetrain.console"),
)

_pm: pluggy.PluginManager | None = None
_lock = threading.RLock()


def new_plugin_manager(*, defaults: bool = True, autoload: bool | None = None) -> pluggy.PluginManager:
    """A fresh plugin manager with SeeTrain's hookspecs.

    :param defaults: register the built-in plugins (local store, console summary).
    :param autoload: load ``seetrain.plugins`` entry points; ``None`` follows
        ``SEETRAIN_DISABLE_PLUGIN_AUTOLOAD``.
    """
    import importlib

    import pluggy

    from . import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if defaults:
        for name, module_path in DEFAULT_PLUGINS:
            if name == "seetrain.console" and os.environ.get("SEETRAIN_SILENT"):
                continue
            module = importlib.import_module(module_path)
            pm.register(getattr(module, "plugin", module), name=name)
    if autoload is None:
        autoload = not os.environ.get("SEETRAIN_DISABLE_PLUGIN_AUTOLOAD")
    if autoload:
        _load_entry_point_plugins(pm)
    if os.environ.get("SEETRAIN_TRACE_HOOKS"):
        import sys

        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _load_entry_point_plugins(pm: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    from . import errors

    allowed = os.environ.get("SEETRAIN_PLUGINS")
    allow = {n.strip() for n in allowed.split(",") if n.strip()} if allowed else None
    for ep in entry_points(group=PLUGIN_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not break training
            errors.record_failure(ep.name, "load plugin", exc)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, built on first use (not at ``import seetrain``)."""
    global _pm
    if _pm is None:
        with _lock:
            if _pm is None:
                _pm = new_plugin_manager()
    return _pm


def register(plugin: object, name: str | None = None) -> None:
    """Register a plugin object (idempotent by name)."""
    pm = get_plugin_manager()
    with _lock:
        if name is not None and pm.has_plugin(name):
            return
        if pm.is_registered(plugin):
            return
        pm.register(plugin, name=name)


@contextlib.contextmanager
def use_plugin_manager(pm: pluggy.PluginManager) -> Iterator[pluggy.PluginManager]:
    """Make ``pm`` the process's plugin manager inside the ``with`` block (tests).

    Runs started inside should be finished inside, since their events are delivered to the
    manager that is current when the dispatcher delivers them."""
    global _pm
    from .dispatcher import get_dispatcher

    dispatcher = get_dispatcher()
    dispatcher.barrier(timeout=30)
    with _lock:
        previous, _pm = _pm, pm
    dispatcher.reset_plugin_manager()
    try:
        yield pm
    finally:
        dispatcher.barrier(timeout=30)
        with _lock:
            _pm = previous
        dispatcher.reset_plugin_manager()
