"""What new nodes record: their parents (unless under `no_grad`) and the current layer's name.

A ContextVar makes `no_grad` and `layer_scope` local to a thread and to an asyncio task. Each
is a block (``with no_grad():``) or a decorator (``@no_grad()``); on a generator function the
decorator applies only while the generator runs, as PyTorch's does, never to its caller between
two ``next`` calls.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "RECORDING",
    "Recording",
    "creating",
    "enable_grad",
    "is_grad_enabled",
    "layer_scope",
    "no_grad",
]

F = TypeVar("F", bound=Callable[..., Any])


class Recording(NamedTuple):
    """The recording state: are parents recorded, the name of the current layer, where new
    leaves are listed (while a tape is traced), and the state the block that set this one
    replaced (None for the default), by which an exit out of order is recognised."""

    grad_enabled: bool
    layer: str
    created: list[Any] | None = None
    previous: Recording | None = None


RECORDING: ContextVar[Recording] = ContextVar(
    "tinygrad_edu_recording",
    default=Recording(True, "", None),  # noqa: B039 -- a NamedTuple is immutable
)


class _Changed:
    """Within this block (or each run of the function it decorates), the recording state has
    ``fields`` changed; restored after.

    Blocks must exit innermost first. One exited before a block opened inside it (two
    generators suspended inside blocks and resumed in the other order) raises RuntimeError
    and restores the state from before it; a block whose state was already dropped that way
    raises too and leaves the state as it is.
    """

    def __init__(self, **fields: Any) -> None:
        self._fields = fields
        self._open: list[tuple[Token[Recording], Recording]] = []  # a stack: re-entrant

    def __enter__(self) -> None:
        current = RECORDING.get()
        state = current._replace(**self._fields, previous=current)
        self._open.append((RECORDING.set(state), state))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, state = self._open.pop()
        current = RECORDING.get()
        if current is state:  # the innermost block: the usual case
            RECORDING.reset(token)
            return
        outer: Recording | None = current
        while outer is not None and outer is not state:
            outer = outer.previous
        if outer is state and state.previous is not None:  # blocks opened inside it end with it
            RECORDING.set(state.previous)
        raise RuntimeError(
            "no_grad/enable_grad/layer_scope blocks exited out of order: exit the innermost "
            "block first (a generator suspended at a `yield` inside such a block keeps it open); "
            "the recording state is restored to what it was before the block that exited"
        )

    def __call__(self, func: F) -> F:
        """``func`` run within a fresh block on each call; for a generator function, within
        one while the generator runs (each resumption), and never between two."""
        fields = self._fields
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                inner = func(*args, **kwargs)
                try:
                    with _Changed(**fields):
                        response = inner.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with _Changed(**fields):
                                inner.close()
                            raise
                        except BaseException as error:  # thrown in by the caller: pass it on
                            with _Changed(**fields):
                                response = inner.throw(error)
                        else:
                            with _Changed(**fields):
                                response = inner.send(request)
                except StopIteration as stop:
                    return stop.value

            return generator  # type: ignore[return-value]  # same signature, as a generator

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            with _Changed(**fields):
                return func(*args, **kwargs)

        return call  # type: ignore[return-value]  # the same signature


def no_grad() -> _Changed:
    """Within this block, operations record no parents: their results are leaves.

    Also a decorator, ``@no_grad()``: on a generator function it applies only while the
    generator runs. In the with-form, a ``yield`` inside the block leaves the block open while
    the generator is suspended, so its caller records nothing either until it resumes; and two
    such generators resumed in the other order exit their blocks out of order (RuntimeError).
    Decorate the generator function instead.
    """
    return _Changed(grad_enabled=False)


def enable_grad() -> _Changed:
    """Within this block, operations record their parents, even inside `no_grad` (as PyTorch's
    ``enable_grad``): e.g. a function that differentiates inside itself."""
    return _Changed(grad_enabled=True)


def creating(created: list[Any]) -> _Changed:
    """Within this block, every new leaf is appended to ``created`` (`tape.trace` tells the
    constants a traced function makes from the parameters it captured)."""
    return _Changed(created=created)


def is_grad_enabled() -> bool:
    """True unless called inside `no_grad`."""
    return RECORDING.get().grad_enabled


def layer_scope(name: str) -> _Changed:
    """Within this block, every new Value gets ``layer == name`` (used by `nn` and `viz`);
    also a decorator, as `no_grad`."""
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a str, got {type(name).__name__}")
    return _Changed(layer=name)
