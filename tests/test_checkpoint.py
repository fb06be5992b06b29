"""checkpoint: exact round trip, atomic writes, and refusal of every kind of bad file."""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tinygrad_edu import Value
from tinygrad_edu._files import atomic_write
from tinygrad_edu.checkpoint import CheckpointError, load, save


class Model:
    """The smallest thing `save`/`load` accept: named parameters."""

    def __init__(self, *values: Any) -> None:
        self.params = [Value(v) for v in values]

    def named_parameters(self) -> list[tuple[str, Value]]:
        return [(f"w[{i}]", p) for i, p in enumerate(self.params)]

    def data(self) -> list[Any]:
        return [p.data for p in self.params]


VALUES = (Fraction(1, 200), Fraction(-3000, 11_600_000), 0.1, -2, 1e-300, math.inf, -math.inf)


def test_round_trip_keeps_every_number_exactly(tmp_path: Path) -> None:
    path = save(Model(*VALUES), tmp_path / "model.json")
    restored = Model(*([0] * len(VALUES)))
    load(restored, path)
    assert restored.data() == list(VALUES)
    assert [type(x) for x in restored.data()] == [type(x) for x in VALUES]
    nan = Model(math.nan)
    load(nan, save(Model(math.nan), tmp_path / "nan.json"))
    assert math.isnan(nan.data()[0])
    assert json.loads((tmp_path / "model.json").read_text())["version"] == 1


