"""Team server ingest benchmark: batches of scalars through HTTP into PostgreSQL.

    python benchmarks/server_benchmark.py [--keys 10] [--steps 10000] [--batches 20] [--clients 8]

Figures (printed, never asserted; the goal in brackets):

- scalars stored per second with one client sending batches one after another, each
  ``--keys`` keys x ``--steps`` steps (the uploader's shape) [>= 500,000/s on two cores];
- the same with ``--clients`` client processes at once, each its own run, into one server
  process (one replica);
- the time of one batch as the client sees it (median and the slowest), and how many answers
  were 503 (the replica shedding load past ``max_concurrent_ingest``; the client waits
  ``Retry-After`` and sends again, as the uploader does).

A private PostgreSQL cluster is started in a temporary folder (Debian's ``postgresql``
binaries), or ``SEETRAIN_BENCH_POSTGRES=postgresql://user@host:port`` names a running one (a
database is created there and dropped after). The server runs under uvicorn in a subprocess
(as in ``server_read_benchmark.py``, whose cluster and server helpers are reused). Request
bodies are encoded before the clock starts: the figures are the server's, plus HTTP.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from server_read_benchmark import PrivatePostgres, serve  # one cluster helper, one server helper


def bodies(run: str, source: str, batches: int, keys: int, steps: int) -> list[bytes]:
    """The JSON bodies of ``batches`` batches of ``keys`` x ``steps`` points (steps go on
    from one batch to the next, as a training run's do)."""
    import numpy as np

    from seetrain_server.protocol import encode_batch

    rng = np.random.default_rng(abs(hash(run)) % 2**32)
    out = []
    for seq in range(batches):
        step = np.arange(seq * steps, (seq + 1) * steps, dtype="<i8")
        times = 1.7e9 + step * 0.01
        scalars = {f"train/metric_{k}": (step, rng.standard_normal(steps), times) for k in range(keys)}
        out.append(json.dumps(encode_batch(source, seq, scalars)).encode())
    return out


def send_all(base: str, run: str, payloads: list[bytes]) -> tuple[list[float], int]:
    """POST every body in order; (seconds per batch, 503 answers)."""
    import httpx

    latencies, shed = [], 0
    with httpx.Client(base_url=base, timeout=120) as client:
        for body in payloads:
            while True:
                t0 = time.perf_counter()
                resp = client.post(f"/api/v1/runs/{run}/batches", content=body,
                                   headers={"content-type": "application/json"})
                if resp.status_code == 503:
                    shed += 1
                    time.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                resp.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                break
    return latencies, shed


def create_run(base: str, run: str) -> None:
    import httpx

    from seetrain_server.protocol import encode_run

    httpx.put(f"{base}/api/v1/runs/{run}", json=encode_run("bench", name=run), timeout=30).raise_for_status()


def _client_process(base: str, run: str, payloads: list[bytes], start, results) -> None:
    start.wait()
    t0 = time.perf_counter()
    latencies, shed = send_all(base, run, payloads)
    results.put((t0, time.perf_counter(), latencies, shed))


def rate(points: int, seconds: float) -> str:
    return f"{points / seconds:12,.0f} scalars/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20, help="batches sent by the single client")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches-per-client", type=int, default=5)
    args, _ = parser.parse_known_args()  # run_all.py passes its arguments to every benchmark

    import psycopg

    given = os.environ.get("SEETRAIN_BENCH_POSTGRES")
    cluster = None if given else PrivatePostgres()
    server = given.rstrip("/") if given else cluster.__enter__()
    name = "bench_" + uuid.uuid4().hex[:10]
    proc = None
    try:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        proc, base = serve(f"{server}/{name}")
        per_batch = args.keys * args.steps
        print(f"ingest over HTTP into PostgreSQL: batches of {args.keys} keys x {args.steps:,} steps "
              f"({per_batch:,} scalars, {len(bodies('x', 's', 1, args.keys, args.steps)[0]) / 1e6:.1f} MB of JSON)")

        # one client
        run = "bench-one"
        create_run(base, run)
        payloads = bodies(run, "one", args.batches + 1, args.keys, args.steps)
        send_all(base, run, payloads[:1])  # warm: connections, key rows
        t0 = time.perf_counter()
        latencies, shed = send_all(base, run, payloads[1:])
        elapsed = time.perf_counter() - t0
        print(f"  1 client,  {args.batches} batches: {rate(per_batch * args.batches, elapsed)}   batch median "
              f"{statistics.median(latencies) * 1000:6.1f} ms, slowest {max(latencies) * 1000:6.1f} ms, "
              f"503s {shed}")

        # several client processes, each its own run
        runs = [f"bench-many-{i}" for i in range(args.clients)]
        for r in runs:
            create_run(base, r)
        all_payloads = [bodies(r, f"proc-{i}", args.batches_per_client, args.keys, args.steps)
                        for i, r in enumerate(runs)]
        ctx = multiprocessing.get_context("fork")
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=(base, r, p, start, results))
                 for r, p in zip(runs, all_payloads, strict=True)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        start.set()
        outcomes = [results.get(timeout=300) for _ in procs]
        for p in procs:
            p.join()
        begin, end = min(o[0] for o in outcomes), max(o[1] for o in outcomes)
        lat = [x for o in outcomes for x in o[2]]
        total = per_batch * args.batches_per_client * args.clients
        print(f"  {args.clients} clients, {args.batches_per_client} batches each: {rate(total, end - begin)}   "
              f"batch median {statistics.median(lat) * 1000:6.1f} ms, slowest {max(lat) * 1000:6.1f} ms, "
              f"503s {sum(o[3] for o in outcomes)}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        try:
            with psycopg.connect(server + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"could not drop the benchmark database {name}: {exc}", file=sys.stderr)
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
