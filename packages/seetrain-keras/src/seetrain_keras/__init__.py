"""SeeTrain adapter for Keras 3.

>>> from seetrain_keras import SeeTrainCallback                               # doctest: +SKIP
>>> model.fit(x, y, epochs=3, callbacks=[SeeTrainCallback(project="mnist")])  # doctest: +SKIP

This module imports no part of Keras: :class:`SeeTrainCallback` subclasses
``keras.callbacks.Callback``, so it lives in :mod:`seetrain_keras._callback`, imported on first
use of the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import seetrain.adapters

__all__ = ["SeeTrainCallback", "adapter"]

#: the adapter registered under the entry point ``keras`` (alias ``tf_keras``)
adapter = seetrain.adapters.Adapter(
    name="keras",
    mode="callback",
    factory="seetrain_keras._callback:create",
    description="a Keras 3 Callback (model.fit(callbacks=[...]))",
)

if TYPE_CHECKING:
    from ._callback import SeeTrainCallback


def __getattr__(name: str) -> Any:
    if name == "SeeTrainCallback":
        from ._callback import SeeTrainCallback

        globals()[name] = SeeTrainCallback
        return SeeTrainCallback
    raise AttributeError(f"module 'seetrain_keras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
