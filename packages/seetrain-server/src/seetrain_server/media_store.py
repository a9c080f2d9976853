"""Where media contents live, so that every replica sees them.

``db`` (the default): in the database's ``media_blobs`` table. One system to run, back up and
secure, transactional with the rows that name them, and fine for the images and clips of
training runs (kilobytes to a few megabytes each). ``s3://bucket/prefix``: an S3-compatible
object store, for teams whose media outgrow the database.
"""

from __future__ import annotations

from typing import Any


class MediaStore:
    """Stores and returns media contents by path (the ``media.path`` of a row)."""

    def put(self, tx: Any, path: str, data: bytes, content_type: str) -> None:
        raise NotImplementedError

    def get(self, db: Any, path: str) -> tuple[bytes, str] | None:
        raise NotImplementedError


class DatabaseMediaStore(MediaStore):
    """Media in the ``media_blobs`` table, written in the ingest's own transaction."""

    def put(self, tx: Any, path: str, data: bytes, content_type: str) -> None:
        tx.execute("INSERT INTO media_blobs (path, content_type, data) VALUES (?, ?, ?) "
                   "ON CONFLICT (path) DO NOTHING", (path, content_type, data))

    def get(self, db: Any, path: str) -> tuple[bytes, str] | None:
        rows = db.query("SELECT data, content_type FROM media_blobs WHERE path = ?", (path,))
        if not rows:
            return None
        data, content_type = rows[0]
        return bytes(data), content_type


def open_media_store(url: str) -> MediaStore:
    if url in ("db", "", None):
        return DatabaseMediaStore()
    if url.startswith("s3://"):
        from .s3 import S3MediaStore  # boto3, imported only when asked for

        return S3MediaStore(url)
    raise ValueError(f"unsupported media store {url!r}: give db (the default) or s3://bucket/prefix")
