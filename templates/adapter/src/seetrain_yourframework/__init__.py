"""SeeTrain adapter for YourFramework.

Importing this package must not import the framework: the class that subclasses the
framework's base lives in ``_callback`` and is exported lazily.
"""

from __future__ import annotations

import seetrain.adapters

adapter = seetrain.adapters.Adapter(
    name="yourframework",
    mode="callback",
    factory="seetrain_yourframework._callback:create",
    description="Logs YourFramework's metrics into a SeeTrain run.",
)

__all__ = ["adapter", "SeeTrainCallback"]


# the public class lives in a submodule that imports the framework: loaded on first use, after
# checking the framework requirement of the adapter (a clear error with the pip install line)
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainCallback": "seetrain_yourframework._callback:SeeTrainCallback",
}, requires="yourframework")
