"""SeeTrain adapter for Ultralytics YOLO (callback mode).

>>> from seetrain_ultralytics import add_seetrain_callback     # doctest: +SKIP
>>> add_seetrain_callback(model, project="detection")          # doctest: +SKIP
>>> model.train(data="data.yaml", epochs=10)                   # doctest: +SKIP

Importing this package does not import Ultralytics (nor torch): the callbacks live in
``seetrain_ultralytics._callback``, imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import seetrain.adapters

__all__ = ["SeeTrainCallbacks", "add_seetrain_callback", "adapter"]

#: what the ``seetrain.adapters`` entry point ``ultralytics`` names
adapter = seetrain.adapters.Adapter(
    name="ultralytics",
    mode="callback",
    factory="seetrain_ultralytics._callback:create",
    description="Ultralytics YOLO training callbacks: losses, learning rates, validation metrics, args, plots",
)

if TYPE_CHECKING:
    from ._callback import SeeTrainCallbacks, add_seetrain_callback

_LAZY = {"SeeTrainCallbacks", "add_seetrain_callback"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _callback

        return getattr(_callback, name)
    raise AttributeError(f"module 'seetrain_ultralytics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
