"""The server's settings: one object, filled from the command line and the environment."""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass
class Settings:
    """What a ``seetrain server`` process is configured with. Limits are per request."""

    #: database URL: ``postgresql://…`` or ``sqlite:///file`` (``SEETRAIN_SERVER_DB``)
    db_url: str = dataclasses.field(default_factory=lambda: os.environ.get("SEETRAIN_SERVER_DB")
                                    or "sqlite:///seetrain-server.db")
    host: str = "127.0.0.1"
    port: int = 5095
    #: require an API key on every request (``--auth``); needed to bind another address
    auth: bool = False
    #: where media contents go: ``db`` (default) or ``s3://bucket/prefix`` (``SEETRAIN_SERVER_MEDIA``)
    media_url: str = dataclasses.field(default_factory=lambda: os.environ.get("SEETRAIN_SERVER_MEDIA") or "db")
    #: largest request body accepted, in bytes (413 past it)
    max_body_bytes: int = 64 * 1024 * 1024
    #: longest key name (422 past it)
    max_key_length: int = 256
    #: most distinct keys a run may have (422 past it)
    max_keys_per_run: int = 10_000
    #: most chunks (keys x step ranges) in one batch, and most points in one batch (413 past it)
    max_chunks_per_batch: int = 10_000
    max_points_per_batch: int = 5_000_000
    #: ingest requests handled at once by one replica; past it 503 with Retry-After
    max_concurrent_ingest: int = 8
    #: seconds a client is told to wait (Retry-After) when the replica sheds load
    retry_after_s: int = 1
    #: seconds a replica trusts an API key it has verified (a revoked key stops working on
    #: the other replicas within this time; on the replica that revoked it at once)
    key_cache_ttl_s: float = 60.0
