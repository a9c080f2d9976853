"""Replacing a class attribute by a wrapper, and putting back the very object that was there.

:func:`apply` records what the class itself held under the name (the raw entry of its
``__dict__``, or nothing when the method was inherited) and :func:`restore` puts exactly that
back: after ``restore``, ``Owner.__dict__.get(name)`` is the original object again (or the
name is absent again), so ``Owner.method is original`` holds.

A wrapper someone else stacked on top of ours is never clobbered: then :func:`restore` leaves
the attribute alone and only switches our wrapper off (:attr:`Patch.active`), so it passes
every call straight through from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Patch", "apply", "restore"]

log = logging.getLogger("seetrain")
_MISSING = object()


@dataclass(eq=False)
class Patch:
    """One attribute replaced by a wrapper."""

    owner: type
    name: str
    #: the raw ``owner.__dict__[name]`` before patching, or ``_MISSING`` if it was inherited
    raw: Any
    #: what the wrapper calls: the function found on the class before patching
    original: Any
    wrapper: Any = None
    #: set to ``False`` by :func:`restore`: the wrapper then passes every call through
    active: bool = field(default=True)

    @property
    def label(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"


def apply(owner: type, name: str, make_wrapper: Callable[[Any, Patch], Any]) -> Patch:
    """Replace ``owner.name`` by ``make_wrapper(original, patch)``.

    :raises TypeError: the attribute is not a plain function (a staticmethod, a property).
    """
    raw = owner.__dict__.get(name, _MISSING)
    original = getattr(owner, name)
    if raw is not _MISSING and not callable(raw):
        raise TypeError(f"{owner.__qualname__}.{name} is a {type(raw).__name__}, not a method; cannot patch it")
    patch = Patch(owner=owner, name=name, raw=raw, original=original)
    patch.wrapper = make_wrapper(original, patch)
    setattr(owner, name, patch.wrapper)
    return patch


def restore(patch: Patch) -> bool:
    """Put back what :func:`apply` replaced. ``False`` when another wrapper was stacked on top
    (the attribute is then left as it is and ours is switched off)."""
    patch.active = False
    current = patch.owner.__dict__.get(patch.name, _MISSING)
    if current is not patch.wrapper:
        log.warning("seetrain: %s was patched again by someone else after SeeTrain's autolog; leaving it in "
                    "place (SeeTrain's wrapper inside it is switched off)", patch.label)
        return False
    if patch.raw is _MISSING:
        delattr(patch.owner, patch.name)
    else:
        setattr(patch.owner, patch.name, patch.raw)
    return True
