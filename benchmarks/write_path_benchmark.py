"""Figures of the core's write path under load (printed, never asserted).

Every measurement runs in a fresh interpreter (this script re-invoking itself with
``--child``), in its own temporary store, with ``SEETRAIN_SILENT`` removed from the
environment so the default plugins (the console summary included) are on, as for a user.

* memory: peak RSS (``VmHWM``) of a process that logs N steps x 10 scalars as fast as
  it can, then finishes (10k, 100k and 1M steps; quick: 10k, 30k, 300k), and the ratio of
  the two largest: a write path that holds its backlog in memory grows with N;
* ingest: scalars per second from the first ``log()`` to ``finish()`` returning (all
  committed), 10 scalars per step, ~300k steps; read back with ``seetrain.Api`` (points of
  one key == steps) and "verified" printed;
* lag: a child logs ``{"m0", "lr"}`` as fast as it can for N s (10; quick 3; ``--lag-seconds``),
  publishing its step in a side file; the parent polls ``runs.last_step`` (read-only SQLite)
  every 50 ms. lag = producer step - stored step, in seconds of producing at the producer's
  measured rate (max, p50); "lost at SIGKILL": the same after killing the producer, i.e. the
  seconds of values a crash would lose;
* latency: 200,000 ``log()`` calls of 10 scalars in a tight loop, each timed in the caller
  (p50, p99, p99.9, max, mean in us, and the count of calls over 2 ms), then ``finish()``;
* init: the first ``seetrain.init()`` of a fresh process on a fresh store (import excluded),
  median and max over ~15 processes; a second init in the same process (after finishing
  the first run); the time from the child signalling "init returned" until a reader
  (``seetrain.Api`` in this parent process) sees the run;
* images: 100 random 256x256x3 uint8 images, ``run.log({"img": seetrain.Image(arr)})``:
  the caller's cost per call (median, constructing the Image included) and ``finish()``;
* peers: where importable, the same init / 10-scalar call (p50, p99) / 100-image close
  figures for TensorBoard's SummaryWriter, wandb (offline) and swanlab (local), and for
  seetrain by the same routine; all offline, their files in the temporary folder.

Run: ``python benchmarks/write_path_benchmark.py [--quick] [--only NAME[,NAME]]`` (names:
memory, ingest, lag, latency, init, images, peers); ``hatch run bench`` runs it with the
others, ``hatch run test:python benchmarks/write_path_benchmark.py`` has the peers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

NAMES = ("memory", "ingest", "lag", "latency", "init", "images", "peers")
KEYS10 = [f"k{i}" for i in range(10)]
DB_NAME = "seetrain.db"  # the store's database file, read directly for the lag figure


def _rss_mb() -> float:
    # VmHWM: the peak of this process image. ru_maxrss would also count the memory of the
    # parent that a fork+exec child inherits the record of (the benchmark's own process).
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(sorted_values: list, q: float):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


# -- children: each runs in a fresh interpreter and writes a JSON result file -------------------
def child_memory(store: str, steps: int) -> dict:
    import seetrain

    run = seetrain.init(project="bench", dir=store, experiment_name=f"memory-{steps}")
    rss_after_init = _rss_mb()
    keys = KEYS10
    t0 = time.perf_counter()
    for step in range(steps):
        x = step * 1e-3
        run.log({k: x + j for j, k in enumerate(keys)}, step=step)
    t1 = time.perf_counter()
    run.finish()
    t2 = time.perf_counter()
    return {"peak_mb": _rss_mb(), "after_init_mb": rss_after_init, "log_s": t1 - t0, "finish_s": t2 - t1}


def child_ingest(store: str, steps: int) -> dict:
    import seetrain

    run = seetrain.init(project="bench", dir=store, experiment_name="ingest")
    keys = KEYS10
    t0 = time.perf_counter()
    for step in range(steps):
        x = step * 1e-3
        run.log({k: x + j for j, k in enumerate(keys)}, step=step)
    t1 = time.perf_counter()
    run.finish()
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "log_s": t1 - t0, "finish_s": t2 - t1, "scalars": steps * len(keys)}


def child_lag(store: str, side_file: str) -> dict:
    import seetrain

    run = seetrain.init(project="bench", dir=store, experiment_name="lag")
    fd = os.open(side_file, os.O_WRONLY)
    pack = struct.Struct("<qq").pack
    pwrite = os.pwrite
    step = 0
    while True:  # until SIGKILLed by the parent
        run.log({"m0": 0.5, "lr": 1e-3}, step=step)
        if step & 255 == 0:
            pwrite(fd, pack(step, step), 0)  # the step twice: a torn read shows as a mismatch
        step += 1


def child_latency(store: str, calls: int) -> dict:
    import seetrain

    run = seetrain.init(project="bench", dir=store, experiment_name="latency")
    keys = KEYS10
    perf = time.perf_counter_ns
    samples = [0] * calls
    # which calls waited in back-pressure (the queue full): counted by the dispatcher
    dispatcher = getattr(run, "_dispatcher", None)
    waits = (lambda: dispatcher.backpressure_waits) if hasattr(dispatcher, "backpressure_waits") else (lambda: 0)
    waited = [False] * calls
    for i in range(calls):
        x = i * 1e-3
        data = {k: x + j for j, k in enumerate(keys)}
        before = waits()
        t0 = perf()
        run.log(data, step=i)
        samples[i] = perf() - t0
        waited[i] = waits() != before
    t1 = time.perf_counter()
    run.finish()
    finish_s = time.perf_counter() - t1
    free = sorted(s for s, w in zip(samples, waited) if not w)
    samples.sort()
    us = [s / 1000 for s in samples]
    free_us = [s / 1000 for s in free] or [0.0]
    return {"p50": _pct(us, 0.5), "p99": _pct(us, 0.99), "p999": _pct(us, 0.999), "max": us[-1],
            "mean": sum(us) / len(us), "over_2ms": sum(1 for s in samples if s > 2_000_000),
            "calls": calls, "finish_s": finish_s, "backpressure_calls": calls - len(free),
            "free_p999": _pct(free_us, 0.999), "free_max": free_us[-1],
            "free_over_2ms": sum(1 for s in free if s > 2_000_000)}


def child_init(store: str) -> dict:
    import seetrain  # excluded from the figures

    t0 = time.perf_counter()
    run = seetrain.init(project="bench", dir=store, experiment_name="first")
    first = time.perf_counter() - t0
    print(f"INIT {first!r}", flush=True)  # the parent now looks for the run with a reader
    sys.stdin.readline()
    run.finish()
    t0 = time.perf_counter()
    run2 = seetrain.init(project="bench", dir=store, experiment_name="second")
    second = time.perf_counter() - t0
    run2.finish()
    return {"first_s": first, "second_s": second}


def _random_images(count: int) -> list:
    import numpy as np

    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8) for _ in range(count)]


def child_images(store: str, count: int) -> dict:
    import seetrain

    arrays = _random_images(count)
    run = seetrain.init(project="bench", dir=store, experiment_name="images")
    perf = time.perf_counter
    samples = []
    for step, arr in enumerate(arrays):
        t0 = perf()
        run.log({"img": seetrain.Image(arr)}, step=step)
        samples.append(perf() - t0)
    t0 = perf()
    run.finish()
    return {"call_median_us": statistics.median(samples) * 1e6, "call_max_us": max(samples) * 1e6,
            "finish_s": perf() - t0}


# -- peers: the same routine for every library --------------------------------------------------
class _SeeTrainPeer:
    def start(self, d):
        import seetrain

        self.seetrain = seetrain
        self.run = seetrain.init(project="bench", dir=d, experiment_name="peer")

    def scalars(self, step, data):
        self.run.log(data, step=step)

    def image(self, step, arr):
        self.run.log({"img": self.seetrain.Image(arr)}, step=step)

    def close(self):
        self.run.finish()


class _TensorBoardPeer:
    def start(self, d):
        self.writer = self.cls(log_dir=d)

    def scalars(self, step, data):
        add = self.writer.add_scalar
        for k, v in data.items():
            add(k, v, step)

    def image(self, step, arr):
        self.writer.add_image("img", arr, step, dataformats="HWC")

    def close(self):
        self.writer.close()


class _WandbPeer:
    def start(self, d):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project="bench", dir=d, mode="offline")

    def scalars(self, step, data):
        self.run.log(data, step=step)

    def image(self, step, arr):
        self.run.log({"img": self.wandb.Image(arr)}, step=step)

    def close(self):
        self.run.finish()


class _SwanlabPeer:
    def start(self, d):
        import swanlab

        self.swanlab = swanlab
        try:
            self.run = swanlab.init(project="bench", logdir=d, mode="offline")
        except Exception:  # older releases: no "offline" mode, "local" is the offline one
            self.run = swanlab.init(project="bench", logdir=d, mode="local")

    def scalars(self, step, data):
        self.swanlab.log(data, step=step)

    def image(self, step, arr):
        self.swanlab.log({"img": self.swanlab.Image(arr)}, step=step)

    def close(self):
        self.swanlab.finish()


def _peer_env(name: str, tmp: str) -> dict:
    env = {}
    if name == "wandb":
        env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": tmp, "WANDB_CACHE_DIR": tmp,
               "WANDB_CONFIG_DIR": tmp, "WANDB_DATA_DIR": tmp, "WANDB_ARTIFACT_DIR": tmp,
               "WANDB_DISABLE_GIT": "true"}
    elif name == "swanlab":
        env = {"SWANLAB_MODE": "offline", "SWANLAB_SAVE_DIR": tmp, "SWANLAB_LOG_DIR": tmp}
    return env


def _peer_available(name: str) -> str | None:
    """None when the peer can be measured, else why not."""
    spec = importlib.util.find_spec
    if name == "tensorboard":
        if spec("torch") and spec("tensorboard"):
            return None
        return None if spec("tensorboardX") else "neither torch + tensorboard nor tensorboardX installed"
    if name in ("wandb", "swanlab"):
        return None if spec(name) else f"{name} not installed"
    return None


def child_peer(tmp: str, name: str, calls: int, images: int) -> dict:
    if name == "seetrain":
        peer = _SeeTrainPeer()
    elif name == "tensorboard":
        peer = _TensorBoardPeer()
        try:
            from torch.utils.tensorboard import SummaryWriter
            peer.label = "torch SummaryWriter"
        except ImportError:
            from tensorboardX import SummaryWriter
            peer.label = "tensorboardX SummaryWriter"
        peer.cls = SummaryWriter
    elif name == "wandb":
        import wandb  # noqa: F401  (import excluded from init)
        peer = _WandbPeer()
    elif name == "swanlab":
        import swanlab  # noqa: F401
        peer = _SwanlabPeer()
    else:
        raise ValueError(name)
    perf = time.perf_counter
    # scalars: one run; images: a second one, so its close() time is the images' alone
    d1 = os.path.join(tmp, "scalars")
    os.makedirs(d1)
    t0 = perf()
    peer.start(d1)
    init_s = perf() - t0
    samples = [0.0] * calls
    keys = KEYS10
    for step in range(calls):
        x = step * 1e-3
        data = {k: x + j for j, k in enumerate(keys)}
        t0 = perf()
        peer.scalars(step, data)
        samples[step] = perf() - t0
    t0 = perf()
    peer.close()
    scalar_close_s = perf() - t0
    samples.sort()
    arrays = _random_images(images)  # numpy imported only now: as in the init figure above
    d2 = os.path.join(tmp, "images")
    os.makedirs(d2)
    peer.start(d2)
    img = []
    for step, arr in enumerate(arrays):
        t0 = perf()
        peer.image(step, arr)
        img.append(perf() - t0)
    t0 = perf()
    peer.close()
    image_close_s = perf() - t0
    return {"label": getattr(peer, "label", name), "init_s": init_s, "p50_us": _pct(samples, 0.5) * 1e6,
            "p99_us": _pct(samples, 0.99) * 1e6, "scalar_close_s": scalar_close_s,
            "image_call_median_ms": statistics.median(img) * 1e3, "image_close_s": image_close_s}


CHILDREN = {"memory": child_memory, "ingest": child_ingest, "lag": child_lag, "latency": child_latency,
            "init": child_init, "images": child_images, "peer": child_peer}


def child_main(name: str, out: str, args: list) -> None:
    result = CHILDREN[name](*args)
    result["peak_rss_mb"] = _rss_mb()
    with open(out, "w") as fh:
        json.dump(result, fh)


# -- parent --------------------------------------------------------------------------------------
def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("SEETRAIN_SILENT", None)  # the default plugins, the console summary included
    env.pop("SEETRAIN_DIR", None)
    # as users run: imports from cached bytecode (a first child run writes the caches)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


def _argv(name: str, out: str, *args) -> list:
    return [sys.executable, os.path.abspath(__file__), "--child", name, out, json.dumps(list(args))]


_outputs = iter(range(1 << 30))


def _out(tmp: str) -> str:
    """A fresh path for a child's result file."""
    return os.path.join(tmp, f"result-{next(_outputs)}.json")


