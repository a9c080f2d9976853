"""The SeeTrain dashboard: ``seetrain ui`` serves it, :func:`create_app` is its ASGI app.

Needs the ``ui`` extra (``pip install "seetrain[ui]"``: Starlette and uvicorn).

>>> from seetrain.ui import create_app
>>> app = create_app("./seetrain")     # any ASGI server can run it: uvicorn, hypercorn …
"""

from __future__ import annotations

from ._app import create_app
from ._server import BackgroundServer, serve

__all__ = ["create_app", "serve", "BackgroundServer"]
