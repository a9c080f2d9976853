"""Remote mode end to end: real ``seetrain server`` processes (with ``--auth``) on a fresh
PostgreSQL database, training loops in real subprocesses in ``mode="remote"``, and
``seetrain sync`` / ``seetrain login`` as real commands. Every check compares what the server
returns through its API with what the local store holds, value by value."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import time

import pytest
from uploader import Replica, free_port

pytestmark = pytest.mark.slow

KEYS = ["train/loss", "train/acc", "lr"]
STEPS = 2000

TRAIN = r'''
import os, sys, time
import numpy as np
import seetrain

steps, marker, forever, stop = int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5]
run = seetrain.init(project="remote", dir=sys.argv[1], config={"lr": 0.1}, mode="remote")
print(run.id, flush=True)
step = 0
while step < steps or (forever and not os.path.exists(stop)):
    run.log({"train/loss": 1.0 / (step + 1), "train/acc": step * 0.5, "lr": 0.1 - step * 1e-5}, step=step)
    if step == 10:
        run.log({"samples": seetrain.Image(np.full((8, 8, 3), 7, dtype=np.uint8))}, step=step)
    if forever and step % 200 == 0:
        time.sleep(0.05)
    step += 1
    if step == steps and marker != "-":
        open(marker, "w").close()
run.summary["best"] = 0.5
run.finish()
'''


@pytest.fixture
def server(postgres_url, tmp_path):
    with Replica(postgres_url, log_dir=tmp_path, extra_args=("--auth",)) as replica:
        replica.key = replica.wait_for_output("first admin key").split()[-1]
        replica.wait_for_output("serving")
        yield replica


def env_for(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEETRAIN_")}
    env.update({"SEETRAIN_CONFIG_DIR": str(tmp_path / "config"), "SEETRAIN_SILENT": "1",
                "SEETRAIN_DISABLE_PLUGIN_AUTOLOAD": "1"})
    env.update(extra)
    return env


def train(tmp_path, store, env, steps=STEPS, marker="-", forever=False, stop="-") -> subprocess.Popen:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    return subprocess.Popen([sys.executable, str(script), str(store), str(steps), marker, "1" if forever else "0", stop],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def seetrain_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seetrain", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def local_points(store, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar point of the run in the local store, per key, sorted by step."""
    conn = sqlite3.connect(os.path.join(str(store), "seetrain.db"))
    try:
        out: dict[str, list[tuple[int, float]]] = {}
        for key, n, steps, vals in conn.execute(
                "SELECT k.key, c.n, c.steps, c.vals FROM scalar_chunks c JOIN keys k ON k.id = c.key_id "
                "WHERE k.run_id = ?", (run_id,)):
            out.setdefault(key, []).extend(zip(struct.unpack(f"<{n}q", steps), struct.unpack(f"<{n}d", vals)))
        return {key: sorted(points) for key, points in out.items()}
    finally:
        conn.close()


def server_points(server: Replica, run_id: str) -> dict[str, list[tuple[int, float]]]:
    answer = server.get(f"/api/runs/{run_id}/scalars", api_key=server.key, key=KEYS, max_points=200_000)
    assert answer.status_code == 200, answer.text
    series = answer.json()["series"]
    return {key: list(zip(s["steps"], s["values"])) for key, s in series.items() if s["steps"]}


def uploaded(server: Replica, run_id: str) -> bool:
    """Whether the server has points of every key of the run yet."""
    answer = server.get(f"/api/runs/{run_id}/scalars", api_key=server.key, key=KEYS, max_points=10)
    return answer.status_code == 200 and all(s["total"] for s in answer.json()["series"].values())


def assert_same(server: Replica, store, run_id: str, steps: int | None = None) -> None:
    local = local_points(store, run_id)
    assert sorted(local) == sorted(KEYS)
    if steps is not None:
        assert all(len(points) == steps for points in local.values())
    remote = server_points(server, run_id)
    for key in KEYS:
        assert remote.get(key) == local[key], key  # every value, each once


