"""The instrumentor of one provider: the patches of its SDK and the handles recording it.

There is one :class:`Instrumentor` per provider in the process (:func:`get_instrumentor`).
The SDK classes are patched when the first :class:`~seetrain_autolog.Autolog` handle is
attached and restored when the last one is detached; each recorded call is delivered once to
every distinct run of the attached handles.

The wrappers keep the SDK's behaviour: they call the original method with the same
arguments, return its very return value, and let its exceptions through unchanged (a bare
``raise``). Recording happens after the original returned; a failure in it is counted with
:func:`seetrain.errors.record_failure` under the provider's name and swallowed.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from seetrain.errors import record_event, record_failure

from . import _recording, _streams
from ._patching import Patch, apply, restore
from ._providers import PROVIDERS, Provider, Target
from ._recording import Call
from ._resolvers import RESOLVERS, Resolver

if TYPE_CHECKING:
    from ._handle import Autolog

__all__ = ["Instrumentor", "get_instrumentor"]

log = logging.getLogger("seetrain")

# Set while a patched method runs: a patched method that calls another one (``stream()`` ->
# ``create()`` in some SDK versions) is then recorded once, by the outermost wrapper.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("seetrain_autolog_inside", default=False)


class Instrumentor:
    """Patches one provider's SDK while at least one handle is attached."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._lock = threading.RLock()
        # a tuple, replaced as a whole: the wrappers read it without taking the lock
        self._handles: tuple[Autolog, ...] = ()
        self._patches: list[Patch] = []
        #: targets that could not be patched in the installed SDK, with the reason
        self.skipped: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<Instrumentor {self.provider.name} patched={len(self._patches)} handles={len(self._handles)}>"

    # -- handles --------------------------------------------------------------------------------
    @property
    def handles(self) -> tuple[Autolog, ...]:
        return self._handles

    @property
    def patched(self) -> list[str]:
        """The dotted paths patched now."""
        return [p.label for p in self._patches]

    def attach(self, handle: Autolog) -> bool:
        """Attach ``handle`` (patching the SDK if it is the first). ``False`` if it already was."""
        with self._lock:
            if handle in self._handles:
                return False
            if not self._handles:
                self._patch()
            self._handles = (*self._handles, handle)
            return True

    def detach(self, handle: Autolog) -> bool:
        """Detach ``handle`` (restoring the SDK if it was the last). ``False`` if it was not attached."""
        with self._lock:
            if handle not in self._handles:
                return False
            self._handles = tuple(h for h in self._handles if h is not handle)
            if not self._handles:
                self._unpatch()
            return True

    def wants_content(self) -> bool:
        return any(h.capture_content for h in self._handles)

    # -- patching -------------------------------------------------------------------------------
    def _patch(self) -> None:
        self.skipped = {}
        import_errors: list[str] = []
        for target in self.provider.targets:
            try:
                owner, name = target.resolve()
            except ImportError as exc:
                import_errors.append(str(exc))
                self.skipped[target.path] = f"ImportError: {exc}"
                continue
            except AttributeError as exc:  # an SDK version without this API
                self.skipped[target.path] = f"AttributeError: {exc}"
                continue
            try:
                self._patches.append(apply(owner, name, functools.partial(self._make_wrapper, target)))
            except TypeError as exc:  # an SDK version where it is no plain method
                self.skipped[target.path] = f"TypeError: {exc}"
        if self.skipped:
            log.debug("seetrain: %s autolog skipped %s", self.provider.name, self.skipped)
        if not self._patches:
            from seetrain.adapters import FrameworkMissingError

            raise FrameworkMissingError(
                f"seetrain-autolog: nothing of the {self.provider.name} SDK could be patched "
                f"({'; '.join(import_errors) or 'none of its methods were found'}); {_install_hint(self.provider.name)}"
            )

    def _unpatch(self) -> None:
        for patch in reversed(self._patches):
            restore(patch)
        self._patches = []

    def _make_wrapper(self, target: Target, original: Any, patch: Patch) -> Any:
        resolver = RESOLVERS[target.resolver]
        api = f"{resolver.api}.{target.attr}"
        if target.wrapper == "stream_manager":
            return self._wrap_stream_manager(original, patch, resolver, api)
        if inspect.iscoroutinefunction(original):
            return self._wrap_async(original, patch, resolver, api)
        return self._wrap_sync(original, patch, resolver, api)

    def _live(self, patch: Patch) -> bool:
        return patch.active and bool(self._handles) and not _inside.get()

    def _wrap_sync(self, original: Any, patch: Patch, resolver: Resolver, api: str) -> Any:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self._live(patch):
                return original(*args, **kwargs)
            token = _inside.set(True)
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                self._failed(api, resolver, args, kwargs, started, exc)
                raise
            finally:
                _inside.reset(token)
            if inspect.iscoroutine(result):
                # an async method behind a sync decorator (the SDKs' ``required_args``): its
                # argument checks ran eagerly above, as before; the request runs when awaited
                return self._awaited(result, resolver, api, args, kwargs)
            self._returned(api, resolver, args, kwargs, started, result)
            return result

        return wrapper

    async def _awaited(self, coro: Any, resolver: Resolver, api: str, args: tuple, kwargs: dict) -> Any:
        token = _inside.set(True)
        started = time.perf_counter()
        try:
            result = await coro
        except BaseException as exc:
            self._failed(api, resolver, args, kwargs, started, exc)
            raise
        finally:
            _inside.reset(token)
        self._returned(api, resolver, args, kwargs, started, result)
        return result

    def _wrap_async(self, original: Any, patch: Patch, resolver: Resolver, api: str) -> Any:
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self._live(patch):
                return await original(*args, **kwargs)
            token = _inside.set(True)
            started = time.perf_counter()
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                self._failed(api, resolver, args, kwargs, started, exc)
                raise
            finally:
                _inside.reset(token)
            self._returned(api, resolver, args, kwargs, started, result)
            return result

        return wrapper

    def _wrap_stream_manager(self, original: Any, patch: Patch, resolver: Resolver, api: str) -> Any:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self._live(patch):
                return original(*args, **kwargs)
            token = _inside.set(True)
            try:
                manager = original(*args, **kwargs)
            finally:
                _inside.reset(token)
            try:
                _streams.instrument_stream_manager(
                    manager, lambda started: self._new_call(api, resolver, args, kwargs, started))
            except Exception as exc:
                record_failure(self.provider.name, "stream", exc)
            return manager

        return wrapper

    # -- recording ------------------------------------------------------------------------------
    def _new_call(self, api: str, resolver: Resolver, args: tuple, kwargs: dict, started: float) -> Call | None:
        try:
            return Call(self, api, resolver, args[1:], kwargs, started)
        except Exception as exc:
            record_failure(self.provider.name, "record", exc)
            return None

    def _returned(self, api: str, resolver: Resolver, args: tuple, kwargs: dict, started: float,
                  result: Any) -> None:
        try:
            if _streams.is_stream(result):
                call = self._new_call(api, resolver, args, kwargs, started)
                if call is not None:
                    try:
                        _streams.instrument_stream(result, call)
                    except Exception as exc:
                        record_failure(self.provider.name, "stream", exc)
                return
            if not resolver.should_record(result):
                return
            call = self._new_call(api, resolver, args, kwargs, started)
            if call is not None:
                call.read(result)
                call.end()
        except Exception as exc:
            record_failure(self.provider.name, "record", exc)

    def _failed(self, api: str, resolver: Resolver, args: tuple, kwargs: dict, started: float,
                exc: BaseException) -> None:
        call = self._new_call(api, resolver, args, kwargs, started)
        if call is not None:
            call.end(error=exc)

    def deliver(self, call: Call) -> None:
        """Log ``call`` as one step in every distinct run of the attached handles."""
        # counted next to the failures, so get_integration_error_stats() shows a failure rate
        record_event(self.provider.name, "record", "calls")
        runs: list[Any] = []
        for handle in self._handles:
            run = handle.run
            if run is None or run.finished or any(run is r for r in runs):
                continue
            runs.append(run)
            try:
                run.log(_recording.build_log_data(call, capture_content=handle.capture_content))
                handle._counted(call)
            except Exception as exc:
                record_failure(self.provider.name, "record", exc)


def _install_hint(provider: str) -> str:
    from seetrain.adapters import find_adapter

    try:
        requirements = find_adapter(provider).requirements
    except Exception:  # the adapter's metadata is missing (running from a source tree)
        requirements = ()
    if requirements:
        return "install it with: " + " ".join(f'pip install "{r}"' for r in requirements)
    return f"install the {provider} SDK"


_instrumentors: dict[str, Instrumentor] = {}
_instrumentors_lock = threading.Lock()


def get_instrumentor(provider: str) -> Instrumentor:
    """The process's instrumentor of ``provider`` (``"openai"``, ``"anthropic"``, ``"zhipuai"``)."""
    with _instrumentors_lock:
        inst = _instrumentors.get(provider)
        if inst is None:
            inst = _instrumentors[provider] = Instrumentor(PROVIDERS[provider])
        return inst
