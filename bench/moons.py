"""The W2 inputs: micrograd's demo data (moons) and one set of MLP weights for every engine.

``make_moons`` follows scikit-learn's generator of the same name (as micrograd's demo calls it,
``make_moons(n_samples=100, noise=0.1)`` with labels mapped to -1/+1), in pure Python and seeded,
so the benchmark needs neither numpy nor scikit-learn and does not change when the library's own
``tinygrad_edu.data`` does.
"""

from __future__ import annotations

import itertools
import math
import random

__all__ = ["Weights", "init_weights", "learning_rate", "make_moons"]

# layer → neuron → (input weights, bias), the layout of micrograd's MLP.
Weights = list[list[tuple[list[float], float]]]


def make_moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[list[list[float]], list[int]]:
    """Two interleaving half circles: ``n`` points in 2-D and labels -1 (upper) / +1 (lower).

    Args:
        n: number of points, >= 2.
        noise: standard deviation of the Gaussian noise on each coordinate.
        seed: seed of the generator; the same seed gives the same points.

    Raises:
        ValueError: ``n`` is below 2.
    """
    if n < 2:
        raise ValueError(f"make_moons needs n >= 2 points, got {n}")
    rng = random.Random(seed)
    upper, lower = n // 2, n - n // 2

    def angles(count: int) -> list[float]:  # numpy.linspace(0, π, count)
        return [math.pi * i / (count - 1) for i in range(count)] if count > 1 else [0.0]

    points = [[math.cos(t), math.sin(t)] for t in angles(upper)]
    points += [[1 - math.cos(t), 0.5 - math.sin(t)] for t in angles(lower)]
    points = [[c + rng.gauss(0.0, noise) for c in p] for p in points]
    labels = [-1] * upper + [1] * lower
    order = list(range(n))
    rng.shuffle(order)
    return [points[i] for i in order], [labels[i] for i in order]


def init_weights(sizes: tuple[int, ...] = (2, 16, 16, 1), seed: int = 1337) -> Weights:
    """Weights uniform in [-1, 1] and biases 0, as micrograd's ``Neuron`` draws them.

    Args:
        sizes: the width of each layer, inputs first (micrograd's demo: 2-16-16-1).
        seed: seed of the generator.
    """
    rng = random.Random(seed)
    return [
        [([rng.uniform(-1.0, 1.0) for _ in range(n_in)], 0.0) for _ in range(n_out)]
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def learning_rate(step: int) -> float:
    """The demo's SGD schedule: 1.0 - 0.9·k/100 at 0-based step k."""
    return 1.0 - 0.9 * step / 100
