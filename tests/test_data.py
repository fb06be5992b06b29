"""data: the article's samples and the seeded toy datasets."""

from __future__ import annotations

import math
from fractions import Fraction as F
from typing import Any

import pytest

from tinygrad_edu import _checks, data
from tinygrad_edu.data import article_dataset, make_circles, make_moons, make_spiral


def test_article_dataset_is_the_articles_table() -> None:
    inputs, labels = article_dataset()
    assert inputs == [[100, 2000, 100], [200, 0, 0], [0, 2000, 3000]]
    assert labels == [0, 1, 1]  # bad shape, good shape, good shape


@pytest.mark.parametrize("make", [make_moons, make_circles])
def test_two_class_sets_are_seeded_balanced_and_shaped(make: Any) -> None:
    x1, y1 = make(n=101, noise=0.1, seed=3)
    x2, y2 = make(n=101, noise=0.1, seed=3)
    x3, _ = make(n=101, noise=0.1, seed=4)
    assert (x1, y1) == (x2, y2)
    assert x1 != x3
    assert len(x1) == len(y1) == 101
    assert all(len(p) == 2 and all(math.isfinite(c) for c in p) for p in x1)
    assert sorted(set(y1)) == [0, 1]
    assert abs(y1.count(0) - y1.count(1)) <= 1


def test_moons_without_noise_lie_on_the_two_half_circles() -> None:
    points, labels = make_moons(n=50, noise=0.0)
    for (x, y), label in zip(points, labels, strict=True):
        if label == 0:
            assert math.isclose(x * x + y * y, 1.0, rel_tol=1e-12)
            assert y >= -1e-12
        else:
            assert math.isclose((x - 1) ** 2 + (y - 0.5) ** 2, 1.0, rel_tol=1e-12)
            assert y <= 0.5 + 1e-12


def test_circles_without_noise_have_two_radii() -> None:
    points, labels = make_circles(n=40, noise=0.0, factor=0.3)
    for (x, y), label in zip(points, labels, strict=True):
        assert math.isclose(math.hypot(x, y), 1.0 if label == 0 else 0.3, rel_tol=1e-12)


def test_spiral_has_k_classes_of_n_points() -> None:
    points, labels = make_spiral(n_per_class=30, n_classes=4, seed=1)
    assert len(points) == 120
    assert [labels.count(k) for k in range(4)] == [30, 30, 30, 30]
    assert all(math.hypot(*p) <= 1 + 1e-12 for p in points)
    assert make_spiral(n_per_class=30, n_classes=4, seed=1) == (points, labels)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_moons(n=1), "n must be an int >= 2, got 1"),
        (lambda: make_circles(n=0), "n must be an int >= 2, got 0"),
        (lambda: make_moons(noise=-1), "noise must be a finite number >= 0, got -1"),
        (lambda: make_moons(noise=math.nan), "noise must be a finite number >= 0, got nan"),
        (lambda: make_circles(factor=1.5), "factor must be a finite number > 0 and < 1, got 1.5"),
        (lambda: make_circles(factor=0), "factor must be a finite number > 0 and < 1, got 0"),
        (lambda: make_circles(factor=math.nan), "factor must be a finite number .*, got nan"),
        (lambda: make_moons(noise=math.inf), "noise must be a finite number >= 0, got inf"),
        (lambda: make_spiral(n_per_class=0), "n_per_class must be an int >= 1, got 0"),
        (lambda: make_spiral(n_classes=1), "n_classes must be an int >= 2, got 1"),
    ],
)
def test_bad_values_are_refused(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_moons(n=2.5), "n must be an int >= 2, got float: 2.5"),
        (lambda: make_moons(n=True), "n must be an int >= 2, got bool: True"),
        (lambda: make_circles(n="100"), "n must be an int >= 2, got str: '100'"),
        (lambda: make_moons(noise="0.1"), "noise must be an int, float or Fraction >= 0, got str"),
        (lambda: make_moons(noise=None), "noise must be .*, got NoneType: None"),
        (lambda: make_moons(seed=1.5), "seed must be an int, got float: 1.5"),
        (
            lambda: make_circles(factor="0.5"),
            "factor must be an int, float or Fraction > 0 and < 1, got str: '0.5'",
        ),
        (lambda: make_circles(factor=True), "factor must be .*, got bool: True"),
        (lambda: make_spiral(n_per_class=2.0), "n_per_class must be an int >= 1, got float: 2.0"),
        (lambda: make_spiral(n_classes=3.0), "n_classes must be an int >= 2, got float: 3.0"),
        (lambda: make_spiral(seed="0"), "seed must be an int, got str: '0'"),
    ],
)
def test_arguments_of_the_wrong_type_are_refused(call: Any, message: str) -> None:
    # A wrong type is a TypeError that names the type and what is accepted.
    with pytest.raises(TypeError, match=message):
        call()


