"""checkpoint: exact round trip, atomic writes, and refusal of every kind of bad file."""

from __future__ import annotations

import doctest
import errno
import fcntl
import json
import math
import os
import re
import secrets
import stat
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tinygrad_edu import Value, _files, checkpoint, nn
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
    # Locked, as a save under way holds its temporary: one nobody holds would be stale, and
    # removed before the new save starts (see the test of a killed save below).
    with taken.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        path = atomic_write(tmp_path / "model.json", b"ours")
    assert path.read_bytes() == b"ours"
    assert taken.read_bytes() == b"someone else's"  # O_EXCL: never opened, never removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [taken.name, "model.json"]
    with pytest.raises(StopIteration):
        next(names)  # both names were drawn


# ---- checkpoints are safe files (issue 13, item 5) ----------------------------------------------


class CountingName(str):
    """A parameter name that counts the comparisons made with it."""

    __slots__ = ()
    calls = 0

    def __eq__(self, other: object) -> bool:
        CountingName.calls += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        CountingName.calls += 1
        return str.__ne__(self, other)

    __hash__ = str.__hash__


class Named:
    """A model whose parameter names are given."""

    def __init__(self, names: list[str]) -> None:
        self.named = [(n, Value(0.5)) for n in names]

    def named_parameters(self) -> list[tuple[str, Value]]:
        return self.named


@pytest.mark.parametrize("n", [1000, 4000])
def test_load_compares_names_in_linear_time(tmp_path: Path, n: int) -> None:
    # A quadratic comparison (a list's `in` per name) makes about n²/2 = 8,000,000 comparisons
    # for n = 4000; a linear one a few per name, however the names are spelled.
    names = [CountingName(f"layer{i // 100}.w[{i % 100}]") for i in range(n)]
    path = save(Named(names), tmp_path / "model.json")
    model = Named([*names[:-1], CountingName("other")])
    CountingName.calls = 0
    with pytest.raises(CheckpointError, match=r"missing: \['other'\], unexpected: \['layer"):
        load(model, path)
    assert CountingName.calls <= 4 * n
    assert [p.data for _, p in model.named_parameters()] == [0.5] * n


def test_save_follows_a_symlink_and_replaces_its_target(tmp_path: Path) -> None:
    real = save(Model(1.0), tmp_path / "real.json")
    link = tmp_path / "link.json"
    link.symlink_to(real.name)
    assert save(Model(2.0), link) == link
    assert link.is_symlink()  # still the link, now to the new file
    model = Model(0.0)
    load(model, real)
    assert model.data() == [2.0]
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("created.json")
    save(Model(3.0), dangling)
    assert dangling.is_symlink()
    assert (tmp_path / "created.json").is_file()  # as open(path, "w") would create it
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "created.json",
        "dangling.json",
        "link.json",
        "real.json",
    ]


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.json"
    os.mkfifo(path)
    return path


def _directory(folder: Path) -> Path:
    path = folder / "folder.json"
    path.mkdir()
    return path


def _device(folder: Path) -> Path:
    path = folder / "null.json"
    path.symlink_to(os.devnull)  # a character device, reached through a symlink
    return path


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (_fifo, OSError, "is a FIFO, not a regular file"),
        (_directory, IsADirectoryError, "is a directory, not a regular file"),
        (_device, OSError, "is a character device, not a regular file"),
    ],
    ids=["fifo", "directory", "device"],
)
def test_save_refuses_what_is_not_a_regular_file(
    tmp_path: Path, make: Any, error: type[Exception], message: str
) -> None:
    path = make(tmp_path)
    before = os.lstat(path)
    with pytest.raises(error, match=message) as err:
        save(Model(1.0), path)
    assert "save writes regular files only" in str(err.value)
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # left as it was
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


