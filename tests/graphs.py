"""Random expression graphs for property tests, and an exact forward-mode oracle.

A `Program` is a list of steps over a pool of nodes (its leaves first); each step applies one op
to nodes drawn from the pool, so shared subexpressions and reuse of the same node (``a * a``)
are common. Domain guards (e.g. ``log(x*x + 1/2)`` when x is not comfortably positive) are chosen
when the program is drawn, so the program is one fixed formula, valid around the drawn point,
that `check.numeric_grad` can evaluate at x ± h.

`Dual` is forward-mode differentiation with exact arithmetic: an oracle independent of
``Value.backward`` (reverse mode) for rational programs, with the same kink conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from tinygrad_edu import Value
from tinygrad_edu._readings import kink
from tinygrad_edu.engine import topological_order

Op = Callable[..., Any]
HALF = Fraction(1, 2)

# name -> (arity, op). Ops take Values (or Duals) and may mix in plain numbers (constants).
RATIONAL_OPS: dict[str, tuple[int, Op]] = {
    "add": (2, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b),
    "div_sq": (2, lambda a, b: a / (b * b + HALF)),
    "max": (2, lambda a, b: a.maximum(b)),
    "min": (2, lambda a, b: a.minimum(b)),
    "neg": (1, lambda a: -a),
    "abs": (1, lambda a: abs(a)),
    "relu": (1, lambda a: a.relu()),
    "sq": (1, lambda a: a**2),
    "cube": (1, lambda a: a**3),
    "pow0": (1, lambda a: a**0),
    "inv_sq": (1, lambda a: (a * a + 1) ** -1),
    "rsub": (1, lambda a: 1 - a),
    "rmul": (1, lambda a: Fraction(3, 2) * a),
    "radd": (1, lambda a: 2 + a),
    "rdiv_sq": (1, lambda a: 2 / (a * a + 1)),
}

# Guarded variants: used only when the drawn operand is comfortably inside the op's domain.
FLOAT_OPS: dict[str, tuple[int, Op]] = {
    **RATIONAL_OPS,
    "tanh": (1, lambda a: a.tanh()),
    "sigmoid": (1, lambda a: a.sigmoid()),
    "sin": (1, lambda a: a.sin()),
    "cos": (1, lambda a: a.cos()),
    "exp_tanh": (1, lambda a: (a.tanh() * 2).exp()),
    "log_sq": (1, lambda a: (a * a + HALF).log()),
    "log1p_sq": (1, lambda a: (a * a).log1p()),  # a² > -1: always in its domain
    "sqrt_sq": (1, lambda a: (a * a + HALF).sqrt()),
    "pow_half_sq": (1, lambda a: (a * a + HALF) ** 0.5),
    "rpow_tanh": (1, lambda a: 2 ** a.tanh()),
    "vpow_sq": (2, lambda a, b: (a * a + HALF) ** b.tanh()),
}
GUARDED: dict[str, tuple[Callable[[float], bool], Op]] = {
    # op: (when the operand allows it, the op applied directly)
    "exp_tanh": (lambda x: abs(x) < 5, lambda a: a.exp()),
    "log_sq": (lambda x: x > 0.25, lambda a: a.log()),
    "sqrt_sq": (lambda x: x > 0.25, lambda a: a.sqrt()),
    "pow_half_sq": (lambda x: x > 0.25, lambda a: a**0.5),
    "rpow_tanh": (lambda x: abs(x) < 5, lambda a: 2**a),
    "inv_sq": (lambda x: abs(x) > 0.25, lambda a: 1 / a),
}
KINK_MARGIN = 1e-2
KINKED: dict[str, Callable[..., bool]] = {
    # op: is the operand too close to the kink?
    "abs": lambda x: abs(x) < KINK_MARGIN,
    "relu": lambda x: abs(x) < KINK_MARGIN,
    "max": lambda x, y: abs(x - y) < KINK_MARGIN,
    "min": lambda x, y: abs(x - y) < KINK_MARGIN,
}
BIG = 1e4  # node values are kept below this so that float64 differences stay well conditioned


@dataclass(frozen=True)
class Program:
    """``n_leaves`` inputs, then ``steps``: (op, indices of operands in the pool)."""

    n_leaves: int
    steps: tuple[tuple[Op, tuple[int, ...]], ...]

    def __call__(self, *leaves: Any) -> Any:
        pool = list(leaves)
        for op, args in self.steps:
            pool.append(op(*(pool[i] for i in args)))
        return pool[-1]


@st.composite
def programs(draw: st.DrawFn, leaves: Sequence[Any], *, rational: bool) -> Program:
    """A random program over ``leaves`` (numbers), built from evaluated values at that point."""
    ops = RATIONAL_OPS if rational else FLOAT_OPS
    names = sorted(ops)
    pool: list[Any] = [Value(x) for x in leaves]
    steps: list[tuple[Op, tuple[int, ...]]] = []
    for _ in range(draw(st.integers(1, 10))):
        name = draw(st.sampled_from(names))
        arity, op = ops[name]
        # Favour recent nodes so depth grows (up to about 8), while any node can be reused.
        back = st.one_of(st.integers(0, min(2, len(pool) - 1)), st.integers(0, len(pool) - 1))
        args = tuple(len(pool) - 1 - draw(back) for _ in range(arity))
        if not rational and name in KINKED and KINKED[name](*(pool[i].data for i in args)):
            # At a kink each op's convention (e.g. relu'(0) = 0) is one choice from its own
            # subgradient, and such choices need not compose to the derivative of the whole
            # (min(|x|, x) = x, yet 0.5 at x = 0). Kinks are tested exactly, with the rational
            # programs and the Dual oracle; float programs keep a margin from them.
            continue
        guard = GUARDED.get(name)
        if guard is not None and guard[0](float(pool[args[0]].data)):
            op = guard[1]
        try:
            out = op(*(pool[i] for i in args))
        except OverflowError:
            continue
        if abs(out.data) > BIG:
            continue  # drop a step whose value would make differences ill-conditioned
        pool.append(out)
        steps.append((op, args))
    if not steps:
        steps.append((RATIONAL_OPS["add"][1], (0, 0)))
    return Program(len(leaves), tuple(steps))


class Dual:
    """Exact forward mode: ``x`` and ``dx`` = d x / d(seed leaf). Kinks as in the engine."""

    def __init__(self, x: Any, dx: Any = 0) -> None:
        self.x, self.dx = x, dx

    @staticmethod
    def lift(v: Any) -> Dual:
        return v if isinstance(v, Dual) else Dual(v)

    def __add__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.x + o.x, self.dx + o.dx)

    __radd__ = __add__

    def __sub__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.x - o.x, self.dx - o.dx)

    def __rsub__(self, o: Any) -> Dual:
        return Dual.lift(o) - self

    def __mul__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.x * o.x, self.dx * o.x + self.x * o.dx)

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> Dual:
        o = Dual.lift(o)
        return Dual(self.x / o.x, (self.dx * o.x - self.x * o.dx) / (o.x * o.x))

    def __rtruediv__(self, o: Any) -> Dual:
        return Dual.lift(o) / self

    def __pow__(self, k: int) -> Dual:
        if k == 0:
            return Dual(self.x**0, 0)
        return Dual(self.x**k, k * self.x ** (k - 1) * self.dx)

    def __neg__(self) -> Dual:
        return Dual(-self.x, -self.dx)

    def __abs__(self) -> Dual:
        sign = 1 if self.x > 0 else -1 if self.x < 0 else 0
        return Dual(abs(self.x), sign * self.dx)

    def relu(self) -> Dual:
        # x * 0 keeps the kind of zero (Fraction(0), not int 0, whose 1 ** -2 would be a float).
        return Dual(self.x, self.dx) if self.x > 0 else Dual(self.x * 0, 0)

    def maximum(self, o: Any) -> Dual:
        o = Dual.lift(o)
        if self.x == o.x:
            return Dual(self.x, (self.dx + o.dx) * HALF)
        return self if self.x > o.x else o

    def minimum(self, o: Any) -> Dual:
        o = Dual.lift(o)
        if self.x == o.x:
            return Dual(self.x, (self.dx + o.dx) * HALF)
        return self if self.x < o.x else o


def exact_gradient(program: Program, leaves: Sequence[Any]) -> list[Any]:
    """d program / d leaf_i, exactly, by forward mode seeded at each leaf in turn."""
    grads = []
    for i in range(len(leaves)):
        duals = [Dual(x, 1 if j == i else 0) for j, x in enumerate(leaves)]
        grads.append(program(*duals).dx)
    return grads


def on_a_kink(out: Value) -> bool:
    """Is a node of the graph of ``out`` on its op's kink (`tinygrad_edu._readings.kink`: a relu
    or abs at 0, a max or min at a tie)? There each op's convention is one choice of its own
    subgradient, and such choices need not compose to the derivative of the whole (|a|² is a²,
    yet its second derivative is 0 at 0; min(|x|, x) is x, yet its δ is 1/2 at 0)."""
    return any(kink(n.definition, [p.data for p in n.parents]) for n in topological_order(out))
