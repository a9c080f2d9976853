"""The built-in uploader plugin of ``mode="remote"`` runs.

Registered by :func:`seetrain.init` for a remote-mode run only (a local-mode process never
loads it). It is *not* ``seetrain_inline``: it runs in its own lane, and implements no
``on_log``, so the training loop and the store never wait for it. Each run it sees on
``on_init`` gets an upload thread that replays the run from the store's cursor (see
:mod:`seetrain.remote.uploader`) about once a second; ``on_finish`` waits for the upload for at
most ``SEETRAIN_UPLOAD_TIMEOUT`` seconds (default 30), then warns what is still pending and
the ``seetrain sync`` command that sends it.
"""

from __future__ import annotations

import os
import shlex
import threading

from typing import Any

from ..errors import CircuitOpenError, log, record_failure
from ..hookspecs import hookimpl
from . import INTEGRATION

__all__ = ["RemoteUploaderPlugin", "plugin", "upload_timeout", "sync_command", "PLUGIN_NAME"]

PLUGIN_NAME = "seetrain.remote"
#: seconds between two upload rounds of a live run
INTERVAL = 1.0
#: seconds a live run's uploader leaves a failing server alone (its circuit breaker is open)
RECOVERY = 5.0


def upload_timeout() -> float:
    """``SEETRAIN_UPLOAD_TIMEOUT`` (seconds ``finish()`` waits for the upload), 30 by default."""
    try:
        return max(0.0, float(os.environ.get("SEETRAIN_UPLOAD_TIMEOUT", "30")))
    except ValueError:
        return 30.0


def sync_command(run_id: str, directory: str, host: str) -> str:
    """The command that sends what a run still has pending."""
    return f"seetrain sync {run_id} --dir {shlex.quote(directory)} --host {shlex.quote(host)}"


class _RunUpload:
    """The upload thread of one live run."""

    def __init__(self, run: Any, host: str, api_key: str | None) -> None:
        from .client import Client
        from .uploader import RunUploader

        self.run_id, self.directory, self.host = run.id, run.dir, host
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.finishing = threading.Event()
        #: the upload reached the end of a finished run
        self.complete = threading.Event()
        self.refused: str | None = None
        # a dead server is asked again after RECOVERY seconds (the breaker's recovery timeout)
        self.client = Client(host, api_key, sleep=self._sleep, timeout=30.0, recovery_timeout=RECOVERY)
        self.uploader = RunUploader(run.dir, run.id, self.client)
        self.thread = threading.Thread(target=self._loop, name=f"seetrain-upload-{run.id}", daemon=True)

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a retry's backoff ends at once when the run gives up waiting

    def start(self) -> None:
        self.thread.start()

    def _status_recorded(self) -> bool:
        try:
            return self.uploader._run_row()["status"] != "running"
        except Exception:  # noqa: BLE001
            return False

    def _loop(self) -> None:
        from .client import PermanentError, RemoteError

        try:
            while not self.stop.is_set():
                finishing = self.finishing.is_set()
                recorded = finishing and self._status_recorded()
                try:
                    self.uploader.upload(stop=self.stop)
                    if recorded and self.uploader.done():
                        self.complete.set()
                        return
                except PermanentError as exc:
                    self.refused = str(exc)
                    log.error("seetrain: %s; run %s goes on in the local store only; send it later with: %s",
                              exc, self.run_id, sync_command(self.run_id, self.directory, self.host))
                    record_failure(INTEGRATION, "upload round", exc, quiet=True)
                    return
                except (RemoteError, CircuitOpenError) as exc:
                    record_failure(INTEGRATION, "upload round", exc)
                except Exception as exc:  # noqa: BLE001 - a store being written, a bug: retried
                    record_failure(INTEGRATION, "upload round", exc)
                if not finishing:
                    self.wake.wait(INTERVAL)
                    self.wake.clear()
                elif not recorded:
                    self.stop.wait(0.05)
                else:
                    self.stop.wait(0.2)  # the server is failing: a short pause, then again
        finally:
            if self.stop.is_set() or self.complete.is_set() or self.refused:
                self.uploader.close()

    def finish(self, timeout: float) -> None:
        self.finishing.set()
        self.wake.set()
        self.thread.join(timeout)
        if self.complete.is_set():
            self.client.close()
            return
        self.stop.set()
        self.thread.join(5.0)
        try:
            left = self.uploader.pending()
        except Exception:  # noqa: BLE001
            left = None
        what = (f"{left['steps']} steps ({left['values']} values, {left['media']} media items)"
                if left else "part of it")
        reason = self.refused or f"not uploaded within {timeout:g} s (SEETRAIN_UPLOAD_TIMEOUT)"
        log.warning("seetrain: run %s: %s still pending for %s: %s; it is kept in the local store, "
                    "send it with: %s", self.run_id, what, self.host, reason,
                    sync_command(self.run_id, self.directory, self.host))
        self.client.close()


class RemoteUploaderPlugin:
    """Uploads every ``mode="remote"`` run of this process to its server."""

    def __init__(self) -> None:
        self._jobs: dict[str, _RunUpload] = {}
        self._lock = threading.Lock()

    @hookimpl
    def on_init(self, run: Any) -> None:
        remote = getattr(run, "remote", None)
        if getattr(run, "mode", None) != "remote" or remote is None or getattr(run, "attached", False):
            return
        with self._lock:
            if run.id in self._jobs:
                return
            job = self._jobs[run.id] = _RunUpload(run, *remote)
        job.start()

    @hookimpl
    def on_finish(self, run: Any, status: str, error: str | None) -> None:
        with self._lock:
            job = self._jobs.pop(run.id, None)
        if job is not None:
            job.finish(upload_timeout())

    def _after_fork_in_child(self) -> None:
        self._jobs = {}


plugin = RemoteUploaderPlugin()
os.register_at_fork(after_in_child=plugin._after_fork_in_child)


def register() -> None:
    """Register the uploader (idempotent); called by ``init(mode="remote")`` only."""
    from ..plugins import register as register_plugin

    register_plugin(plugin, name=PLUGIN_NAME)


