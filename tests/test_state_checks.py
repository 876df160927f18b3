"""chainrule._state_checks: the one rule for a network's state (load now, set_state next)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule import InputError, Network, ShapeError
from chainrule._state_checks import TRAIN_KEYS, validate_history, validate_state

DIMS = [3, 4, 2]


def trained_state(dtype="float64", optimizer="adam", **fit):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 12))
    Y = (rng.random((2, 12)) > 0.5).astype(float)
    net = Network(DIMS, seed=0, dtype=dtype, backend="numpy")
    net.fit(X, Y, epochs=3, optimizer=optimizer, progress=False, **fit)
    return net.get_state()


def as_json(obj):
    return np.frombuffer(json.dumps(obj).encode(), np.uint8)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_validate_state_accepts_what_fit_writes_unchanged(dtype, optimizer):
    state = trained_state(dtype, optimizer, early_stopping=True, validation_fraction=0.25)
    clean = validate_state(state, DIMS, dtype)
    assert sorted(clean) == sorted(state)
    for key, value in state.items():
        assert clean[key].dtype == value.dtype, key
        np.testing.assert_array_equal(clean[key], value, err_msg=key)
        assert clean[key] is not value  # copies: the input is never modified or shared


def test_validate_state_converts_moments_and_counters():
    state = trained_state()
    state["opt/v_dW1"] = state["opt/v_dW1"].astype(np.float32)
    state["train/epoch"] = np.array([3], dtype=np.int32)
    clean = validate_state(state, DIMS, "float64")
    assert clean["opt/v_dW1"].dtype == np.float64 and clean["opt/v_dW1"].flags.c_contiguous
    assert clean["train/epoch"].dtype == np.int64 and clean["train/epoch"].shape == ()


def test_validate_state_of_parameters_alone():
    net = Network(DIMS, backend="numpy")
    clean = validate_state(net.get_state(), DIMS, "float64")
    assert sorted(clean) == ["W1", "W2", "b1", "b2"]


BAD = [
    ("opt/v_dW1", lambda s: np.full_like(s["opt/v_dW1"], np.nan), InputError, "contains NaN"),
    ("opt/s_db2", lambda s: np.full_like(s["opt/s_db2"], np.inf), InputError, "contains NaN or inf"),
    ("opt/s_dW1", lambda s: -np.ones_like(s["opt/s_dW1"]), InputError,
     "average of squared gradients"),
    ("opt/v_dW1", lambda s: np.zeros((3, 4)), InputError, r"expected \(4, 3\)"),
    ("opt/v_dW1", lambda s: "x", InputError, "expected a numeric array"),
    ("opt/v_dW1", lambda s: {"a": 1}, InputError, "expected a numeric array"),
    ("opt/v_dW9", lambda s: np.zeros((4, 3)), InputError, "does not have"),
    ("opt/momentum", lambda s: np.zeros(1), InputError, "not an optimiser moment"),
    ("opt/t", lambda s: np.array(-1), InputError, "'opt/t' is -1"),
    ("opt/t", lambda s: np.array(2.5), InputError, "must be an integer"),
    ("opt/t", lambda s: np.array([1, 2]), InputError, "one integer"),
    ("train/epoch", lambda s: np.array(-5), InputError, "'train/epoch' is -5"),
    ("train/steps", lambda s: np.array(-1), InputError, ">= 0"),
    ("train/skipped", lambda s: np.array(-1), InputError, ">= 0"),
    ("train/wait", lambda s: np.array(-1), InputError, ">= 0"),
    ("train/best_epoch", lambda s: np.array(-2), InputError, ">= -1"),
    ("train/epoch", lambda s: np.array(np.nan), InputError, "must be an integer"),
    ("train/epoch", lambda s: "five", InputError, "expected a numeric array"),
    ("train/epoch", lambda s: None, InputError, "expected a numeric array"),
    ("train/best", lambda s: np.array(np.nan), InputError, "best validation cost"),
    ("train/best", lambda s: np.array(-np.inf), InputError, "best validation cost"),
    ("train/rng", lambda s: np.frombuffer(b"\xff\xfe", np.uint8), InputError, "not readable"),
    ("train/rng", lambda s: as_json([1, 2]), InputError, "must be a generator state"),
    ("train/rng", lambda s: as_json({"bit_generator": "PCG64", "state": {"state": -1, "inc": 1},
                                     "has_uint32": 0, "uinteger": 0}),
     InputError, "not a valid PCG64 state"),
    ("train/rng", lambda s: np.array([1.5, 2.5]), InputError, "1-D uint8 array"),
    ("train/signature", lambda s: as_json(5), InputError, "fingerprint"),
    ("train/optimizer", lambda s: as_json([1]), InputError, "optimiser configuration"),
    ("train/best/W1", lambda s: np.full((4, 3), np.nan), InputError, "early-stopping best"),
    ("W1", lambda s: np.zeros((3, 4)), ShapeError, "is it transposed"),
    ("W1", lambda s: np.full((4, 3), np.nan), InputError, "W1 contains NaN"),
    ("something", lambda s: np.zeros(1), InputError, "not a parameter"),
]


@pytest.mark.parametrize("key, make, error, words", BAD, ids=[f"{k}-{w}" for k, _, _, w in BAD])
def test_validate_state_refuses_each_bad_entry(key, make, error, words):
    state = trained_state()
    if key.startswith("train/best/"):
        state.update({f"train/best/{k}": v for k, v in state.items() if k[:1] in "Wb"})
    before = {k: v.copy() for k, v in state.items()}
    state[key] = make(state)
    with pytest.raises(error, match=words):
        validate_state(state, DIMS, "float64")
    for k, v in before.items():  # nothing was modified in place
        if k != key:
            np.testing.assert_array_equal(state[k], v)


@pytest.mark.parametrize("missing", TRAIN_KEYS)
def test_validate_state_needs_every_training_entry(missing):
    state = trained_state()
    del state[missing]
    with pytest.raises(InputError, match=f"lacks {missing}"):
        validate_state(state, DIMS, "float64")


@pytest.mark.parametrize("state, words", [([1, 2], "must be a dict"), (None, "must be a dict"),
                                          ({1: np.zeros(1)}, "keys must be strings")])
def test_validate_state_refuses_what_is_not_a_state(state, words):
    with pytest.raises(InputError, match=words):
        validate_state(state, DIMS, "float64")


def test_validate_state_checks_its_own_arguments():
    state = trained_state()
    with pytest.raises(InputError, match="layer_dims"):
        validate_state(state, "34", "float64")
    with pytest.raises(InputError, match="dtype"):
        validate_state(state, DIMS, "int8")


def test_validate_history():
    assert validate_history(None) == {"epoch": [], "cost": []}
    h = {"epoch": [0, 1], "cost": [0.5, 0.4], "val_cost": [0.6]}
    assert validate_history(h) == h and validate_history(h) is not h
    for bad, words in (([1], "must be a dict"), ({"cost": "x"}, "must be a list"),
                       ({"epoch": [0], "cost": [True]}, "expected numbers"),
                       ({"epoch": [0.5], "cost": [1.0]}, "integers >= 0"),
                       ({"epoch": [0], "cost": [1.0, 2.0]}, "1 epochs but 2 costs"),
                       ({"epoch": [0, 1], "cost": [1.0]}, "2 epochs but 1 costs"),
                       ({"epoch": [0], "cost": [1.0], "lr": [1.0, 1.0]}, "only 1 epochs")):
        with pytest.raises(InputError, match=words):
            validate_history(bad)
