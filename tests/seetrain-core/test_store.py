"""The embedded store: exact metrics, several writer processes, downsampling that keeps spikes."""

import os
import subprocess
import sys

import numpy as np
import pytest

import seetrain
from seetrain.store.reader import downsample

WRITER = """
import sys
import seetrain
worker = int(sys.argv[1])
run = seetrain.init(project="fleet", experiment_name=f"worker-{worker}", config={"worker": worker})
for step in range(5000):
    run.log({"loss": worker + step / 5000, "step_sq": float(step * step)}, step=step)
run.finish()
"""


@pytest.mark.slow
def test_eight_processes_write_one_store(tmp_path, _isolated_store):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(w)], stderr=subprocess.PIPE, text=True)
             for w in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    api = seetrain.Api()
    runs = api.runs("fleet")
    assert len(runs) == 8 and {r.status for r in runs} == {"finished"}
    for r in runs:
        w = r.config["worker"]
        assert r.scalars("loss") == [(s, w + s / 5000) for s in range(5000)]
        assert r.scalars("step_sq") == [(s, float(s * s)) for s in range(5000)]


def test_every_point_is_kept_and_last_write_wins(_isolated_store):
    run = seetrain.init(project="p")
    for s in range(20_000):
        run.log({"v": float(s % 97)}, step=s)
    run.log({"v": -1.0}, step=7)  # re-logging a step: the later value is the one read
    run.finish()
    points = seetrain.Api().run(run.id).scalars("v")
    assert len(points) == 20_000 and points[7] == (7, -1.0) and points[8] == (8, 8.0)


def test_downsample_keeps_spikes_and_bounds_points():
    steps = np.arange(1_000_000)
    values = np.sin(steps / 1000.0)
    values[123_457] = 50.0   # one spike
    values[654_321] = -40.0  # one dip
    values[800_000] = np.nan
    s, v = downsample(steps, values, 2000)
    assert len(s) <= 2000 and np.all(np.diff(s) > 0)
    assert 50.0 in v and -40.0 in v and 123_457 in s and 654_321 in s
    assert np.nanmax(np.abs(v)) == 50.0


def test_api_downsampled_scalars(_isolated_store):
    run = seetrain.init(project="p")
    for s in range(10_000):
        run.log({"v": 100.0 if s == 4321 else 0.0})
    run.finish()
    points = seetrain.Api().run(run.id).scalars("v", max_points=100)
    assert len(points) <= 100 and (4321, 100.0) in points
    assert seetrain.Api().run(run.id).scalars("v", step_min=4320, step_max=4322) == [
        (4320, 0.0), (4321, 100.0), (4322, 0.0)]


def test_store_layout_and_schema_version(_isolated_store):
    import sqlite3

    run = seetrain.init(project="p")
    run.log({"a": 1})
    run.finish()
    db = os.path.join(run.dir, "seetrain.db")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("UPDATE meta SET value = '999' WHERE name = 'schema_version'")
    conn.commit()
    conn.close()
    from seetrain.store import StoreError

    with pytest.raises(StoreError, match="newer SeeTrain"):
        seetrain.Api(run.dir).runs()


def test_missing_store_is_a_clear_error(tmp_path):
    from seetrain.store import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match="no SeeTrain store"):
        seetrain.Api(tmp_path / "nothing-here")
