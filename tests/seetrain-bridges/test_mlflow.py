"""The MLflow bridge against mlflow-skinny with a local SQLite tracking store: what MLflow
recorded, read back with MlflowClient, is unchanged, and SeeTrain holds the same values at
the same steps."""

from __future__ import annotations

import json

import numpy as np
import pytest

import seetrain
import seetrain_bridges

mlflow = pytest.importorskip("mlflow")


@pytest.mark.slow  # the first MLflow test pays for the session's SQLite migrations (~10 s)
def test_sync_mlflow_mirrors_params_metrics_tags_artifacts_and_end(mlflow_experiment):
    from mlflow import MlflowClient

    seetrain_bridges.sync_mlflow()
    pixels = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    with mlflow.start_run(run_name="ml-run") as active:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"batch_size": 8, "opt": "adam"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.5, "f1": 0.4}, step=2)
        mlflow.log_metric("no_step", 3.0)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "dev"})
        mlflow.log_text("some notes", "notes.txt")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "meta/config.json")
        mlflow.log_image(pixels, key="sample", step=1)
        mlflow.log_image(pixels, artifact_file="static.png")
    run_id = active.info.run_id

    client = MlflowClient()
    ml_run = client.get_run(run_id)
    [api_run] = seetrain.Api().runs()
    assert api_run.project == client.get_experiment(ml_run.info.experiment_id).name
    assert api_run.name == "ml-run" and api_run.status == "finished"
    assert api_run.frameworks == ["mlflow"]
    # params: the strings MLflow stores
    assert {k: api_run.config[k] for k in ml_run.data.params} == ml_run.data.params == {
        "lr": "0.1", "batch_size": "8", "opt": "adam"}
    for key in ("loss", "acc", "f1", "no_step"):
        history = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        assert api_run.scalars(key) == history, key
    assert api_run.scalars("no_step") == [(0, 3.0)]
    assert set(api_run.tags) == {"team=vision", "stage=dev"}
    assert {k: v for k, v in ml_run.data.tags.items() if not k.startswith("mlflow.")} == {
        "team": "vision", "stage": "dev"}

    artifacts = ml_run.info.artifact_uri
    [notes] = api_run.media("notes.txt")
    assert notes.text == mlflow.artifacts.load_text(f"{artifacts}/notes.txt") == "some notes"
    [meta] = api_run.media("meta/config.json")
    assert json.loads(meta.text) == mlflow.artifacts.load_dict(f"{artifacts}/meta/config.json")

    from PIL import Image as PILImage

    [sample] = api_run.media("sample")
    assert sample.step == 1
    mlflow_png = mlflow.artifacts.load_image(f"{artifacts}/static.png")
    assert np.array_equal(np.asarray(PILImage.open(sample.path)), np.asarray(mlflow_png))
    [static] = api_run.media("static.png")
    assert np.array_equal(np.asarray(PILImage.open(static.path)), pixels)
    assert seetrain.errors.get_integration_error_stats("mlflow") == {"mlflow": {}}


def test_end_run_status_maps(mlflow_experiment):
    seetrain_bridges.sync_mlflow()
    for status in ("FAILED", "KILLED"):
        mlflow.start_run(run_name=status.lower())
        mlflow.log_metric("x", 1.0)
        mlflow.end_run(status=status)
    runs = {r.name: r.status for r in seetrain.Api().runs()}
    assert runs == {"failed": "crashed", "killed": "interrupted"}


def test_nested_runs_get_their_own_run_in_the_parents_group(mlflow_experiment):
    seetrain_bridges.sync_mlflow(project="nest")
    with mlflow.start_run(run_name="parent"):
        mlflow.log_metric("p", 1.0)
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_metric("c", 2.0)
    runs = {r.name: r for r in seetrain.Api().runs()}
    assert set(runs) == {"parent", "child"}
    assert runs["child"].group == "parent" and runs["child"].keys() == ["c"] and runs["parent"].keys() == ["p"]