def test_a_failure_mid_save_keeps_the_old_file(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "model.json"
    save(Model(1.0, 2.0), path)
    before = path.read_bytes()

    def crash(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save(Model(3.0, 4.0), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]  # no temporary left


def _write(path: Path, document: Any) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


GOOD = {"format": "tinygrad_edu.checkpoint", "version": 1, "parameters": []}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"format": "tinygrad_edu.checkpoint", "vers', "not valid JSON"),
        ("[1, 2]", "not a tinygrad_edu.checkpoint file"),
        ({**GOOD, "format": "pickle"}, "not a tinygrad_edu.checkpoint file"),
        ({**GOOD, "version": 2}, "version 2 is not supported"),
        ({**GOOD, "parameters": {"w[0]": 1}}, "must be a list"),
        ({**GOOD, "parameters": [{"name": "w[0]"}]}, "must be a list"),
        ({**GOOD, "parameters": [{"name": "w[0]", "value": 1}]}, "missing: \\['w\\[1\\]'\\]"),
        (
            {**GOOD, "parameters": [{"name": n, "value": 1} for n in ("w[0]", "w[1]", "b")]},
            "unexpected: \\['b'\\]",
        ),
        (
            {**GOOD, "parameters": [{"name": n, "value": 1} for n in ("w[1]", "w[0]")]},
            "another order",
        ),
        (
            {**GOOD, "parameters": [{"name": "w[0]", "value": 1}, {"name": "w[1]", "value": "x"}]},
            "parameter 'w\\[1\\]': got 'x'; expected a finite JSON number",
        ),
        (
            {**GOOD, "parameters": [{"name": "w[0]", "value": True}, {"name": "w[1]", "value": 1}]},
            "got a boolean",
        ),
        (
            {
                **GOOD,
                "parameters": [{"name": "w[0]", "value": "1/0"}, {"name": "w[1]", "value": 1}],
            },
            "parameter 'w\\[0\\]': '1/0' has a zero denominator; expected a finite JSON number",
        ),
        ({**GOOD, "version": True}, "version True is not supported"),
        ({**GOOD, "version": 1.0}, "version 1.0 is not supported"),
        ({**GOOD, "version": "1"}, "version '1' is not supported"),
        ('{"format": "tinygrad_edu.checkpoint", "version": 1e400}', "version 1e400 is not"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_bad_files_are_refused_and_the_model_is_unchanged(
    tmp_path: Path, document: Any, message: str
) -> None:
    model = Model(0.5, Fraction(1, 3))
    path = _write(tmp_path / "bad.json", document)
    with pytest.raises(CheckpointError, match=message):
        load(model, path)
    assert model.data() == [0.5, Fraction(1, 3)]


def test_binary_garbage_and_missing_files(tmp_path: Path) -> None:
    model = Model(0.5)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(model, garbage)
    with pytest.raises(FileNotFoundError):
        load(model, tmp_path / "absent.json")
    assert model.data() == [0.5]


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = save(Model(1.0, 2.0), tmp_path / "model.json")
    path.write_bytes(path.read_bytes()[:-10])
    model = Model(7.0, 8.0)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(model, path)
    assert model.data() == [7.0, 8.0]


def test_saved_files_get_ordinary_permissions(tmp_path: Path) -> None:
    fresh = save(Model(1.0), tmp_path / "fresh.json")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    fresh.chmod(0o640)
    save(Model(2.0), fresh)
    assert fresh.stat().st_mode & 0o777 == 0o640  # replacing a file keeps its mode


def _one(value: str) -> str:
    """A file whose first parameter's value is the JSON text ``value``."""
    return (
        '{"format": "tinygrad_edu.checkpoint", "version": 1, "parameters": '
        f'[{{"name": "w[0]", "value": {value}}}, {{"name": "w[1]", "value": 1}}]}}'
    )


ACCEPTED = "expected a finite JSON number, a fraction 'a/b' in lowest terms with b > 0"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"²/3"', "got '²/3'"),  # str.isdigit() is True for '²'
        ('"٣/٤"', "got '٣/٤'"),  # Arabic-Indic digits, which int() reads as 3 and 4
        ('"3/٤"', "got '3/٤'"),
        ('"1/-2"', "got '1/-2'"),
        ('"+1/2"', "got '\\+1/2'"),
        ('" 1/2"', "got ' 1/2'"),
        ('"1/2\\n"', "got '1/2\\\\n'"),
        ('"1_0/3"', "got '1_0/3'"),
        ('"01/2"', "got '01/2'"),
        ('"5"', "got '5'"),
        ('"0X1F"', "got '0X1F'"),
        ('"0x01"', "got '0x01'"),
        ('"-0/1"', "'-0/1' is not in lowest terms \\(it is '0/1'\\)"),
        ('"0/5"', "'0/5' is not in lowest terms \\(it is '0/1'\\)"),
        ('"-2/4"', "'-2/4' is not in lowest terms \\(it is '-1/2'\\)"),
        ('"0x2/0x4"', "is not in lowest terms \\(it is '1/2'\\)"),
        ('"7/0"', "'7/0' has a zero denominator"),
        ("1e400", "the JSON number 1e400 is not finite in float64"),
        ("-1e400", "the JSON number -1e400 is not finite in float64"),
        ("NaN", "NaN is not JSON"),
        ("Infinity", "Infinity is not JSON"),
        ("-Infinity", "-Infinity is not JSON"),
        ("1" * 5000, "a JSON integer of 5000 characters is longer than this Python converts"),
        ('"' + "1" * 5000 + '/3"', "is longer than this Python converts from decimal"),
        ("[1]", "got list \\[1\\]"),
        ("null", "got NoneType None"),
    ],
    ids=lambda x: x[:20],
)
def test_a_number_not_spelled_as_save_writes_it_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    model = Model(0.5, Fraction(1, 3))
    path = _write(tmp_path / "bad.json", _one(value))
    with pytest.raises(CheckpointError, match=message) as err:
        load(model, path)
    assert str(err.value).startswith("parameter 'w[0]': ")
    assert ACCEPTED in str(err.value)
    assert model.data() == [0.5, Fraction(1, 3)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"-1/3"', Fraction(-1, 3)),
        ('"0/1"', Fraction(0)),
        ('"0x1f"', 31),
        ('"-0x1f/3"', Fraction(-31, 3)),
        ("-0.0", -0.0),
    ],
)
def test_every_spelling_save_writes_is_read(tmp_path: Path, value: str, expected: Any) -> None:
    model = Model(0, 0)
    load(model, _write(tmp_path / "good.json", _one(value)))
    assert model.data() == [expected, 1]
    assert type(model.data()[0]) is type(expected)
    assert math.copysign(1, model.data()[0]) == math.copysign(1, expected)


