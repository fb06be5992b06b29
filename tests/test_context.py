"""no_grad, enable_grad and layer_scope as decorators and blocks (issue 13, item 7): on a generator
function they apply only while it runs; blocks exited out of order raise and restore the state;
separate graphs in separate threads are independent."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tinygrad_edu import Value, enable_grad, is_grad_enabled, layer_scope, no_grad


def _layer() -> str:
    return Value(0).layer


def test_no_grad_on_a_generator_function_applies_only_while_it_runs() -> None:
    @no_grad()
    def numbers() -> Iterator[tuple[bool, str]]:
        received = yield is_grad_enabled(), _layer()
        yield is_grad_enabled(), f"received {received}"
        try:
            yield is_grad_enabled(), ""
        except KeyError:
            yield is_grad_enabled(), "caught"

    with layer_scope("outside"):
        gen = numbers()
        assert next(gen) == (False, "outside")
        assert is_grad_enabled()  # the caller, between two resumptions, records
        assert (Value(1) * 2).parents != ()
        assert gen.send(7) == (False, "received 7")
        assert is_grad_enabled()
        assert next(gen) == (False, "")
        assert gen.throw(KeyError("k")) == (False, "caught")
        assert is_grad_enabled()
        gen.close()
        assert is_grad_enabled()
        assert _layer() == "outside"


def test_a_decorated_generator_returns_its_value_and_raises_its_errors() -> None:
    @layer_scope("L7")
    def gen() -> Iterator[str]:
        yield _layer()
        return "done"

    g = gen()
    assert next(g) == "L7"
    assert _layer() == ""
    with pytest.raises(StopIteration) as stop:
        next(g)
    assert stop.value.value == "done"

    @enable_grad()
    def failing() -> Iterator[bool]:
        yield is_grad_enabled()
        raise ValueError("inside")

    with no_grad():
        f = failing()
        assert next(f) is True
        assert not is_grad_enabled()
        with pytest.raises(ValueError, match="inside"):
            next(f)
        assert not is_grad_enabled()


def test_a_decorated_function_applies_on_each_call() -> None:
    @no_grad()
    def inside() -> bool:
        return is_grad_enabled()

    assert inside() is False
    assert is_grad_enabled()
    threads = [threading.Thread(target=inside) for _ in range(4)]  # one decorator, many calls
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside() is False


def test_blocks_exited_out_of_order_raise_and_restore_the_state() -> None:
    outer, inner = no_grad(), layer_scope("L1")
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match=r"exited out of order.*innermost block first"):
        outer.__exit__(None, None, None)
    assert is_grad_enabled()  # the state before the outer block: the inner one is gone too
    assert _layer() == ""
    with pytest.raises(RuntimeError, match="exited out of order"):
        inner.__exit__(None, None, None)
    assert is_grad_enabled()  # and it stays so
    assert _layer() == ""


def test_interleaved_generators_with_a_yield_inside_no_grad_raise_instead_of_leaking() -> None:
    def gen() -> Iterator[None]:
        with no_grad():  # a yield inside the block: see no_grad's docstring
            yield

    first, second = gen(), gen()
    next(first)
    next(second)
    assert not is_grad_enabled()  # while suspended inside the block, the caller has no_grad
    with pytest.raises(RuntimeError, match="exited out of order"):
        next(first)  # its block exits while the second's is still open
    assert is_grad_enabled()
    with pytest.raises(RuntimeError, match="exited out of order"):
        next(second)
    assert is_grad_enabled()


def test_separate_graphs_in_separate_threads_are_independent() -> None:
    def work(k: int, out: list[object]) -> None:
        for _ in range(200):
            x = Value(k)
            with no_grad():
                c = x * 3  # a constant here: no parents
            with layer_scope(f"T{k}"):
                y = x * x + c
            y.backward()
            out.append((x.grad, c.parents, y.layer, is_grad_enabled()))
            x.grad = 0

    results: list[list[object]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=work, args=(k, results[k])) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, out in enumerate(results):
        assert out == [(2 * k, (), f"T{k}", True)] * 200
