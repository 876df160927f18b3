"""An optimiser added only to training/optim.py trains on every backend: a backend whose compiled
fit_epochs does not know it composes its steps (the generic engine), with the same results."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Network
from chainrule.training import optim

from conftest import TOLERANCES


class SignGD(optim.Optimizer):
    """``W = W - lr sign(dW)``: an optimiser none of the compiled engines knows."""

    name = "signgd"

    def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
        return ({key: P - P.dtype.type(learning_rate) * np.sign(dP)
                 for key, P, dP in self._pairs(Ws, bs, dWs, dbs)}, {}, self.t)


@pytest.fixture
def signgd(monkeypatch):
    monkeypatch.setitem(optim.OPTIMIZERS, "signgd", SignGD)
    return SignGD


def _fit(backend, dtype, keep_prob):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 37)).astype(dtype)
    Y = (rng.random((1, 37)) < 0.5).astype(dtype)
    net = Network([4, 5, 3, 1], hidden="tanh", seed=1, dtype=dtype, backend=backend)
    net.fit(X, Y, epochs=4, learning_rate=0.01, optimizer="signgd", mini_batch_size=8,
            keep_prob=keep_prob, lambd=0.1, progress=False)
    return net


@pytest.mark.parametrize("keep_prob", [1.0, 0.8], ids=["no-dropout", "dropout"])
def test_an_optimiser_unknown_to_the_compiled_engines_trains_like_numpy(signgd, backend, dtype,
                                                                       keep_prob):
    expected = _fit("numpy", dtype, keep_prob)
    actual = _fit(backend, dtype, keep_prob)
    assert actual.steps_trained_ == expected.steps_trained_ == 4 * 5
    for key, value in expected.parameters.items():
        assert actual.parameters[key].dtype == dtype
        np.testing.assert_allclose(actual.parameters[key], value, err_msg=key,
                                   **TOLERANCES[np.dtype(dtype)])
    np.testing.assert_allclose(actual.history_["cost"], expected.history_["cost"],
                               **TOLERANCES[np.dtype(dtype)])


def test_a_subclass_of_a_compiled_optimiser_is_composed_unless_it_says_otherwise():
    """A subclass (its own update) is not run as its parent's compiled kernel: its code is
    None until it sets one, and so is its plan's."""
    from chainrule.backends.plan import FitPlan

    class DoubledAdam(optim.Adam):
        name = "doubled_adam"

        def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
            return super()._candidates(Ws, bs, dWs, dbs, 2 * learning_rate)

    class SameAdam(optim.Adam):
        code = optim.Adam.code

    assert optim.Adam.code is not None and DoubledAdam.code is None
    assert SameAdam.code == optim.Adam.code
    plan = FitPlan.build([2, 1], ["sigmoid"], "binary_crossentropy", DoubledAdam(),
                         mini_batch_size=4)
    assert plan.optimizer_code is None and plan.state_prefixes == ("v", "s")