def test_numbers_too_long_for_decimal_round_trip_in_hex(tmp_path: Path) -> None:
    # Exact training reaches Fractions of thousands of digits; Python refuses str() of an int
    # of more than 4300 (sys.get_int_max_str_digits()), so json.dumps alone would fail.
    limit = sys.get_int_max_str_digits()
    huge = (
        Fraction(10**5000 + 1, 3**10000),
        -(7**6000),
        Fraction(1, 2**20000),
        10 ** (limit - 1),  # the longest int still written in decimal
        Fraction(-(10 ** (limit - 1)), 3),
    )
    path = tmp_path / "model.json"
    save(Model(1.0), path)
    save(Model(*huge), path)
    text = path.read_text()
    entries = json.loads(text)["parameters"]
    assert entries[0]["value"].startswith("0x")
    assert "/0x" in entries[0]["value"]
    assert entries[1]["value"].startswith("-0x")
    assert entries[2]["value"].startswith("1/0x")
    assert type(entries[3]["value"]) is int  # decimal JSON integer, as for any shorter int
    assert entries[4]["value"] == f"-{10 ** (limit - 1)}/3"
    restored = Model(*([0] * len(huge)))
    load(restored, path)
    assert restored.data() == list(huge)
    assert [type(x) for x in restored.data()] == [type(x) for x in huge]
    assert save(restored, path).read_text() == text  # one spelling per number
    assert sys.get_int_max_str_digits() == limit  # never raised, not even for a moment


# ---- the atomic writer (_files.atomic_write) that save, plots and rendered graphs share --------


def _umask() -> int:
    umask = os.umask(0)  # the test's own thread only; atomic_write itself never does this
    os.umask(umask)
    return umask


def test_the_umask_is_applied_by_the_kernel_never_read_or_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = 0o666 & ~_umask()

    def forbidden(mask: int) -> int:
        raise AssertionError("os.umask changes the whole process, other threads included")

    monkeypatch.setattr(os, "umask", forbidden)
    fresh = atomic_write(tmp_path / "fresh.json", b"{}")
    assert fresh.stat().st_mode & 0o777 == expected
    assert fresh.read_bytes() == b"{}"


def test_a_new_file_gets_a_strict_umask_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        fresh = atomic_write(tmp_path / "fresh.json", b"1")
        assert fresh.stat().st_mode & 0o777 == 0o600
        fresh.chmod(0o644)
        atomic_write(fresh, b"2")
        assert fresh.stat().st_mode & 0o777 == 0o644  # not 0600: the old file's mode is kept
    finally:
        os.umask(old)
    assert fresh.read_bytes() == b"2"


def test_a_missing_folder_is_named_not_a_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError) as err:
        save(Model(1.0), folder / "model.json")
    assert err.value.filename == str(folder)
    assert "cannot write 'model.json': no such folder" in str(err.value)
    assert ".tmp" not in str(err.value)
    assert not (tmp_path / "no").exists()


def test_a_taken_temporary_name_is_never_opened_another_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = iter(["a" * 16, "b" * 16])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(names))
    taken = tmp_path / f".model.json.{'a' * 16}.tmp"
    taken.write_bytes(b"someone else's")
    path = atomic_write(tmp_path / "model.json", b"ours")
    assert path.read_bytes() == b"ours"
    assert taken.read_bytes() == b"someone else's"  # O_EXCL: never opened, never removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [taken.name, "model.json"]
    with pytest.raises(StopIteration):
        next(names)  # both names were drawn
