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


@pytest.fixture(scope="session")
def _mlflow_store(tmp_path_factory):
    """One SQLite tracking store for the session: creating one runs MLflow's migrations,
    which takes seconds. Tests keep apart by experiment (see ``mlflow_experiment``)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def mlflow_experiment(_mlflow_store, tmp_path, request, monkeypatch):
    """The id of this test's experiment (artifacts in its folder), made the active one, in
    the session's SQLite store."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", _mlflow_store)
    mlflow.set_tracking_uri(_mlflow_store)
    client = mlflow.MlflowClient()
    name = request.node.nodeid
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        name, artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    yield experiment_id
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
