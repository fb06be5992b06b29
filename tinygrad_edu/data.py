"""Small datasets in pure Python, seeded, identical on every run.

`article_dataset` is the founding article's three samples (broccoli, Tagada strawberries and
workout hours → bad or good shape). `make_moons` and `make_circles` follow scikit-learn's
generators of the same names (micrograd's demo trains on moons); `make_spiral` is the
multi-class spiral of the CS231n notes; `make_digits` draws 8×8 images of the digits 0-9, the size
of scikit-learn's handwritten digits (64 features, 10 classes), from glyphs shifted, stroked and
speckled at random. Each returns ``(inputs, labels)``: a list of points and a
list of integer class labels; `generate` draws any of them by name, ``n`` points exactly (as the
CLI does). The generators' points are lists of floats; `article_dataset`'s are lists of ints,
the article's exact amounts.
"""

from __future__ import annotations

import math
import random

from ._checks import check_choice, check_count, check_number

__all__ = [
    "ARTICLE_FEATURES",
    "DATASETS",
    "article_dataset",
    "generate",
    "make_circles",
    "make_digits",
    "make_moons",
    "make_spiral",
]

ARTICLE_FEATURES = ("broccoli", "Tagada strawberries", "workout hours")
BAD_SHAPE, GOOD_SHAPE = 0, 1


def article_dataset() -> tuple[list[list[int]], list[int]]:
    """The article's data: (broccoli, Tagada strawberries, workout hours) → shape.

    >>> article_dataset()
    ([[100, 2000, 100], [200, 0, 0], [0, 2000, 3000]], [0, 1, 1])
    """
    inputs = [[100, 2000, 100], [200, 0, 0], [0, 2000, 3000]]
    return inputs, [BAD_SHAPE, GOOD_SHAPE, GOOD_SHAPE]


