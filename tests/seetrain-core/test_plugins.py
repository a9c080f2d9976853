"""The plugin core: hookspecs as contracts, one manager, sinks isolated from each other."""

import inspect


import seetrain
from seetrain import hookspecs, plugins
from seetrain.errors import get_integration_error_stats
from seetrain.hookspecs import hookimpl

HOOKS = ("on_init", "on_config", "on_log", "on_finish")


def test_hookspecs_are_documented_contracts():
    specs = [name for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, "seetrain_spec")]
    assert sorted(specs) == sorted(HOOKS)
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn)
        assert doc and "Fires" in doc, f"{name} must say when it fires"
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{name} must document {param}"
    assert "dispatcher thread" in hookspecs.__doc__


def test_hooks_are_documented_in_docs():
    import pathlib

    text = (pathlib.Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    for name in HOOKS:
        sig = str(inspect.signature(getattr(hookspecs, name))).split(" ->")[0].replace("'", "")
        assert f"## `{name}{sig}`" in text, f"docs/plugins.md lacks a section for {name}{sig}"


def test_recording_sink_receives_the_four_hooks_in_order(recording_sink, _isolated_store):
    run = seetrain.init(project="p", config={"lr": 0.1})
    run.log({"loss": 1.0})
    run.config.update({"bs": 8})
    run.log({"loss": 0.5})
    run.finish()
    assert recording_sink.names() == ["on_init", "on_config", "on_log", "on_config", "on_log", "on_finish"]
    assert recording_sink.logged() == [(0, {"loss": 1.0}), (1, {"loss": 0.5})]
    assert recording_sink.calls[-1][1]["status"] == "finished"
    assert all(kw["run"] is run for _, kw in recording_sink.calls)


def test_each_plugin_has_one_thread_of_its_own(seetrain_plugin_manager, _isolated_store):
    """A third-party plugin's four hooks run on one thread of its own (its lane), never on
    the caller's thread nor on the dispatcher thread that writes the store."""
    import threading

    seen = []

    class ThreadSpy:
        @hookimpl
        def on_init(self):
            seen.append(("init", threading.current_thread().name))

        @hookimpl
        def on_log(self):
            seen.append(("log", threading.current_thread().name))

        @hookimpl
        def on_finish(self):
            seen.append(("finish", threading.current_thread().name))

    seetrain_plugin_manager.register(ThreadSpy(), name="spy")
    run = seetrain.init(project="p")
    run.log({"a": 1})
    run.finish()
    assert seen == [("init", "seetrain-plugin-spy"), ("log", "seetrain-plugin-spy"),
                    ("finish", "seetrain-plugin-spy")]


def test_failing_sink_is_counted_and_never_raises(recording_sink, seetrain_plugin_manager, _isolated_store):
    class Broken:
        @hookimpl
        def on_log(self, data):
            raise RuntimeError("disk on fire")

    seetrain_plugin_manager.register(Broken(), name="broken-sink")
    run = seetrain.init(project="p")
    for i in range(5):
        run.log({"x": i})
    run.finish()
    assert len(recording_sink.logged()) == 5  # the other sinks still got everything
    assert seetrain.Api().run(run.id).scalars("x") == [(i, float(i)) for i in range(5)]
    stats = get_integration_error_stats()["broken-sink"]["on_log"]
    assert stats["failures"] == 5 and stats["last_error"] == "RuntimeError: disk on fire"


def test_finish_is_bounded_when_a_sink_hangs(seetrain_plugin_manager, _isolated_store):
    import threading

    release = threading.Event()

    class Hanging:
        @hookimpl
        def on_finish(self):
            release.wait(30)

    seetrain_plugin_manager.register(Hanging(), name="hanging-sink")
    run = seetrain.init(project="p")
    run.log({"x": 1.0})
    run.finish(timeout=0.5)  # returns although the sink hangs
    assert seetrain.Api().run(run.id).status == "finished"
    assert seetrain.Api().run(run.id).scalars("x") == [(0, 1.0)]
    release.set()


def test_plugin_manager_is_built_lazily_and_once():
    assert plugins.get_plugin_manager() is plugins.get_plugin_manager()
    names = [name for name, _ in plugins.get_plugin_manager().list_name_plugin()]
    assert "seetrain.store" in names


def test_environment_switches(monkeypatch, capsys, _isolated_store):
    monkeypatch.setenv("SEETRAIN_TRACE_HOOKS", "1")
    monkeypatch.delenv("SEETRAIN_SILENT", raising=False)
    pm = plugins.new_plugin_manager(autoload=False)
    assert pm.has_plugin("seetrain.console")
    monkeypatch.setenv("SEETRAIN_SILENT", "1")
    assert not plugins.new_plugin_manager(autoload=False).has_plugin("seetrain.console")


def test_media_that_cannot_be_encoded_is_dropped_alone(recording_sink, _isolated_store, monkeypatch):
    import numpy as np

    run = seetrain.init(project="p")
    img = seetrain.Image(np.zeros((2, 2), dtype=np.uint8))
    monkeypatch.setattr(img, "encode", lambda: (_ for _ in ()).throw(OSError("no space left")))
    run.log({"img": img, "loss": 1.0})
    run.finish()
    assert recording_sink.logged() == [(0, {"loss": 1.0})]
    assert run.dropped == 1
    assert get_integration_error_stats()["core"]["encode image"]["failures"] == 1
