"""Shared helpers of the core tests: run Python code in a fresh interpreter."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap


def run_python(code: str, *, env: dict | None = None, timeout: float = 120, check: bool = False,
               cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter with the test's environment (plus ``env``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def pip_install_target(target: pathlib.Path, *projects: pathlib.Path) -> None:
    """A real ``pip install`` of local projects into a folder (no network, no deps)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), *map(str, projects)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