def test_save_refuses_a_symlink_loop_and_leaves_the_links(tmp_path: Path) -> None:
    (tmp_path / "a.json").symlink_to("b.json")
    (tmp_path / "b.json").symlink_to("a.json")
    with pytest.raises(OSError, match="Too many levels of symbolic links") as err:
        save(Model(1.0), tmp_path / "a.json")
    assert err.value.errno == errno.ELOOP
    assert [os.readlink(tmp_path / n) for n in ("a.json", "b.json")] == ["b.json", "a.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_save_refuses_a_read_only_file_even_as_root(tmp_path: Path) -> None:
    path = save(Model(1.0), tmp_path / "model.json")
    path.chmod(0o444)
    before = path.read_bytes()
    with pytest.raises(PermissionError, match=r"is read-only \(mode 0444\).*chmod u\+w"):
        save(Model(2.0), path)
    assert path.read_bytes() == before
    assert path.stat().st_mode & 0o777 == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_the_temporary_file_never_has_more_permissions_than_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(Model(1.0), tmp_path / "model.json")
    path.chmod(0o600)
    seen: list[int] = []
    fsync = os.fsync

    def spy(fd: int) -> None:  # the data is in the temporary file when it is fsynced
        seen.extend(p.stat().st_mode & 0o777 for p in tmp_path.glob(".*.tmp"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    old = os.umask(0o022)  # a common umask, which would give a new file 0644
    try:
        save(Model(2.0), path)
    finally:
        os.umask(old)
    assert seen == [0o600]
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "name",
    ["€" * 80 + ".json", "δ" * 120 + ".json", "𝛿" * 61 + ".json"],
    ids=["3-byte-chars", "2-byte-chars", "4-byte-chars"],
)
def test_a_long_utf8_name_gets_a_temporary_name_of_at_most_255_bytes(
    tmp_path: Path, name: str
) -> None:
    assert len(name.encode()) <= 255  # the name itself is allowed
    path = save(Model(1.0), tmp_path / name)
    model = Model(0.0)
    load(model, path)
    assert model.data() == [1.0]


_KILLED_SAVE = """
import os, signal, sys
from tinygrad_edu import _files
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed just before the rename
_files.atomic_write(sys.argv[1], b"new")
"""

_PAUSED_SAVE = """
import os, sys
from tinygrad_edu import _files
replace = os.replace
def paused(*args):
    print("writing", flush=True)
    sys.stdin.readline()  # a save still under way, until the test lets it go on
    replace(*args)
os.replace = paused
_files.atomic_write(sys.argv[1], b"slow")
"""


def _temporaries(folder: Path) -> set[str]:
    """The names of the temporaries of saves to ``model.json`` in ``folder``."""
    return {
        p.name
        for p in folder.iterdir()
        if re.fullmatch(r"\.model\.json\.[0-9a-f]{16}\.tmp", p.name)
    }


def test_the_next_save_removes_temporaries_of_a_killed_save_but_not_of_a_live_one(
    tmp_path: Path,
) -> None:
    path = save(Model(1.0), tmp_path / "model.json")
    before = path.read_bytes()
    unrelated = {".model.json.notes.tmp", ".model.json.0123456789abcdef.tmp.bak", ".other.tmp"}
    for name in unrelated:
        (tmp_path / name).write_bytes(b"not ours")
    live = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_SAVE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout is not None
        assert live.stdin is not None
        assert live.stdout.readline() == "writing\n"
        running = _temporaries(tmp_path)
        assert len(running) == 1
        killed = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(path)], check=False)
        assert killed.returncode == -9
        stale = _temporaries(tmp_path) - running
        assert len(stale) == 1  # the killed save left its temporary, and the live one's
        assert path.read_bytes() == before  # and the old file whole
        save(Model(2.0), path)  # removes the killed save's temporary, not the live one's
        assert {p.name for p in tmp_path.iterdir()} == {"model.json", *unrelated, *running}
        live.stdin.write("\n")
        live.stdin.flush()
        assert live.wait(timeout=60) == 0  # the live save completes
    finally:
        live.kill()
        live.wait()
    assert path.read_bytes() == b"slow"
    assert {p.name for p in tmp_path.iterdir()} == {"model.json", *unrelated}


