"""The MLflow bridge: MLflow tracking calls also record into SeeTrain.

Patched: the methods of ``mlflow.tracking.MlflowClient`` that the fluent API
(``mlflow.start_run``, ``log_metric(s)``, ``log_param(s)``, ``set_tag(s)``, ``log_text``,
``log_image``, ``log_dict``, ``end_run``) ends in -- ``log_metrics`` / ``log_params`` /
``set_tags`` go through ``log_batch`` -- so code that uses the client directly, and
libraries that log through it (Lightning's ``MLFlowLogger``, MLflow autologging), are
mirrored too. A call MLflow makes from inside a mirrored one (``log_image`` setting its tag)
is not mirrored twice.

What goes where: params → run config (as the strings MLflow stores), metrics → scalars at
their MLflow ``step`` (0 when none, as MLflow records), user tags → SeeTrain tags
``"key=value"`` (MLflow's own ``mlflow.*`` tags are left out), text and dict artifacts →
text under the artifact path, images → images under their ``key`` and ``step`` (or the
artifact path at the run's current step). ``end_run`` ends a run the bridge started with the
status MLflow records (``FINISHED`` → finished, ``FAILED`` → crashed, ``KILLED`` →
interrupted).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ._bridge import Bridge, get_bridge

__all__ = ["MlflowBridge", "create", "STATUS_OF_MLFLOW"]

#: MLflow's terminal run statuses -> SeeTrain's
STATUS_OF_MLFLOW = {"FINISHED": "finished", "FAILED": "crashed", "KILLED": "interrupted"}
_SYSTEM_TAG = "mlflow."


class _Mirror:
    """An MLflow run's counterpart: the SeeTrain run and who ends it."""

    def __init__(self, run: Any, owner: Any) -> None:
        self.run = run
        self.owner = owner


