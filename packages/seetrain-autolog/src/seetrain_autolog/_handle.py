"""The autolog handle (:class:`Autolog`) and the adapter factories that build it.

``seetrain.integration.enable_openai_autolog(...)`` builds the handle through the adapter
factory (:func:`create_openai`) for the integration's run and calls :meth:`Autolog.enable`;
:func:`autolog` builds one directly.
"""

from __future__ import annotations

from typing import Any

from seetrain.adapters import normalise_name

from ._instrumentor import Instrumentor, get_instrumentor
from ._providers import PROVIDERS
from ._recording import Call

__all__ = ["Autolog", "autolog", "create_openai", "create_zhipuai", "create_anthropic"]

#: the project of the run a handle starts when it is given none and none is active
DEFAULT_PROJECT = "autolog"
_OPTIONS = ("capture_content",)


class Autolog:
    """Records every call of one provider's SDK as a step of a run, while enabled.

    :param provider: ``"openai"``, ``"zhipuai"`` (alias ``"zhipu"``) or ``"anthropic"``.
    :param run: the run to log to. ``None``: the active run when :meth:`enable` is called,
        else a run of its own (project ``"autolog"``) that :meth:`disable` finishes.
    :param capture_content: also log the request messages / prompt / input and the response
        text and tool calls as :class:`seetrain.Text` (on by default).

    >>> handle = Autolog("openai", run=run).enable()      # doctest: +SKIP
    >>> client.chat.completions.create(...)               # doctest: +SKIP  (recorded)
    >>> handle.disable()                                  # doctest: +SKIP  (SDK as it was)

    A handle is also a context manager: enabled inside the ``with`` block.
    """

    def __init__(self, provider: str, run: Any = None, capture_content: bool = True) -> None:
        name = normalise_name(provider)
        if name not in PROVIDERS:
            raise ValueError(f"seetrain-autolog: unknown provider {provider!r}; "
                             f"choose one of {', '.join(sorted(PROVIDERS))}")
        if not isinstance(capture_content, bool):
            raise TypeError(f"seetrain-autolog: capture_content must be True or False, "
                            f"got {type(capture_content).__name__}")
        self.provider = name
        self.run = run
        self.capture_content = capture_content
        #: calls recorded and calls that raised, since the handle was made
        self.calls = 0
        self.errors = 0
        self._own_run = False
        if run is not None:
            run.add_framework(name)

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<seetrain_autolog.Autolog {self.provider} {state} run={getattr(self.run, 'id', None)}>"

    @property
    def instrumentor(self) -> Instrumentor:
        return get_instrumentor(self.provider)

    @property
    def enabled(self) -> bool:
        return self in self.instrumentor.handles

    def enable(self) -> Autolog:
        """Start recording (patching the SDK's classes if no other handle did). Enabling an
        enabled handle does nothing: each call is still recorded once.

        :raises seetrain.adapters.FrameworkMissingError: the SDK is not installed.
        """
        if self.enabled:
            return self
        if self.run is None or (self._own_run and self.run.finished):
            self._bind_run()
        try:
            self.instrumentor.attach(self)
        except BaseException:
            if self._own_run:  # the run started for nothing: end it
                self.run.finish("crashed")
            raise
        return self

    def disable(self) -> None:
        """Stop recording; once no handle of the provider is enabled, every patched attribute is
        the original object again. Disabling a disabled handle does nothing."""
        self.instrumentor.detach(self)
        if self._own_run and self.run is not None and not self.run.finished:
            self.run.finish()

    def __enter__(self) -> Autolog:
        return self.enable()

    def __exit__(self, *exc_info: Any) -> None:
        self.disable()

    def _bind_run(self) -> None:
        import seetrain

        run = seetrain.active_run()
        self._own_run = run is None
        if run is None:
            run = seetrain.init(project=DEFAULT_PROJECT, experiment_name=f"{self.provider}-autolog")
        run.add_framework(self.provider)
        self.run = run

    def _counted(self, call: Call) -> None:
        # running totals in the run's summary: calls and errors of this provider
        self.calls += 1
        if call.error is not None:
            self.errors += 1
        self.run.summary.update({f"{self.provider}/calls": self.calls, f"{self.provider}/errors": self.errors})


def autolog(provider: str, run: Any = None, capture_content: bool = True) -> Autolog:
    """A (not yet enabled) :class:`Autolog` handle for ``provider``; see its parameters."""
    return Autolog(provider, run=run, capture_content=capture_content)


def _create(provider: str, run: Any, options: dict[str, Any]) -> Autolog:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"seetrain-autolog ({provider}): unknown option(s) {', '.join(map(repr, unknown))}; "
                        f"the options are: {', '.join(_OPTIONS)} (run options: dir, mode, tags, group)")
    return Autolog(provider, run=run, **options)


def create_openai(run: Any = None, **options: Any) -> Autolog:
    """Adapter factory of ``openai``: ``create_openai(run=run, capture_content=True)``."""
    return _create("openai", run, options)


def create_zhipuai(run: Any = None, **options: Any) -> Autolog:
    """Adapter factory of ``zhipuai``: ``create_zhipuai(run=run, capture_content=True)``."""
    return _create("zhipuai", run, options)


def create_anthropic(run: Any = None, **options: Any) -> Autolog:
    """Adapter factory of ``anthropic``: ``create_anthropic(run=run, capture_content=True)``."""
    return _create("anthropic", run, options)
