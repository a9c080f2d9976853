"""A real third-party adapter distribution, installed from its own pyproject, is discovered
through the ``seetrain.adapters`` entry points and its hook implementations are called."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from core_helpers import pip_install_target, run_python

HERE = pathlib.Path(__file__).parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder with the adapter (and separately its framework) installed by pip."""
    adapter_site = tmp_path_factory.mktemp("adapter-site")
    pip_install_target(adapter_site, HERE / "thirdparty")
    framework_site = tmp_path_factory.mktemp("framework-site")
    pip_install_target(framework_site, HERE / "thirdparty_framework")
    return adapter_site, framework_site


def _env(*paths):
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


@pytest.mark.slow
def test_discovered_and_hooks_called(site, tmp_path, _isolated_store):
    adapter_site, framework_site = site
    log = tmp_path / "hooks.jsonl"
    proc = run_python("""
        import seetrain
        run = seetrain.init(project="tp", framework="thirdparty", config={"lr": 0.1})
        from seetrain.adapters import load_adapter
        cb = load_adapter("thirdparty").create(run=run, prefix="tp")
        for step in range(3):
            cb.on_step(step, step * 2.0)
        run.finish()
        print(run.id)
    """, env={**_env(adapter_site, framework_site), "SEETRAIN_THIRDPARTY_LOG": str(log)}, check=True)
    run_id = proc.stdout.strip()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["hook"] for r in records] == ["on_init", "on_config", "on_log", "on_log", "on_log", "on_finish"]
    assert records[0]["frameworks"] == ["thirdparty"]
    assert records[-1]["status"] == "finished"
    import seetrain

    run = seetrain.Api().run(run_id)
    assert run.frameworks == ["thirdparty"] and run.config["seetrain"]["frameworks"] == ["thirdparty"]
    assert run.scalars("tp/value") == [(0, 0.0), (1, 2.0), (2, 4.0)]


@pytest.mark.slow
def test_listing_and_missing_framework(site):
    adapter_site, framework_site = site
    proc = run_python("""
        import seetrain
        try:
            seetrain.init(project="tp", framework="thirdparty")
        except ImportError as exc:
            print("ERROR", type(exc).__name__, exc)
    """, env=_env(adapter_site), check=True)
    assert "ERROR FrameworkMissingError" in proc.stdout
    assert "needs seetrain-thirdparty-framework>=1.0, which is not installed" in proc.stdout
    listing = subprocess.run([sys.executable, "-m", "seetrain", "adapters"], capture_output=True, text=True,
                             env={**os.environ, **_env(adapter_site, framework_site)})
    line = next(l for l in listing.stdout.splitlines() if l.startswith("thirdparty"))
    assert "callback" in line and "seetrain-thirdparty 0.3.0" in line and "1.2.0" in line and line.endswith("yes")


def test_unknown_adapter_gives_the_install_command(_isolated_store, monkeypatch):
    import seetrain
    from seetrain import adapters

    # In the test environment every adapter of the repository is installed; to see the
    # message a user without seetrain-keras gets, discovery is made to find nothing.
    monkeypatch.setattr(adapters, "discover_adapters", lambda: {})
    monkeypatch.setattr(adapters, "_loaded", {})  # adapters loaded by earlier tests are cached
    with pytest.raises(adapters.AdapterNotInstalledError) as info:
        seetrain.init(project="p", framework="keras")
    assert str(info.value).startswith("no SeeTrain adapter for 'keras' is installed")
    assert str(info.value).endswith('Install it with: pip install "seetrain[keras]"')
    with pytest.raises(adapters.AdapterNotInstalledError, match=r'pip install "seetrain\[lightning\]"'):
        seetrain.init(project="p", framework="pytorch_lightning")  # an alias names the same extra
    with pytest.raises(adapters.AdapterNotInstalledError, match=r'pip install "seetrain-nonexistent-fw"'):
        seetrain.init(project="p", framework="nonexistent-fw")
