"""Shape narrative: every formula with its shapes, checked against a real run of the reference."""

import numpy as np
import pytest

from chainrule import reference as ref
from chainrule.errors import InputError
from chainrule.explain import narrative_steps, shape_narrative
from chainrule.explain.narrative import MARK


@pytest.mark.parametrize("dims, hidden, output, m", [
    ([4, 3, 2, 1], "relu", "sigmoid", 5),
    ([3, 5, 4], "tanh", "softmax", 2),
    ([2, 3, 2], "sigmoid", "identity", 1),
    ([2, 3, 2], "relu", "tanh", 3),
])
def test_narrative_shapes_match_a_real_run(dims, hidden, output, m):
    steps, dims, acts, loss = narrative_steps(dims, m, hidden=hidden, output=output)
    rng = np.random.default_rng(0)
    params = ref.initialize_parameters(dims, rng=rng)
    X = rng.standard_normal((dims[0], m))
    AL, caches = ref.model_forward(X, params, acts)
    Y = np.full(AL.shape, 0.5) if loss != "categorical_crossentropy" else np.eye(dims[-1], m)
    actual = {}
    for l, ((A_prev, W, b), Z) in enumerate(caches, 1):
        actual[("forward", f"Z{l}")] = Z.shape
        actual[("forward", f"A{l}")] = AL.shape if l == len(caches) else caches[l][0][0].shape
    for convention in ("L", "J"):
        grads = ref.model_backward(AL, Y, caches, acts, loss, convention=convention)
        for key, value in grads.items():
            actual[(f"backward {convention}", key)] = value.shape
        dAL = ref.cost_derivative(AL, Y, loss)
        actual[(f"backward {convention}", f"dA{len(caches)}")] = dAL.shape
    checked = 0
    for st in steps:
        if st.stage == "cost":
            assert st.shape == ()
            continue
        assert actual[(st.stage, st.result)] == st.shape, (st.stage, st.result)
        checked += 1
    assert checked >= 2 * len(caches) + 2 * 3 * len(caches)


def test_narrative_marks_where_1_over_m_enters():
    steps, *_ = narrative_steps([5, 4, 3, 1], 7)
    marked = {(st.stage, st.result) for st in steps if st.one_over_m}
    assert marked == {("cost", "J"), ("backward J", "dZ3")} | {
        ("backward L", f"d{p}{l}") for l in (1, 2, 3) for p in "Wb"}


def test_shape_narrative_course_network():
    text = shape_narrative([12288, 20, 7, 5, 1], 209)
    assert "Z1 = W1 · A0 + b1" in text
    assert "(20, 209) = (20, 12288) · (12288, 209) + (20, 1)" in text
    assert "dW1 = (1/m) dZ1 · A0ᵀ" in text and "(20, 12288) = (20, 209) · (209, 12288)" in text
    assert "dZ4 = (1/m)(A4 - Y)" in text
    lines = text.splitlines()
    assert sum(MARK in line for line in lines) == 1 + 8 + 1
    assert "m = 209 times" in text


def test_shape_narrative_one_convention_and_errors():
    text = shape_narrative([3, 2, 1], 4, conventions=("L",))
    assert "convention J" not in text and "convention L" in text
    with pytest.raises(InputError):
        shape_narrative([3, 2, 1], 0)
    with pytest.raises(InputError):
        shape_narrative([3], 4)
    with pytest.raises(InputError):
        shape_narrative([3, 2, 1], 4, conventions=("K",))
