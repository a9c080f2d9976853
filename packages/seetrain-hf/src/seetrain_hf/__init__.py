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

from typing import TYPE_CHECKING, Any

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

# public name -> (adapter name whose framework it needs, submodule, attribute)
_LAZY = {
    "SeeTrainCallback": ("transformers", "seetrain_hf._transformers", "SeeTrainCallback"),
    "SeeTrainTracker": ("accelerate", "seetrain_hf._accelerate", "SeeTrainTracker"),
    "register_accelerate_tracker": ("accelerate", "seetrain_hf._accelerate", "register_accelerate_tracker"),
}

if TYPE_CHECKING:
    from ._accelerate import SeeTrainTracker, register_accelerate_tracker
    from ._transformers import SeeTrainCallback


def _check_framework(adapter_name: str) -> None:
    """Raise :class:`seetrain.adapters.FrameworkMissingError` naming the requirement when the
    framework of ``adapter_name`` is missing or too old (read from metadata, nothing imported)."""
    try:
        info = seetrain.adapters.find_adapter(adapter_name)
    except seetrain.adapters.AdapterNotInstalledError:
        # running from a source tree without installed metadata: let the import speak
        return
    problem = info.framework_problem()
    if problem is not None:
        raise seetrain.adapters.FrameworkMissingError(
            f"seetrain_hf: the {adapter_name!r} adapter ({info.distribution} {info.version}) {problem}"
        )


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'seetrain_hf' has no attribute {name!r}")
    adapter_name, module_name, attr = target
    _check_framework(adapter_name)
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