def test_spiral_accepts_one_point_per_class_and_exact_noise() -> None:
    points, labels = make_spiral(n_per_class=1, n_classes=2, noise=F(0))
    assert sorted(labels) == [0, 1]
    assert points == [[0.0, 0.0], [0.0, 0.0]]  # radius 0: every arm starts at the centre


def test_arguments_are_checked_by_the_shared_helpers() -> None:
    # One wording per kind of check for the package: _checks.
    assert vars(data)["check_count"] is _checks.check_count
    assert vars(data)["check_number"] is _checks.check_number
    assert "_check_count" not in vars(data)


@pytest.mark.parametrize("name", data.DATASETS)
@pytest.mark.parametrize("n", [10, 100, 101])
def test_generate_gives_exactly_n_points(name: str, n: int) -> None:
    points, labels = data.generate(name, n, 0.1, seed=2)
    assert len(points) == len(labels) == n
    assert max(labels) == {"spiral": 2, "digits": 9}.get(name, 1)
    assert (points, labels) == data.generate(name, n, 0.1, seed=2)


def test_digits_are_their_glyphs_shifted_in_an_8x8_frame() -> None:
    images, labels = data.make_digits(203, 0.0, seed=5)
    assert [labels.count(d) for d in range(10)] == [21, 21, 21, 20, 20, 20, 20, 20, 20, 20]
    offsets = set()
    for image, digit in zip(images, labels, strict=True):
        assert len(image) == 64
        lit = {(i // 8, i % 8) for i, x in enumerate(image) if x}
        assert all(0.5 <= x <= 1.0 for x in image if x)
        top = min(r for r, _ in lit)  # every glyph has a stroke in its first row
        left = min(c for _, c in lit) - min(
            row.index("#") for row in data._GLYPHS[digit] if "#" in row
        )
        glyph = {
            (top + r, left + c)
            for r, row in enumerate(data._GLYPHS[digit])
            for c, pixel in enumerate(row)
            if pixel == "#"
        }
        assert lit == glyph, digit
        offsets.add((top, left))
    assert len(offsets) == 2 * 4  # every placement of a 5-wide, 7-high glyph in 8×8 is drawn
    noisy, noisy_labels = data.make_digits(203, 0.3, seed=5)
    assert all(0.0 <= x <= 1.0 for image in noisy for x in image)
    assert sum(x != 0 for image in noisy for x in image) > sum(
        x != 0 for image in images for x in image
    )
    assert (noisy, noisy_labels) == data.make_digits(203, 0.3, seed=5)
    assert noisy != data.make_digits(203, 0.3, seed=6)[0]


def test_generate_is_the_named_generator() -> None:
    assert data.generate("moons", 40, 0.1, seed=3) == make_moons(40, 0.1, seed=3)
    assert data.generate("circles", 40, 0.1, seed=3) == make_circles(40, 0.1, seed=3)
    assert data.generate("spiral", 30, 0.2, seed=3) == make_spiral(10, 3, 0.2, seed=3)
    assert data.generate("digits", 30, 0.2, seed=3) == data.make_digits(30, 0.2, seed=3)
    _, labels = data.generate("spiral", 100, 0.2)
    assert [labels.count(k) for k in range(3)] == [34, 33, 33]


def test_generate_refuses_unknown_names_and_too_few_points() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset: 'mnist' \(must be one of"):
        data.generate("mnist", 10, 0.1)
    with pytest.raises(ValueError, match=r"n must be an int >= 3, got 2"):
        data.generate("spiral", 2, 0.1)
    with pytest.raises(ValueError, match=r"n must be an int >= 10, got 9"):
        data.generate("digits", 9, 0.1)
