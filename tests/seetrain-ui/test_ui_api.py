"""The dashboard's JSON API, through Starlette's test client, over a store written by the core."""

from __future__ import annotations

import io
import os
import re
import time

import numpy as np
import pytest
from ui_data import STEPS, loss_at

import seetrain


def test_projects_lists_each_project_with_run_counts_and_statuses(client):
    data = client.get("/api/projects").json()
    assert data["exists"] is True
    by_name = {p["name"]: p for p in data["projects"]}
    assert by_name["vision"]["runs"] == 2
    assert by_name["vision"]["statuses"] == {"finished": 2}
    assert by_name["nlp"]["runs"] == 1


def test_project_runs_have_summaries_config_and_metric_keys(client, run_ids):
    data = client.get("/api/projects/vision/runs").json()
    assert [r["name"] for r in data["runs"]] == ["resnet-b", "resnet-a"]  # newest first
    run = next(r for r in data["runs"] if r["name"] == "resnet-a")
    assert run["status"] == "finished"
    assert run["config"]["optimizer"] == {"name": "sgd", "momentum": 0.9}
    assert run["tags"] == ["baseline", "a"]
    assert run["duration"] is not None and run["duration"] >= 0
    assert run["summary"]["train/loss"] == pytest.approx(loss_at(STEPS - 1))
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr"} <= set(data["metric_keys"])
    assert "samples/image" not in data["metric_keys"]


def test_run_detail_lists_keys_by_kind_with_media_steps(client, run_ids):
    data = client.get(f"/api/runs/{run_ids['resnet-a']}").json()
    kinds = {k["key"]: k["kind"] for k in data["keys"]}
    assert kinds["train/loss"] == "scalar"
    assert kinds["samples/image"] == "image" and kinds["samples/audio"] == "audio" and kinds["samples/text"] == "text"
    image = next(k for k in data["keys"] if k["key"] == "samples/image")
    assert image["steps"] == [0, 20, 40]
    assert data["description"] == "ResNet run resnet-a"
    assert data["summary"]["val/acc"] == pytest.approx(0.5 + 49 / 200)


def test_run_is_found_by_name_and_by_id_prefix(client, run_ids):
    assert client.get("/api/runs/resnet-b").json()["id"] == run_ids["resnet-b"]
    rid = run_ids["bert"]
    prefix = rid[:-2]
    assert client.get(f"/api/runs/{prefix}").json()["id"] == rid


def test_scalars_are_exact_when_they_fit(client, run_ids):
    data = client.get(f"/api/runs/{run_ids['resnet-a']}/scalars",
                      params=[("key", "train/loss"), ("key", "val/loss")]).json()
    loss = data["series"]["train/loss"]
    assert loss["exact"] is True and loss["total"] == STEPS
    assert loss["steps"] == list(range(STEPS))
    assert loss["values"] == pytest.approx([loss_at(s) for s in range(STEPS)])
    assert len(loss["times"]) == STEPS and loss["times"] == sorted(loss["times"])
    assert data["series"]["val/loss"]["steps"] == [9, 19, 29, 39, 49]


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    """One run of 20,000 points with a single spike at step 12,345."""
    directory = str(tmp_path_factory.mktemp("big") / "store")
    run = seetrain.init(project="big", experiment_name="long", dir=directory)
    values = np.sin(np.arange(20_000) / 500.0)
    values[12_345] = 50.0
    for step, v in enumerate(values.tolist()):
        run.log({"loss": v}, step=step)
    run.finish()
    from seetrain.ui import create_app
    from starlette.testclient import TestClient

    with TestClient(create_app(directory)) as c:
        yield c, run.id


def test_downsampling_keeps_the_min_max_envelope_and_spikes(big_run):
    client, rid = big_run
    s = client.get(f"/api/runs/{rid}/scalars", params={"key": "loss", "max_points": 200}).json()["series"]["loss"]
    assert s["exact"] is False and s["total"] == 20_000
    assert len(s["steps"]) <= 200 and s["steps"] == sorted(s["steps"])
    assert 12_345 in s["steps"] and max(s["values"]) == 50.0  # the spike survives
    assert min(s["values"]) == pytest.approx(-1.0, abs=1e-4)
    assert len(s["times"]) == len(s["steps"])


def test_zooming_fetches_the_exact_points_of_the_range(big_run):
    client, rid = big_run
    s = client.get(f"/api/runs/{rid}/scalars",
                   params={"key": "loss", "step_min": 12_300, "step_max": 12_400, "max_points": 400}).json()["series"]["loss"]
    assert s["exact"] is True and s["total"] == 101
    assert s["steps"] == list(range(12_300, 12_401))
    assert s["values"][45] == 50.0


