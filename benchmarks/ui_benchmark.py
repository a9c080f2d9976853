"""Dashboard benchmark: the API serving a 1,000,000-point metric downsampled to 2,000 points,
and the first paint of a run page with 50 charts in headless Chromium.

    python benchmarks/ui_benchmark.py [--points 1000000] [--charts 50] [--repeat 10]

The store is written with the real core (``seetrain.init`` / ``log``) into a temporary folder;
requests go over HTTP to the real uvicorn server. Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def write_store(directory: str, points: int, charts: int) -> tuple[str, str]:
    import numpy as np

    import seetrain

    rng = np.random.default_rng(0)
    big = seetrain.init(project="bench", experiment_name="million", dir=directory)
    values = np.cumsum(rng.normal(size=points)) / 100.0
    values[points // 3] += 1000.0  # a spike the envelope must keep
    for step, v in enumerate(values.tolist()):
        big.log({"train/loss": v}, step=step)
    big.finish()
    many = seetrain.init(project="bench", experiment_name="fifty-charts", dir=directory)
    groups = ("train", "val", "eval", "sys", "grad")
    keys = [f"{groups[i % len(groups)]}/metric_{i:02d}" for i in range(charts)]
    base = rng.normal(size=(1000, charts)).cumsum(axis=0) / 10.0
    for step in range(1000):
        many.log({k: float(base[step, i]) for i, k in enumerate(keys)}, step=step)
    many.finish()
    return big.id, many.id


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def bench_api(url: str, run_id: str, repeat: int) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        params = {"key": "train/loss", "max_points": 2000}
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            resp = client.get(f"/api/runs/{run_id}/scalars", params=params)
            resp.raise_for_status()
            times.append(time.perf_counter() - t0)
        series = resp.json()["series"]["train/loss"]
        print(f"API, {series['total']:,} points -> {len(series['steps']):,} (min/max envelope, "
              f"spike kept: {max(series['values']) > 500}), {len(resp.content) / 1024:.0f} KiB JSON:")
        print(f"  first request {ms(times[0])}   median {ms(statistics.median(times))}   "
              f"best {ms(min(times))}   (n={repeat})")
        zoom = {"key": "train/loss", "max_points": 2000, "step_min": 500_000, "step_max": 500_999}
        ztimes = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            zr = client.get(f"/api/runs/{run_id}/scalars", params=zoom)
            ztimes.append(time.perf_counter() - t0)
        z = zr.json()["series"]["train/loss"]
        print(f"API, zoom to 1,000 steps (exact: {z['exact']}): median {ms(statistics.median(ztimes))}")


def bench_first_paint(url: str, run_id: str, charts: int, repeat: int) -> None:
    if not os.path.exists(CHROMIUM):
        print(f"first paint: skipped, no Chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver)")
        return
    from playwright.sync_api import sync_playwright

    all_ready = (f"() => document.querySelectorAll(\".chart-card[data-state='ready']\").length === {charts}"
                 " && performance.now()")
    first, every = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for _ in range(repeat):
            # a usual screen: the time until its first screen of charts is drawn
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url + f"#/r/{run_id}")
            first.append(page.wait_for_function("() => window.__seetrain && window.__seetrain.firstPaint",
                                                timeout=60_000).json_value())
            page.close()
            # a screen tall enough for all of them: the time until every chart is drawn
            page = browser.new_page(viewport={"width": 1440, "height": 16_000})
            page.goto(url + f"#/r/{run_id}")
            every.append(page.wait_for_function(all_ready, timeout=60_000).json_value())
            page.close()
        browser.close()
    print(f"first paint of a run page with {charts} charts (1,000 points each), from navigation start:")
    print(f"  first screen drawn (1440x900)        median {ms(statistics.median(first) / 1000)}   (n={repeat})")
    print(f"  all {charts} charts drawn (1440x16000)   median {ms(statistics.median(every) / 1000)}   (n={repeat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--charts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("SEETRAIN_SILENT", "1")
    from seetrain.ui import BackgroundServer

    with tempfile.TemporaryDirectory(prefix="seetrain-ui-bench-") as tmp:
        directory = os.path.join(tmp, "store")
        t0 = time.perf_counter()
        big, many = write_store(directory, args.points, args.charts)
        print(f"store written in {time.perf_counter() - t0:.1f} s ({args.points:,} + {args.charts}x1,000 points)")
        with BackgroundServer(directory) as url:
            bench_api(url, big, args.repeat)
            bench_first_paint(url, many, args.charts, max(3, args.repeat // 3))


if __name__ == "__main__":
    main()