def test_a_failed_folder_fsync_after_the_rename_warns_and_the_save_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(Model(1.0), tmp_path / "model.json")
    fsync = os.fsync

    def failing_for_folders(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_for_folders)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert save(Model(2.0), path) == path  # returns: the file is replaced
    assert [w.category for w in caught] == [RuntimeWarning]
    message = str(caught[0].message)
    assert f"{path} was replaced" in message
    assert "may not survive a power loss" in message
    assert "Input/output error" in message
    model = Model(0.0)
    load(model, path)
    assert model.data() == [2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_load_refuses_a_fifo_without_blocking_and_a_device_without_reading(
    tmp_path: Path,
) -> None:
    model = Model(0.5)
    with pytest.raises(CheckpointError, match="is a FIFO, not a regular file"):
        load(model, _fifo(tmp_path))  # no writer: reading it would wait for ever
    with pytest.raises(CheckpointError, match="is a character device, not a regular file"):
        load(model, "/dev/zero")  # reading it would never end
    with pytest.raises(IsADirectoryError, match="is a directory, not a regular file"):
        load(model, tmp_path)
    assert model.data() == [0.5]


def test_the_size_limit_names_the_function_whose_max_bytes_raises_it(tmp_path: Path) -> None:
    path = save(Model(1.0), tmp_path / "model.json")
    small = path.stat().st_size - 1
    with pytest.raises(CheckpointError, match="pass a larger max_bytes to load if"):
        load(Model(0.5), path, max_bytes=small)
    with pytest.raises(CheckpointError, match="pass a larger max_bytes to read if"):
        checkpoint.read(path, max_bytes=small)


def test_load_refuses_a_file_above_the_size_limit_before_reading(tmp_path: Path) -> None:
    assert checkpoint.MAX_BYTES == 256 * 2**20
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(checkpoint.MAX_BYTES + 1)  # sparse: no disk space, no time to write
    model = Model(0.5)
    with pytest.raises(CheckpointError, match=r"268435457 bytes, above the limit of 268435456"):
        load(model, big)
    path = save(Model(1.0), tmp_path / "model.json")
    size = path.stat().st_size
    with pytest.raises(CheckpointError, match=rf"{size} bytes, above the limit of {size - 1} "):
        load(model, path, max_bytes=size - 1)
    load(model, path, max_bytes=size)
    assert model.data() == [1.0]
    with pytest.raises(ValueError, match="max_bytes must be an int >= 1, got 0"):
        load(model, path, max_bytes=0)


def test_docstring_examples_of_the_file_helpers() -> None:
    result = doctest.testmod(_files)
    assert result.attempted > 0
    assert result.failed == 0


def test_read_gives_the_named_numbers_without_a_model(tmp_path: Path) -> None:
    path = save(Model(*VALUES), tmp_path / "model.json")
    named = checkpoint.read(path)
    assert [n for n, _ in named] == [f"w[{i}]" for i in range(len(VALUES))]
    assert [(type(x), x) for _, x in named] == [(type(v), v) for v in VALUES]
    document = json.loads(path.read_text())
    document["parameters"][1]["name"] = "w[0]"
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"parameter 'w\[0\]' appears twice"):
        checkpoint.read(path)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.read(atomic_write(tmp_path / "bad.json", b"{"))


def test_reading_a_small_checkpoint_allocates_its_size_not_the_limit(tmp_path: Path) -> None:
    """read() allocated the 256 MiB limit for every file (tracemalloc's peak: 268 MB)."""
    import tracemalloc

    model = nn.MLP(2, [3, 1], seed=0)
    path = checkpoint.save(model, tmp_path / "m.json")
    tracemalloc.start()
    try:
        checkpoint.read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
