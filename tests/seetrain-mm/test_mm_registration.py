"""How SeeTrainVisBackend gets into MMEngine's registry, each case in a fresh interpreter
(in this one it is registered already): ``import seetrain_mm`` imports no MMEngine, and a
config file's ``custom_imports`` registers the backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import seetrain
from seetrain.adapters import discover_adapters


def _python(code: str, cwd: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                            text=True, timeout=180, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_discovery_metadata():
    """Both names are found from metadata alone, in visbackend mode; mmdetection needs only
    MMEngine, so it is usable where mmdet is not installed (as here)."""
    adapters = discover_adapters()
    for name in ("mmengine", "mmdetection"):
        info = adapters[name]
        assert (info.distribution, info.mode, info.requirements) == ("seetrain-mm", "visbackend", ("mmengine>=0.10",))
        assert info.framework_problem() is None


def test_import_seetrain_mm_imports_no_framework(tmp_path):
    out = _python("""
        import sys
        import seetrain_mm
        print(sorted(m for m in ("mmengine", "torch", "cv2", "numpy") if m in sys.modules))
        import seetrain.adapters
        assert seetrain.adapters.load_adapter("mmengine") is seetrain_mm.mmengine_adapter
        assert seetrain.adapters.load_adapter("mmdet") is seetrain_mm.mmdetection_adapter
        print("mmengine" in sys.modules)
        cls = seetrain_mm.SeeTrainVisBackend  # first access: imports MMEngine, registers
        from mmengine.registry import VISBACKENDS
        print(VISBACKENDS.get("SeeTrainVisBackend") is cls)
    """, str(tmp_path))
    assert out.split() == ["[]", "False", "True"]


@pytest.mark.slow
@pytest.mark.parametrize("module", ["seetrain_mm", "seetrain_mm.visbackend"])
def test_custom_imports_in_a_config_file(tmp_path, module):
    config = tmp_path / "tiny_cfg.py"
    config.write_text(textwrap.dedent(f"""
        custom_imports = dict(imports=[{module!r}], allow_failed_imports=False)
        visualizer = dict(
            type="Visualizer",
            vis_backends=[dict(type="SeeTrainVisBackend",
                               init_kwargs=dict(project="from-file", experiment_name="custom"))],
        )
        lr = 0.01
    """))
    _python(f"""
        import sys
        from mmengine.registry import VISBACKENDS
        assert "seetrain_mm" not in sys.modules and VISBACKENDS.get("SeeTrainVisBackend") is None
        from mmengine.config import Config
        cfg = Config.fromfile({str(config)!r})  # runs custom_imports
        from mmengine.visualization import Visualizer
        visualizer = Visualizer.get_instance("vis", **{{k: v for k, v in cfg.visualizer.items() if k != "type"}})
        visualizer.add_config(cfg)
        visualizer.add_scalar("loss", 0.5, step=3)
        visualizer.close()
    """, str(tmp_path))
    [run] = seetrain.Api().runs(project="from-file")
    assert (run.name, run.status, run.frameworks) == ("custom", "finished", ["mmengine"])
    assert run.scalars("loss") == [(3, 0.5)]
    assert run.config["lr"] == 0.01
    # the config file itself is recorded with the run
    assert [(f["kind"], f["path"]) for f in run.files()] == [("config", str(config))]
