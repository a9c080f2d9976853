"""A pytest plugin for adapter and plugin authors (registered as ``seetrain`` in ``pytest11``).

Fixtures:

``seetrain_dir``
    a fresh store directory, also set as ``SEETRAIN_DIR`` for the test.
``seetrain_plugin_manager``
    an isolated plugin manager (built-in plugins, no entry-point autoload), made the
    process's manager for the test.
``recording_sink``
    a plugin registered in that manager that records every hook call in ``.calls``
    (``(hook_name, kwargs)`` tuples) after the dispatcher delivered it.

Importing this module is cheap: it loads only the hook markers.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from .hookspecs import hookimpl  # pluggy is already loaded by pytest


class RecordingSink:
    """Records every hook call it receives, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def on_init(self, run: Any) -> None:
        self.calls.append(("on_init", {"run": run}))

    @hookimpl
    def on_config(self, run: Any, config: Any, changed: Any) -> None:
        self.calls.append(("on_config", {"run": run, "config": dict(config), "changed": dict(changed)}))

    @hookimpl
    def on_log(self, run: Any, step: int, data: Any, timestamp: float) -> None:
        self.calls.append(("on_log", {"run": run, "step": step, "data": dict(data), "timestamp": timestamp}))

    @hookimpl
    def on_finish(self, run: Any, status: str, error: Any) -> None:
        self.calls.append(("on_finish", {"run": run, "status": status, "error": error}))

    def names(self) -> list[str]:
        """The hook names received, in order."""
        return [name for name, _ in self.calls]

    def logged(self) -> list[tuple[int, dict[str, Any]]]:
        """``(step, data)`` of every ``on_log`` call."""
        return [(kw["step"], kw["data"]) for name, kw in self.calls if name == "on_log"]


@pytest.fixture
def seetrain_dir(tmp_path, monkeypatch) -> str:
    """A fresh store directory, set as ``SEETRAIN_DIR``."""
    path = tmp_path / "seetrain-store"
    monkeypatch.setenv("SEETRAIN_DIR", str(path))
    return str(path)


@pytest.fixture
def seetrain_plugin_manager() -> Iterator[Any]:
    """An isolated plugin manager, current for the duration of the test."""
    from .plugins import new_plugin_manager, use_plugin_manager
    from .run import active_runs

    pm = new_plugin_manager(autoload=False)
    with use_plugin_manager(pm):
        yield pm
        for run in active_runs():
            run.finish()


@pytest.fixture
def recording_sink(seetrain_plugin_manager) -> RecordingSink:
    """A :class:`RecordingSink` registered in the isolated plugin manager."""
    sink = RecordingSink()
    seetrain_plugin_manager.register(sink, name="recording-sink")
    return sink
