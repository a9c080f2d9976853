"""SeeTrain: experiment tracking for deep learning.

>>> import seetrain
>>> run = seetrain.init(project="mnist", config={"lr": 1e-3}, mode="disabled")
>>> seetrain.log({"train/loss": 0.42})
>>> seetrain.finish()

``import seetrain`` is cheap: it imports no numpy, Pillow, httpx or framework, and scans no
entry points. The names below are resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "init",
    "attach",
    "log",
    "finish",
    "config",
    "Run",
    "Image",
    "Audio",
    "Text",
    "Api",
    "active_run",
    "__version__",
]

# public name -> (module, attribute); resolved lazily by __getattr__ (PEP 562)
_LAZY = {
    "init": ("seetrain.run", "init"),
    "attach": ("seetrain.run", "attach"),
    "log": ("seetrain.run", "log"),
    "finish": ("seetrain.run", "finish"),
    "active_run": ("seetrain.run", "active_run"),
    "Run": ("seetrain.run", "Run"),
    "Image": ("seetrain.media", "Image"),
    "Audio": ("seetrain.media", "Audio"),
    "Text": ("seetrain.media", "Text"),
    "Api": ("seetrain.api", "Api"),
    "__version__": ("seetrain._version", "__version__"),
}

if TYPE_CHECKING:
    from ._version import __version__
    from .api import Api
    from .configuration import Config
    from .media import Audio, Image, Text
    from .run import Run, active_run, attach, finish, init, log

    config: Config


def __getattr__(name: str) -> Any:
    if name == "config":  # the active run's config: looked up on every access
        from .run import current_config

        return current_config()
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'seetrain' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    if name != "config":
        globals()[name] = value  # cache: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
