"""The training state and its array schema (chainrule.training.state): what get_state writes,
what set_state accepts, and that a failed set_state changes nothing."""

import numpy as np
import pytest

from chainrule import Network
from chainrule.errors import InputError
from chainrule.training.state import TrainState, get_state, set_state


def _trained():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 40)), (rng.random((1, 40)) < 0.5).astype(float)
    net = Network([3, 4, 1], backend="numpy", seed=1)
    net.fit(X, Y, epochs=3, optimizer="adam", mini_batch_size=16, early_stopping=True,
            progress=False)
    return net


def test_schema_of_a_trained_network():
    state = _trained().get_state()
    train = sorted(k for k in state if k.startswith("train/") and "/best/" not in k)
    assert train == sorted(f"train/{k}" for k in
                           list(TrainState.SCALARS) + list(TrainState.JSON) + ["rng"])
    for key, dtype in TrainState.SCALARS.items():
        assert state[f"train/{key}"].dtype == dtype and state[f"train/{key}"].shape == ()
    assert {k for k in state if k.startswith("opt/")} >= {"opt/v_dW1", "opt/s_db2", "opt/t"}
    assert {k for k in state if k.startswith("train/best/")} == {
        "train/best/W1", "train/best/b1", "train/best/W2", "train/best/b2"}


def test_round_trip_restores_counters_generator_and_optimizer_state():
    net = _trained()
    state = net.get_state()
    params, opt, train, rng, running = set_state(state, net.layer_dims, net.dtype)
    assert running == {}
    assert (train.epoch, train.steps, train.signature) == (3, 9, net.train_state_.signature)
    assert rng.bit_generator.state == net.rng.bit_generator.state
    again = get_state(params, opt, train, rng)
    assert again.keys() == state.keys()
    for k, v in state.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)


def test_without_training_state_only_parameters():
    net = Network([2, 1], backend="numpy")
    state = net.get_state()
    assert set(state) == {"W1", "b1"}
    params, opt, train, rng, running = set_state(state, net.layer_dims, net.dtype)
    assert running == {}
    assert opt is None and train is None and rng is None


@pytest.mark.parametrize("damage", ["missing", "shape", "rng", "opt shape"])
def test_bad_state_is_refused_and_changes_nothing(damage):
    net = _trained()
    state = net.get_state()
    if damage == "missing":
        del state["train/steps"]
    elif damage == "shape":
        state["train/epoch"] = np.arange(3)
    elif damage == "rng":
        state["train/rng"] = np.frombuffer(b'{"bit_generator": "nope"}', np.uint8).copy()
    else:
        state["opt/v_dW1"] = np.zeros((9, 9))
    before = net.get_state()
    with pytest.raises(InputError):
        net.set_state(state)
    after = net.get_state()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v, err_msg=k)
