"""The public read API over a store directory.

>>> import seetrain
>>> api = seetrain.Api("/path/to/seetrain")          # doctest: +SKIP
>>> run = api.runs(project="mnist")[-1]              # doctest: +SKIP
>>> run.scalars("train/loss", max_points=1000)       # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

from .store.reader import KeyNotFoundError, RunNotFoundError, StoreReader, downsample

__all__ = ["Api", "ApiRun", "MediaItem", "RunNotFoundError", "KeyNotFoundError"]


@dataclass(frozen=True)
class MediaItem:
    """One logged image, audio clip or text. ``path`` is a file inside the store (``None``
    for text, whose content is ``text``)."""

    step: int
    kind: str
    path: str | None
    caption: str | None
    text: str | None = None
    index: int = 0
    meta: dict | None = None
    time: float | None = None


class ApiRun:
    """A run as read from the store. Attributes are read once; call :meth:`refresh` to
    re-read a run that is still going."""

    def __init__(self, reader: StoreReader, row: dict[str, Any]) -> None:
        self._reader = reader
        self._set(row)

    def _set(self, row: dict[str, Any]) -> None:
        self.id: str = row["id"]
        self.project: str = row["project"]
        self.name: str = row["name"]
        self.description: str | None = row["description"]
        self.group: str | None = row["group_name"]
        self.tags: list[str] = row["tags"]
        self.status: str = row["status"]
        self.error: str | None = row["error"]
        self.frameworks: list[str] = row["frameworks"]
        self.created_at: float = row["created_at"]
        self.finished_at: float | None = row["finished_at"]
        self.heartbeat_at: float | None = row["heartbeat_at"]
        self.last_step: int | None = row["last_step"]
        self.config: dict[str, Any] = row["config"]
        self._explicit_summary: dict[str, Any] = row["summary"]

    def refresh(self) -> ApiRun:
        self._set(self._reader.run(self.id))
        return self

    def __repr__(self) -> str:
        return f"<ApiRun {self.id} {self.project}/{self.name} {self.status}>"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to the last heartbeat while running)."""
        end = self.finished_at or self.heartbeat_at
        return None if end is None else max(0.0, end - self.created_at)

    def keys(self) -> list[str]:
        """Every key logged in the run, sorted."""
        return [k for k, _ in self._reader.keys(self.id)]

    def key_kinds(self) -> dict[str, str]:
        """Key -> ``scalar``, ``image``, ``audio`` or ``text``."""
        return dict(self._reader.keys(self.id))

    def history(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """One dict per step: ``{"step": s, key: value, ...}`` for the scalar ``keys``
        (all by default); a step lists only the keys logged at it."""
        return self._reader.history(self.id, list(keys) if keys is not None else None)

    def scalars(self, key: str, max_points: int | None = None, *, step_min: int | None = None,
                step_max: int | None = None) -> list[tuple[int, float]]:
        """``(step, value)`` pairs of a scalar key, every point by default; with
        ``max_points`` a min/max-envelope downsample that keeps spikes."""
        steps, vals, _ = self._reader.scalars(self.id, key, step_min=step_min, step_max=step_max)
        if max_points is not None:
            steps, vals = downsample(steps, vals, max_points)
        return list(zip(steps.tolist(), vals.tolist()))

    def media(self, key: str) -> list[MediaItem]:
        """The media logged under ``key``, by step."""
        return [MediaItem(step=m["step"], kind=m["kind"], path=m["path"], caption=m["caption"], text=m["text"],
                          index=m["index"], meta=m["meta"], time=m["time"])
                for m in self._reader.media(self.id, key)]

    def files(self) -> list[dict[str, Any]]:
        """Files the run recorded (checkpoints …): ``kind``, ``path``, ``meta``, ``time``."""
        return self._reader.files(self.id)

    @property
    def summary(self) -> dict[str, Any]:
        """The last value of each scalar key, updated by what the run put in ``run.summary``."""
        out: dict[str, Any] = self._reader.last_scalars(self.id)
        out.update(self._explicit_summary)
        return out


class Api:
    """Read access to a store directory (default ``SEETRAIN_DIR`` or ``./seetrain``).

    :raises seetrain.store.StoreNotFoundError: there is no store there.
    :raises seetrain.store.StoreCorruptError: (here or from any read) the store's file is
        damaged; the message names it and the ``seetrain doctor`` commands that check and
        repair it.
    """

    def __init__(self, dir: str | os.PathLike | None = None) -> None:
        self._reader = StoreReader(dir)
        self.dir = self._reader.directory

    @property
    def reader(self) -> StoreReader:
        return self._reader

    def projects(self) -> list[str]:
        """Project names, most recently used first."""
        return [p["name"] for p in self._reader.projects()]

    def runs(self, project: str | None = None) -> list[ApiRun]:
        """Runs, oldest first, of one project or of all."""
        return [ApiRun(self._reader, row) for row in self._reader.runs(project)]

    def run(self, id: str) -> ApiRun:
        """A run by id (or unique id prefix, or unique name).

        :raises RunNotFoundError: no such run."""
        return ApiRun(self._reader, self._reader.run(id))

    def close(self) -> None:
        self._reader.close()
