"""SeeTrain adapters for Hugging Face Transformers and Accelerate.

Two adapter names, one distribution:

* ``transformers`` (callback mode): :class:`SeeTrainCallback`, a
  ``transformers.TrainerCallback`` passed as ``Trainer(callbacks=[SeeTrainCallback()])``;
* ``accelerate`` (tracker mode): :class:`SeeTrainTracker`, an
  ``accelerate.tracking.GeneralTracker`` passed as ``Accelerator(log_with=[SeeTrainTracker()])``
  or, once registered, by name ``Accelerator(log_with="seetrain")``.

Importing this package imports neither framework: each class lives in a submodule that is
imported on first use, and only after the adapter's framework requirement (this
distribution's metadata, the one place it is written) was found satisfied.

>>> from seetrain_hf import SeeTrainCallback          # doctest: +SKIP
>>> trainer = Trainer(model, args, callbacks=[SeeTrainCallback(project="gpt2-tiny")])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seetrain.adapters

__all__ = [
    "SeeTrainCallback",
    "SeeTrainTracker",
    "register_accelerate_tracker",
    "transformers_adapter",
    "accelerate_adapter",
]

transformers_adapter = seetrain.adapters.Adapter(
    name="transformers",
    mode="callback",
    factory="seetrain_hf._transformers:create",
    description="Transformers Trainer callback: TrainingArguments and model config to the run config, "
                "train/eval/test metrics at Trainer's global_step",
)

accelerate_adapter = seetrain.adapters.Adapter(
    name="accelerate",
    mode="tracker",
    factory="seetrain_hf._accelerate:create",
    description="Accelerate tracker: init_trackers -> run config, accelerator.log -> metrics, "
                "end_training -> run end",
)

if TYPE_CHECKING:
    from ._accelerate import SeeTrainTracker, register_accelerate_tracker
    from ._transformers import SeeTrainCallback


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "SeeTrainCallback": "seetrain_hf._transformers:SeeTrainCallback",
    "SeeTrainTracker": "seetrain_hf._accelerate:SeeTrainTracker",
    "register_accelerate_tracker": "seetrain_hf._accelerate:register_accelerate_tracker",
}, requires={
    "SeeTrainCallback": "transformers",
    "SeeTrainTracker": "accelerate",
    "register_accelerate_tracker": "accelerate",
})
