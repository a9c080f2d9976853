"""SeeTrain adapter for PyTorch Lightning.

>>> from seetrain_lightning import SeeTrainLogger              # doctest: +SKIP
>>> trainer = Trainer(logger=SeeTrainLogger(project="mnist"))  # doctest: +SKIP

This module imports no part of Lightning: :class:`SeeTrainLogger` subclasses Lightning's
``Logger``, so it lives in :mod:`seetrain_lightning._logger`, imported on first use of the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name == "SeeTrainLogger":
        from ._logger import SeeTrainLogger

        globals()[name] = SeeTrainLogger
        return SeeTrainLogger
    raise AttributeError(f"module 'seetrain_lightning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
