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