def spawn(tmp: str, name: str, *args, env: dict | None = None, timeout: float = 600) -> dict:
    """Run one child to the end; its result dict (``stderr`` holds what it printed there)."""
    out = _out(tmp)
    proc = subprocess.run(_argv(name, out, *args), env=_env(env), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"child {name} {args} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(out) as fh:
        result = json.load(fh)
    result["stderr"] = proc.stderr
    return result


def _store(tmp: str, label: str) -> str:
    return tempfile.mkdtemp(dir=tmp, prefix=f"{label}-")


def _fmt_k(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def bench_memory(tmp: str, quick: bool, table: list) -> None:
    sizes = (10_000, 30_000, 300_000) if quick else (10_000, 100_000, 1_000_000)
    peaks = {}
    for steps in sizes:
        r = spawn(tmp, "memory", _store(tmp, "memory"), steps)
        peaks[steps] = r["peak_mb"]
        summary = "console summary printed" if "seetrain: run" in r["stderr"] else "NO console summary line"
        print(f"  {steps:>9,} steps x 10 scalars: peak RSS {r['peak_mb']:7.1f} MB "
              f"(after init {r['after_init_mb']:.1f} MB; log loop {r['log_s']:.2f} s, finish {r['finish_s']:.2f} s; "
              f"{summary})", flush=True)
        table.append((f"peak RSS, {_fmt_k(steps)} steps x 10", f"{r['peak_mb']:.1f} MB"))
    big, mid = sizes[2], sizes[1]
    ratio = peaks[big] / peaks[mid]
    print(f"  ratio {_fmt_k(big)}/{_fmt_k(mid)}: {ratio:.2f}x (10x the steps)")
    table.append((f"peak RSS ratio {_fmt_k(big)}/{_fmt_k(mid)}", f"{ratio:.2f}x"))


def bench_ingest(tmp: str, quick: bool, table: list) -> None:
    steps = 100_000 if quick else 300_000
    store = _store(tmp, "ingest")
    r = spawn(tmp, "ingest", store, steps)
    rate = r["scalars"] / r["seconds"]
    import seetrain

    api = seetrain.Api(store)
    try:
        runs = api.runs(project="bench")
        points = len(runs[-1].scalars("k3")) if runs else 0
        status = runs[-1].status if runs else "no run"
    finally:
        api.close()
    verdict = "verified" if points == steps else f"NOT verified: {points:,} points of k3 for {steps:,} steps"
    print(f"  {steps:,} steps x 10 scalars: {rate / 1e6:.2f} M scalars/s first log() to finish() "
          f"({r['seconds']:.2f} s: log loop {r['log_s']:.2f} s, finish {r['finish_s']:.2f} s); "
          f"read back {points:,} points of k3, run {status}: {verdict}", flush=True)
    table.append(("ingest, log() to committed", f"{rate / 1e6:.2f} M scalars/s ({verdict})"))


def _stored_step(db: str, conn_box: list) -> int | None:
    """``last_step`` of the run in the store, read-only; None until the run is there."""
    try:
        if not conn_box:
            if not os.path.exists(db):
                return None
            conn_box.append(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0))
        rows = conn_box[0].execute("SELECT MAX(last_step) FROM runs").fetchall()  # all: no snapshot kept
        return rows[0][0] if rows else None
    except sqlite3.Error:
        return None


def bench_lag(tmp: str, quick: bool, table: list, seconds: float | None = None) -> None:
    seconds = seconds or (3.0 if quick else 10.0)
    store = _store(tmp, "lag")
    db = os.path.join(store, DB_NAME)
    side = os.path.join(tmp, "lag-step.bin")
    with open(side, "wb") as fh:
        fh.write(struct.pack("<qq", -1, -1))
    out = _out(tmp)
    errfile = open(os.path.join(tmp, "lag-stderr.txt"), "w+")
    proc = subprocess.Popen(_argv("lag", out, store, side), env=_env(), stdout=subprocess.DEVNULL, stderr=errfile)
    fd = os.open(side, os.O_RDONLY)
    unpack = struct.Struct("<qq").unpack

    def producer_step() -> int:
        while True:
            a, b = unpack(os.pread(fd, 16, 0))
            if a == b:
                return a

    conn_box: list = []
    try:
        deadline = time.monotonic() + 60
        while producer_step() < 0:  # init done and logging started
            if proc.poll() is not None or time.monotonic() > deadline:
                errfile.seek(0)
                raise RuntimeError(f"lag producer did not start:\n{errfile.read()[-3000:]}")
            time.sleep(0.005)
        samples = []  # (time, producer step, stored step)
        t_start = time.monotonic()
        next_poll = t_start
        while time.monotonic() - t_start < seconds:
            p = producer_step()
            s = _stored_step(db, conn_box)
            samples.append((time.monotonic(), p, -1 if s is None else s))
            next_poll += 0.05
            time.sleep(max(0.0, next_poll - time.monotonic()))
        p_before_kill = producer_step()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        p_last = producer_step()  # the producer's last report (<= 256 steps before its last log)
        time.sleep(0.1)
        for conn in conn_box:  # a fresh connection for what the store holds after the kill
            conn.close()
        conn_box.clear()
        s_after = _stored_step(db, conn_box)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(fd)
        for conn in conn_box:
            conn.close()
        errfile.close()
    import seetrain

    api = seetrain.Api(store)  # cross-check last_step with the points a reader gets
    try:
        runs = api.runs()
        points = len(runs[-1].scalars("m0")) if runs and "m0" in runs[-1].keys() else 0
    finally:
        api.close()
    (t0, p0, _), (t1, p1, _) = samples[0], samples[-1]
    rate = (p1 - p0) / (t1 - t0) if t1 > t0 else float("nan")
    lags = sorted(max(0, p - s) / rate for _, p, s in samples)
    s_after = -1 if s_after is None else s_after
    lost_steps = max(0, p_last - s_after)
    lost_s = lost_steps / rate
    print(f"  producer: {rate / 1e3:.0f}k steps/s x 2 scalars for {seconds:.0f} s ({len(samples)} polls at 50 ms); "
          f"store's lag behind it: max {max(lags):.3f} s, p50 {_pct(lags, 0.5):.3f} s", flush=True)
    print(f"  at SIGKILL: producer at step {p_last:,} (polled {p_before_kill:,} just before), store holds "
          f"last_step {s_after:,} ({points:,} points of m0 via seetrain.Api): "
          f"lost {lost_steps:,} steps = {lost_s:.3f} s of values")
    table.append(("store lag at max rate: max / p50", f"{max(lags):.3f} s / {_pct(lags, 0.5):.3f} s"))
    table.append(("lost at SIGKILL", f"{lost_s:.3f} s of values ({lost_steps:,} steps)"))


def bench_latency(tmp: str, quick: bool, table: list) -> None:
    calls = 50_000 if quick else 200_000
    r = spawn(tmp, "latency", _store(tmp, "latency"), calls)
    print(f"  {calls:,} log() calls of 10 scalars: p50 {r['p50']:.2f} us, p99 {r['p99']:.2f} us, "
          f"p99.9 {r['p999']:.1f} us, max {r['max'] / 1000:.1f} ms, mean {r['mean']:.2f} us; "
          f"{r['over_2ms']} calls > 2 ms; finish() {r['finish_s']:.2f} s", flush=True)
    if "backpressure_calls" in r:
        print(f"  outside back-pressure ({r['backpressure_calls']:,} calls waited for the queue to drain): "
              f"p99.9 {r['free_p999']:.1f} us, max {r['free_max'] / 1000:.2f} ms, "
              f"{r['free_over_2ms']} calls > 2 ms", flush=True)
        table.append(("log() outside back-pressure: p99.9, max, > 2 ms",
                      f"{r['free_p999']:.0f} us, {r['free_max'] / 1000:.2f} ms, {r['free_over_2ms']} "
                      f"({r['backpressure_calls']} calls in back-pressure)"))
    table.append(("log() 10 scalars p50/p99/p99.9", f"{r['p50']:.1f} / {r['p99']:.1f} / {r['p999']:.0f} us"))
    table.append(("log() max, mean, calls > 2 ms", f"{r['max'] / 1000:.1f} ms, {r['mean']:.1f} us, {r['over_2ms']}"))


def _wait_visible(store: str, name: str, limit: float = 30.0) -> float:
    import seetrain

    t0 = time.perf_counter()
    while True:
        try:
            api = seetrain.Api(store)
            try:
                if any(r.name == name for r in api.runs()):
                    return time.perf_counter() - t0
            finally:
                api.close()
        except Exception:  # no store yet (StoreNotFoundError) or a locked database: poll again
            pass
        if time.perf_counter() - t0 > limit:
            return float("inf")
        time.sleep(0.001)


def bench_init(tmp: str, quick: bool, table: list) -> None:
    import seetrain  # noqa: F401  (imported before any timing of the reader)

    count = 5 if quick else 15
    spawn(tmp, "ingest", _store(tmp, "warm-up"), 10)  # writes the bytecode caches, not timed
    first, second, visible = [], [], []
    for _ in range(count):
        store = os.path.join(tmp, f"init-{len(first)}")  # not created: init makes it
        out = _out(tmp)
        proc = subprocess.Popen(_argv("init", out, store), env=_env(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        while line and not line.startswith("INIT "):
            line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise RuntimeError(f"init child failed:\n{proc.stderr.read()[-3000:]}")
        visible.append(_wait_visible(store, "first"))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"init child failed (rc {proc.returncode}):\n{err[-3000:]}")
        with open(out) as fh:
            r = json.load(fh)
        first.append(r["first_s"])
        second.append(r["second_s"])
    ms = 1000
    print(f"  first init() on a fresh store ({count} processes): median {statistics.median(first) * ms:.1f} ms, "
          f"max {max(first) * ms:.1f} ms", flush=True)
    print(f"  second init() in the same process: median {statistics.median(second) * ms:.1f} ms, "
          f"max {max(second) * ms:.1f} ms")
    print(f"  run seen by a reader (seetrain.Api) after init returned: median "
          f"{statistics.median(visible) * ms:.1f} ms, max {max(visible) * ms:.1f} ms")
    table.append(("init() first: median / max", f"{statistics.median(first) * ms:.1f} / {max(first) * ms:.1f} ms"))
    table.append(("init() second: median / max", f"{statistics.median(second) * ms:.1f} / {max(second) * ms:.1f} ms"))
    table.append(("run seen by a reader: median / max",
                  f"{statistics.median(visible) * ms:.1f} / {max(visible) * ms:.1f} ms"))


def bench_images(tmp: str, quick: bool, table: list) -> None:
    count = 100
    r = spawn(tmp, "images", _store(tmp, "images"), count)
    print(f"  {count} images 256x256x3: log(Image(arr)) median {r['call_median_us']:.0f} us "
          f"(max {r['call_max_us'] / 1000:.1f} ms) in the caller; finish() {r['finish_s']:.3f} s", flush=True)
    table.append((f"{count} images: log() median, finish()", f"{r['call_median_us']:.0f} us, {r['finish_s']:.3f} s"))


def bench_peers(tmp: str, quick: bool, table: list) -> None:
    calls = 5_000 if quick else 20_000
    rows = []
    for name in ("seetrain", "tensorboard", "wandb", "swanlab"):
        why = _peer_available(name)
        if why:
            print(f"  {name}: skipped ({why})", flush=True)
            continue
        ptmp = _store(tmp, f"peer-{name}")
        try:
            r = spawn(tmp, "peer", ptmp, name, calls, 100, env=_peer_env(name, ptmp))
        except Exception as exc:  # a peer that does not work here is reported, not fatal
            print(f"  {name}: failed: {str(exc).strip().splitlines()[-1]}", flush=True)
            continue
        rows.append(r)
        print(f"  {r['label']}: init {r['init_s'] * 1000:.0f} ms; {calls:,} calls of 10 scalars: "
              f"p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us (close {r['scalar_close_s']:.2f} s); "
              f"100 images: per call {r['image_call_median_ms']:.2f} ms, close {r['image_close_s']:.2f} s",
              flush=True)
    if rows:
        print()
        head = ("library", "init ms", "10 scalars p50 us", "p99 us", "image call ms", "100 img close s")
        fmt = "  {:<28} {:>8} {:>18} {:>8} {:>14} {:>16}"
        print(fmt.format(*head))
        for r in rows:
            print(fmt.format(r["label"], f"{r['init_s'] * 1000:.0f}", f"{r['p50_us']:.1f}", f"{r['p99_us']:.1f}",
                             f"{r['image_call_median_ms']:.2f}", f"{r['image_close_s']:.2f}"))
            table.append((f"peer {r['label']}", f"init {r['init_s'] * 1000:.0f} ms, 10 scalars "
                          f"{r['p50_us']:.1f}/{r['p99_us']:.1f} us, 100 img close {r['image_close_s']:.2f} s"))


def _describe_core() -> str:
    """Which seetrain the children import: its commit, and whether it has uncommitted changes."""
    spec = importlib.util.find_spec("seetrain")
    if spec is None or not spec.origin:
        return "seetrain not importable"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    core = os.path.dirname(os.path.dirname(spec.origin))  # .../src
    if os.path.commonpath([repo, os.path.abspath(core)]) != repo:
        return "seetrain from outside this checkout (PYTHONPATH or an install)"
    try:
        git = ["git", "-C", repo]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", os.path.relpath(core, repo)],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "seetrain from this checkout"
    return f"seetrain of this checkout at {commit or '?'}{' with uncommitted changes' if dirty else ''}"


BENCHES = {"memory": bench_memory, "ingest": bench_ingest, "lag": bench_lag, "latency": bench_latency,
           "init": bench_init, "images": bench_images, "peers": bench_peers}


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (well under a minute or two)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these measurements (repeatable or comma-separated): {', '.join(NAMES)}")
    parser.add_argument("--lag-seconds", type=float, default=None, metavar="N",
                        help="how long the lag producer runs (default 10, quick 3)")
    args, unknown = parser.parse_known_args()
    if unknown:  # run_all.py hands every script the same arguments
        print(f"(ignoring arguments meant for other benchmarks: {' '.join(unknown)})")
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    bad = [n for n in only if n not in NAMES]
    if bad:
        parser.error(f"unknown --only name(s) {', '.join(bad)}; choose from {', '.join(NAMES)}")
    selected = [n for n in NAMES if not only or n in only]
    print(f"write path benchmark{' (quick)' if args.quick else ''}: Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; {_describe_core()}; every figure from a fresh process, SEETRAIN_SILENT unset",
          flush=True)
    table: list = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seetrain-wpb-") as tmp:
        for name in selected:
            print(f"-- {name}", flush=True)
            t0 = time.perf_counter()
            try:
                if name == "lag":
                    bench_lag(tmp, args.quick, table, args.lag_seconds)
                else:
                    BENCHES[name](tmp, args.quick, table)
            except Exception as exc:  # a broken measurement is reported; the others still run
                lines = str(exc).strip().splitlines() or [type(exc).__name__]
                print(f"  FAILED: {lines[0]}" + (f" ... {lines[-1]}" if len(lines) > 1 else ""))
                table.append((name, "FAILED"))
            print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"\n== summary ({time.perf_counter() - started:.0f} s)")
    width = max((len(k) for k, _ in table), default=0)
    for key, value in table:
        print(f"  {key:<{width}}  {value}")
    if any(value == "FAILED" for _, value in table):
        sys.exit(1)


if __name__ == "__main__":
    main()
