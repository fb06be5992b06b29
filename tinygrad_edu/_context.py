"""What new nodes record: their parents (unless under `no_grad`) and the current layer's name.

A ContextVar makes `no_grad` and `layer_scope` local to a thread and to an asyncio task, even
when one block object is entered by several of them at once: what a block set is found in the
state itself, never in the object. Each is a block (``with no_grad():``) or a decorator
(``@no_grad()``); on a generator function the decorator applies only while the generator runs,
as PyTorch's does, never to its caller between two ``next`` calls; on an async function, to the
whole run of the coroutine, which its task's own context keeps from every other task.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from contextvars import ContextVar
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
    leaves are listed (while a tape is traced), the state the block that set this one replaced
    (None for the default) and that block (its `_Changed`), by which an exit out of order is
    recognised."""

    grad_enabled: bool
    layer: str
    created: list[Any] | None = None
    previous: Recording | None = None
    owner: object = None


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
        # Nothing per entry is kept here: one object may be open in several threads or asyncio
        # tasks at once (and re-entered in one), each with its own state in RECORDING.
        self._fields = fields

    def __enter__(self) -> None:
        current = RECORDING.get()
        RECORDING.set(current._replace(**self._fields, previous=current, owner=self))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        current = RECORDING.get()
        if current.owner is self and current.previous is not None:  # the innermost: usual
            RECORDING.set(current.previous)
            return
        # Not the innermost: the innermost state this block set in this context, if any.
        mine: Recording | None = current
        while mine is not None and mine.owner is not self:
            mine = mine.previous
        if mine is not None and mine.previous is not None:  # blocks opened inside it end too
            RECORDING.set(mine.previous)
        raise RuntimeError(
            "no_grad/enable_grad/layer_scope blocks exited out of order: exit the innermost "
            "block first (a generator suspended at a `yield` inside such a block keeps it open); "
            "the recording state is restored to what it was before the block that exited"
        )

    def __call__(self, func: F) -> F:
        """``func`` run within a fresh block on each call; for a generator function, within
        one while the generator runs (each resumption), and never between two; for an async
        function, within one for the whole run of its coroutine (suspended, it holds the
        block only in its own task's context).

        Raises:
            TypeError: ``func`` is an async generator function (its consumer runs in the same
                task between two items, so a block around it would leak into the consumer).
        """
        fields = self._fields
        if inspect.isasyncgenfunction(func):
            raise TypeError(
                "no_grad/enable_grad/layer_scope cannot decorate an async generator function "
                f"{func.__name__!r}: use the with-form inside it, around the work between "
                "two yields"
            )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def coroutine(*args: Any, **kwargs: Any) -> Any:
                with _Changed(**fields):
                    return await func(*args, **kwargs)

            return coroutine  # type: ignore[return-value]  # the same signature
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                step = _Step(func(*args, **kwargs), fields)
                try:
                    response = step.run("send", None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            step.run("close", None)
                            raise
                        except BaseException as error:  # thrown in by the caller: pass it on
                            response = step.run("throw", error)
                        else:
                            response = step.run("send", request)
                except StopIteration as stop:
                    return stop.value

            return generator  # type: ignore[return-value]  # same signature, as a generator

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            with _Changed(**fields):
                return func(*args, **kwargs)

        return call  # type: ignore[return-value]  # the same signature


class _Step:
    """Runs a decorated generator one step at a time, each within the decorator's block on the
    caller's state of the moment; a block the generator opened itself and left open at a
    ``yield`` is kept for its next step (and its caller, meanwhile, has its own state)."""

    def __init__(self, inner: Generator[Any, Any, Any], fields: dict[str, Any]) -> None:
        self._inner = inner
        self._fields = fields
        # The blocks the generator left open at its last yield, outermost first: reopened on
        # the caller's state of the next step (not on the state they were opened on).
        self._held: list[Any] = []

    def run(self, action: str, arg: Any) -> Any:
        """``inner.send(arg)``, ``inner.throw(arg)`` or ``inner.close()`` within the block."""
        base = RECORDING.get()
        mine = base._replace(**self._fields, previous=base, owner=self)
        for block in self._held:
            mine = mine._replace(**block._fields, previous=mine, owner=block)
        RECORDING.set(mine)
        try:
            if action == "close":
                return self._inner.close()
            return getattr(self._inner, action)(arg)
        finally:
            self._held = []
            now: Recording | None = RECORDING.get()
            # Blocks of its own still open (a yield inside one): kept for the next step.
            opened: list[Any] = []
            while now is not None and now.owner is not self:
                opened.append(now.owner)
                now = now.previous
            if now is not None:  # this step's block is under them: they are the generator's
                self._held = opened[::-1]
            RECORDING.set(base)


def no_grad() -> _Changed:
    """Within this block, operations record no parents: their results are leaves.

    Also a decorator, ``@no_grad()``: on a generator function it applies only while the
    generator runs; on an async function, to the whole run of its coroutine (in its own task's
    context); an async generator function is refused (TypeError). One block object may be used
    by several threads or asyncio tasks at once: each has its own state.

    In the with-form, a ``yield`` inside the block leaves the block open while the generator is
    suspended, so its caller records nothing either until it resumes; and two such generators
    resumed in the other order exit their blocks out of order (RuntimeError). Decorate the
    generator function instead.
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
