"""Fixtures of the bridge tests: each tracker offline in the test's own folder, and its own
reader to check what it wrote."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _bridges_off():
    """No bridge outlives a test (other suites in this process use the same trackers)."""
    yield
    import seetrain_bridges

    seetrain_bridges.disable_all()


@pytest.fixture
def wandb_dir(tmp_path, monkeypatch):
    """W&B offline (the root conftest sets WANDB_MODE=offline) writing under this test."""
    path = tmp_path / "wandb"
    path.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(path))
    yield str(path)
    import wandb

    if wandb.run is not None:
        wandb.run.finish()


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    """A local SQLite tracking store (artifacts in the test folder) for this test."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # the default artifact root (./mlruns) lands here
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