class MlflowBridge(Bridge):
    """Mirrors MLflow runs into SeeTrain runs; see :func:`seetrain_bridges.sync_mlflow`."""

    name = "mlflow"

    def __init__(self) -> None:
        super().__init__()
        self._mirrors: dict[str, _Mirror] = {}
        self._mirrors_lock = threading.RLock()

    # -- patching ---------------------------------------------------------------------------
    def _install(self) -> None:
        from mlflow.tracking import MlflowClient

        handlers = {
            "create_run": self._create_run,
            "set_terminated": self._set_terminated,
            "log_metric": self._log_metric,
            "log_param": self._log_param,
            "set_tag": self._set_tag,
            "log_batch": self._log_batch,
            "log_text": self._log_text,
            "log_dict": self._log_dict,
            "log_image": self._log_image,
        }
        for method, handler in handlers.items():
            if method in vars(MlflowClient):
                self._patch(MlflowClient, method, after=handler)

    def _on_disable(self) -> None:
        with self._mirrors_lock:
            mirrors = list(self._mirrors.values())
            self._mirrors.clear()
        for mirror in mirrors:
            if mirror.owner is True and not mirror.run.finished:
                mirror.run.finish()

    # -- the mirror of an MLflow run ------------------------------------------------------------
    def _mirror(self, client: Any, run_id: str, mlflow_run: Any = None) -> _Mirror:
        with self._mirrors_lock:
            mirror = self._mirrors.get(run_id)
            if mirror is not None and not mirror.run.finished:
                return mirror
            if mlflow_run is None:  # a run started before the bridge, or resumed by id
                mlflow_run = client.get_run(run_id)
            info, data = mlflow_run.info, mlflow_run.data
            project = _safe(lambda: client.get_experiment(info.experiment_id).name)
            tags = dict(data.tags or {})
            parent = self._mirrors.get(tags.get("mlflow.parentRunId", ""))
            claimed = [m.run for m in self._mirrors.values() if not m.run.finished]
            run, owner = self._resolve_run(
                project=project, name=info.run_name or None, config=dict(data.params or {}) or None,
                tags=_tag_labels(tags), group=parent.run.name if parent is not None else None, claimed=claimed,
            )
            mirror = self._mirrors[run_id] = _Mirror(run, owner)
            return mirror

    def _create_run(self, call: dict, result: Any, prepared: Any) -> None:
        self._mirror(call["self"], result.info.run_id, mlflow_run=result)

    def _set_terminated(self, call: dict, result: Any, prepared: Any) -> None:
        with self._mirrors_lock:
            mirror = self._mirrors.pop(call["run_id"], None)
        if mirror is not None and not mirror.run.finished:
            status = STATUS_OF_MLFLOW.get(call.get("status") or "FINISHED")
            if status is not None:
                self._end(mirror.run, mirror.owner, status)

    # -- values -----------------------------------------------------------------------------------
    def _target(self, call: dict) -> Any:
        return self._mirror(call["self"], call["run_id"]).run

    def _log_metric(self, call: dict, result: Any, prepared: Any) -> None:
        step = call.get("step")
        self._target(call).log({call["key"]: float(call["value"])}, step=int(step or 0))

    def _log_param(self, call: dict, result: Any, prepared: Any) -> None:
        self._target(call).config.update({call["key"]: str(call["value"])})

    def _set_tag(self, call: dict, result: Any, prepared: Any) -> None:
        self._add_tags(self._target(call), {call["key"]: call["value"]})

    def _log_batch(self, call: dict, result: Any, prepared: Any) -> None:
        run = self._target(call)
        params = {p.key: p.value for p in call.get("params") or ()}
        if params:
            run.config.update(params)
        tags = {t.key: t.value for t in call.get("tags") or ()}
        if tags:
            self._add_tags(run, tags)
        rows: dict[int, dict[str, float]] = {}
        for metric in call.get("metrics") or ():
            rows.setdefault(int(metric.step or 0), {})[metric.key] = float(metric.value)
        for step, row in rows.items():
            run.log(row, step=step)

    def _log_text(self, call: dict, result: Any, prepared: Any) -> None:
        import seetrain

        run = self._target(call)
        run.log({call["artifact_file"]: seetrain.Text(str(call["text"]))}, step=max(run.step, 0))

    def _log_dict(self, call: dict, result: Any, prepared: Any) -> None:
        import seetrain

        run = self._target(call)
        text = json.dumps(call["dictionary"], indent=2, default=str)
        run.log({call["artifact_file"]: seetrain.Text(text)}, step=max(run.step, 0))

    def _log_image(self, call: dict, result: Any, prepared: Any) -> None:
        import seetrain

        run = self._target(call)
        image = seetrain.Image(_pil_image(call["image"]))
        key = call.get("key")
        if key is not None:
            run.log({key: image}, step=int(call.get("step") or 0))
        else:
            run.log({call["artifact_file"]: image}, step=max(run.step, 0))

    def _add_tags(self, run: Any, tags: dict[str, Any]) -> None:
        labels = [t for t in _tag_labels(tags) if t not in run.tags]
        if labels:
            run.set_tags([*run.tags, *labels])


def _tag_labels(tags: dict[str, Any]) -> list[str]:
    return [f"{k}={v}" if v not in (None, "") else str(k) for k, v in tags.items()
            if not str(k).startswith(_SYSTEM_TAG)]


def _pil_image(image: Any) -> Any:
    """The PIL image MLflow saves for ``image`` (its own conversion of arrays)."""
    import numpy as np

    if isinstance(image, np.ndarray):
        from mlflow.tracking.multimedia import convert_to_pil_image

        return convert_to_pil_image(image)
    to_pil = getattr(image, "to_pil", None)
    return to_pil() if callable(to_pil) else image


def _safe(read: Any) -> Any:
    try:
        return read()
    except Exception:
        return None


def create(run: Any, **options: Any) -> MlflowBridge:
    """The adapter factory: the MLflow bridge, enabled and recording into ``run``."""
    bridge = get_bridge("mlflow")
    bridge.enable(run=run, **options)
    return bridge  # type: ignore[return-value]
