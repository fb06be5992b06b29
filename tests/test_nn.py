"""nn: layers against the numeric limit, exact δ on Fractions, names, Sequential's records.

Tolerances are the `tinygrad_edu.check` defaults (see check.py and test_gradients.py): inputs,
weights and output coefficients are drawn in [-3, 3], so every derivative is of order 10 at most
and central differences are accurate to ~1e-8, far inside atol 1e-6 / rtol 1e-4.
"""

from __future__ import annotations

import doctest
import random
from collections.abc import Sequence
from fractions import Fraction as F
from pathlib import Path

import micrograd.nn  # the `test` extra's reference peer
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, _checks, dot, engine, nn
from tinygrad_edu.check import gradcheck
from tinygrad_edu.engine import topological_order
from tinygrad_edu.losses import half_squared_error
from tinygrad_edu.nn import MLP, Identity, Linear, Module, ReLU, Sequential, Sigmoid, Tanh

reals = st.floats(-3, 3, allow_nan=False)
fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)
ARTICLE_WEIGHTS = [[F(1, 200), F(-3000, 11_600_000), F(1, 5800)]]
ARTICLE_SAMPLES = [((100, 2000, 100), 0), ((200, 0, 0), 1), ((0, 2000, 3000), 1)]


def article_model() -> Sequential:
    return Sequential(Identity(), Linear(3, 1, bias=False, weights=ARTICLE_WEIGHTS), ReLU())


