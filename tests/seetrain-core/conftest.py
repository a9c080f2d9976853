import importlib
import os
import pathlib
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from core_helpers import pip_install_target  # noqa: E402

HERE = pathlib.Path(__file__).parent


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
