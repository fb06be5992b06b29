"""Optimizers: move each parameter against its δ. `SGD` (momentum, weight decay) and `Adam`.

The update formulas are those of PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` (the
algorithms in their documentation, without dampening, Nesterov, AMSGrad or Adam's weight
decay). An optimizer only reads ``grad`` and writes ``data``: call ``loss.backward()`` first and
`zero_grad` between steps, as in PyTorch. SGD is exact on Fractions (lr, momentum, weight decay
and δ rational); Adam's square root makes it float.

A step is atomic: every new value and every new state is computed first and assigned only when
all are ready, so an update that raises (an exact δ too large for a float, a δ that is not a
number) leaves every parameter, its state and the step count as they were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from operator import countOf
from typing import Any, Generic, TypeAlias, TypeVar

from ._checks import check_number
from .engine import Number, Value, _show, is_number, zero_grad

__all__ = ["SGD", "Adam", "LearningRate", "Optimizer"]


# A learning rate, or a schedule: a function of the 0-based index of the step about to be taken.
LearningRate: TypeAlias = Number | Callable[[int], Number]
# What an optimizer keeps for each parameter between steps (SGD's buffer, Adam's m and v).
S = TypeVar("S")
# The errors an update may raise, most specific first: each is re-raised as its own kind.
_KINDS: tuple[type[Exception], ...] = (
    OverflowError,
    ZeroDivisionError,
    ArithmeticError,
    TypeError,
    ValueError,
)


class Optimizer:
    """What `SGD` and `Adam` share: the parameters, the learning rate and the step count.

    Attributes:
        params: the parameters updated by `step`, in order.
        lr: a number, or a callable giving the rate of each step from its 0-based index.
        step_count: how many steps were taken, i.e. the index of the next step.
    """

    def __init__(self, params: Iterable[Value], lr: LearningRate) -> None:
        """Raises TypeError for params that are not an iterable of Values or an lr that is not
        a number or a callable; ValueError for an empty or repeated parameter, or lr <= 0."""
        if not isinstance(params, Iterable):
            hint = " (give model.parameters())" if hasattr(params, "parameters") else ""
            raise TypeError(
                f"params must be an iterable of Values{hint}, got {type(params).__name__}"
            )
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Value):
                raise TypeError(f"params[{i}] must be a Value, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"params[{i}] appears twice; give each parameter once")
            seen.add(id(p))
        if not callable(lr) and not is_number(lr):
            raise TypeError(f"lr must be a number or a callable of the step index, got {lr!r}")
        if not callable(lr):
            lr = check_number("lr", lr, above=0)  # numpy's float32(0.1) as the float 0.1
        self.lr = lr
        self.step_count = 0

    def current_lr(self) -> Number:
        """The learning rate of the next step: ``lr(step_count)`` for a schedule, else ``lr``.

        Raises:
            TypeError: the rate is not an int, float or Fraction.
            ValueError: the rate is not a finite number > 0.
        """
        lr = self.lr(self.step_count) if callable(self.lr) else self.lr
        what = f"lr({self.step_count})" if callable(self.lr) else "lr"
        return check_number(what, lr, above=0)

    def step(self) -> None:
        """Update every parameter from its ``grad``, atomically.

        Every new value and state is computed before any is assigned, so a step either updates
        every parameter, its state and ``step_count``, or raises and changes none of them.

        Raises:
            TypeError, ValueError: as `current_lr`, if the rate of this step is not a number > 0.
            OverflowError: an update does not fit in a float (an exact δ of 10**400 times a
                float rate); the message names the parameter. Other arithmetic errors, and a
                TypeError for a δ that is not a number, are raised the same way.
        """
        self._step(self.current_lr())

    def _step(self, lr: Number) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Reset the δ of every parameter to 0."""
        zero_grad(self.params)


