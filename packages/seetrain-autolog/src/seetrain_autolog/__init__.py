"""SeeTrain autolog for LLM APIs: OpenAI, ZhipuAI and Anthropic SDK calls recorded as steps.

>>> from seetrain.integration import enable_openai_autolog      # doctest: +SKIP
>>> autolog = enable_openai_autolog(project="chat", experiment_name="baseline")  # doctest: +SKIP
>>> openai.chat.completions.create(model="gpt-4o-mini", messages=[...])          # doctest: +SKIP
>>> autolog.disable()                                            # doctest: +SKIP

Without the integration layer, :func:`autolog` gives the same handle for a run of your own
(or the active run):

>>> handle = seetrain_autolog.autolog("anthropic", run=run).enable()  # doctest: +SKIP

Enabling patches the SDK's resource *classes* (named by dotted paths in
``seetrain_autolog._providers``), so every client, sync and async, created before or after,
is recorded; disabling puts back the very objects that were there. Importing this package
imports none of the SDKs: they are imported by :meth:`Autolog.enable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seetrain.adapters

__all__ = ["Autolog", "autolog", "PROVIDERS", "openai_adapter", "zhipuai_adapter", "anthropic_adapter"]

#: what the ``seetrain.adapters`` entry point ``openai`` names
openai_adapter = seetrain.adapters.Adapter(
    name="openai",
    mode="autolog",
    factory="seetrain_autolog._handle:create_openai",
    description="OpenAI SDK autolog: chat completions, completions, embeddings and responses, sync and async, "
                "streams included",
)
#: what the ``seetrain.adapters`` entry point ``zhipuai`` names
zhipuai_adapter = seetrain.adapters.Adapter(
    name="zhipuai",
    mode="autolog",
    factory="seetrain_autolog._handle:create_zhipuai",
    description="ZhipuAI SDK autolog: chat completions (streams included) and async-task completions",
)
#: what the ``seetrain.adapters`` entry point ``anthropic`` names
anthropic_adapter = seetrain.adapters.Adapter(
    name="anthropic",
    mode="autolog",
    factory="seetrain_autolog._handle:create_anthropic",
    description="Anthropic SDK autolog: messages.create and messages.stream, sync and async",
)


if TYPE_CHECKING:
    from ._handle import Autolog, autolog
    from ._providers import PROVIDERS


# the public classes live in submodules that import the framework: loaded on first use
__getattr__, __dir__ = seetrain.adapters.lazy_exports(__name__, {
    "Autolog": "seetrain_autolog._handle:Autolog",
    "autolog": "seetrain_autolog._handle:autolog",
    "PROVIDERS": "seetrain_autolog._providers:PROVIDERS",
})
