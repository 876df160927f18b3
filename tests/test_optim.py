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


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_each_table_row_describes_its_optimiser(name):
    """What the engines read of a row (state prefixes, the hyperparameter vector, the step's
    bounds) agrees with what its update does: the state it keeps, and bounds at or above the
    largest new parameter and state after real steps."""
    opt = optim.make_optimizer(name)
    rng = np.random.default_rng(5)
    Ws, bs = [rng.standard_normal((3, 2))], [rng.standard_normal((3, 1))]
    opt.reset({"W1": Ws[0], "b1": bs[0]})
    assert sorted(opt.state) == sorted(f"{p}_d{k}" for p in opt.state_prefixes
                                       for k in ("W1", "b1"))
    hyper = opt.hyperparameters()
    assert len(hyper) == 4 and all(np.isfinite(hyper))
    assert set(optim.hyperparameter_names(name)) == set(opt.get_config()) - {"name"}

    def max_abs(arrays):
        return max((float(np.abs(a).max()) for a in arrays), default=0.0)

    p, v, s = max_abs(Ws + bs), 0.0, 0.0
    for step in range(4):
        dWs, dbs = [rng.standard_normal((3, 2)) * 3], [rng.standard_normal((3, 1))]
        g_max = max_abs(dWs + dbs)
        bound = opt.bound(p, v, s, 0.1, g_max, opt.t)
        assert opt.update(_SgdOps, Ws, bs, dWs, dbs, 0.1) is None
        if bound is None:  # no cheap bound: its steps are always checked exactly
            continue
        p, v, s = bound
        assert max_abs(Ws + bs) <= p * (1 + 1e-12), step
        assert max_abs([a for k, a in opt.state.items() if k.startswith("v_")]) <= v * 1.000001
        assert max_abs([a for k, a in opt.state.items() if k.startswith("s_")]) <= s * 1.000001


class _SgdOps:
    """The layer op gradient descent asks of a backend."""

    @staticmethod
    def sgd_update(Ws, bs, dWs, dbs, learning_rate):
        for P, dP in zip(Ws + bs, dWs + dbs):
            P -= learning_rate * dP


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.9"])
def test_hyperparameters_are_validated(bad):
    with pytest.raises(InputError):
        optim.Momentum(beta=bad)
