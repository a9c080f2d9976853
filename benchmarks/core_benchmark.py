"""Figures of the core's hot path and store (printed, never asserted).

* ``log()`` of 10 scalars: time in the caller's thread (median and p99 of single calls);
* ``import seetrain``: added interpreter start-up time (median of fresh interpreters);
* 10,000 steps x 10 scalars: init + log + finish, wall time;
* sustained store ingest: scalars per second from ``log()`` to committed SQLite rows.

Run: ``hatch run bench`` (or ``python benchmarks/core_benchmark.py``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time


def bench_log_call(store: str, calls: int = 20_000) -> dict:
    import seetrain

    run = seetrain.init(project="bench", dir=store)
    data = {f"metric_{i}": 0.1 * i for i in range(10)}
    samples = []
    perf = time.perf_counter_ns
    for _ in range(calls):
        t0 = perf()
        run.log(data)
        samples.append(perf() - t0)
    run.finish()
    samples.sort()
    return {"median_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000}


def bench_import(repeats: int = 15) -> dict:
    def startup(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    base = statistics.median(startup("pass") for _ in range(repeats))
    with_import = statistics.median(startup("import seetrain") for _ in range(repeats))
    return {"added_ms": (with_import - base) * 1000, "python_startup_ms": base * 1000}


def bench_end_to_end(store: str, steps: int = 10_000, keys: int = 10) -> dict:
    import seetrain

    t0 = time.perf_counter()
    run = seetrain.init(project="bench", dir=store, experiment_name="e2e")
    for step in range(steps):
        run.log({f"k{i}": step * 0.001 + i for i in range(keys)}, step=step)
    t1 = time.perf_counter()
    run.finish()
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "log_loop_s": t1 - t0, "finish_s": t2 - t1}


def bench_ingest(store: str, steps: int = 100_000, keys: int = 20) -> dict:
    import seetrain

    data = {f"k{i}": float(i) for i in range(keys)}
    run = seetrain.init(project="bench", dir=store, experiment_name="ingest")
    t0 = time.perf_counter()
    for step in range(steps):
        run.log(data, step=step)
    run.finish()
    elapsed = time.perf_counter() - t0
    return {"scalars": steps * keys, "seconds": elapsed, "scalars_per_s": steps * keys / elapsed}


def main() -> None:
    os.environ.setdefault("SEETRAIN_SILENT", "1")
    with tempfile.TemporaryDirectory() as tmp:
        log_call = bench_log_call(os.path.join(tmp, "a"))
        print(f"log() of 10 scalars, caller thread: median {log_call['median_us']:.2f} us, p99 {log_call['p99_us']:.2f} us")
        imp = bench_import()
        print(f"import seetrain: +{imp['added_ms']:.1f} ms over a bare interpreter ({imp['python_startup_ms']:.1f} ms)")
        e2e = bench_end_to_end(os.path.join(tmp, "b"))
        print(f"10,000 steps x 10 scalars, init+log+finish: {e2e['total_s']:.3f} s "
              f"(log loop {e2e['log_loop_s']:.3f} s, finish {e2e['finish_s']:.3f} s)")
        ingest = bench_ingest(os.path.join(tmp, "c"))
        print(f"sustained ingest: {ingest['scalars_per_s'] / 1e6:.2f} M scalars/s "
              f"({ingest['scalars']:,} scalars in {ingest['seconds']:.2f} s, log() to committed rows)")


if __name__ == "__main__":
    main()
