"""SeeTrain adapter for YourFramework.

Importing this package must not import the framework: the class that subclasses the
framework's base lives in ``_callback`` and is exported lazily.
"""

from __future__ import annotations

from typing import Any

import seetrain.adapters

adapter = seetrain.adapters.Adapter(
    name="yourframework",
    mode="callback",
    factory="seetrain_yourframework._callback:create",
    description="Logs YourFramework's metrics into a SeeTrain run.",
)

__all__ = ["adapter", "SeeTrainCallback"]


def __getattr__(name: str) -> Any:
    if name == "SeeTrainCallback":
        from ._callback import SeeTrainCallback

        return SeeTrainCallback
    raise AttributeError(f"module 'seetrain_yourframework' has no attribute {name!r}")
