"""Replicas are one service: two real ``seetrain server`` processes over one real PostgreSQL,
real client processes (``uploader.py``) uploading through either, one replica SIGKILLed in the
middle of the uploads. Every run shows on both replicas, and at the end every value is there
exactly once: through the API and directly in the database."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time

import pytest
from uploader import Replica, value_of

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = "replicas"
KEYS = ["train/loss", "train/acc"]
#: the replicas run as a team runs them: API keys required
AUTH = ("--auth",)


def uploader(servers: list[str], run: str, steps: int, batch_steps: int, api_key: str, **extra: str) \
        -> subprocess.Popen:
    args = [sys.executable, os.path.join(HERE, "uploader.py"), "--servers", ",".join(servers),
            "--project", PROJECT, "--run", run, "--keys", ",".join(KEYS), "--steps", str(steps),
            "--batch-steps", str(batch_steps), "--source", f"src-{run}"]
    for name, value in extra.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SEETRAIN_API_KEY": api_key})


def finish(procs: dict[str, subprocess.Popen]) -> dict[str, dict]:
    results = {}
    for run, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"uploader of {run} failed:\n{out}\n{err}"
        results[run] = json.loads(out.strip().splitlines()[-1])
    return results


def check_api(replica: Replica, expected: dict[str, int], api_key: str) -> None:
    """``replica``'s dashboard API lists every run and returns every point of every key, once."""
    assert replica.get(f"/api/projects/{PROJECT}/runs").status_code == 401  # authentication is on
    answer = replica.get(f"/api/projects/{PROJECT}/runs", api_key=api_key)
    assert answer.status_code == 200, answer.text
    listed = {run["id"] for run in answer.json()["runs"]}
    assert set(expected) <= listed
    for run, steps in expected.items():
        answer = replica.get(f"/api/runs/{run}/scalars", api_key=api_key, key=KEYS, max_points=200_000)
        assert answer.status_code == 200, answer.text
        series = answer.json()["series"]
        for key in KEYS:
            assert series[key]["total"] == steps, (run, key)
            assert series[key]["exact"] is True
            assert series[key]["steps"] == list(range(steps)), (run, key)
            assert series[key]["values"] == [value_of(key, s) for s in range(steps)], (run, key)


def check_database(url: str, expected: dict[str, int], batches: dict[str, int]) -> None:
    """In PostgreSQL itself: per run and key, the points stored are the steps sent, none twice;
    one ingest_batches row per batch sent."""
    import psycopg

    with psycopg.connect(url) as conn:
        for run, steps in expected.items():
            rows = conn.execute("SELECT k.key, c.n, c.steps, c.vals FROM keys k JOIN scalar_chunks c "
                                "ON c.key_id = k.id WHERE k.run_id = %s", (run,)).fetchall()
            per_key: dict[str, list[tuple[int, float]]] = {}
            for key, n, steps_blob, vals_blob in rows:
                got_steps = struct.unpack(f"<{n}q", bytes(steps_blob))
                got_vals = struct.unpack(f"<{n}d", bytes(vals_blob))
                per_key.setdefault(key, []).extend(zip(got_steps, got_vals))
            assert sorted(per_key) == sorted(KEYS), run
            for key, points in per_key.items():
                assert len(points) == steps, f"{run} {key}: {len(points)} points stored, {steps} sent"
                assert sorted(points) == [(s, value_of(key, s)) for s in range(steps)], (run, key)
            (count,) = conn.execute("SELECT COUNT(*) FROM ingest_batches WHERE run_id = %s", (run,)).fetchone()
            assert count == batches[run], run
        (runs,) = conn.execute("SELECT COUNT(*) FROM runs WHERE project = %s", (PROJECT,)).fetchone()
        assert runs == len(expected)


def wait_for_files(paths: list[str], procs: dict[str, subprocess.Popen]) -> None:
    deadline = time.monotonic() + 300  # a hang guard, not a performance bound
    while not all(os.path.exists(p) for p in paths):
        for run, proc in procs.items():
            if proc.poll() is not None and proc.returncode != 0:
                pytest.fail(f"uploader of {run} failed early: {proc.stderr.read()}")
        assert time.monotonic() < deadline, "the uploaders never reached the gate"
        time.sleep(0.02)


def test_two_replicas_are_one_service_and_survive_a_kill(postgres_url, tmp_path):
    with Replica(postgres_url, log_dir=tmp_path, extra_args=AUTH) as a:
        # the first replica on the empty database makes the admin and prints its key once
        key = a.wait_for_output("first admin key").split()[-1]
        a.wait_for_output("serving")
        b = Replica(postgres_url, log_dir=tmp_path, extra_args=AUTH).start()
        try:
            assert "first admin key" not in b.wait_for_output("serving") + b.output()
            run_scenario(postgres_url, tmp_path, a, b, key)
        finally:
            b.stop()


def run_scenario(postgres_url: str, tmp_path, a: Replica, b: Replica, key: str) -> None:
    """Uploads through both replicas, then a SIGKILL of ``a`` in the middle of more."""
    # 1. uploads through either replica; each replica shows every run
    steps, batch = 600, 50
    procs = {f"steady-{i}": uploader([a.url, b.url] if i % 2 == 0 else [b.url, a.url], f"steady-{i}",
                                     steps, batch, key) for i in range(4)}
    results = finish(procs)
    assert all(r["stored"] == steps // batch and r["repeated"] == 0 for r in results.values()), results
    expected = {run: steps for run in procs}
    batches = {run: steps // batch for run in procs}
    check_api(a, expected, key)
    check_api(b, expected, key)

    # 2. replica a is SIGKILLed in the middle of uploads that go through it
    gate = str(tmp_path / "gate")
    steps, batch, gate_after = 1000, 50, 6
    gated = {f"gated-{i}": uploader([a.url, b.url] if i < 3 else [b.url, a.url], f"gated-{i}", steps, batch, key,
                                    gate=gate, gate_after=gate_after) for i in range(4)}
    # and one that never pauses, with small batches: the kill lands while it is sending
    free = {"free-0": uploader([a.url, b.url], "free-0", 1500, 5, key)}
    wait_for_files([f"{gate}.{run}.reached" for run in gated], {**gated, **free})
    a.kill()
    open(gate, "w").close()
    results = finish({**gated, **free})
    for run in gated:
        expected[run], batches[run] = steps, steps // batch
    expected["free-0"], batches["free-0"] = 1500, 1500 // 5
    # the clients that preferred a went on through b
    assert all(results[f"gated-{i}"]["failovers"] >= 1 for i in range(3)), results
    for run, result in results.items():
        assert result["batches"] == batches[run]
        assert result["stored"] + result["repeated"] == batches[run]

    # 3. every value exactly once: through the surviving replica and in the database
    check_api(b, expected, key)
    check_database(postgres_url, expected, batches)

    # 4. a replica started again sees everything too (nothing of a lived in a)
    with Replica(postgres_url, log_dir=tmp_path, extra_args=AUTH) as again:
        check_api(again, expected, key)
