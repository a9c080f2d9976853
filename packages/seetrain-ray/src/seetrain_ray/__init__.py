"""SeeTrain adapter for Ray Tune (tracker mode).

>>> from seetrain_ray import SeeTrainLoggerCallback                       # doctest: +SKIP
>>> tune.RunConfig(callbacks=[SeeTrainLoggerCallback(project="tuning")])  # doctest: +SKIP

Importing this package does not import Ray: :class:`SeeTrainLoggerCallback` subclasses
``ray.tune.logger.LoggerCallback`` and lives in ``seetrain_ray._callback``, imported on first
use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seetrain.adapters

__all__ = ["SeeTrainLoggerCallback", "adapter"]

#: what the ``seetrain.adapters`` entry point ``ray`` names (``ray_tune`` is an alias)
adapter = seetrain.adapters.Adapter(
    name="ray",
    mode="tracker",
    factory="seetrain_ray._callback:create",
    description="Ray Tune LoggerCallback: one run per trial, grouped per Tuner",
)

if TYPE_CHECKING:
    from ._callback import SeeTrainLoggerCallback


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainLoggerCallback": "seetrain_ray._callback:SeeTrainLoggerCallback",
}, requires="ray")
