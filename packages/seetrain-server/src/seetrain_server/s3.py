"""Media contents in an S3-compatible object store (AWS S3, MinIO, Ceph, R2, ...).

``--media s3://bucket/prefix`` (or ``SEETRAIN_SERVER_MEDIA``) puts each media file at
``<prefix>/<path>`` in ``bucket``, where ``path`` is the ``media.path`` of its row. Query
parameters configure the client:

- ``endpoint_url=http://host:port``: a store other than AWS (MinIO, moto, ...). Path-style
  addressing is then used, as those stores expect.
- ``region=...``: the region (default: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else
  ``us-east-1``).
- ``addressing_style=path|virtual|auto``: override the addressing style.

Credentials are never part of the URL: boto3 finds them as it always does (the environment's
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or pod role).

Unlike the database store, an object is written before the ingest's transaction commits and is
not removed if that transaction rolls back. That is harmless: a path is written with the same
contents whenever its batch is sent again, and an object no row names is never read.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .media_store import MediaStore

__all__ = ["S3MediaStore", "parse_s3_url"]

_OPTIONS = ("endpoint_url", "region", "addressing_style")


def parse_s3_url(url: str) -> dict[str, str | None]:
    """``s3://bucket/prefix?endpoint_url=...`` as ``bucket``, ``prefix`` (no slashes around it,
    possibly empty), ``endpoint_url``, ``region``, ``addressing_style``.

    :raises ValueError: not an ``s3://`` URL with a bucket, or an unknown parameter.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"a media store in S3 is s3://bucket/prefix (got {url!r})")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} in the media store URL: "
                         f"the known ones are {', '.join(_OPTIONS)}")
    options: dict[str, str | None] = {name: (query[name][-1] or None) if name in query else None
                                      for name in _OPTIONS}
    style = options["addressing_style"]
    if style is not None and style not in ("path", "virtual", "auto"):
        raise ValueError(f"addressing_style={style}: one of path, virtual, auto")
    return {"bucket": parts.netloc, "prefix": parts.path.strip("/"), **options}


class S3MediaStore(MediaStore):
    """Media contents as objects of an S3 bucket (see the module's documentation).

    One boto3 client, made on first use and shared by every thread (boto3's clients are
    thread-safe); its connection pool is as large as the database's. Retries are botocore's
    ``standard`` mode (exponential backoff on throttling and 5xx).
    """

    def __init__(self, url: str, *, client: Any = None, max_pool_connections: int = 16) -> None:
        try:
            import boto3  # noqa: F401  (checked here, so a missing extra fails at start, not on a request)
        except ImportError:
            raise ImportError('an S3 media store needs boto3: pip install "seetrain-server[s3]"') from None
        parsed = parse_s3_url(url)
        self.url = url
        self.bucket: str = parsed["bucket"]  # type: ignore[assignment]
        self.prefix: str = parsed["prefix"] or ""  # type: ignore[assignment]
        self.endpoint_url = parsed["endpoint_url"]
        self.region = (parsed["region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                       or "us-east-1")
        self.addressing_style = parsed["addressing_style"] or ("path" if self.endpoint_url else "auto")
        self._max_pool_connections = max_pool_connections
        self._client = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3MediaStore({self.describe()!r})"

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    config = Config(region_name=self.region, retries={"mode": "standard", "max_attempts": 5},
                                    max_pool_connections=self._max_pool_connections,
                                    s3={"addressing_style": self.addressing_style})
                    # a session of its own: boto3's default session is not thread-safe
                    self._client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url,
                                                                  config=config)
        return self._client

    def key(self, path: str) -> str:
        """The object key of the media file ``path``."""
        path = path.lstrip("/")
        if not path or any(part in ("", ".", "..") for part in path.split("/")):
            raise ValueError(f"not a media path: {path!r}")
        return f"{self.prefix}/{path}" if self.prefix else path

    def put(self, tx: Any, path: str, data: bytes, content_type: str) -> None:
        """Write the object (``tx``, the ingest's transaction, is not used: see the module)."""
        self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=bytes(data),
                               ContentType=content_type or "application/octet-stream")

    def get(self, db: Any, path: str) -> tuple[bytes, str] | None:
        """``(contents, content type)`` of ``path``; None when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(path))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        except ValueError:
            return None
        with answer["Body"] as body:
            data = body.read()
        return data, answer.get("ContentType") or "application/octet-stream"

    def ping(self) -> None:
        """Raise unless the bucket answers (``head_bucket``)."""
        self.client.head_bucket(Bucket=self.bucket)
