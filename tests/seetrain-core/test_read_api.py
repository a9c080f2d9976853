"""seetrain.Api: projects, runs, a run's attributes, lookups by prefix and name, errors."""

import time

import pytest

import seetrain
from seetrain.api import KeyNotFoundError, RunNotFoundError


def test_api_surface(_isolated_store):
    a = seetrain.init(project="alpha", experiment_name="first", config={"lr": 0.1}, tags=["x"], group="sweep-1")
    a.log({"loss": 1.0})
    a.finish()
    time.sleep(0.01)
    b = seetrain.init(project="beta", experiment_name="second")
    b.log({"loss": 2.0})
    api = seetrain.Api()
    assert api.projects() == ["beta", "alpha"]
    assert [r.name for r in api.runs()] == ["first", "second"]
    [ra] = api.runs(project="alpha")
    assert (ra.id, ra.project, ra.name, ra.tags, ra.group, ra.status) == (a.id, "alpha", "first", ["x"], "sweep-1",
                                                                          "finished")
    assert ra.config == {"lr": 0.1} and ra.frameworks == [] and ra.description is None
    assert ra.created_at <= ra.finished_at and ra.duration >= 0
    rb = api.run(b.id)
    assert rb.status == "running"
    b.finish()
    assert rb.refresh().status == "finished"
    assert api.run(b.id[:-2]).id == b.id   # unique prefix
    assert api.run("second").id == b.id    # unique name


def test_api_errors(_isolated_store):
    run = seetrain.init(project="p")
    run.log({"loss": 1.0, "img": "text"})
    run.finish()
    api = seetrain.Api()
    with pytest.raises(RunNotFoundError, match="no run 'nope'.*seetrain ls"):
        api.run("nope")
    with pytest.raises(KeyNotFoundError, match="no key 'missing'"):
        api.run(run.id).scalars("missing")
    with pytest.raises(KeyNotFoundError, match="holds text"):
        api.run(run.id).scalars("img")
