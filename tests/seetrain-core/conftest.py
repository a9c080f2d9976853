import importlib
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
HERE = pathlib.Path(__file__).parent


def pip_install_target(target: pathlib.Path, *projects: pathlib.Path) -> None:
    """A real ``pip install`` of local projects into a folder (no network, no deps)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), *map(str, projects)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def thirdparty_in_process(tmp_path_factory):
    """The third-party adapter and its framework, pip-installed and importable in this
    process (entry points are discovered from sys.path)."""
    site = tmp_path_factory.mktemp("thirdparty-site")
    pip_install_target(site, HERE / "thirdparty", HERE / "thirdparty_framework")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
