"""Remote mode benchmark (issue 15): the cost of ``log()`` in remote mode with the server up
and down, next to local mode; the upload throughput of a live run; the time of ``seetrain
sync`` of a large run.

    python benchmarks/remote_benchmark.py [--steps 20000] [--keys 3] [--sync-steps 1000000]

Starts its own ``seetrain server`` (a SQLite database in a temporary folder, no auth) on a free
port, and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "seetrain", "server", "--db", f"sqlite:///{root}/server.db",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start")


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    return {"p50_us": round(pick(0.5) * 1e6, 2), "p99_us": round(pick(0.99) * 1e6, 2)}


def measure(directory: str, steps: int, keys: int, **init: object) -> dict:
    import seetrain

    names = [f"k{i}" for i in range(keys)]
    run = seetrain.init(project="bench", dir=directory, **init)
    samples = []
    clock = time.perf_counter
    for step in range(steps):
        values = {name: step * 0.5 + i for i, name in enumerate(names)}
        t0 = clock()
        run.log(values, step=step)
        samples.append(clock() - t0)
    t0 = time.monotonic()
    run.finish()
    return {**percentiles(samples), "finish_s": round(time.monotonic() - t0, 3), "run": run.id}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--keys", type=int, default=3)
    p.add_argument("--sync-steps", type=int, default=200_000)
    args = p.parse_args()
    os.environ.setdefault("SEETRAIN_SILENT", "1")
    os.environ["SEETRAIN_UPLOAD_TIMEOUT"] = os.environ.get("SEETRAIN_UPLOAD_TIMEOUT", "60")
    root = tempfile.mkdtemp(prefix="seetrain-remote-bench-")
    server, url = start_server(root)
    out: dict = {"steps": args.steps, "keys": args.keys}
    try:
        out["local"] = measure(f"{root}/local", args.steps, args.keys)
        t0 = time.monotonic()
        up = measure(f"{root}/up", args.steps, args.keys, mode="remote", host=url)
        up["upload_scalars_per_s"] = round(args.steps * args.keys / (time.monotonic() - t0), 1)
        out["remote_up"] = up
        os.environ["SEETRAIN_UPLOAD_TIMEOUT"] = "1"
        out["remote_down"] = measure(f"{root}/down", args.steps, args.keys, mode="remote",
                                     host=f"http://127.0.0.1:{free_port()}")
        # seetrain sync of a large run written offline
        big = measure(f"{root}/big", args.sync_steps, 1)
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "seetrain", "sync", big["run"], "--dir", f"{root}/big",
                               "--host", url], capture_output=True, text=True)
        out["sync"] = {"steps": args.sync_steps, "seconds": round(time.monotonic() - t0, 2),
                       "returncode": done.returncode}
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
