"""SeeTrain's team server (``seetrain server``): the dashboard, a versioned ingest API
(``/api/v1``), API keys with per-project roles, over PostgreSQL (or a SQLite file).

Every replica is stateless: runs, metrics, media, keys and ingest sequence numbers live in the
database (or media in an S3-compatible object store), so several ``seetrain server``
processes against one PostgreSQL are one service.
"""

from .config import Settings

__all__ = ["Settings", "create_app"]
__version__ = "0.1.0"


def create_app(*args, **kwargs):
    """The server's ASGI app (see :func:`seetrain_server.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)
