"""Adapters: discovery through entry points, and the object an adapter distribution exports.

An adapter distribution (``seetrain-keras``, import package ``seetrain_keras``) declares:

* an entry point in the group ``seetrain.adapters`` per framework name it serves, pointing at
  an :class:`Adapter` object: ``keras = "seetrain_keras:adapter"``;
* its framework requirement as an extra named after the adapter:
  ``[project.optional-dependencies] keras = ["keras>=3.0"]`` -- the one place it is written;
* its mode as a keyword ``seetrain-mode:keras=callback``.

Discovery reads only that metadata. An adapter module is imported when it is asked for, and
only after its framework requirement was found satisfied.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .errors import SeeTrainError

__all__ = [
    "ADAPTER_GROUP",
    "MODES",
    "Adapter",
    "AdapterInfo",
    "AdapterNotInstalledError",
    "FrameworkMissingError",
    "discover_adapters",
    "find_adapter",
    "load_adapter",
    "lazy_exports",
    "normalise_name",
]

#: entry-point group adapters register in
ADAPTER_GROUP = "seetrain.adapters"
#: the integration modes of the seed
MODES = ("callback", "tracker", "visbackend", "autolog")
#: other spellings of adapter names -> the name the adapter registers
ALIASES = {
    "pytorch_lightning": "lightning",
    "pl": "lightning",
    "tf_keras": "keras",
    "huggingface": "transformers",
    "hf_transformers": "transformers",
    "hf_accelerate": "accelerate",
    "mmdet": "mmdetection",
    "ray_tune": "ray",
    "raytune": "ray",
    "tune": "ray",
    "zhipu": "zhipuai",
    "tensorboardx": "tensorboard",
    "tensorboard_x": "tensorboard",
    "weights_and_biases": "wandb",
}
_MODE_KEYWORD = "seetrain-mode:"


class AdapterNotInstalledError(SeeTrainError, LookupError):
    """No installed distribution provides the adapter asked for."""


class FrameworkMissingError(SeeTrainError, ImportError):
    """The adapter is installed but its framework is missing or too old."""


def normalise_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(".", "_")
    return ALIASES.get(key, key)


@dataclass(frozen=True)
class AdapterInfo:
    """What the metadata says about one adapter name (nothing of it is imported)."""

    name: str
    value: str
    distribution: str
    version: str
    mode: str | None
    requirements: tuple[str, ...] = ()

    def framework_problem(self) -> str | None:
        """``None`` if every framework requirement is installed, else what is wrong."""
        from importlib.metadata import PackageNotFoundError, version

        from packaging.requirements import Requirement

        for text in self.requirements:
            req = Requirement(text)
            try:
                installed = version(req.name)
            except PackageNotFoundError:
                return f"needs {text}, which is not installed; install it with: pip install \"{text}\""
            if req.specifier and not req.specifier.contains(installed, prereleases=True):
                return (f"needs {text}, but {req.name} {installed} is installed; "
                        f"install a matching version with: pip install \"{text}\"")
        return None

    def framework_versions(self) -> dict[str, str | None]:
        """Installed version of each required framework (``None`` when missing)."""
        from importlib.metadata import PackageNotFoundError, version

        from packaging.requirements import Requirement

        out: dict[str, str | None] = {}
        for text in self.requirements:
            name = Requirement(text).name
            try:
                out[name] = version(name)
            except PackageNotFoundError:
                out[name] = None
        return out


def discover_adapters() -> dict[str, AdapterInfo]:
    """Every installed adapter name, from entry points and distribution metadata only."""
    from importlib.metadata import entry_points

    from packaging.requirements import Requirement

    found: dict[str, AdapterInfo] = {}
    by_dist: dict[str, list] = {}
    for ep in entry_points(group=ADAPTER_GROUP):
        dist = ep.dist
        by_dist.setdefault(dist.metadata["Name"] if dist is not None else "?", []).append(ep)
    for dist_name, eps in by_dist.items():
        dist = eps[0].dist
        meta = dist.metadata if dist is not None else {}
        extras: dict[str, list[str]] = {}
        for text in (dist.requires or []) if dist is not None else []:
            req = Requirement(text)
            if req.marker is None:
                continue
            for extra in (meta.get_all("Provides-Extra") or []):
                if req.marker.evaluate({"extra": extra}):
                    # extras are normalised with "-" in metadata (PEP 685); names use "_"
                    extras.setdefault(extra.replace("-", "_"), []).append(f"{req.name}{req.specifier}")
        modes = {}
        for kw in ",".join(meta.get_all("Keywords") or []).split(","):
            kw = kw.strip()
            if kw.startswith(_MODE_KEYWORD) and "=" in kw:
                key, mode = kw[len(_MODE_KEYWORD):].split("=", 1)
                modes[key.strip().replace("-", "_")] = mode.strip()
        for ep in eps:
            ep_key = ep.name.replace("-", "_")
            # the requirement extra is named after the adapter; an alias entry point
            # (same value, other name) shares the one of its canonical name
            canonical = ep_key if ep_key in extras or ep_key in modes else next(
                (o.name.replace("-", "_") for o in eps if o.value == ep.value
                 and (o.name.replace("-", "_") in extras or o.name.replace("-", "_") in modes)), ep_key
            )
            found[normalise_name(ep.name)] = AdapterInfo(
                name=normalise_name(ep.name),
                value=ep.value,
                distribution=dist_name,
                version=dist.version if dist is not None else "?",
                mode=modes.get(canonical),
                requirements=tuple(extras.get(canonical, ())),
            )
    return found


def _install_hint(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        extras = set(metadata("seetrain").get_all("Provides-Extra") or [])
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        extras = set()
    extra = name if name in extras else name.replace("_", "-")
    if extra in extras:
        return f'pip install "seetrain[{extra}]"'
    return f'pip install "seetrain-{name.replace("_", "-")}"'


def find_adapter(name: str) -> AdapterInfo:
    """The installed adapter for ``name`` (aliases accepted), or a clear error."""
    key = normalise_name(name)
    found = discover_adapters()
    info = found.get(key)
    if info is None:
        installed = ", ".join(sorted(found)) or "none"
        raise AdapterNotInstalledError(
            f"no SeeTrain adapter for {name!r} is installed (installed adapters: {installed}). "
            f"Install it with: {_install_hint(key)}"
        )
    return info


_loaded: dict[str, Adapter] = {}


def load_adapter(name: str) -> Adapter:
    """Import and return the :class:`Adapter` for ``name``, checking its framework first."""
    key = normalise_name(name)
    if key in _loaded:
        return _loaded[key]
    info = find_adapter(key)
    check_framework(key)
    adapter = _resolve(info.value)
    if not isinstance(adapter, Adapter):
        raise TypeError(f"the entry point {key} = {info.value!r} of {info.distribution} does not name a "
                        "seetrain.adapters.Adapter")
    _loaded[key] = adapter
    return adapter


def _resolve(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def check_framework(name: str) -> None:
    """Raise :class:`FrameworkMissingError` when the framework of adapter ``name`` is missing
    or too old (read from metadata; nothing is imported). An adapter without installed
    metadata (a source tree on ``sys.path``) is not checked: its import will speak."""
    try:
        info = find_adapter(name)
    except AdapterNotInstalledError:
        return
    problem = info.framework_problem()
    if problem is not None:
        raise FrameworkMissingError(f"the SeeTrain adapter {info.name!r} ({info.distribution} {info.version}) {problem}")


def lazy_exports(module_name: str, exports: dict[str, str], *,
                 requires: str | dict[str, str] | None = None) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` (PEP 562) of an adapter package whose public
    names live in submodules that import the framework.

    >>> __getattr__, __dir__ = lazy_exports(__name__, {"SeeTrainCallback": "seetrain_keras._callback:SeeTrainCallback"},
    ...                                     requires="keras")    # doctest: +SKIP

    :param exports: public name -> ``"module:attribute"``, imported on first access and then
        cached in the module.
    :param requires: the adapter name (or, per public name, a mapping of them) whose framework
        requirement is checked before the import, so a missing or too old framework gives the
        :class:`FrameworkMissingError` with the requirement and the ``pip install`` line.
    """
    import sys

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        adapter = requires.get(name) if isinstance(requires, dict) else requires
        if adapter is not None:
            check_framework(adapter)
        value = _resolve(target)
        setattr(sys.modules[module_name], name, value)  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module_name])) | set(exports))

    return __getattr__, __dir__