def bind(model: Module, leaves: Sequence[Value]) -> None:
    """Test-only: make the Linear layers of ``model`` use ``leaves`` as their parameters (in
    `named_parameters` order), so `gradcheck` can vary the weights."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    rest = list(leaves)
    for layer in layers:
        if isinstance(layer, Linear):
            layer.weight = [[rest.pop(0) for _ in range(layer.n_in)] for _ in range(layer.n_out)]
            if layer.bias is not None:
                layer.bias = [rest.pop(0) for _ in range(layer.n_out)]
    assert not rest, "test bug: more leaves than parameters"


# ---- δ against the numeric limit (floats) and exact (Fractions) ----------------------------------


@given(data=st.data())
def test_linear_delta_matches_numeric_limit(data: st.DataObject) -> None:
    n_in, n_out = data.draw(st.integers(1, 4), label="n_in"), data.draw(st.integers(1, 3))
    bias = data.draw(st.booleans(), label="bias")
    n_params = n_in * n_out + (n_out if bias else 0)
    point = data.draw(st.lists(reals, min_size=n_in + n_params, max_size=n_in + n_params))
    # A random linear combination of the outputs checks the δ flowing from every output.
    coeffs = data.draw(st.lists(reals, min_size=n_out, max_size=n_out), label="coeffs")
    layer = Linear(n_in, n_out, bias=bias, seed=0)

    def f(*v: Value) -> Value:
        bind(layer, v[n_in:])
        return dot(coeffs, layer(list(v[:n_in])))

    gradcheck(f, point)


ELEMENTWISE: dict[str, tuple[type[Module], st.SearchStrategy[float]]] = {
    "Identity": (Identity, reals),
    "ReLU": (ReLU, reals.filter(lambda x: abs(x) > 1e-2)),  # the kink is tested exactly below
    "Tanh": (Tanh, reals),
    "Sigmoid": (Sigmoid, st.floats(-30, 30)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@given(data=st.data())
def test_elementwise_layer_delta_matches_numeric_limit(name: str, data: st.DataObject) -> None:
    layer_class, domain = ELEMENTWISE[name]
    n = data.draw(st.integers(1, 4), label="n")
    point = data.draw(st.lists(domain, min_size=n, max_size=n), label="x")
    coeffs = data.draw(st.lists(reals, min_size=n, max_size=n), label="coeffs")
    layer = layer_class()
    gradcheck(lambda *v: dot(coeffs, layer(list(v))), point)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@given(data=st.data())
def test_mlp_delta_matches_numeric_limit(activation: str, data: st.DataObject) -> None:
    model = MLP(2, [3, 2], activation=activation, seed=1)
    n_params = len(model.parameters())
    point = data.draw(st.lists(reals, min_size=2 + n_params, max_size=2 + n_params))

    def f(*v: Value) -> Value:
        bind(model, v[2:])
        return total_of(model(list(v[:2])))

    gradcheck(f, point)


def total_of(values: list[Value]) -> Value:
    return dot([1] * len(values), values)


@given(data=st.data())
def test_linear_delta_is_exact_on_fractions(data: st.DataObject) -> None:
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    weights = data.draw(
        st.lists(st.lists(fractions, min_size=n_in, max_size=n_in), min_size=n_out, max_size=n_out)
    )
    x = [Value(v) for v in data.draw(st.lists(fractions, min_size=n_in, max_size=n_in))]
    coeffs = data.draw(st.lists(fractions, min_size=n_out, max_size=n_out))
    layer = Linear(n_in, n_out, weights=weights)
    dot(coeffs, layer(x)).backward()
    assert [[w.grad for w in row] for row in layer.weight] == [
        [c * xi.data for xi in x] for c in coeffs
    ]
    assert layer.bias is not None
    assert [b.grad for b in layer.bias] == coeffs
    assert [xi.grad for xi in x] == [
        sum(c * row[i] for c, row in zip(coeffs, weights, strict=True)) for i in range(n_in)
    ]


def test_relu_kink_is_exact() -> None:
    x = [Value(F(0)), Value(F(-1, 3)), Value(F(1, 3))]
    out = ReLU()(x)
    assert [v.data for v in out] == [0, 0, F(1, 3)]
    total_of(out).backward()
    assert [v.grad for v in x] == [0, 0, 1]  # δ at 0 is 0, as in PyTorch


# ---- the article's model -------------------------------------------------------------------------


def test_article_forward_is_exact() -> None:
    model = article_model()
    o2, o3, losses = [], [], []
    for x, y in ARTICLE_SAMPLES:
        out = model(list(x))
        o2.append(model.inputs[2][0].data)
        o3.append(out[0].data)
        losses.append(half_squared_error(out[0], y).data)
    assert o2 == [0, 1, 0]
    assert o3 == [0, 1, 0]
    assert losses == [0, 0, F(1, 2)]
    assert all(isinstance(v, F) for v in o2 + losses)


def test_sequential_records_inputs_and_output_and_their_deltas() -> None:
    model = article_model()
    out = model([200, 0, 0])
    assert len(model.inputs) == 3
    assert [v.data for v in model.inputs[0]] == [200, 0, 0]
    assert model.inputs[1] == model.inputs[0]  # L1 is the identity: X^2 is X^1
    assert [v.data for v in model.inputs[2]] == [1]
    assert model.output == out
    assert out[0].data == 1
    half_squared_error(out[0], 0).backward()
    delta4 = [v.grad for v in model.output]
    delta3 = [v.grad for v in model.inputs[2]]
    delta2 = [v.grad for v in model.inputs[1]]
    delta1 = [v.grad for v in model.inputs[0]]
    assert delta4 == [1]  # o3 - y
    assert delta3 == [1]  # relu' = 1 at o2 = 1
    assert delta2 == delta1 == ARTICLE_WEIGHTS[0]
    assert [w.grad for w in model.parameters()] == [200, 0, 0]


def test_failed_call_keeps_the_previous_record() -> None:
    model = article_model()
    model([1, 2, 3])
    inputs, output = model.inputs, model.output
    with pytest.raises(ValueError, match="L2 expects 3 inputs"):
        model([1, 2])
    assert model.inputs is inputs
    assert model.output is output


class Recording(Module):
    """Returns its input as a tuple (not a list) and keeps what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[list[Value]] = []

    def forward(self, x: list[Value]) -> list[Value]:
        self.given.append(x)
        return tuple(x)  # type: ignore[return-value]


