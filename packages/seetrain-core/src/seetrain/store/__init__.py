"""The embedded store: one SQLite database (WAL) plus media files in a directory.

``schema`` holds the layout and the connection settings, ``writer`` writes one directory
(from the dispatcher thread), ``sink`` is the built-in plugin that feeds the writer from the
hooks, ``reader`` is what :class:`seetrain.Api`, the CLI and the dashboard read through, and
``doctor`` checks a store and salvages a damaged one (``seetrain doctor``).
"""

from .schema import (
    DB_NAME,
    MEDIA_DIR,
    SCHEMA_VERSION,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    default_dir,
)

__all__ = ["DB_NAME", "MEDIA_DIR", "SCHEMA_VERSION", "StoreError", "StoreNotFoundError", "StoreCorruptError",
           "default_dir"]
