"""What is patched for each provider: SDK attributes named by dotted path, never imported here.

A :class:`Target` names one method of one SDK resource class as ``"module:Class.method"``
(the style of opentelemetry-instrumentation), the resolver that reads its requests and
responses, and how it is wrapped: ``"call"`` (a method that returns the response or a stream,
sync or async alike) or ``"stream_manager"`` (Anthropic's ``messages.stream()``, which
returns a context manager whose request does not go through ``create``).

The module is imported only when :meth:`Target.resolve` runs, that is when autolog is enabled.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["Target", "Provider", "PROVIDERS"]


@dataclass(frozen=True)
class Target:
    """One SDK method to patch."""

    path: str
    resolver: str
    wrapper: str = "call"

    @property
    def module(self) -> str:
        return self.path.partition(":")[0]

    @property
    def owner_path(self) -> str:
        return self.path.partition(":")[2].rpartition(".")[0]

    @property
    def attr(self) -> str:
        return self.path.rpartition(".")[2]

    def resolve(self) -> tuple[Any, str]:
        """Import the module and return ``(owner class, attribute name)``.

        :raises ImportError: the module is not there (SDK missing or of another layout).
        :raises AttributeError: the class or the method is not there.
        """
        owner: Any = importlib.import_module(self.module)
        for part in self.owner_path.split("."):
            owner = getattr(owner, part)
        if not hasattr(owner, self.attr):
            raise AttributeError(f"{self.owner_path} has no attribute {self.attr!r}")
        return owner, self.attr


@dataclass(frozen=True)
class Provider:
    """An SDK family: its adapter name and what is patched in it. (Its pip requirement is
    the adapter's extra in the distribution metadata, the one place it is written.)"""

    name: str
    targets: tuple[Target, ...]


def _both(module: str, sync_cls: str, async_cls: str, methods: tuple[str, ...], resolver: str,
          wrapper: str = "call") -> tuple[Target, ...]:
    return tuple(Target(f"{module}:{cls}.{m}", resolver, wrapper) for cls in (sync_cls, async_cls) for m in methods)


_OPENAI_CHAT = "openai.resources.chat.completions.completions"
_ANTHROPIC_MESSAGES = "anthropic.resources.messages.messages"
_ZHIPU_CHAT = "zhipuai.api_resource.chat"

#: the providers by adapter name. ``chat.completions.stream()`` and ``responses.stream()`` of
#: OpenAI call ``create`` and are recorded through it; ``parse()`` posts directly, so it is
#: patched too. The re-entrancy guard of the wrappers keeps a call that goes through two
#: patched methods from being recorded twice.
PROVIDERS: dict[str, Provider] = {
    "openai": Provider(
        name="openai",
        targets=(
            *_both(_OPENAI_CHAT, "Completions", "AsyncCompletions", ("create", "parse"), "openai.chat.completions"),
            *_both("openai.resources.completions", "Completions", "AsyncCompletions", ("create",),
                   "openai.completions"),
            *_both("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", ("create",), "openai.embeddings"),
            *_both("openai.resources.responses.responses", "Responses", "AsyncResponses", ("create", "parse"),
                   "openai.responses"),
        ),
    ),
    "anthropic": Provider(
        name="anthropic",
        targets=(
            *_both(_ANTHROPIC_MESSAGES, "Messages", "AsyncMessages", ("create", "parse"), "anthropic.messages"),
            *_both(_ANTHROPIC_MESSAGES, "Messages", "AsyncMessages", ("stream",), "anthropic.messages",
                   wrapper="stream_manager"),
        ),
    ),
    "zhipuai": Provider(
        name="zhipuai",
        targets=(
            Target(f"{_ZHIPU_CHAT}.completions:Completions.create", "zhipuai.chat.completions"),
            Target(f"{_ZHIPU_CHAT}.async_completions:AsyncCompletions.create", "zhipuai.chat.asyncCompletions"),
            Target(f"{_ZHIPU_CHAT}.async_completions:AsyncCompletions.retrieve_completion_result",
                   "zhipuai.chat.asyncCompletions.result"),
        ),
    ),
}