class _Stateful(Optimizer, Generic[S]):
    """An optimizer with a state S per parameter, whose `step` is atomic: every new data and
    state is computed by `_rule` before `_commit` assigns them all."""

    def __init__(self, params: Iterable[Value], lr: LearningRate) -> None:
        super().__init__(params, lr)
        self._state: list[S] = [self._initial() for _ in self.params]

    def _step(self, lr: Number) -> None:
        fast = _arrays(self, lr) if len(self.params) >= _ARRAYS_FROM else None
        if fast is not None:
            np, before, values, grad = fast
            with np.errstate(all="ignore"):  # overflow is ±inf, as in the loop below
                new, new_state = self._rule_on_arrays(np, lr, values, grad)
            if new is not None and new_state is not None:
                self._commit(new.tolist(), new_state, before)
                return
        try:
            update = self._rule(lr)
        except _KINDS as err:
            raise self._failed(err, f"with lr {_show(lr)}") from err
        data: list[Number] = []
        state: list[S] = []
        for i, (p, old) in enumerate(zip(self.params, self._state, strict=True)):
            try:
                x, new = update(p, old)
            except _KINDS as err:
                where = f"at params[{i}] (data {_show(p.data)}, δ {_show(p.grad)})"
                raise self._failed(err, where) from err
            data.append(x)
            state.append(new)
        self._commit(data, state)

    def _failed(self, err: Exception, where: str) -> Exception:
        """``err`` as its own kind, saying which step and parameter failed and that nothing
        changed."""
        kind = next(k for k in _KINDS if isinstance(err, k))
        return kind(
            f"{type(self).__name__} step {self.step_count} failed {where}: {err}; nothing was "
            f"changed (every parameter, its state and step_count are as before the step)"
        )

    def _commit(self, data: list[Number], state: list[S], old: list[Number] | None = None) -> None:
        """Assign the computed step. Plain assignments cannot fail, but an interrupt
        (KeyboardInterrupt) may land between two: then what was assigned is put back (``old``:
        the parameters' data before the step, where the caller has read it already)."""
        old_data = [p.data for p in self.params] if old is None else old
        old_state, old_count = self._state, self.step_count
        try:
            for p, x in zip(self.params, data):  # noqa: B905  (a loop: 2/3 of map(setattr)'s time)
                p.data = x
            self._state = state
            self.step_count = old_count + 1
        except BaseException:
            # Every parameter: one not reached yet gets back the value it still has.
            for p, x in zip(self.params, old_data):  # noqa: B905
                p.data = x
            self._state, self.step_count = old_state, old_count
            raise

    def _initial(self) -> S:
        """The state of a parameter before its first step."""
        raise NotImplementedError

    def _rule_on_arrays(
        self, np: Any, lr: Number, data: Any, grad: Any
    ) -> tuple[Any, list[S]] | tuple[None, None]:
        """`_rule` on every parameter at once, on float64 arrays, by the same float operations
        in the same order (so the same numbers, bit for bit); (None, None) where it cannot."""
        return None, None

    def _rule(self, lr: Number) -> Callable[[Value, S], tuple[Number, S]]:
        """The update of this step: from a parameter and its state, its new data and state.

        It must not change anything itself: `step` assigns what it returns, for every parameter
        or for none.
        """
        raise NotImplementedError


# From this many parameters a step runs on numpy arrays, when numpy is installed and every
# parameter's data and δ is a float: one array operation per term instead of a loop per parameter.
_ARRAYS_FROM = 32


def _arrays(opt: Optimizer, lr: Number) -> tuple[Any, list[Number], Any, Any] | None:
    """numpy, the parameters' data, and their data and δ as float64 arrays; None without numpy,
    for a rate too large for a float, or when a data or δ is not a float (exact numbers keep
    the loop)."""
    try:
        import numpy as np

        float(lr)
    except (ImportError, OverflowError):
        return None
    # Comprehensions and fromiter: half the time of list(map(attrgetter)) and np.array (W5's
    # 2,410 parameters: 27 against 53 µs, 30 against 46 µs), the same floats.
    data = [p.data for p in opt.params]
    grad = [p.grad for p in opt.params]
    n = len(data)
    # Every data and δ of type float exactly (countOf compares the types by identity: half
    # the time of a set of them).
    if countOf(map(type, data), float) != n or countOf(map(type, grad), float) != n:
        return None
    return np, data, np.fromiter(data, float, n), np.fromiter(grad, float, n)


