"""SeeTrain adapter for Ultralytics YOLO (callback mode).

>>> from seetrain_ultralytics import add_seetrain_callback     # doctest: +SKIP
>>> add_seetrain_callback(model, project="detection")          # doctest: +SKIP
>>> model.train(data="data.yaml", epochs=10)                   # doctest: +SKIP

Importing this package does not import Ultralytics (nor torch): the callbacks live in
``seetrain_ultralytics._callback``, imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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



# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainCallbacks": "seetrain_ultralytics._callback:SeeTrainCallbacks",
    "add_seetrain_callback": "seetrain_ultralytics._callback:add_seetrain_callback",
}, requires="ultralytics")