def test_init_mlflow_integration_and_client_api(mlflow_experiment):
    from mlflow import MlflowClient

    from seetrain.integration import init_mlflow

    integration = init_mlflow(project="ml-int", experiment_name="e1", config={"seed": 3})
    backend = integration.get_backend()
    assert backend.enabled and backend.run is integration.run
    client = MlflowClient()
    ml_run = client.create_run(mlflow_experiment, run_name="direct")
    client.log_metric(ml_run.info.run_id, "loss", 0.25, step=4)
    client.log_param(ml_run.info.run_id, "depth", 3)
    client.set_terminated(ml_run.info.run_id)
    [api_run] = seetrain.Api().runs(project="ml-int")
    assert api_run.name == "e1" and api_run.status == "finished"
    assert api_run.scalars("loss") == [(4, 0.25)] and api_run.config["depth"] == "3"
    assert api_run.config["seed"] == 3


def test_run_started_before_sync_is_picked_up(mlflow_experiment):
    with mlflow.start_run(run_name="early-run"):
        bridge = seetrain_bridges.sync_mlflow()
        mlflow.log_metric("m", 2.0, step=1)
        mlflow.log_param("k", "v")
    bridge.disable()
    [api_run] = seetrain.Api().runs()
    assert api_run.name == "early-run" and api_run.status == "finished"
    assert api_run.scalars("m") == [(1, 2.0)] and api_run.config["k"] == "v"


def test_disable_restores_identity_and_mlflow_errors_pass_through(mlflow_experiment):
    from mlflow import MlflowClient

    names = ("create_run", "set_terminated", "log_metric", "log_param", "set_tag", "log_batch", "log_text",
             "log_dict", "log_image")
    before = {name: vars(MlflowClient)[name] for name in names}
    bridge = seetrain_bridges.sync_mlflow()
    seetrain_bridges.sync_mlflow()
    assert all(vars(MlflowClient)[n].__wrapped__ is before[n] for n in names)
    with mlflow.start_run():
        assert mlflow.log_param("dup", 1) == 1
        with pytest.raises(mlflow.exceptions.MlflowException) as raised:
            mlflow.log_param("dup", 2)  # MLflow refuses changing a param: its own error, unchanged
        assert "dup" in str(raised.value)
    assert seetrain.Api().runs()[0].config["dup"] == "1"  # the refused call was not mirrored
    bridge.disable()
    assert {n: vars(MlflowClient)[n] for n in names} == before


def test_failure_inside_seetrain_is_counted_and_swallowed(mlflow_experiment, monkeypatch):
    from mlflow import MlflowClient

    run = seetrain.init(project="ml-broken")
    seetrain_bridges.sync_mlflow(run=run)

    def broken(*args, **kwargs):
        raise RuntimeError("store exploded")

    monkeypatch.setattr(run, "log", broken)
    with mlflow.start_run() as active:
        assert mlflow.log_metric("loss", 0.5, step=2) is None
    history = MlflowClient().get_metric_history(active.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(2, 0.5)]
    stats = seetrain.errors.get_integration_error_stats("mlflow")["mlflow"]
    assert stats["log_metric"]["failures"] == 1 and "store exploded" in stats["log_metric"]["last_error"]
    assert not run.finished  # the user's run: the bridge leaves it open


def test_artifacts_land_in_the_test_folder(mlflow_experiment, tmp_path):
    seetrain_bridges.sync_mlflow()
    with mlflow.start_run() as active:
        mlflow.log_text("x", "x.txt")
    assert active.info.artifact_uri.startswith((tmp_path / "artifacts").as_uri())
    assert seetrain.Api().runs()[0].media("x.txt")[0].text == "x"


def test_what_mlflow_records_is_the_same_with_the_bridge(mlflow_experiment):
    from mlflow import MlflowClient

    client = MlflowClient()

    def session():
        with mlflow.start_run() as active:
            mlflow.log_params({"lr": 0.1, "opt": "sgd"})
            mlflow.log_metrics({"loss": 0.5, "acc": 0.7}, step=1)
            mlflow.log_metric("loss", 0.25, step=2)
            mlflow.set_tags({"team": "x"})
        run = client.get_run(active.info.run_id)
        history = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
                   for k in ("loss", "acc")}
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return run.data.params, history, tags, run.info.status

    plain = session()
    bridge = seetrain_bridges.sync_mlflow()
    bridged = session()
    bridge.disable()
    assert bridged == plain
    assert plain[1] == {"loss": [(1, 0.5), (2, 0.25)], "acc": [(1, 0.7)]}