def run_info(server: Replica, run_id: str) -> dict:
    answer = server.get(f"/api/runs/{run_id}", api_key=server.key)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_happy_path_every_value_reaches_the_server(server, tmp_path):
    store = tmp_path / "store"
    proc = train(tmp_path, store, env_for(tmp_path, SEETRAIN_HOST=server.url, SEETRAIN_API_KEY=server.key))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run_id = out.split()[0]
    assert "pending" not in err, err
    assert_same(server, store, run_id, STEPS)
    info = run_info(server, run_id)
    assert info["status"] == "finished"
    assert info["config"]["lr"] == 0.1 and info["summary"]["best"] == 0.5
    assert {"key": "samples", "kind": "image", "steps": [10]} in info["keys"]
    media = server.get(f"/api/runs/{run_id}/media", api_key=server.key, key="samples")
    assert media.status_code == 200, media.text
    # nothing left: a sync sends nothing
    result = seetrain_cli("sync", run_id, "--dir", str(store), "--host", server.url,
                          env=env_for(tmp_path, SEETRAIN_API_KEY=server.key))
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr


def test_server_down_at_init_then_sync_uploads_everything_once(server, tmp_path):
    store = tmp_path / "store"
    dead = f"http://127.0.0.1:{free_port()}"
    env = env_for(tmp_path, SEETRAIN_HOST=dead, SEETRAIN_API_KEY=server.key, SEETRAIN_UPLOAD_TIMEOUT="2")
    proc = train(tmp_path, store, env)
    out, err = proc.communicate(timeout=120)  # a hang guard: finish() is bounded by the timeout
    assert proc.returncode == 0, err
    run_id = out.split()[0]
    assert f"seetrain sync {run_id} --dir {store}" in err, err
    assert "pending" in err
    sync_env = env_for(tmp_path, SEETRAIN_API_KEY=server.key)
    listing = seetrain_cli("ls", "--dir", str(store), env=sync_env)
    assert "UPLOAD" in listing.stdout and "pending" in listing.stdout, listing.stdout + listing.stderr
    first = seetrain_cli("sync", run_id, "--dir", str(store), "--host", server.url, env=sync_env)
    assert first.returncode == 0, first.stderr
    assert "batches sent" in first.stderr
    assert_same(server, store, run_id, STEPS)
    assert run_info(server, run_id)["status"] == "finished"
    second = seetrain_cli("sync", "--all", "--dir", str(store), "--host", server.url, env=sync_env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stderr and "batches sent" not in second.stderr
    listing = seetrain_cli("ls", "--dir", str(store), env=sync_env)
    assert "uploaded" in listing.stdout and "pending" not in listing.stdout, listing.stdout


def test_sigkill_mid_upload_then_sync_has_every_value_once(server, tmp_path):
    store = tmp_path / "store"
    marker = tmp_path / "reached"
    proc = train(tmp_path, store, env_for(tmp_path, SEETRAIN_HOST=server.url, SEETRAIN_API_KEY=server.key),
                 steps=3000, marker=str(marker), forever=True)
    run_id = proc.stdout.readline().split()[0]
    deadline = time.monotonic() + 120  # a hang guard, not a performance bound
    while not (marker.exists() and uploaded(server, run_id)):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    result = seetrain_cli("sync", "--dir", str(store), "--host", server.url,
                          env=env_for(tmp_path, SEETRAIN_API_KEY=server.key))
    assert result.returncode == 0, result.stderr
    local = local_points(store, run_id)
    assert all(len(points) >= 3000 for points in local.values())
    assert_same(server, store, run_id)


def test_wrong_key_one_clear_error_then_login_and_sync(server, tmp_path):
    store = tmp_path / "store"
    env = env_for(tmp_path, SEETRAIN_HOST=server.url, SEETRAIN_API_KEY="stk_000000000000_wrong",
                  SEETRAIN_UPLOAD_TIMEOUT="5")
    proc = train(tmp_path, store, env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = out.split()[0]
    assert err.count("refused") == 2, err  # the error once, and finish's note of what is pending
    assert "401" in err and f"seetrain login {server.url}" in err
    assert len(local_points(store, run_id)["lr"]) == STEPS  # training went on locally
    env = env_for(tmp_path)
    login = seetrain_cli("login", server.url, "--key", server.key, env=env)
    assert login.returncode == 0, login.stderr
    creds = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert json.loads(creds.read_text())["hosts"][server.url]["api_key"] == server.key
    result = seetrain_cli("sync", run_id, "--dir", str(store), "--host", server.url, env=env)
    assert result.returncode == 0, result.stderr
    assert_same(server, store, run_id, STEPS)


def test_a_resend_after_a_crash_between_send_and_cursor_update_stores_nothing_twice(server, tmp_path):
    """The write-ahead record: a batch sent but never confirmed (the process died before its
    cursor moved) is sent again with the same seq and the same range."""
    from seetrain.remote.client import Client
    from seetrain.remote.uploader import RunUploader

    store = tmp_path / "store"
    dead = f"http://127.0.0.1:{free_port()}"
    proc = train(tmp_path, store, env_for(tmp_path, SEETRAIN_HOST=dead, SEETRAIN_UPLOAD_TIMEOUT="0"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = out.split()[0]

    class Crash(BaseException):
        pass

    with Client(server.url, server.key) as client:
        real = client.send_batch

        def send_then_die(run, body):
            real(run, body)
            raise Crash  # the answer never reaches the cursor

        client.send_batch = send_then_die
        uploader = RunUploader(str(store), run_id, client)
        with pytest.raises(Crash):
            uploader.upload()
        uploader.close()
        client.send_batch = real
        uploader = RunUploader(str(store), run_id, client)
        uploader.upload()
        assert uploader.sent == 1 and uploader.stored == 0  # the same seq: stored before
        assert uploader.done()
        uploader.close()
    assert_same(server, store, run_id, STEPS)


def test_outage_mid_run_and_restart_every_value_arrives_once(server, tmp_path):
    """The server is stopped mid-run and started again 10 s later on the same port: the live
    run's uploader catches up by itself, and finish() returns with nothing pending."""
    store = tmp_path / "store"
    marker, stop = tmp_path / "reached", tmp_path / "stop"
    proc = train(tmp_path, store, env_for(tmp_path, SEETRAIN_HOST=server.url, SEETRAIN_API_KEY=server.key,
                                          SEETRAIN_UPLOAD_TIMEOUT="120"),
                 steps=1000, marker=str(marker), forever=True, stop=str(stop))
    run_id = proc.stdout.readline().split()[0]
    deadline = time.monotonic() + 120  # a hang guard, not a performance bound
    while not (marker.exists() and uploaded(server, run_id)):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.05)
    server.stop()
    time.sleep(10)  # the outage: the run goes on logging
    assert proc.poll() is None
    server.start()  # the same port, the same database
    server.wait_for_output("serving")
    stop.touch()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "pending" not in err, err
    assert_same(server, store, run_id)
    assert run_info(server, run_id)["status"] == "finished"


ATTACHED = r'''
import subprocess, sys
import seetrain

store = sys.argv[1]
if sys.argv[2] == "worker":
    run = seetrain.attach(sys.argv[3], dir=store)
    for step in range(500):
        run.log({"worker/x": step * 2.0}, step=step)
    run.finish()
    sys.exit(0)
run = seetrain.init(project="remote", dir=store, mode="remote")
print(run.id, flush=True)
subprocess.run([sys.executable, __file__, store, "worker", run.id], check=True)
for step in range(500):
    run.log({"owner/y": step * 3.0}, step=step)
run.finish()
'''


def test_a_process_attached_to_a_remote_run_arrives_in_the_same_run(server, tmp_path):
    store = tmp_path / "store"
    script = tmp_path / "attached.py"
    script.write_text(ATTACHED)
    proc = subprocess.run([sys.executable, str(script), str(store), "owner"], capture_output=True, text=True,
                          timeout=300, env=env_for(tmp_path, SEETRAIN_HOST=server.url, SEETRAIN_API_KEY=server.key))
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[0]
    answer = server.get(f"/api/runs/{run_id}/scalars", api_key=server.key, key=["worker/x", "owner/y"])
    assert answer.status_code == 200, answer.text
    series = answer.json()["series"]
    assert series["worker/x"]["values"] == [s * 2.0 for s in range(500)]
    assert series["owner/y"]["values"] == [s * 3.0 for s in range(500)]
