"""Suite-wide test setup: offline frameworks, a socket guard, an isolated store per test.

The frameworks the adapters are tested against are kept offline by their own switches, with
every cache and config directory pointed into a temporary folder. On top of that a socket
guard refuses any connection that is not to the loopback interface (or a Unix socket): a new
phone-home in some release becomes a failing test instead of a hang.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="seetrain-tests-")
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HOME": os.path.join(_CACHE, "hf"),
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DIR": os.path.join(_CACHE, "wandb"),
    "WANDB_CACHE_DIR": os.path.join(_CACHE, "wandb-cache"),
    "WANDB_CONFIG_DIR": os.path.join(_CACHE, "wandb-config"),
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "0",
    "YOLO_CONFIG_DIR": os.path.join(_CACHE, "ultralytics"),
    "RAY_USAGE_STATS_ENABLED": "0",
    "KERAS_BACKEND": "torch",
    "KERAS_HOME": os.path.join(_CACHE, "keras"),
    "TORCH_HOME": os.path.join(_CACHE, "torch"),
    "MPLCONFIGDIR": os.path.join(_CACHE, "matplotlib"),
    "TOKENIZERS_PARALLELISM": "false",
    "SEETRAIN_SILENT": "1",
}
os.environ.update(OFFLINE_ENV)
for _key in ("HF_HOME", "WANDB_DIR", "YOLO_CONFIG_DIR", "KERAS_HOME", "MPLCONFIGDIR"):
    os.makedirs(os.environ[_key], exist_ok=True)


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkRefused(OSError):
    pass


def _guarded(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkRefused(f"test socket guard: refused a connection to {address!r} (only loopback is allowed)")
        return real(self, address)

    return connect


socket.socket.connect = _guarded(_real_connect)
socket.socket.connect_ex = _guarded(_real_connect_ex)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Each test writes to its own store (``SEETRAIN_DIR``) and leaves no run open."""
    store = tmp_path / "store"
    monkeypatch.setenv("SEETRAIN_DIR", str(store))
    yield str(store)
    import sys

    run_module = sys.modules.get("seetrain.run")
    if run_module is not None:
        for run in run_module.active_runs():
            run.finish()
    errors = sys.modules.get("seetrain.errors")
    if errors is not None:
        errors.reset_integration_error_stats()


def pytest_sessionfinish(session, exitstatus):
    # "no tests ran" must not pass
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
