"""no_grad, enable_grad and layer_scope as decorators and blocks (issue 13, item 7): on a generator
function they apply only while it runs; blocks exited out of order raise and restore the state;
separate graphs in separate threads are independent."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator

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


# ---- one block shared by threads and asyncio tasks; async functions ----------------------------


def test_one_no_grad_shared_by_two_threads_is_per_thread() -> None:
    # One instance entered by thread A, then by B, exited by A, then by B: each thread has its
    # own state, so A's exit is the innermost in A (a shared stack called it out of order).
    shared = no_grad()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def enter(
        name: str, after: threading.Event | None, mark: threading.Event, until: threading.Event
    ) -> None:
        """Enter ``shared`` (after ``after`` is set), set ``mark`` and stay until ``until``."""
        if after is not None:
            after.wait(5)
        try:
            with shared:
                mark.set()
                until.wait(5)
                seen[f"{name} inside"] = is_grad_enabled()
            seen[f"{name} after"] = is_grad_enabled()
        except RuntimeError as e:
            seen[f"{name} error"] = e

    def a() -> None:
        enter("a", None, a_in, b_in)
        a_out.set()

    def b() -> None:
        enter("b", a_in, b_in, a_out)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a inside": False, "a after": True, "b inside": False, "b after": True}
    assert is_grad_enabled()


def test_one_no_grad_shared_by_two_asyncio_tasks_is_per_task() -> None:
    shared = no_grad()

    async def task(pauses: int) -> tuple[bool, bool]:
        with shared:
            for _ in range(pauses):
                await asyncio.sleep(0)  # the other task enters and leaves meanwhile
            inside = is_grad_enabled()
        return inside, is_grad_enabled()

    async def main() -> list[tuple[bool, bool]]:
        # A enters, B enters, A exits, B exits: out of order for one shared stack.
        return list(await asyncio.gather(task(1), task(2)))

    assert asyncio.run(main()) == [(False, True), (False, True)]


def test_out_of_order_in_one_context_still_raises_with_a_shared_instance() -> None:
    shared, inner = no_grad(), layer_scope("L1")
    shared.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="exited out of order"):
        shared.__exit__(None, None, None)
    assert is_grad_enabled()
    assert _layer() == ""


def test_no_grad_on_an_async_function_covers_its_execution() -> None:
    @no_grad()
    async def scaled(x: Value) -> Value:
        await asyncio.sleep(0)  # suspended: other tasks run with their own state
        with layer_scope("L1"):  # a block around an await inside it nests as usual
            await asyncio.sleep(0)
            y = x * 3
        return y

    async def other() -> bool:
        await asyncio.sleep(0)
        return is_grad_enabled()

    async def main() -> tuple[Value, bool, bool]:
        y, others = await asyncio.gather(scaled(Value(2)), other())
        return y, others, is_grad_enabled()

    y, others, after = asyncio.run(main())
    assert (y.data, y.parents, y.layer) == (6, (), "L1")  # made under no_grad: a leaf
    assert others is True
    assert after is True
    assert inspect.iscoroutinefunction(scaled)
    assert scaled.__name__ == "scaled"


def test_no_grad_refuses_an_async_generator_function() -> None:
    async def numbers() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="cannot decorate an async generator function 'numbers'"):
        no_grad()(numbers)


def test_a_block_around_a_yield_in_a_decorated_generator_stays_in_the_generator() -> None:
    # The decorator's block ended after each step while the generator's own block was still
    # open: a false "out of order" RuntimeError on the first next().
    @no_grad()
    def gen() -> Iterator[Value]:
        with layer_scope("L"):
            yield Value(1) * 2
            yield Value(3) * 2
        yield Value(5) * 2

    it = gen()
    first = next(it)
    assert (first.layer, first.parents) == ("L", ())
    between = Value(1) * 2  # the caller, between two steps, in its own state
    assert (between.layer, len(between.parents)) == ("", 2)
    second = next(it)
    assert (second.layer, second.parents) == ("L", ())
    third = next(it)
    assert (third.layer, third.parents) == ("", ())  # its block closed: no_grad only
    assert list(it) == []
    assert is_grad_enabled()
    assert _layer() == ""
    closed = gen()
    next(closed)
    closed.close()  # closed inside its block: the block exits inside the generator
    assert is_grad_enabled()
    assert _layer() == ""


def test_a_generators_own_block_reopens_on_its_callers_state_of_the_moment() -> None:
    """A decorated generator with a block of its own around a yield, resumed inside its caller's
    no_grad, records nothing in that block or after it (it kept its first step's state)."""

    @layer_scope("g")
    def gen() -> Iterator[tuple[Value, Value, str]]:
        with layer_scope("inner"):
            yield Value(1.0), Value(1.0), ""
            a = Value(1.0) * 2
            inside = a.layer
        b = Value(1.0) * 2
        yield a, b, inside

    g = gen()
    next(g)
    with no_grad():
        a, b, inside = next(g)
    assert (a.parents, b.parents) == ((), ())
    assert inside == "inner"
    assert is_grad_enabled()
