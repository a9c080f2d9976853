"""How a run ends: context manager, uncaught exception, Ctrl+C, normal exit, SIGKILL."""

import os
import signal
import subprocess
import sys
import time

import pytest

import seetrain
from core_helpers import run_python


def test_context_manager_statuses(_isolated_store):
    with seetrain.init(project="p") as ok:
        ok.log({"a": 1})
    with pytest.raises(ValueError):
        with seetrain.init(project="p") as bad:
            raise ValueError("diverged")
    with pytest.raises(KeyboardInterrupt):
        with seetrain.init(project="p") as stopped:
            raise KeyboardInterrupt
    api = seetrain.Api()
    assert api.run(ok.id).status == "finished"
    assert api.run(bad.id).status == "crashed" and api.run(bad.id).error == "ValueError: diverged"
    assert api.run(stopped.id).status == "interrupted"


SCRIPT = """
import os, signal, sys, time
import seetrain
run = seetrain.init(project="life", experiment_name=sys.argv[1])
for i in range(5):
    seetrain.log({"x": i})
mode = sys.argv[1]
if mode == "crash":
    raise RuntimeError("boom")
if mode == "sigint":
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
"""


@pytest.mark.parametrize("mode, status", [("normal", "finished"), ("crash", "crashed"), ("sigint", "interrupted")])
def test_process_exit_sets_status(tmp_path, _isolated_store, mode, status):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=60)
    assert (proc.returncode == 0) == (mode == "normal"), proc.stderr
    [run] = seetrain.Api().runs("life")
    assert run.status == status
    assert run.scalars("x") == [(i, float(i)) for i in range(5)]
    if mode == "crash":
        assert run.error == "RuntimeError: boom"


def test_sigkill_loses_at_most_the_last_second(tmp_path, _isolated_store):
    script = tmp_path / "killed.py"
    script.write_text("""
import sys, time
import seetrain
run = seetrain.init(project="kill")
step = 0
while True:
    run.log({"x": float(step)}, step=step)
    if step % 100 == 0:
        print(step, time.time(), flush=True)
    step += 1
    time.sleep(0.001)
""")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    marks = []
    for line in proc.stdout:
        step, ts = line.split()
        marks.append((int(step), float(ts)))
        if len(marks) >= 2 and marks[-1][1] - marks[0][1] > 2.0:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = time.time()
    [run] = seetrain.Api().runs("kill")
    assert run.status == "crashed"  # the pid is gone: readers say so
    points = run.scalars("x")
    steps = [s for s, _ in points]
    assert steps == list(range(len(steps)))  # a prefix, nothing missing in between
    # every step printed at least one second before the kill is stored
    must_have = max(s for s, ts in marks if ts <= killed_at - 1.0)
    assert steps[-1] >= must_have


def test_stale_heartbeat_reads_as_crashed(_isolated_store):
    import sqlite3

    run = seetrain.init(project="p")
    run.log({"a": 1})
    run._dispatcher.barrier(5)
    conn = sqlite3.connect(os.path.join(run.dir, "seetrain.db"))
    conn.execute("UPDATE runs SET heartbeat_at = heartbeat_at - 3600, pid = NULL WHERE id = ?", (run.id,))
    conn.commit()
    conn.close()
    assert seetrain.Api().run(run.id).status == "crashed"
    run.finish()
    assert seetrain.Api().run(run.id).status == "finished"


def test_resume_continues_the_same_run(_isolated_store):
    first = seetrain.init(project="p", experiment_name="long", config={"lr": 0.1}, tags=["a"])
    first.log({"loss": 1.0})
    first.log({"loss": 0.9})
    first.summary.update({"best": 0.9})
    first.finish()
    again = seetrain.init(resume=first.id, config={"epochs": 2})
    assert (again.id, again.name, again.project, again.step) == (first.id, "long", "p", 1)
    assert seetrain.Api().run(first.id).status == "running"
    again.log({"loss": 0.8})  # step 2: after the stored ones
    again.finish("crashed", error="RuntimeError: later")
    run = seetrain.Api().run(first.id)
    assert run.scalars("loss") == [(0, 1.0), (1, 0.9), (2, 0.8)]
    assert run.config == {"lr": 0.1, "epochs": 2} and run.tags == ["a"] and run.summary["best"] == 0.9
    assert (run.status, run.error) == ("crashed", "RuntimeError: later")
    assert len(seetrain.Api().runs()) == 1
    with pytest.raises(ValueError, match="belongs to project 'p'"):
        seetrain.init(project="other", resume=first.id)
    from seetrain.api import RunNotFoundError

    with pytest.raises(RunNotFoundError, match="no run 'missing'"):
        seetrain.init(resume="missing")


def test_attach_logs_into_a_run_another_process_owns(tmp_path, _isolated_store):
    owner = seetrain.init(project="p", experiment_name="parent")
    owner.log({"parent": 1.0}, step=5)
    owner._dispatcher.barrier(5)
    run_python(f"""
        import seetrain
        run = seetrain.attach({owner.id!r})
        assert run.step == 5 and run.attached
        seetrain.log({{"worker": 2.0}})     # the active run: step 6
        # the process ends without finishing: the owner's run must stay running
    """, check=True)
    run = seetrain.Api().run(owner.id)
    assert run.status == "running" and run.scalars("worker") == [(6, 2.0)]
    owner.log({"parent": 3.0}, step=7)
    owner.finish()
    run = seetrain.Api().run(owner.id)
    assert run.status == "finished" and run.scalars("parent") == [(5, 1.0), (7, 3.0)] and run.last_step == 7