def test_since_step_returns_only_the_tail(client, run_ids):
    s = client.get(f"/api/runs/{run_ids['resnet-a']}/scalars",
                   params={"key": "train/loss", "since_step": 45}).json()["series"]["train/loss"]
    assert s["steps"] == [46, 47, 48, 49]


def test_non_finite_values_are_null_and_named(client, run_ids):
    s = client.get(f"/api/runs/{run_ids['bert']}/scalars", params={"key": "loss"}).json()["series"]["loss"]
    assert s["values"] == [None, 0.5, None]
    assert s["nonfinite"] == {"0": "NaN", "2": "Infinity"}
    assert client.get(f"/api/runs/{run_ids['bert']}").json()["summary"]["loss"] == "Infinity"


BAD_REQUESTS = [
    ("/api/runs/no-such-run", 404, "no run 'no-such-run'"),
    ("/api/runs/no-such-run/scalars?key=loss", 404, "no run"),
    ("/api/runs/{a}/scalars?key=nope", 404, "no key 'nope'"),
    ("/api/runs/{a}/scalars", 400, "give at least one key"),
    ("/api/runs/{a}/scalars?key=", 400, "must not be empty"),
    ("/api/runs/{a}/scalars?key=samples/image", 400, "holds image"),
    ("/api/runs/{a}/scalars?key=train/loss&max_points=abc", 400, "'max_points' must be an integer"),
    ("/api/runs/{a}/scalars?key=train/loss&max_points=1", 400, "at least 2"),
    ("/api/runs/{a}/scalars?key=train/loss&max_points=99999999", 400, "at most"),
    ("/api/runs/{a}/scalars?key=train/loss&step_min=10&step_max=5", 400, "bad range"),
    ("/api/runs/{a}/scalars?key=train/loss&step_min=1.5", 400, "'step_min' must be an integer"),
    ("/api/runs/{a}/scalars?key=train/loss&since_step=x", 400, "'since_step'"),
    ("/api/runs/{a}/media", 400, "give the media key"),
    ("/api/runs/{a}/media?key=train/loss", 400, "holds scalars"),
    ("/api/runs/{a}/media?key=nope", 404, "no key"),
    ("/api/runs/{a}/media?key=samples/image&step=x", 400, "'step'"),
    ("/api/projects/nope/runs", 404, "no project 'nope'"),
    ("/api/nothing/here", 404, "no API endpoint"),
    ("/media/no/such/file.png", 404, "no media file"),
]


@pytest.mark.parametrize("url,status,message", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_with_a_message(client, run_ids, url, status, message):
    resp = client.get(url.format(a=run_ids["resnet-a"]))
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert message in body["error"] and body["status"] == status


def test_a_method_other_than_get_is_refused_with_json(client):
    resp = client.post("/api/projects")
    assert resp.status_code == 405 and "error" in resp.json()


def test_media_files_are_served_with_their_content(client, run_ids):
    from PIL import Image
    import soundfile

    items = client.get(f"/api/runs/{run_ids['resnet-a']}/media", params={"key": "samples/image"}).json()["items"]
    assert [i["step"] for i in items] == [0, 20, 40] and items[1]["caption"] == "step 20"
    for item, channel in zip(items, range(3)):
        resp = client.get(item["url"])
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
        pixel = Image.open(io.BytesIO(resp.content)).convert("RGB").getpixel((0, 0))
        assert pixel[channel] == 255 and sum(pixel) == 255  # red, then green, then blue
    audio = client.get(f"/api/runs/{run_ids['resnet-a']}/media", params={"key": "samples/audio", "step": 20}).json()
    assert [i["step"] for i in audio["items"]] == [20] and audio["kind"] == "audio"
    samples, rate = soundfile.read(io.BytesIO(client.get(audio["items"][0]["url"]).content))
    assert rate == 8000 and len(samples) == 800
    text = client.get(f"/api/runs/{run_ids['resnet-a']}/media", params={"key": "samples/text"}).json()
    assert [i["text"] for i in text["items"]] == [f"prediction at step {s}" for s in (0, 20, 40)]
    assert text["items"][0]["url"] is None


@pytest.mark.parametrize("path", [
    "/media/../seetrain.db",
    "/media/%2e%2e/seetrain.db",
    "/media/..%2fseetrain.db",
    "/media/%2e%2e%2f%2e%2e%2fetc/passwd",
    "/media//etc/passwd",
    "/media/%2fetc%2fpasswd",
    "/media/..%5cseetrain.db",
    "/media/",
    "/media/%00",
])
def test_media_paths_cannot_leave_the_store(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert b"SQLite" not in resp.content and b"root:" not in resp.content


def test_media_lookup_refuses_traversal_and_symlinks_out(tmp_path):
    from seetrain.ui._queries import NotFound, media_file

    store = tmp_path / "store"
    (store / "media" / "run").mkdir(parents=True)
    (store / "seetrain.db").write_bytes(b"secret")
    (store / "media" / "run" / "ok.png").write_bytes(b"png")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, store / "media" / "run" / "link.png")
    assert media_file(str(store), "run/ok.png") == os.path.realpath(store / "media" / "run" / "ok.png")
    for bad in ("../seetrain.db", "run/../../seetrain.db", str(outside), "run/link.png", "run", "", "run\\..\\x"):
        with pytest.raises(NotFound):
            media_file(str(store), bad)


def test_openapi_schema_documents_every_api_endpoint(client):
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) == {"/api/store", "/api/projects", "/api/projects/{project}/runs", "/api/runs/{run}",
                          "/api/runs/{run}/scalars", "/api/runs/{run}/media"}
    for path, ops in paths.items():
        assert ops["get"]["summary"], path
        assert "200" in {str(code) for code in ops["get"]["responses"]}, path
    params = {p["name"] for p in paths["/api/runs/{run}/scalars"]["get"]["parameters"]}
    assert params == {"run", "key", "max_points", "step_min", "step_max", "since_step"}