def test_inner_layers_get_the_previous_output_and_return_new_lists() -> None:
    # Sequential runs its layers without checking or copying their input again (the previous
    # layer's list), but every layer's output is still a list of its own.
    caller = [1.0, 2.0]
    first, last = Recording(), Identity()
    model = Sequential(first, Linear(2, 2, seed=0), last)
    out = model(caller)
    assert caller == [1.0, 2.0]
    assert first.given[0] is model.inputs[0]
    assert first.given[0] is not caller  # numbers were wrapped on a copy
    assert type(model.inputs[1]) is list  # Recording's tuple became a list
    assert type(out) is list
    assert out is model.output
    assert out is not model.inputs[2]  # Identity returned its input: a new list of the same Values
    assert out == model.inputs[2]
    assert type(first([Value(1.0)])) is list  # called alone too


# ---- names ---------------------------------------------------------------------------------------


def test_values_made_by_a_layer_carry_its_name() -> None:
    layer = Linear(2, 1, seed=0)
    out = layer([1.0, 2.0])
    assert layer.name == "Linear"
    assert out[0].layer == "Linear"
    assert out[0].parents[0].layer == "Linear"
    assert ReLU(name="act")([Value(-1.0)])[0].layer == "act"

    model = article_model()
    (o3,) = model([200, 0, 0])
    assert [layer.name for layer in model.layers] == ["L1", "L2", "L3"]
    by_layer = {v.layer for v in topological_order(o3) if v.op}
    assert by_layer == {"L2", "L3"}
    assert o3.layer == "L3"
    assert all(v.layer == "" for v in model.inputs[0])  # inputs are made outside any layer
    assert [p.layer for p in model.parameters()] == ["L2"] * 3


def test_named_parameters_are_stable_and_readable() -> None:
    layer = Linear(2, 2, seed=0)
    names = ["weight[0][0]", "weight[0][1]", "weight[1][0]", "weight[1][1]", "bias[0]", "bias[1]"]
    assert [n for n, _ in layer.named_parameters()] == names
    assert [p.label for p in layer.parameters()] == names
    model = Sequential(Linear(2, 2, name="hidden"), ReLU(), Linear(2, 1, bias=False))
    assert [layer.name for layer in model.layers] == ["hidden", "L2", "L3"]
    assert [n for n, _ in model.named_parameters()] == [
        *(f"hidden.{n}" for n in names),
        "L3.weight[0][0]",
        "L3.weight[0][1]",
    ]
    assert [p for _, p in model.named_parameters()] == model.parameters()


