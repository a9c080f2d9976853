"""The monorepo's distributions: extras name real adapter distributions, every adapter has
its metadata (mode, framework requirement), and importing an adapter imports no framework."""

import pathlib
import subprocess
import sys
import tomllib
import zipfile

import pytest

from core_helpers import run_python

ROOT = pathlib.Path(__file__).parents[2]
PACKAGES = {p.name: tomllib.loads((p / "pyproject.toml").read_text()) for p in (ROOT / "packages").iterdir()
            if (p / "pyproject.toml").is_file()}
DISTRIBUTIONS = {name: meta for name, meta in PACKAGES.items() if name != "seetrain-core"}
# an adapter distribution registers adapters; the others (the team server) register commands
ADAPTERS = {name: meta for name, meta in DISTRIBUTIONS.items()
            if "seetrain.adapters" in meta["project"].get("entry-points", {})}
CORE = PACKAGES["seetrain-core"]["project"]


def test_every_distribution_is_an_adapter_or_a_command():
    for name, meta in DISTRIBUTIONS.items():
        groups = set(meta["project"].get("entry-points", {}))
        assert groups & {"seetrain.adapters", "seetrain.commands"}, f"{name} registers neither adapters nor commands"
    assert "server" in DISTRIBUTIONS["seetrain-server"]["project"]["entry-points"]["seetrain.commands"]
    assert CORE["optional-dependencies"]["server"] == ["seetrain-server"]


def test_every_extra_names_an_adapter_distribution_of_the_repo():
    dists = {meta["project"]["name"] for meta in DISTRIBUTIONS.values()}
    named = {req for reqs in CORE["optional-dependencies"].values() for req in reqs if req.startswith("seetrain-")}
    assert named <= dists, f"extras name distributions that do not exist: {named - dists}"
    assert dists <= set(CORE["optional-dependencies"]["all"]) | named
    for key in ("lightning", "keras", "hf", "mm", "autolog", "all"):
        assert key in CORE["optional-dependencies"]


@pytest.mark.parametrize("package", sorted(ADAPTERS))
def test_adapter_metadata(package):
    project = ADAPTERS[package]["project"]
    assert project["name"] == package and any(d.startswith("seetrain") for d in project["dependencies"])
    eps = project["entry-points"]["seetrain.adapters"]
    modes = dict(kw.split(":", 1)[1].split("=") for kw in project["keywords"] if kw.startswith("seetrain-mode:"))
    extras = project.get("optional-dependencies", {})
    values = {}
    for name, value in eps.items():
        values.setdefault(value, []).append(name)
    for names in values.values():
        # one of the names of an adapter object carries its mode and framework requirement
        assert any(n in modes for n in names), f"{package}: no seetrain-mode keyword for {names}"
        assert any(n in extras for n in names), f"{package}: no framework extra for {names}"
    assert set(modes.values()) <= {"callback", "tracker", "visbackend", "autolog"}


@pytest.mark.parametrize("package", sorted(ADAPTERS))
def test_importing_an_adapter_imports_no_framework(package):
    module = package.replace("-", "_")
    frameworks = ("torch", "lightning", "pytorch_lightning", "keras", "tensorflow", "transformers", "accelerate",
                  "mmengine", "mmdet", "ultralytics", "ray", "optuna", "wandb", "tensorboard", "tensorboardX",
                  "mlflow", "openai", "anthropic", "zhipuai")
    proc = run_python(f"""
        import sys
        import {module}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {frameworks!r})
        print("LOADED", loaded)
    """)
    if proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr and module in proc.stderr:
        pytest.skip(f"{package} is not installed in this environment")
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout


@pytest.mark.slow
def test_core_wheel_metadata(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT / "packages" / "seetrain-core")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [wheel] = tmp_path.glob("seetrain-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    from packaging.requirements import Requirement

    requires = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]

    def pulled_by(extra):
        return {r.name for r in requires if r.marker is not None and r.marker.evaluate({"extra": extra})}

    # what makes `pip install "seetrain[lightning]"` pull the adapter in
    assert pulled_by("lightning") == {"seetrain-lightning"} and pulled_by("keras") == {"seetrain-keras"}
    assert pulled_by("hf") == {"seetrain-hf"} and pulled_by("mm") == {"seetrain-mm"}
    assert {"seetrain-lightning", "seetrain-autolog", "seetrain-bridges"} <= pulled_by("all")
    assert "seetrain = seetrain.cli:main" in entry_points and "[pytest11]" in entry_points
    assert "seetrain/py.typed" in names or "seetrain/hookspecs.py" in names
