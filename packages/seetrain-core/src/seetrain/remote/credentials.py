"""The credentials file that ``seetrain login HOST`` writes: ``credentials.json`` in
``$SEETRAIN_CONFIG_DIR`` (default ``~/.config/seetrain``), readable by the user only, holding
one API key per server: ``{"hosts": {"http://server:8080": {"api_key": "stk_..."}}}``."""

from __future__ import annotations

import json
import os

__all__ = ["config_dir", "credentials_path", "save_key", "load_key", "normalize_host"]


def config_dir() -> str:
    return os.environ.get("SEETRAIN_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".config", "seetrain")


def credentials_path() -> str:
    return os.path.join(config_dir(), "credentials.json")


def normalize_host(host: str) -> str:
    """``host`` as a base URL: a scheme added when missing (http), no trailing slash."""
    host = host.strip()
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/")


def _read() -> dict:
    try:
        with open(credentials_path(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_key(host: str, api_key: str) -> str:
    """Store ``api_key`` for ``host`` (mode 0600, written atomically); the file's path."""
    path = credentials_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    data = _read()
    hosts = data.setdefault("hosts", {})
    hosts[normalize_host(host)] = {"api_key": api_key}
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_key(host: str) -> str | None:
    """The key stored for ``host``, if any."""
    entry = _read().get("hosts", {}).get(normalize_host(host))
    if isinstance(entry, dict) and isinstance(entry.get("api_key"), str):
        return entry["api_key"]
    return None


def resolve(host: str | None, api_key: str | None) -> tuple[str | None, str | None]:
    """The server and key to use: the arguments, else ``SEETRAIN_HOST`` / ``SEETRAIN_API_KEY``,
    else the key ``seetrain login`` stored for the host."""
    host = host or os.environ.get("SEETRAIN_HOST") or None
    if host is not None:
        host = normalize_host(host)
    api_key = api_key or os.environ.get("SEETRAIN_API_KEY") or (load_key(host) if host else None)
    return host, api_key