def test_layer_names_must_be_unique_and_strings() -> None:
    with pytest.raises(ValueError, match="unique in a Sequential, got 'L2' twice"):
        Sequential(Identity(name="L2"), ReLU())
    with pytest.raises(TypeError, match="layer name must be a str, got int"):
        ReLU(name=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        ReLU(name="")
    with pytest.raises(TypeError, match="Sequential takes Modules, but layer 2 is"):
        Sequential(ReLU(), "relu")  # type: ignore[arg-type]


def names_and_layers(*layers: Module) -> list[tuple[str, bool, list[str]]]:
    """Each layer's name, whether it was named by position, and its parameters' layers."""
    return [(x.name, x._positioned, [p.layer for p in x.parameters()]) for x in layers]


def test_a_refused_sequential_changes_no_layer() -> None:
    l1, relu = Linear(2, 2, seed=0), ReLU()
    before = names_and_layers(l1, relu)
    with pytest.raises(ValueError, match="got 'L1' twice"):
        Sequential(l1, Linear(2, 1, seed=0, name="L1"))
    with pytest.raises(TypeError, match="layer 3 is 'relu'"):
        Sequential(l1, relu, "relu")  # type: ignore[arg-type]
    assert (
        names_and_layers(l1, relu)
        == before
        == [("Linear", False, ["Linear"] * 6), ("ReLU", False, [])]
    )
    model = Sequential(l1, relu)  # both still free to be named by position
    assert [layer.name for layer in model.layers] == ["L1", "L2"]
    assert {p.layer for p in l1.parameters()} == {"L1"}


def test_a_layer_named_by_position_is_not_renamed_by_another_model() -> None:
    first = Sequential(Identity(), ReLU(), Linear(2, 1, seed=0))
    relu, linear = first.layers[1], first.layers[2]
    before = names_and_layers(*first.layers)
    # At position 3 relu would become L3, next to first's own L3: two L3 in first.
    with pytest.raises(ValueError, match=r"layer 3 \(ReLU\) was named 'L2' by its position"):
        Sequential(Identity(), Identity(), relu)
    with pytest.raises(ValueError, match="explicit name= to share it, or build a new layer"):
        Sequential(linear)
    assert names_and_layers(*first.layers) == before
    assert [layer.name for layer in first.layers] == ["L1", "L2", "L3"]
    assert {p.layer for p in linear.parameters()} == {"L3"}


def test_a_layer_is_shared_by_its_given_name_or_at_its_own_position() -> None:
    hidden = Linear(2, 2, seed=0, name="hidden")
    first = Sequential(hidden, ReLU())
    second = Sequential(Identity(), hidden)  # a given name is kept at any position
    assert [x.name for x in first.layers] == ["hidden", "L2"]
    assert [x.name for x in second.layers] == ["L1", "hidden"]
    assert first.parameters() == second.parameters()
    relu = first.layers[1]
    third = Sequential(Identity(), relu)  # named by position, but its name stays L2
    assert third.layers[1] is relu
    assert relu.name == "L2"


def test_a_layer_appears_once_in_a_sequential() -> None:
    relu, named = ReLU(), Tanh(name="act")
    for layers in [(relu, Identity(), relu), (named, Identity(), named)]:
        with pytest.raises(ValueError, match="layer 3 is the same object as layer 1"):
            Sequential(*layers)
    assert (relu.name, relu._positioned, named.name) == ("ReLU", False, "act")


# ---- Linear --------------------------------------------------------------------------------------


def test_linear_layout_and_explicit_weights() -> None:
    layer = Linear(3, 2, weights=[[F(1, 3), 2, 0.5], [0, 0, 1]])
    assert [[w.data for w in row] for row in layer.weight] == [[F(1, 3), 2, 0.5], [0, 0, 1]]
    assert isinstance(layer.weight[0][0].data, F)
    assert layer.bias is not None
    assert [b.data for b in layer.bias] == [0, 0]
    out = layer([3, 1, 2])
    assert [v.data for v in out] == [4, 2]
    no_bias = Linear(3, 1, bias=False, weights=[[1, 1, 1]])
    assert no_bias.bias is None
    assert len(no_bias.parameters()) == 3
    assert no_bias([1, 2, 3])[0].op == "dot"


def test_linear_seed_is_private_and_none_uses_global_random() -> None:
    state = random.getstate()
    expected = random.Random(7)
    first = Linear(3, 2, seed=7)
    assert random.getstate() == state  # an int seed does not touch the global stream
    assert [w.data for w in first.parameters()][:6] == [expected.uniform(-1, 1) for _ in range(6)]
    assert [w.data for w in Linear(3, 2, seed=7).parameters()] == [
        w.data for w in first.parameters()
    ]
    random.seed(7)
    assert [w.data for w in Linear(3, 2).parameters()] == [w.data for w in first.parameters()]
    random.setstate(state)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"weights": [[1, 2, 3]]},
            ValueError,
            r"2 rows \(n_out\) of 3 numbers \(n_in\), got 1 rows",
        ),
        ({"weights": [[1, 2, 3], [1, 2]]}, ValueError, "but row 1 has 2"),
        ({"weights": [[1, 2, 3], 4]}, TypeError, "but row 1 is int"),
        ({"weights": [[1, 2, 3], "123"]}, TypeError, "but row 1 is str"),
        ({"weights": 5}, TypeError, r"of 3 numbers \(n_in\), got int"),
        ({"bias": "no"}, TypeError, "bias must be True or False, got str: 'no'"),
        ({"bias": 0}, TypeError, "bias must be True or False, got int: 0"),
        ({"weights": [[1, 2, 3], [1, "2", 3]]}, TypeError, r"weights\[1\]\[1\] is str"),
        ({"weights": [[1, 2, 3], [1, True, 3]]}, TypeError, r"weights\[1\]\[1\] is bool"),
        ({"weights": [[1, 2, 3], [1, 2, 3]], "seed": 1}, ValueError, "not both"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
    ],
)
def test_linear_rejects_bad_arguments(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Linear(3, 2, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -1])
def test_linear_rejects_counts_below_one(n: int) -> None:
    with pytest.raises(ValueError, match=f"n_in must be an int >= 1, got {n}"):
        Linear(n, 1)
    with pytest.raises(ValueError, match=f"n_out must be an int >= 1, got {n}"):
        Linear(1, n)


