import json
import os

from seetrain.hookspecs import hookimpl


class Recorder:
    """Appends one JSON line per hook call to $SEETRAIN_THIRDPARTY_LOG."""

    def _write(self, **record):
        path = os.environ.get("SEETRAIN_THIRDPARTY_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    @hookimpl
    def on_init(self, run):
        self._write(hook="on_init", run=run.id, frameworks=run.frameworks)

    @hookimpl
    def on_config(self, run, changed):
        self._write(hook="on_config", run=run.id, changed=sorted(changed))

    @hookimpl
    def on_log(self, step, data):
        self._write(hook="on_log", step=step, keys=sorted(data))

    @hookimpl
    def on_finish(self, run, status):
        self._write(hook="on_finish", run=run.id, status=status)


plugin = Recorder()
