"""SeeTrain adapter for PyTorch Lightning.

>>> from seetrain_lightning import SeeTrainLogger              # doctest: +SKIP
>>> trainer = Trainer(logger=SeeTrainLogger(project="mnist"))  # doctest: +SKIP

This module imports no part of Lightning: :class:`SeeTrainLogger` subclasses Lightning's
``Logger``, so it lives in :mod:`seetrain_lightning._logger`, imported on first use of the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seetrain.adapters

__all__ = ["SeeTrainLogger", "adapter"]

#: the adapter registered under the entry point ``lightning`` (alias ``pytorch_lightning``)
adapter = seetrain.adapters.Adapter(
    name="lightning",
    mode="callback",
    factory="seetrain_lightning._logger:create",
    description="a PyTorch Lightning Logger (Trainer(logger=...))",
)

if TYPE_CHECKING:
    from ._logger import SeeTrainLogger


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainLogger": "seetrain_lightning._logger:SeeTrainLogger",
})