@pytest.mark.parametrize(
    ("n", "kind"), [(2.0, "float"), (True, "bool"), ("3", "str"), (None, "NoneType")]
)
def test_linear_rejects_counts_of_the_wrong_type(n: object, kind: str) -> None:
    # A wrong type is a TypeError that names the type and what is accepted.
    with pytest.raises(TypeError, match=f"n_in must be an int >= 1, got {kind}: "):
        Linear(n, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"n_out must be an int >= 1, got {kind}: "):
        Linear(1, n)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"n_in must be an int >= 1, got {kind}: "):
        _checks.check_count("n_in", n)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        ([1, 2], ValueError, r"L1 expects 3 inputs \(n_in\), got 2"),
        ([1, "2", 3], TypeError, r"x\[1\] is str"),
        ([1, True, 3], TypeError, r"x\[1\] is bool"),
        (1.0, TypeError, r"takes a list of Values or numbers \(int, float, Fraction\), got float"),
        ("123", TypeError, "got str"),
    ],
)
def test_layers_reject_bad_input_and_change_nothing(x: object, error: type, message: str) -> None:
    model = Sequential(Linear(3, 1, seed=0))
    before = [(p.data, p.grad) for p in model.parameters()]
    with pytest.raises(error, match=message):
        model.layers[0](x)  # type: ignore[arg-type]
    assert [(p.data, p.grad) for p in model.parameters()] == before
    assert model.inputs == []
    assert model.output == []


# ---- element-wise layers, Module -----------------------------------------------------------------


def test_layers_wrap_numbers_and_always_return_lists() -> None:
    v = Value(2.0)
    out = Identity()([v, 3, F(1, 2)])
    assert out[0] is v
    assert [o.data for o in out] == [2.0, 3, F(1, 2)]
    assert all(isinstance(o, Value) and not o.parents for o in out[1:])
    for layer in (Identity(), ReLU(), Tanh(), Sigmoid(), Linear(1, 1, seed=0)):
        result = layer([0.5])
        assert isinstance(result, list)
        assert len(result) == 1
    assert Tanh()([0])[0].data == 0.0
    assert Sigmoid()([0])[0].data == 0.5


def test_zero_grad_resets_every_parameter() -> None:
    model = MLP(2, [2, 1], seed=3)
    total_of(model([1.0, -1.0])).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


def test_module_forward_is_abstract() -> None:
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        Module()([1])


# ---- MLP -----------------------------------------------------------------------------------------


