"""SeeTrain bridges: code written for W&B, TensorBoard or MLflow also records into SeeTrain.

One line mirrors the other tracker's calls into a SeeTrain run; the other tracker keeps
working exactly as before (same files, same return values, same exceptions).

>>> import seetrain_bridges
>>> seetrain_bridges.sync_wandb()          # doctest: +SKIP
>>> import wandb
>>> run = wandb.init(project="mnist", config={"lr": 0.1})   # also a SeeTrain run
>>> run.log({"loss": 0.5})                                  # ... and its metric
>>> run.finish()                                            # ... and its end

The same through the integration interface: ``seetrain.integration.init_wandb(...)``,
``init_tensorboard(...)``, ``init_mlflow(...)``. Each bridge is one object per process:
``sync_*()`` switches it on (patching once), ``bridge.disable()`` puts back the very
objects that were patched.

Importing this package imports no tracker: the bridges live in submodules imported on first
use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import seetrain.adapters
from seetrain.adapters import Adapter

__all__ = [
    "wandb_adapter",
    "tensorboard_adapter",
    "mlflow_adapter",
    "sync_wandb",
    "sync_tensorboard",
    "sync_mlflow",
    "disable_all",
    "WandbBridge",
    "TensorBoardBridge",
    "MlflowBridge",
]

if TYPE_CHECKING:
    from ._mlflow import MlflowBridge
    from ._tensorboard import TensorBoardBridge
    from ._wandb import WandbBridge


class BridgeAdapter(Adapter):
    """An adapter whose bridge switches on as soon as the adapter is attached to a run.

    The integration interface builds a tracker / backend object only on the first
    ``get_tracker()`` / ``get_backend()``, but a bridge has to be patched before the user's
    first ``wandb.init`` / ``SummaryWriter.add_scalar`` / ``mlflow.start_run``. The core
    calls :meth:`attach` whenever it attaches an adapter to a run
    (``seetrain.init(framework=...)``, ``seetrain.integration.init(...)``), in the caller's
    thread, so that is where the bridge is enabled; it then records into the active run,
    which is that integration's run once ``init`` returns.
    """

    def attach(self, run: Any) -> None:
        super().attach(run)
        from ._bridge import get_bridge

        get_bridge(self.name).enable()


wandb_adapter = BridgeAdapter(
    name="wandb",
    mode="tracker",
    factory="seetrain_bridges._wandb:create",
    description="W&B bridge: wandb.init / log / config / finish also record into a SeeTrain run",
)
tensorboard_adapter = BridgeAdapter(
    name="tensorboard",
    mode="visbackend",
    factory="seetrain_bridges._tensorboard:create",
    description="TensorBoard bridge: SummaryWriter (torch.utils.tensorboard, tensorboardX) also records into SeeTrain",
)
mlflow_adapter = BridgeAdapter(
    name="mlflow",
    mode="visbackend",
    factory="seetrain_bridges._mlflow:create",
    description="MLflow bridge: runs, params, metrics, tags and text/image/dict artifacts also record into SeeTrain",
)


def _sync(name: str, run: Any, options: dict[str, Any]) -> Any:
    from seetrain.adapters import load_adapter

    load_adapter(name)  # the framework check, with its clear error, before any patching
    from ._bridge import get_bridge

    return get_bridge(name).enable(run=run, **options)


def sync_wandb(run: Any = None, *, project: str | None = None, dir: str | None = None) -> WandbBridge:
    """Mirror W&B into SeeTrain: each ``wandb.init`` starts (or joins) a SeeTrain run with
    the same project, name, config and tags; ``run.log`` / ``wandb.log`` (``step``,
    ``commit=False``), ``wandb.config`` changes and ``finish`` follow.

    :param run: the SeeTrain run to record into (default: the active run, else one run per
        W&B run, started and ended with it).
    :param project: project of the runs the bridge starts (default: the W&B project).
    :param dir: store directory of the runs the bridge starts.
    :returns: the bridge; ``.disable()`` undoes the patching.
    """
    return _sync("wandb", run, {"project": project, "dir": dir})


def sync_tensorboard(run: Any = None, *, project: str | None = None, dir: str | None = None) -> TensorBoardBridge:
    """Mirror ``SummaryWriter`` (``torch.utils.tensorboard`` and ``tensorboardX``, whichever
    are installed) into SeeTrain: scalars, images, text, audio, hparams and histogram
    statistics at ``global_step``; ``close()`` ends a run the bridge started.

    :param run: the SeeTrain run to record into (default: the active run, else one run per
        writer, named after its log directory).
    :param project: project of the runs the bridge starts (default: the current folder's).
    :param dir: store directory of the runs the bridge starts.
    """
    return _sync("tensorboard", run, {"project": project, "dir": dir})


def sync_mlflow(run: Any = None, *, project: str | None = None, dir: str | None = None) -> MlflowBridge:
    """Mirror MLflow tracking into SeeTrain: ``start_run`` / ``end_run``, params → config,
    metrics at their step, tags, and ``log_text`` / ``log_image`` / ``log_dict``.

    :param run: the SeeTrain run to record into (default: the active run, else one run per
        MLflow run, started and ended with it).
    :param project: project of the runs the bridge starts (default: the MLflow experiment).
    :param dir: store directory of the runs the bridge starts.
    """
    return _sync("mlflow", run, {"project": project, "dir": dir})


def disable_all() -> None:
    """Disable every bridge enabled in this process (a no-op for the others)."""
    from ._bridge import existing_bridges

    for bridge in existing_bridges():
        bridge.disable()




# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "WandbBridge": "seetrain_bridges._wandb:WandbBridge",
    "TensorBoardBridge": "seetrain_bridges._tensorboard:TensorBoardBridge",
    "MlflowBridge": "seetrain_bridges._mlflow:MlflowBridge",
})
