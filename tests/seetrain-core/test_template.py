"""The adapter template (templates/adapter) builds, installs, is discovered, and its own test
passes: it cannot silently rot."""

import os
import pathlib
import subprocess
import sys

import pytest

from core_helpers import pip_install_target

TEMPLATE = pathlib.Path(__file__).parents[2] / "templates" / "adapter"


@pytest.mark.slow
def test_template_installs_and_its_test_passes(tmp_path):
    site = tmp_path / "site"
    pip_install_target(site, TEMPLATE)
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run([sys.executable, "-m", "seetrain", "adapters"], capture_output=True, text=True, env=env)
    line = next(l for l in listing.stdout.splitlines() if l.startswith("yourframework"))
    assert "callback" in line and "yourframework>=1.0" in line and line.endswith("no")  # framework not installed
    # the template's class is refused without its framework, with the requirement named
    proc = subprocess.run([sys.executable, "-c", "import seetrain_yourframework as m; m.SeeTrainCallback"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "FrameworkMissingError" in proc.stderr and "yourframework>=1.0" in proc.stderr
    # a stand-in "yourframework" distribution (its metadata is all discovery reads)
    dist_info = site / "yourframework-1.2.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: yourframework\nVersion: 1.2\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE / "tests"),
                           "-c", os.devnull, "--rootdir", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