def _check(n: object, noise: object, seed: object, minimum: int = 2, what: str = "n") -> None:
    """The arguments every generator shares: a count, the noise and the seed."""
    check_count(what, n, minimum)
    check_number("noise", noise, at_least=0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")


def _halfcircle(count: int) -> list[float]:
    """``count`` angles evenly spaced over [0, π], as numpy.linspace(0, π, count)."""
    if count == 1:
        return [0.0]
    return [math.pi * i / (count - 1) for i in range(count)]


def _finish(
    points: list[list[float]], labels: list[int], noise: float, rng: random.Random
) -> tuple[list[list[float]], list[int]]:
    """Add Gaussian noise, then shuffle points and labels together."""
    noisy = [[c + rng.gauss(0.0, noise) for c in p] if noise else p for p in points]
    order = list(range(len(noisy)))
    rng.shuffle(order)
    return [noisy[i] for i in order], [labels[i] for i in order]


def make_moons(
    n: int = 100, noise: float = 0.1, seed: int = 0
) -> tuple[list[list[float]], list[int]]:
    """Two interleaving half circles: ``n`` points, labels 0 (upper) and 1 (lower).

    Args:
        n: number of points, >= 2 (n // 2 on the upper moon, the rest on the lower).
        noise: standard deviation of the Gaussian noise added to each coordinate.
        seed: seed of the generator (an int); the same seed gives the same points.

    Raises:
        TypeError: ``n`` or ``seed`` is not an int, or ``noise`` not a number.
        ValueError: ``n`` < 2, or ``noise`` negative or not finite.
    """
    _check(n, noise, seed)
    rng = random.Random(seed)
    upper, lower = n // 2, n - n // 2
    points = [[math.cos(t), math.sin(t)] for t in _halfcircle(upper)]
    points += [[1 - math.cos(t), 0.5 - math.sin(t)] for t in _halfcircle(lower)]
    return _finish(points, [0] * upper + [1] * lower, noise, rng)


def make_circles(
    n: int = 100, noise: float = 0.05, factor: float = 0.5, seed: int = 0
) -> tuple[list[list[float]], list[int]]:
    """A large circle (label 0) around a small one (label 1) of radius ``factor``.

    Args:
        n: number of points, >= 2.
        noise: standard deviation of the Gaussian noise added to each coordinate.
        factor: radius of the inner circle relative to the outer one, in (0, 1).
        seed: seed of the generator (an int).

    Raises:
        TypeError: as `make_moons`, or ``factor`` is not a number.
        ValueError: as `make_moons`, or ``factor`` is not in (0, 1).
    """
    _check(n, noise, seed)
    check_number("factor", factor, above=0, below=1)
    rng = random.Random(seed)
    outer, inner = n // 2, n - n // 2
    points = _circle(outer, 1.0) + _circle(inner, factor)
    return _finish(points, [0] * outer + [1] * inner, noise, rng)


def _circle(count: int, radius: float) -> list[list[float]]:
    """``count`` points on a circle, at angles over [0, 2π) without repeating the end point, as
    scikit-learn does."""
    return [
        [radius * math.cos(2 * math.pi * i / count), radius * math.sin(2 * math.pi * i / count)]
        for i in range(count)
    ]


def make_spiral(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[list[list[float]], list[int]]:
    """``n_classes`` interleaved spiral arms of ``n_per_class`` points each (labels 0..k-1).

    Args:
        n_per_class: points per arm, >= 1.
        n_classes: number of arms and classes, >= 2.
        noise: standard deviation of the Gaussian noise added to each point's angle.
        seed: seed of the generator (an int).

    Raises:
        TypeError: ``n_per_class``, ``n_classes`` or ``seed`` is not an int, or ``noise`` not a
            number.
        ValueError: ``n_per_class`` < 1, ``n_classes`` < 2, or ``noise`` negative or not finite.
    """
    _check(n_per_class, noise, seed, minimum=1, what="n_per_class")
    check_count("n_classes", n_classes, 2)
    return _spiral([n_per_class] * n_classes, noise, random.Random(seed))


def _spiral(
    counts: list[int], noise: float, rng: random.Random
) -> tuple[list[list[float]], list[int]]:
    """One spiral arm of ``counts[k]`` points per class k, shuffled."""
    points: list[list[float]] = []
    labels: list[int] = []
    for k, count in enumerate(counts):
        for i in range(count):
            radius = i / max(count - 1, 1)
            angle = 4.0 * (k + radius) + rng.gauss(0.0, noise)
            points.append([radius * math.sin(angle), radius * math.cos(angle)])
            labels.append(k)
    return _finish(points, labels, 0.0, rng)


# The digits 0-9 on a 5×7 grid (the classic dot-matrix font), drawn into 8×8 images.
_GLYPHS = (
    (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
)
DIGIT_SIDE = 8  # images are DIGIT_SIDE × DIGIT_SIDE pixels, row by row


def make_digits(
    n: int = 1000, noise: float = 0.1, seed: int = 0
) -> tuple[list[list[float]], list[int]]:
    """``n`` 8×8 grey images of the digits 0-9 (64 features in [0, 1], row by row; label =
    the digit), ``n // 10`` of each digit and the first ``n % 10`` digits one more.

    Each image is its digit's 5×7 glyph placed at a random offset in the 8×8 frame, each stroke
    pixel of a random intensity in [0.5, 1], then Gaussian noise of standard deviation
    ``noise`` on every pixel, clipped to [0, 1]. Synthetic, the size of scikit-learn's
    handwritten digits, and not as hard: a small MLP separates them.

    Raises:
        TypeError: ``n`` or ``seed`` is not an int, or ``noise`` not a number.
        ValueError: ``n`` < 10, or ``noise`` negative or not finite.
    """
    _check(n, noise, seed, minimum=10)
    rng = random.Random(seed)
    images: list[list[float]] = []
    labels: list[int] = []
    for i in range(n):
        digit = i % 10
        top, left = rng.randrange(DIGIT_SIDE - 6), rng.randrange(DIGIT_SIDE - 4)
        image = [0.0] * DIGIT_SIDE**2
        for r, row in enumerate(_GLYPHS[digit]):
            for c, pixel in enumerate(row):
                if pixel == "#":
                    image[(top + r) * DIGIT_SIDE + left + c] = rng.uniform(0.5, 1.0)
        if noise:
            image = [min(1.0, max(0.0, x + rng.gauss(0.0, noise))) for x in image]
        images.append(image)
        labels.append(digit)
    return _finish(images, labels, 0.0, rng)


DATASETS = ("moons", "circles", "spiral", "digits")


def generate(name: str, n: int, noise: float, seed: int = 0) -> tuple[list[list[float]], list[int]]:
    """Exactly ``n`` points of the dataset ``name``, one of `DATASETS`, as the CLI draws them.

    "moons", "circles" and "digits" are `make_moons`, `make_circles` and `make_digits`
    ("digits": n >= 10); "spiral" is three arms of
    ``n // 3`` points, the first ``n % 3`` arms one point more (`make_spiral` when n % 3 == 0).

    Raises:
        TypeError, ValueError: as the generator of ``name``, or ``name`` is not in `DATASETS`;
            "spiral" needs n >= 3.
    """
    check_choice("dataset", name, DATASETS)
    if name == "moons":
        return make_moons(n, noise, seed)
    if name == "circles":
        return make_circles(n, noise, seed=seed)
    if name == "digits":
        return make_digits(n, noise, seed)
    _check(n, noise, seed, minimum=3)
    return _spiral([n // 3 + int(k < n % 3) for k in range(3)], noise, random.Random(seed))
