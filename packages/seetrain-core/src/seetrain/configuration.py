"""The run configuration: a mapping with attribute access whose every change is recorded."""

from __future__ import annotations

import enum
import sys
import math
import os
from collections.abc import Mapping, MutableMapping
from typing import Any, Callable, Iterator

__all__ = ["Config", "to_config_dict", "json_safe"]


def _is_namespace(value: Any) -> bool:
    # argparse is imported only by programs that use it: no import here
    argparse = sys.modules.get("argparse")
    return argparse is not None and isinstance(value, argparse.Namespace)


def _is_dataclass_instance(value: Any) -> bool:
    # what dataclasses.is_dataclass checks, without importing dataclasses on init's path
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A JSON-serialisable copy of ``value``: mappings, sequences, numbers, strings.

    Objects that have no JSON form (a class, a module, a function) become their ``repr``;
    that keeps hyperparameters readable instead of refusing a whole config.
    """
    if _depth > 32:
        return repr(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        # JSON has no NaN; keep the information as a string rather than fail
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value, _depth + 1)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if _is_namespace(value):
        return json_safe(vars(value), _depth + 1)
    if _is_dataclass_instance(value):
        import dataclasses

        return json_safe(dataclasses.asdict(value), _depth + 1)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v, _depth + 1) for v in items]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        try:
            return json_safe(item(), _depth + 1)
        except Exception:
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "size", 10**9) <= 1024:  # small arrays
        try:
            return json_safe(tolist(), _depth + 1)
        except Exception:
            pass
    return repr(value)


def to_config_dict(params: Any) -> dict[str, Any]:
    """A config mapping from a dict, an ``argparse.Namespace``, a dataclass instance or any
    object with ``to_dict()`` / ``__dict__`` (MMEngine and Transformers configs)."""
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    if _is_namespace(params):
        return dict(vars(params))
    if _is_dataclass_instance(params):
        import dataclasses

        return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    to_dict = getattr(params, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    if hasattr(params, "__dict__"):
        return {k: v for k, v in vars(params).items() if not k.startswith("_")}
    raise TypeError(
        f"config must be a mapping, an argparse.Namespace or a dataclass, not {type(params).__name__}"
    )


class Config(MutableMapping):
    """The configuration of a run.

    A mapping with attribute access: ``config["lr"]`` and ``config.lr`` are the same. Every
    change (``update()``, assignment, deletion) is sent to the store and to the ``on_config``
    hook. Values are stored in a JSON-safe form (tuples become lists, paths strings).

    >>> import seetrain
    >>> run = seetrain.init(project="docs", mode="disabled")
    >>> run.config.update({"lr": 0.1, "model": {"depth": 2}})
    >>> run.config.lr, run.config["model"]["depth"]
    (0.1, 2)
    """

    __slots__ = ("_data", "_on_change")

    def __init__(self, data: Any = None, on_change: Callable[[dict, dict], None] | None = None) -> None:
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_on_change", None)
        if data:
            self.update(data)
        object.__setattr__(self, "_on_change", on_change)

    # -- mapping protocol -------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed({})

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Config({self._data!r})"

    # -- attribute access -------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    # -- changes ----------------------------------------------------------------------
    def update(self, params: Any = None, /, **kwargs: Any) -> None:  # type: ignore[override]
        """Set several keys at once from a dict, an ``argparse.Namespace``, a dataclass or
        keyword arguments. Nested dicts are kept nested."""
        changed = {str(k): json_safe(v) for k, v in to_config_dict(params).items()}
        changed.update({k: json_safe(v) for k, v in kwargs.items()})
        if not changed:
            return
        self._data.update(changed)
        self._changed(changed)

    def update_silently(self, params: Any) -> None:
        """Set keys without recording a change (used while a run is being built)."""
        self._data.update({str(k): json_safe(v) for k, v in to_config_dict(params).items()})

    def clear_silently(self) -> None:
        self._data.clear()

    def setdefaults(self, params: Any) -> None:
        """Set the keys of ``params`` that are not set yet (used by adapters that must not
        overwrite what the user configured)."""
        missing = {k: v for k, v in to_config_dict(params).items() if k not in self._data}
        if missing:
            self.update(missing)

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the config as plain dicts and lists."""
        import copy

        return copy.deepcopy(self._data)

    def _changed(self, changed: dict) -> None:
        if self._on_change is not None:
            self._on_change(self.as_dict(), changed)
