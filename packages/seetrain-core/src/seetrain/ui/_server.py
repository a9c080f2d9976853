"""Running the dashboard: in the foreground for ``seetrain ui``, in a thread for tests and benchmarks."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time

from ..errors import SeeTrainError
from ..store.schema import resolve_dir
from ._app import create_app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SeeTrainError(f"seetrain ui: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                            "pass another --port (or --port 0 for any free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"http://{shown}:{port}/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(dir: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 5090) -> int:
    """Serve the dashboard of the store at ``dir`` until Ctrl+C; prints its URL first.

    Listens on loopback by default: the dashboard has no login, so any other ``host`` lets
    whoever reaches this machine read the runs (a warning says so).
    """
    import uvicorn

    directory = resolve_dir(dir)
    app = create_app(directory)
    sock = _bind(host, port)
    print(f"SeeTrain dashboard of {directory}")
    if not os.path.isfile(os.path.join(directory, "seetrain.db")):
        print(f"  (no store there yet: it will show runs once one starts with dir={directory!r})")
    if not _is_loopback(host):
        print(f"  warning: listening on {host}, not loopback: anyone who can reach this machine can read these runs",
              file=sys.stderr)
    print(f"  {_url(sock)}   (Ctrl+C to stop)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


class BackgroundServer:
    """The dashboard served by uvicorn in a daemon thread, on a free loopback port.

    >>> with BackgroundServer("/tmp/some-store") as url:   # doctest: +SKIP
    ...     print(url)                                     # http://127.0.0.1:PORT/
    """

    def __init__(self, dir: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._sock = _bind(host, port)
        self.url = _url(self._sock)
        self._server = uvicorn.Server(uvicorn.Config(create_app(dir), log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="seetrain-ui", daemon=True)

    def start(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