def test_mlp_structure() -> None:
    model = MLP(2, [16, 16, 1], seed=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [layer.name for layer in model.layers] == ["L1", "L2", "L3", "L4", "L5"]
    assert len(model.parameters()) == (2 * 16 + 16) + (16 * 16 + 16) + (16 + 1)
    assert len(model([0.5, -0.5])) == 1
    assert type(MLP(1, [2, 1], activation="sigmoid").layers[1]) is Sigmoid


def test_mlp_seed_reproduces_micrograd() -> None:
    state = random.getstate()
    random.seed(1337)
    theirs = micrograd.nn.MLP(2, [16, 16, 1])
    random.setstate(state)
    ours = MLP(2, [16, 16, 1], seed=1337)
    linears = [layer for layer in ours.layers if isinstance(layer, Linear)]
    for layer, their_layer in zip(linears, theirs.layers, strict=True):
        assert [[w.data for w in row] for row in layer.weight] == [
            [w.data for w in neuron.w] for neuron in their_layer.neurons
        ]
    # Same sums in the same order (their bias 0 comes first, ours last; 0 + a == a exactly).
    assert ours([0.3, -1.2])[0].data == theirs([0.3, -1.2]).data


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            (2, [2, 1]),
            {"activation": "gelu"},
            ValueError,
            r"unknown activation: 'gelu' \(must be one of \('relu', 'tanh', 'sigmoid'\)\)",
        ),
        ((2, []), {}, ValueError, "sizes must be a non-empty list"),
        ((2, [2, 0]), {}, ValueError, r"sizes\[1\] must be an int >= 1, got 0"),
        ((0, [1]), {}, ValueError, "n_in must be an int >= 1"),
        ((2, [2, 1.0]), {}, TypeError, r"sizes\[1\] must be an int >= 1, got float: 1.0"),
        ((2, [True]), {}, TypeError, r"sizes\[0\] must be an int >= 1, got bool: True"),
        ((2.0, [1]), {}, TypeError, "n_in must be an int >= 1, got float: 2.0"),
        ((2, 3), {}, TypeError, "sizes must be a list of ints >= 1 .*, got int: 3"),
        ((2, "16,1"), {}, TypeError, "sizes must be a list of ints >= 1 .*, got str"),
        ((2, [1]), {"activation": None}, TypeError, "activation must be a str, one of"),
        (
            (2, [1]),
            {"activation": ["relu"]},
            TypeError,
            r"activation must be a str, one of \('relu', 'tanh', 'sigmoid'\), got list: \['relu'\]",
        ),
        ((2, [1]), {"seed": "1"}, TypeError, "seed must be an int or None"),
    ],
)
def test_mlp_rejects_bad_arguments(
    args: tuple[object, ...], kwargs: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        MLP(*args, **kwargs)  # type: ignore[arg-type]


def test_numbers_are_recognised_by_the_engines_helper() -> None:
    # One definition of "a number a Value can hold" for the whole package: engine.is_number.
    assert vars(nn)["is_number"] is engine.is_number
    assert "_is_number" not in vars(nn)


def test_activations_is_one_registry_of_names_and_layers() -> None:
    # The CLI's --activation choices and MLP's check and construction all read this one dict.
    expected = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
    assert expected == nn.ACTIVATIONS
    assert "ACTIVATIONS" in nn.__all__
    for name, layer in nn.ACTIVATIONS.items():
        assert type(MLP(1, [2, 1], activation=name, seed=0).layers[1]) is layer


def test_counts_are_checked_by_the_shared_helper() -> None:
    # One wording of "an int >= 1" for the package: _checks.check_count.
    assert vars(nn)["check_count"] is _checks.check_count
    assert vars(nn)["check_choice"] is _checks.check_choice
    assert "_check_count" not in vars(nn)


def test_docstring_examples() -> None:
    result = doctest.testmod(nn)
    assert result.attempted > 0
    assert result.failed == 0


def test_ten_thousand_nested_sequentials_work_without_recursion() -> None:
    import sys

    depth = 10_000
    assert depth > sys.getrecursionlimit()  # a recursive walk would raise RecursionError
    model: Module = Linear(1, 1, weights=[[F(1, 2)]], bias=True)
    for _ in range(depth):
        model = Sequential(model)
    names = [n for n, _ in model.named_parameters()]
    assert names == ["model." * (depth - 1) + "L1." + n for n in ("weight[0][0]", "bias[0]")]
    assert [p.data for p in model.parameters()] == [F(1, 2), 0]
    (y,) = model([4])
    assert y.data == 2
    assert y.layer == "L1"
    y.backward()
    assert [p.grad for p in model.parameters()] == [4, 1]
    inner = model
    for _ in range(depth):  # every level records its input and output, as one level does
        assert isinstance(inner, Sequential)
        assert inner.output == [y]
        assert [v.data for v in inner.inputs[0]] == [4]
        inner = inner.layers[0]
    text = repr(model)
    assert text.startswith("Sequential(" * depth + "Linear(")
    assert text.endswith(", name='model')" * depth)
    model.zero_grad()
    assert [p.grad for p in model.parameters()] == [0, 0]


def test_ten_thousand_nested_sequentials_round_trip_a_checkpoint(tmp_path: Path) -> None:
    from tinygrad_edu import checkpoint

    def nested(w: F) -> Module:
        model: Module = Linear(1, 1, weights=[[w]], bias=False)
        for _ in range(10_000):
            model = Sequential(model)
        return model

    path = checkpoint.save(nested(F(1, 3)), tmp_path / "deep.json")
    other = nested(F(5))
    checkpoint.load(other, path)
    assert [p.data for p in other.parameters()] == [F(1, 3)]


# ---- cycles and shared layers -------------------------------------------------------------------


def test_a_sequential_inside_itself_is_refused_by_every_walk(tmp_path: Path) -> None:
    # Only a change to ``layers`` after construction can make a cycle; every walk hung before
    # (forward grew its stack without end).
    from tinygrad_edu import checkpoint

    inner = Sequential(Linear(1, 1, weights=[[F(1, 2)]]), name="inner")
    model = Sequential(Identity(), inner, name="model")
    inner.layers.append(model)
    message = r"model\.inner\.model is model again: a Sequential contains itself"
    for walk in (model.named_parameters, model.parameters, model.zero_grad):
        with pytest.raises(ValueError, match=message):
            walk()
    with pytest.raises(ValueError, match=message):
        model([1])
    assert (model.inputs, model.output) == ([], [])  # the failed call records nothing
    path = tmp_path / "cycle.json"
    with pytest.raises(ValueError, match=message):
        checkpoint.save(model, path)
    assert list(tmp_path.iterdir()) == []
    # repr never raises (a debugger shows it): the repeat is "...", as Python's own reprs do.
    assert repr(model) == (
        "Sequential(Identity(name='L1'), Sequential(Linear(1, 1, name='L1'), ..., "
        "name='inner'), name='model')"
    )
    alone = Sequential(name="m")
    alone.layers.append(alone)
    with pytest.raises(ValueError, match=r"m\.m is m again"):
        alone([1])
    with pytest.raises(ValueError, match=r"m\.m is m again"):
        alone.parameters()
    assert repr(alone) == "Sequential(..., name='m')"


def test_a_layer_shared_in_two_places_runs_twice_and_its_parameters_are_listed_once() -> None:
    # Not a cycle: weight tying. As in PyTorch, each parameter is listed once, under its
    # first name, so that an optimizer (which refuses a parameter given twice) takes them.
    from tinygrad_edu.optim import SGD

    hidden = Linear(1, 1, weights=[[F(2)]], name="hidden")
    first, second = Sequential(hidden, name="a"), Sequential(hidden, name="b")
    model = Sequential(first, ReLU(), second, name="model")
    (y,) = model([3])
    assert y.data == 12  # 2 · relu(2 · 3)
    names = ["a.hidden.weight[0][0]", "a.hidden.bias[0]"]
    assert [n for n, _ in model.named_parameters()] == names
    assert model.parameters() == hidden.parameters()
    y.backward()
    assert [p.grad for p in model.parameters()] == [6 + 2 * 3, 1 + 2]  # both uses add up
    SGD(model.parameters(), lr=F(1, 10)).step()
    assert [p.data for p in hidden.parameters()] == [F(2) - F(12, 10), F(-3, 10)]
    assert repr(model).count("Linear(1, 1, name='hidden')") == 2


def test_parameters_of_shared_sequentials_take_time_linear_in_the_modules() -> None:
    """One Linear shared through 40 levels of two Sequentials each holding the level below (2**40
    paths): its 2 parameters are listed once, at once (the walk re-walked every path)."""
    inner: Module = Linear(1, 1, seed=0)
    for k in range(40):
        inner = Sequential(Sequential(inner, name="a"), Sequential(inner, name="b"), name=f"s{k}")
    names = [n for n, _ in inner.named_parameters()]
    assert len(names) == 2
    assert names[0].endswith("weight[0][0]")
    assert len(inner.parameters()) == 2
