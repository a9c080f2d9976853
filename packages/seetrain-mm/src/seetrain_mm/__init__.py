"""SeeTrain for MMEngine and MMDetection: :class:`SeeTrainVisBackend`, an MMEngine VisBackend.

In a config::

    custom_imports = dict(imports=["seetrain_mm"], allow_failed_imports=False)
    visualizer = dict(
        type="Visualizer",  # "DetLocalVisualizer" in an MMDetection config
        vis_backends=[dict(type="SeeTrainVisBackend",
                           init_kwargs=dict(project="mmengine_project", experiment_name="run-1"))],
    )

``import seetrain_mm`` does not import MMEngine. The backend class lives in
:mod:`seetrain_mm.visbackend`, which registers it in MMEngine's ``VISBACKENDS`` registry when
it is imported. That happens

* here, at import, when MMEngine is already imported -- the case of
  ``custom_imports=dict(imports=["seetrain_mm"])``, which MMEngine's ``Config.fromfile``
  processes, and of a script that imports MMEngine first;
* on first access of ``seetrain_mm.SeeTrainVisBackend``;
* on ``import seetrain_mm.visbackend`` (also usable in ``custom_imports``), always.

A script that imports ``seetrain_mm`` *before* MMEngine and then names
``type="SeeTrainVisBackend"`` in a dict config, without ``custom_imports``, should import
``seetrain_mm.visbackend`` instead (or pass the class itself as ``type``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import seetrain.adapters

__all__ = ["SeeTrainVisBackend", "mmengine_adapter", "mmdetection_adapter", "__version__"]

__version__ = "0.1.0"

#: the adapter behind ``seetrain.init(framework="mmengine")`` and ``init_mmengine``
mmengine_adapter = seetrain.adapters.Adapter(
    name="mmengine",
    mode="visbackend",
    factory="seetrain_mm.visbackend:create_mmengine",
    description="MMEngine VisBackend: config, scalars and images of an MMEngine Runner",
)

#: the adapter behind ``init_mmdetection``: the same backend, MMDetection marked in the run
mmdetection_adapter = seetrain.adapters.Adapter(
    name="mmdetection",
    mode="visbackend",
    factory="seetrain_mm.visbackend:create_mmdetection",
    description="MMDetection (through MMEngine's visualizer): config, scalars and images",
)

if TYPE_CHECKING:
    from .visbackend import SeeTrainVisBackend


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainVisBackend": "seetrain_mm.visbackend:SeeTrainVisBackend",
}, requires="mmengine")


# MMEngine already imported means it is MMEngine (custom_imports) or a script using it that
# imports us: register the backend now, so that ``type="SeeTrainVisBackend"`` resolves. When
# MMEngine is not imported, importing it here would cost every ``import seetrain_mm`` (and
# the adapter discovery of ``seetrain.init(framework=...)``) MMEngine's torch import.
if "mmengine" in sys.modules:
    from . import visbackend as _visbackend  # noqa: F401  (registers SeeTrainVisBackend)
