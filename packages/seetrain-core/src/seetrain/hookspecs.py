"""The plugin contract of SeeTrain: four hooks, one per phase of a run.

Threads: the local store (a built-in plugin) is written first, on the dispatcher thread.
Every other plugin then gets the events on **a thread of its own** (its lane), never on the
thread that called :func:`seetrain.log`, and always in the order the events happened for a
run: ``on_init`` first, then ``on_config`` / ``on_log`` interleaved as the user made them,
then ``on_finish``. A plugin's hooks all run on its one thread, so it needs no locks of its
own. A plugin that is slow delays only itself: once ``SEETRAIN_PLUGIN_QUEUE`` (10,000)
events wait for it, its ``on_log`` events are dropped for it alone (counted under its name
in :func:`seetrain.errors.get_integration_error_stats`, one warning); ``on_init``,
``on_config`` and ``on_finish`` are never dropped. A hook implementation may take any subset
of the arguments (pluggy's rule), so arguments added to a spec later never break an existing
plugin.

An exception raised by an implementation is counted in
:func:`seetrain.errors.get_integration_error_stats`, logged once, and never reaches the
training loop; the other implementations still run.

Sinks that buffer may also define a plain ``flush()`` method (not a hook): it is called on
the plugin's thread whenever its queue has been emptied, and at least every quarter second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import pluggy

if TYPE_CHECKING:
    from .run import Run

PROJECT_NAME = "seetrain"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- start of a run ---------------------------------------------------------------------


@hookspec
def on_init(run: Run) -> None:
    """A run has started.

    Fires once per run, before any other hook for it, when :func:`seetrain.init` returned.

    :param run: the :class:`seetrain.Run`; ``run.id``, ``run.project``, ``run.name``,
        ``run.dir`` (the store directory), ``run.config`` and ``run.frameworks`` are set.
    """


# -- during a run ----------------------------------------------------------------------


@hookspec
def on_config(run: Run, config: Mapping[str, Any], changed: Mapping[str, Any]) -> None:
    """The run's configuration changed.

    Fires after every change of ``run.config`` (``update()``, item assignment, an adapter
    recording hyperparameters), in order with the ``on_log`` calls around it.

    :param run: the run whose config changed.
    :param config: a snapshot of the whole config after the change (JSON-safe values).
    :param changed: the top-level keys that were set by this change, with their new values.
    """


@hookspec
def on_log(run: Run, step: int, data: Mapping[str, Any], timestamp: float) -> None:
    """Values were logged at a step.

    Fires once per :func:`seetrain.log` call. Media have already been encoded: an
    :class:`seetrain.Image` has ``.encoded`` PNG bytes, an :class:`seetrain.Audio` has
    ``.encoded`` FLAC/WAV bytes and ``.format``.

    :param run: the run the values belong to.
    :param step: the step, an int >= 0.
    :param data: flat mapping of key (``/``-separated) to a float, a media object
        (:class:`~seetrain.Image`, :class:`~seetrain.Audio`, :class:`~seetrain.Text`) or a
        list of media objects. The mapping is shared between plugins: do not mutate it.
    :param timestamp: wall time (``time.time()``) of the ``log`` call in the caller's thread.
    """


# -- end of a run ----------------------------------------------------------------------


@hookspec
def on_finish(run: Run, status: str, error: str | None) -> None:
    """A run has ended.

    Fires once per run, after every ``on_log`` and ``on_config`` of the run was delivered.

    :param run: the run that ended.
    :param status: ``"finished"``, ``"crashed"`` or ``"interrupted"``.
    :param error: for a crashed run, the exception as text (type and message); else ``None``.
    """
