"""SeeTrain adapter for Keras 3.

>>> from seetrain_keras import SeeTrainCallback                               # doctest: +SKIP
>>> model.fit(x, y, epochs=3, callbacks=[SeeTrainCallback(project="mnist")])  # doctest: +SKIP

This module imports no part of Keras: :class:`SeeTrainCallback` subclasses
``keras.callbacks.Callback``, so it lives in :mod:`seetrain_keras._callback`, imported on first
use of the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainCallback": "seetrain_keras._callback:SeeTrainCallback",
}, requires="keras")