class SGD(_Stateful[Number | None]):
    """Stochastic gradient descent, as PyTorch: g = δ + weight_decay·p; with momentum μ the
    buffer is b = g on the first step and b = μ·b + g after, and g = b; then p ← p - lr·g.

    Example:
        >>> from fractions import Fraction
        >>> w = Value(Fraction(1)); w.grad = 4
        >>> SGD([w], lr=Fraction(1, 4)).step(); w.data
        Fraction(0, 1)
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: LearningRate,
        momentum: Number = 0.0,
        weight_decay: Number = 0.0,
    ) -> None:
        """Raises as `Optimizer`; TypeError for a momentum or weight_decay that is not a
        number, ValueError unless 0 <= momentum < 1 and weight_decay >= 0 (finite)."""
        super().__init__(params, lr)
        # μ >= 1: the buffer never decays. numpy's scalars are kept as Python numbers.
        self.momentum = check_number("momentum", momentum, at_least=0, below=1)
        self.weight_decay = check_number("weight_decay", weight_decay, at_least=0)

    def _initial(self) -> Number | None:
        return None  # no momentum buffer until the first step

    def _rule(self, lr: Number) -> Callable[[Value, Number | None], tuple[Number, Number | None]]:
        def update(p: Value, buffer: Number | None) -> tuple[Number, Number | None]:
            g = p.grad
            if self.weight_decay != 0:  # skipped when 0, so a float 0.0 keeps Fractions exact
                g = g + self.weight_decay * p.data
            if self.momentum != 0:
                g = buffer = g if buffer is None else self.momentum * buffer + g
            return p.data - lr * g, buffer

        return update

    def _rule_on_arrays(
        self, np: Any, lr: Number, data: Any, grad: Any
    ) -> tuple[Any, list[Number | None]] | tuple[None, None]:
        g = grad
        if self.weight_decay != 0:
            g = g + float(self.weight_decay) * data
        if self.momentum == 0:
            return data - float(lr) * g, self._state
        if all(b is None for b in self._state):
            buffer = g
        elif all(type(b) is float for b in self._state):
            buffer = float(self.momentum) * np.array(self._state) + g
        else:
            return None, None
        return data - float(lr) * buffer, buffer.tolist()


class Adam(_Stateful[tuple[Number, Number]]):
    """Adam, as PyTorch: with t the 1-based step and g = δ,
    m ← β1·m + (1 - β1)·g,  v ← β2·v + (1 - β2)·g²  (both start at 0), and
    p ← p - (lr / (1 - β1^t)) · m / (√v / √(1 - β2^t) + eps).
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: LearningRate = 1e-3,
        betas: tuple[Number, Number] = (0.9, 0.999),
        eps: Number = 1e-8,
    ) -> None:
        """Raises as `Optimizer`; TypeError for betas that are not a tuple (or list) of two
        numbers or an eps that is not a number, ValueError unless 0 <= β < 1 for both betas and
        eps > 0 (finite)."""
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)):
            raise TypeError(
                f"betas must be a pair (beta1, beta2) of numbers in [0, 1), "
                f"got {type(betas).__name__}: {betas!r}"
            )
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {len(betas)}: {betas!r}")
        self.betas = (
            check_number("betas[0]", betas[0], at_least=0, below=1),
            check_number("betas[1]", betas[1], at_least=0, below=1),
        )
        # > 0: √v / √(1 - β2^t) is 0 while δ has been 0
        self.eps = check_number("eps", eps, above=0)

    def _initial(self) -> tuple[Number, Number]:
        return (0, 0)  # m and v

    def _rule(
        self, lr: Number
    ) -> Callable[[Value, tuple[Number, Number]], tuple[Number, tuple[Number, Number]]]:
        beta1, beta2 = self.betas
        t = self.step_count + 1
        step_size = lr / (1 - beta1**t)
        root_correction = math.sqrt(1 - beta2**t)

        def update(
            p: Value, moments: tuple[Number, Number]
        ) -> tuple[Number, tuple[Number, Number]]:
            g = p.grad
            m = beta1 * moments[0] + (1 - beta1) * g
            v = beta2 * moments[1] + (1 - beta2) * g * g
            return p.data - step_size * m / (math.sqrt(v) / root_correction + self.eps), (m, v)

        return update

    def _rule_on_arrays(
        self, np: Any, lr: Number, data: Any, grad: Any
    ) -> tuple[Any, list[tuple[Number, Number]]] | tuple[None, None]:
        beta1, beta2 = self.betas
        t = self.step_count + 1
        step_size = float(lr / (1 - beta1**t))
        root_correction = math.sqrt(1 - beta2**t)
        if not all(type(m) in (float, int) for pair in self._state for m in pair):
            return None, None  # exact moments (from exact δ): the loop keeps them exact
        moments = np.array(self._state, dtype=float)  # (0, 0) at first: β·0 + x is x exactly
        m = float(beta1) * moments[:, 0] + float(1 - beta1) * grad
        v = float(beta2) * moments[:, 1] + float(1 - beta2) * grad * grad
        new = data - step_size * m / (np.sqrt(v) / root_correction + float(self.eps))
        return new, list(zip(m.tolist(), v.tolist(), strict=True))
