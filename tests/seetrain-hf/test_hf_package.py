"""The seetrain-hf distribution: discovery from metadata, lazy imports, one part per framework."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import seetrain
import seetrain.adapters


def run_python(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned parsed."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=180)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_both_adapters_are_discovered_from_metadata():
    found = seetrain.adapters.discover_adapters()
    transformers, accelerate = found["transformers"], found["accelerate"]
    assert (transformers.distribution, transformers.mode, transformers.requirements) == (
        "seetrain-hf", "callback", ("transformers>=4.40",))
    assert (accelerate.distribution, accelerate.mode, accelerate.requirements) == (
        "seetrain-hf", "tracker", ("accelerate>=1.1",))
    assert transformers.value == "seetrain_hf:transformers_adapter"
    assert accelerate.value == "seetrain_hf:accelerate_adapter"
    # aliases of the core resolve to these names
    assert seetrain.adapters.find_adapter("huggingface") == transformers
    assert seetrain.adapters.find_adapter("hf_accelerate") == accelerate


@pytest.mark.slow
def test_each_part_imports_its_framework_only_when_used():
    seen = run_python("""
        import json, sys
        import seetrain_hf
        loaded = lambda: {m: m in sys.modules for m in ("torch", "transformers", "accelerate")}
        out = {"package": loaded(), "modes": [seetrain_hf.transformers_adapter.mode,
                                              seetrain_hf.accelerate_adapter.mode]}
        seetrain_hf.SeeTrainTracker
        out["tracker"] = loaded()
        seetrain_hf.SeeTrainCallback
        out["callback"] = loaded()
        print(json.dumps(out))
    """)
    assert seen["package"] == {"torch": False, "transformers": False, "accelerate": False}
    assert seen["modes"] == ["callback", "tracker"]
    assert seen["tracker"]["accelerate"] and not seen["tracker"]["transformers"]
    assert seen["callback"]["transformers"]


@pytest.mark.slow
def test_a_too_old_framework_is_named_and_the_other_part_still_works(tmp_path):
    # real metadata of an old Transformers, first on the path: what discovery sees when the
    # user's Transformers is older than the adapter's requirement
    dist_info = tmp_path / "transformers-4.0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: transformers\nVersion: 4.0.0\n")
    seen = run_python("""
        import json
        import seetrain.adapters, seetrain_hf
        out = {}
        try:
            seetrain_hf.SeeTrainCallback
        except seetrain.adapters.FrameworkMissingError as exc:
            out["callback"] = str(exc)
        try:
            from seetrain.integration import init_transformers
            init_transformers(project="old")
        except seetrain.adapters.FrameworkMissingError as exc:
            out["integration"] = str(exc)
        out["tracker"] = seetrain_hf.SeeTrainTracker.name
        print(json.dumps(out))
    """, PYTHONPATH=str(tmp_path))
    for message in (seen["callback"], seen["integration"]):
        assert "transformers>=4.40" in message and "4.0.0" in message and "pip install" in message
    assert seen["tracker"] == "seetrain"


def test_seetrain_init_with_the_framework_loads_the_adapter():
    run = seetrain.init(project="by-framework", framework=["transformers", "accelerate"])
    run.finish()
    api_run = seetrain.Api().run(run.id)
    assert api_run.frameworks == ["transformers", "accelerate"]
    from seetrain.integration import init_accelerate

    with pytest.raises(TypeError, match="use get_tracker"):
        init_accelerate(project="modes").get_callback()