def test_a_missing_store_shows_empty_until_a_run_creates_it(tmp_path):
    from seetrain.ui import create_app
    from starlette.testclient import TestClient

    directory = tmp_path / "later"
    with TestClient(create_app(directory)) as c:
        assert c.get("/api/projects").json() == {"projects": [], "directory": str(directory), "exists": False}
        resp = c.get("/api/runs/abc")
        assert resp.status_code == 404 and "no SeeTrain store" in resp.json()["error"]
        run = seetrain.init(project="late", dir=directory)
        run.log({"x": 1.0})
        run.finish()
        assert [p["name"] for p in c.get("/api/projects").json()["projects"]] == ["late"]


def _wait_for(fn, what: str, timeout: float = 15.0):
    # the dispatcher writes every 0.25 s: wait for the data, never for a fixed time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_running_run_serves_new_points_as_they_arrive(tmp_path):
    from seetrain.ui import create_app
    from starlette.testclient import TestClient

    run = seetrain.init(project="live", dir=tmp_path / "s")
    for step in range(5):
        run.log({"loss": float(step)}, step=step)
    with TestClient(create_app(tmp_path / "s")) as c:
        def steps(**params):
            resp = c.get(f"/api/runs/{run.id}/scalars", params={"key": "loss", **params})
            return resp.json()["series"]["loss"]["steps"] if resp.status_code == 200 else None

        assert _wait_for(lambda: steps() == [0, 1, 2, 3, 4], "the first five points")
        assert c.get(f"/api/runs/{run.id}").json()["status"] == "running"
        for step in range(5, 8):
            run.log({"loss": float(step)}, step=step)
        assert _wait_for(lambda: steps(since_step=4) == [5, 6, 7], "the tail after step 4")
        run.finish()
        assert c.get(f"/api/runs/{run.id}").json()["status"] == "finished"


def test_index_and_static_files_reference_nothing_outside_the_server(client):
    index = client.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    refs = re.findall(r'(?:src|href)="([^"]+)"', index.text)
    assert refs and all(r.startswith("/static/") or r.startswith("#") for r in refs), refs
    for ref in refs:
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
    static = os.path.join(os.path.dirname(seetrain.__file__), "ui", "static")
    for folder, _, files in os.walk(static):
        for name in files:
            if name.endswith((".js", ".css", ".html")) and "vendor" not in folder:
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                assert not re.search(r"https?://(?!github\.com)", text), name
    assert client.get("/static/vendor/uPlot.iife.min.js").status_code == 200


def test_the_example_of_docs_dashboard_runs(tmp_path, monkeypatch):
    from seetrain.demo import train

    doc = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dashboard.md")
    block = re.search(r"```python\n(.*?)```", open(doc, encoding="utf-8").read(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    train(dir="./seetrain", epochs=2)
    namespace: dict = {}
    exec(compile(block, "docs/dashboard.md", "exec"), namespace)
    series = namespace["loss"]["series"]["train/loss"]
    assert series["steps"] and len(series["steps"]) <= 500
