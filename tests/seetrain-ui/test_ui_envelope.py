"""The vectorised min/max envelope (seetrain.store.reader.envelope_indices, which the dashboard
serves) keeps exactly the points of the plain per-bucket definition below."""

from __future__ import annotations

import numpy as np
import pytest

from seetrain.store.reader import envelope_indices
from seetrain.ui._queries import SeriesCache


def reference_envelope(values, max_points):
    """The envelope written as its definition: per bucket, nanargmin and nanargmax."""
    n = len(values)
    edges = np.linspace(0, n, max_points // 2 + 1).astype(np.int64)
    keep = np.zeros(n, dtype=bool)
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist()):
        if hi <= lo:
            continue
        seg = values[lo:hi]
        if np.isnan(seg).all():
            keep[lo] = True
            continue
        keep[lo + int(np.nanargmin(seg))] = True
        keep[lo + int(np.nanargmax(seg))] = True
    return np.flatnonzero(keep)


@pytest.mark.parametrize("n,max_points", [(10, 4), (1000, 978), (1001, 100), (20_000, 2000), (7, 6), (5000, 3)])
@pytest.mark.parametrize("seed", range(8))
def test_envelope_matches_its_definition(n, max_points, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n)
    mask = rng.random(n)
    values[mask < 0.1] = np.nan
    values[(mask > 0.1) & (mask < 0.12)] = np.inf
    values[(mask > 0.12) & (mask < 0.14)] = -np.inf
    if seed == 1:
        values[: n // 3] = np.nan  # whole buckets of NaN
    if seed == 2:
        values[:] = np.inf
    assert np.array_equal(envelope_indices(values, max_points), reference_envelope(values, max_points))


def test_envelope_is_the_identity_when_the_series_fits():
    assert envelope_indices(np.ones(5), 10).tolist() == [0, 1, 2, 3, 4]


def test_series_cache_serves_slices_and_sees_new_chunks(tmp_path):
    import time

    import seetrain
    from seetrain.store.reader import StoreReader

    n = SeriesCache.MIN_POINTS + 10
    run = seetrain.init(project="cache", dir=tmp_path / "s")
    for step in range(n):
        run.log({"x": float(step)}, step=step)
    reader = StoreReader(tmp_path / "s")
    cache = SeriesCache()

    def wait_for_points(count: int) -> None:  # the dispatcher writes every 0.25 s
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            steps, _, _ = reader.scalars(run.id, "x") if "x" in dict(reader.keys(run.id)) else ([], None, None)
            if len(steps) == count:
                return
            time.sleep(0.05)
        raise AssertionError(f"the store never held {count} points")

    try:
        wait_for_points(n)
        steps, values, _ = cache.scalars(reader, run.id, "x", 100, 104)
        assert steps.tolist() == [100, 101, 102, 103, 104] and values.tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
        assert len(cache.scalars(reader, run.id, "x", None, None)[0]) == n
        for step in range(n, n + 5):  # a new chunk of the live run makes the cached arrays stale
            run.log({"x": float(step)}, step=step)
        wait_for_points(n + 5)
        assert cache.scalars(reader, run.id, "x", n, None)[0].tolist() == list(range(n, n + 5))
    finally:
        run.finish()
        reader.close()
