"""Team server read benchmark: the dashboard's API served from PostgreSQL over HTTP.

    python benchmarks/server_read_benchmark.py [--points 1000000] [--runs 1000] [--repeat 10]

Figures (printed, never asserted; goals in brackets):

- a 1,000,000-point metric downsampled to 2,000 points (min/max envelope) through
  ``/api/runs/<run>/scalars`` [<= 150 ms]: the first request (read from PostgreSQL) and the
  next ones (the replica's series cache, valid while the key's chunks are unchanged);
- the runs table of a project of 1,000 runs with their summaries (``/api/projects/<p>/runs``)
  [<= 200 ms].

A private PostgreSQL cluster is started in a temporary folder (Debian's ``postgresql``
binaries), or ``SEETRAIN_BENCH_POSTGRES=postgresql://user@host:port`` names a running one (a
database is created there and dropped after). The tables are filled with SQL directly, packed
as the local store packs them (``<i8`` steps, ``<f8`` values and times, ``--chunk`` points a
chunk); the server runs under uvicorn in a subprocess; requests are timed with httpx.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def _bindir() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (as the server's tests start one)."""

    def __enter__(self) -> str:
        bindir = _bindir()
        if bindir is None:
            sys.exit("PostgreSQL is not installed (apt-get install postgresql), "
                     "or set SEETRAIN_BENCH_POSTGRES=postgresql://user@host:port")
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="seetrain-bench-pg-")
        os.chmod(self.root, 0o777)
        self.data, sock = os.path.join(self.root, "data"), os.path.join(self.root, "sock")
        os.makedirs(sock)
        os.chmod(sock, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(sock, "postgres")
        proc = _as_postgres([os.path.join(bindir, "initdb"), "-D", self.data, "--auth=trust", "-U", "postgres",
                             "--no-sync", "-E", "UTF8"])
        if proc.returncode:
            sys.exit(proc.stdout + proc.stderr)
        port = _free_port()
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        proc = _as_postgres([os.path.join(bindir, "pg_ctl"), "-D", self.data, "-o", options, "-l",
                             os.path.join(self.root, "log"), "-w", "start"])
        if proc.returncode:
            sys.exit(proc.stdout + proc.stderr)
        return f"postgresql://postgres@127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        _as_postgres([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def fill(url: str, points: int, runs: int, chunk: int, keys_per_run: int, steps_per_run: int) -> str:
    """The big run (one key of ``points`` points) in project ``bench`` and ``runs`` runs in
    project ``table``; returns the big run's id."""
    import numpy as np
    from seetrain_server.db import open_database

    db = open_database(url)
    rng = np.random.default_rng(0)
    now = time.time()
    try:
        with db.transaction() as tx:
            big = "bench-million"
            tx.execute("INSERT INTO runs (id, project, name, status, created_at, finished_at, heartbeat_at, last_step)"
                       " VALUES (?, 'bench', 'million', 'finished', ?, ?, ?, ?)", (big, now, now, now, points - 1))
            key_id = tx.query("INSERT INTO keys (run_id, key, kind) VALUES (?, 'train/loss', 'scalar') RETURNING id",
                              (big,))[0][0]
            values = np.cumsum(rng.normal(size=points)) / 100.0
            values[points // 3] += 1000.0  # a spike the envelope must keep
            steps = np.arange(points, dtype="<i8")
            times = now + steps * 0.001
            rows = []
            for lo in range(0, points, chunk):
                hi = min(points, lo + chunk)
                rows.append((key_id, hi - lo, lo, hi - 1, steps[lo:hi].tobytes(),
                             values[lo:hi].astype("<f8").tobytes(), times[lo:hi].astype("<f8").tobytes()))
            tx.executemany("INSERT INTO scalar_chunks (key_id, n, step_min, step_max, steps, vals, ts)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

            run_rows, key_rows = [], []
            for i in range(runs):
                run_id = f"table-{i:05d}-{uuid.uuid4().hex[:6]}"
                config = json.dumps({"lr": 10 ** -rng.uniform(1, 5), "batch_size": int(2 ** rng.integers(4, 9)),
                                     "optimizer": {"name": "adamw", "betas": [0.9, 0.999]}})
                run_rows.append((run_id, "table", f"run-{i}", config, json.dumps(["sweep"]), now + i, now + i + 60,
                                 now + i + 60, steps_per_run - 1))
                key_rows.extend((run_id, f"metric/{k}", "scalar") for k in range(keys_per_run))
            tx.executemany("INSERT INTO runs (id, project, name, config, tags, status, created_at, finished_at,"
                           " heartbeat_at, last_step) VALUES (?, ?, ?, ?, ?, 'finished', ?, ?, ?, ?)", run_rows)
            tx.executemany("INSERT INTO keys (run_id, key, kind) VALUES (?, ?, ?)", key_rows)
            ids = tx.query("SELECT k.id FROM keys k JOIN runs r ON r.id = k.run_id WHERE r.project = 'table'")
            s = np.arange(steps_per_run, dtype="<i8")
            packed_steps, packed_times = s.tobytes(), (now + s * 0.1).astype("<f8").tobytes()
            tx.executemany("INSERT INTO scalar_chunks (key_id, n, step_min, step_max, steps, vals, ts)"
                           " VALUES (?, ?, 0, ?, ?, ?, ?)",
                           [(kid, steps_per_run, steps_per_run - 1, packed_steps,
                             rng.normal(size=steps_per_run).astype("<f8").tobytes(), packed_times)
                            for (kid,) in ids])
            tx.execute("ANALYZE")  # the planner's statistics of a freshly filled database
    finally:
        db.close()
    return big


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    code = ("import uvicorn; from seetrain_server.app import create_app; from seetrain_server.config import Settings;"
            f" uvicorn.run(create_app(Settings(db_url={url!r})), host='127.0.0.1', port={port},"
            " log_level='warning', access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit("the server did not start")
        time.sleep(0.1)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def timed(client, path: str, params: dict, repeat: int) -> tuple[float, list[float], dict]:
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        resp = client.get(path, params=params)
        resp.raise_for_status()
        times.append(time.perf_counter() - t0)
    return times[0], times[1:], resp.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--keys-per-run", type=int, default=10)
    parser.add_argument("--steps-per-run", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=8192, help="points per scalar chunk (the store flushes 8,192)")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    import httpx
    import psycopg

    given = os.environ.get("SEETRAIN_BENCH_POSTGRES")
    cluster = None if given else PrivatePostgres()
    server = given.rstrip("/") if given else cluster.__enter__()
    name = "bench_" + uuid.uuid4().hex[:10]
    proc = None
    try:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{server}/{name}"
        t0 = time.perf_counter()
        big = fill(url, args.points, args.runs, args.chunk, args.keys_per_run, args.steps_per_run)
        print(f"filled PostgreSQL: {args.points:,} points in chunks of {args.chunk:,}; {args.runs:,} runs x "
              f"{args.keys_per_run} keys x {args.steps_per_run:,} steps ({time.perf_counter() - t0:.1f} s)")
        proc, base = serve(url)
        with httpx.Client(base_url=base, timeout=120) as client:
            # warm the process (imports, the connection pool): "first" then times the database read
            client.get("/api/projects/bench/runs").raise_for_status()
            first, rest, body = timed(client, f"/api/runs/{big}/scalars",
                                      {"key": "train/loss", "max_points": 2000}, args.repeat)
            series = body["series"]["train/loss"]
            print(f"\n{args.points:,}-point metric -> {len(series['steps']):,} points over HTTP [goal <= 150 ms]")
            print(f"  first request (from PostgreSQL) {ms(first)}")
            print(f"  next requests (series cache)    {ms(statistics.median(rest))} median, {ms(max(rest))} max")
            print(f"  spike kept: {max(v for v in series['values'] if v is not None) > 500}")
            zoom = {"key": "train/loss", "max_points": 2000, "step_min": args.points // 2,
                    "step_max": args.points // 2 + 100_000}
            first, rest, _ = timed(client, f"/api/runs/{big}/scalars", zoom, args.repeat)
            print(f"  zoom to 100,000 steps           {ms(statistics.median(rest))} median")

            first, rest, body = timed(client, "/api/projects/table/runs", {}, args.repeat)
            print(f"\nruns table of {len(body['runs']):,} runs with {len(body['metric_keys'])} summary keys "
                  f"[goal <= 200 ms]")
            print(f"  first request {ms(first)}, then {ms(statistics.median(rest))} median, {ms(max(rest))} max")
            first, rest, _ = timed(client, "/api/projects", {}, args.repeat)
            print(f"projects list {ms(statistics.median(rest))} median")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        # the private cluster goes anyway; a given server would keep a stray database
        with contextlib.suppress(psycopg.Error), psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
