"""Optimisers as objects (chainrule.training.optim, public as chainrule.optim): configuration,
state round trips, checks, and the fused step they declare. Their updates against the
course's code: tests/test_training.py."""

import numpy as np
import pytest

from chainrule import optim
from chainrule.backends.registry import Ops
from chainrule.errors import InputError
from chainrule.training import optim as training_optim

PARAMS = {"W1": np.ones((3, 2)), "b1": np.zeros((3, 1)), "W2": np.ones((1, 3)),
          "b2": np.zeros((1, 1))}


def test_public_path_is_the_same_module_contents():
    for name in optim.__all__:
        assert getattr(optim, name) is getattr(training_optim, name)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_make_optimizer_round_trips_its_config(name):
    opt = optim.make_optimizer(name)
    again = optim.make_optimizer(opt.get_config())
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    assert optim.make_optimizer(opt) is not opt  # a fresh copy of an instance


def test_make_optimizer_rejects_unknown_names_and_mixed_hyperparameters():
    with pytest.raises(InputError, match="unknown optimizer"):
        optim.make_optimizer("lbfgs")
    with pytest.raises(InputError, match="does not take"):
        optim.make_optimizer("gd", beta=0.9)
    with pytest.raises(InputError, match="either"):
        optim.make_optimizer(optim.Adam(), beta1=0.5)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_state_round_trip_and_shape_checks(name):
    opt = optim.make_optimizer(name)
    opt.reset(PARAMS)
    Ws, bs = [PARAMS["W1"].copy(), PARAMS["W2"].copy()], [PARAMS["b1"].copy(),
                                                          PARAMS["b2"].copy()]
    grads = [np.full_like(W, 0.5) for W in Ws], [np.full_like(b, 0.25) for b in bs]
    opt.update(Ops("numpy"), Ws, bs, *grads, 0.1)
    state = opt.get_state()
    other = optim.make_optimizer(name)
    other.set_state(state, PARAMS)
    assert other.t == opt.t
    for k, v in state.items():
        np.testing.assert_array_equal(other.get_state()[k], v)
    if state:
        key = next(k for k in state if k != "t")
        bad = dict(state, **{key: np.zeros((7, 7))})
        with pytest.raises(InputError, match="shape"):
            other.set_state(bad, PARAMS)
        with pytest.raises(InputError, match="does not fit"):
            other.set_state({}, PARAMS)


def test_only_gradient_descent_declares_the_fused_sgd_step():
    fused = {name for name, cls in optim.OPTIMIZERS.items() if cls.fused_update is not None}
    assert fused == {"gd"} and optim.GradientDescent.fused_update == "sgd"


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.9"])
def test_hyperparameters_are_validated(bad):
    with pytest.raises(InputError):
        optim.Momentum(beta=bad)
