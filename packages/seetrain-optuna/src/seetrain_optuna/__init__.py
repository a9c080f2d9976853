"""SeeTrain adapter for Optuna (tracker mode).

>>> from seetrain_optuna import SeeTrainCallback               # doctest: +SKIP
>>> study.optimize(objective, n_trials=20, callbacks=[SeeTrainCallback(project="tuning")])  # doctest: +SKIP

Importing this package does not import Optuna: :class:`SeeTrainCallback` lives in
``seetrain_optuna._callback`` and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seetrain.adapters

__all__ = ["SeeTrainCallback", "adapter"]

#: what the ``seetrain.adapters`` entry point ``optuna`` names
adapter = seetrain.adapters.Adapter(
    name="optuna",
    mode="tracker",
    factory="seetrain_optuna._callback:create",
    description="Optuna study callback: each trial's value, state and params, and the best value so far",
)

if TYPE_CHECKING:
    from ._callback import SeeTrainCallback


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainCallback": "seetrain_optuna._callback:SeeTrainCallback",
}, requires="optuna")