@dataclass
class Adapter:
    """What an adapter distribution exports for each framework it serves.

    :param name: the framework name (the entry-point name).
    :param mode: one of ``callback``, ``tracker``, ``visbackend``, ``autolog``.
    :param factory: dotted path ``"module:callable"`` of the function that builds the
        framework-facing object (a callback, a tracker, a backend, an autolog handle). It is
        imported on first use only, so the adapter's package never imports its framework
        at top level. Called as ``factory(run=run, **options)``.
    :param plugin: optional dotted path of an object with hook implementations, registered
        in the plugin manager when a run uses this adapter.
    """

    name: str
    mode: str
    factory: str | Callable[..., Any]
    plugin: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"adapter {self.name!r}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    def create(self, run: Any, **options: Any) -> Any:
        """Build the framework-facing object for ``run``."""
        factory = _resolve(self.factory) if isinstance(self.factory, str) else self.factory
        return factory(run=run, **options)

    def attach(self, run: Any) -> None:
        """Called in the caller's thread each time the adapter is attached to a run
        (``seetrain.init(framework=...)``, ``seetrain.integration.init(...)``), before the
        run's ``on_init``. Registers the adapter's hook implementations (idempotent);
        a subclass may do more here, such as a bridge patching the tracker it mirrors.
        """
        if self.plugin is None:
            return
        from . import plugins

        plugins.register(_resolve(self.plugin), name=f"adapter:{self.name}")
