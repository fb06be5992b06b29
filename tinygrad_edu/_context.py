"""What new nodes record: their parents (unless under `no_grad`) and the current layer's name.

A ContextVar makes `no_grad` and `layer_scope` local to a thread and to an asyncio task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

__all__ = [
    "RECORDING",
    "Recording",
    "creating",
    "enable_grad",
    "is_grad_enabled",
    "layer_scope",
    "no_grad",
]


class Recording(NamedTuple):
    """The recording state: are parents recorded, the name of the current layer, and where new
    leaves are listed (while a tape is traced)."""

    grad_enabled: bool
    layer: str
    created: list[Any] | None = None


RECORDING: ContextVar[Recording] = ContextVar(
    "tinygrad_edu_recording",
    default=Recording(True, "", None),  # noqa: B039 -- a NamedTuple is immutable
)


@contextmanager
def _changed(**fields: Any) -> Iterator[None]:
    """Within this block, the recording state has ``fields`` changed (restored after)."""
    token = RECORDING.set(RECORDING.get()._replace(**fields))
    try:
        yield
    finally:
        RECORDING.reset(token)


def no_grad() -> AbstractContextManager[None]:
    """Within this block, operations record no parents: their results are leaves."""
    return _changed(grad_enabled=False)


def enable_grad() -> AbstractContextManager[None]:
    """Within this block, operations record their parents, even inside `no_grad` (as PyTorch's
    ``enable_grad``): e.g. a function that differentiates inside itself."""
    return _changed(grad_enabled=True)


def creating(created: list[Any]) -> AbstractContextManager[None]:
    """Within this block, every new leaf is appended to ``created`` (`tape.trace` tells the
    constants a traced function makes from the parameters it captured)."""
    return _changed(created=created)


def is_grad_enabled() -> bool:
    """True unless called inside `no_grad`."""
    return RECORDING.get().grad_enabled


def layer_scope(name: str) -> AbstractContextManager[None]:
    """Within this block, every new Value gets ``layer == name`` (used by `nn` and `viz`)."""
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a str, got {type(name).__name__}")
    return _changed(layer=name)
