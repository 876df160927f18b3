"""Issue 15 §5: ``Network.parameters`` cannot be bypassed: item assignment is checked as
assigning the whole dict, entries cannot be removed, and an assignment while fit runs is
refused (never silently discarded); one in ``on_fit_begin`` applies to the fit."""

import copy
import pickle

import numpy as np
import pytest

from chainrule import ChainruleError, Network
from chainrule.callbacks import Callback
from chainrule.errors import InputError, ShapeError


def data(m=10):
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, m)), (rng.random((1, m)) > 0.5).astype(float)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_item_assignment_stores_a_checked_contiguous_writable_copy(backend, dtype):
    X, Y = data()
    net = Network([2, 3, 1], backend=backend, dtype=dtype)
    W = np.asfortranarray(net.parameters["W1"].astype(np.float64) * 2)
    W.setflags(write=False)
    net.parameters["W1"] = W
    stored = net.parameters["W1"]
    assert stored.dtype == net.dtype and stored.flags.c_contiguous and stored.flags.writeable
    assert stored is not W and np.array_equal(stored, W.astype(net.dtype))
    net.step(X, Y, 0.1)  # the kernels accept it
    assert np.isfinite(net.parameters["W1"]).all()
    net.parameters["b1"] = np.ones((3, 1), np.float16)  # any float dtype is cast
    assert net.parameters["b1"].dtype == net.dtype


@pytest.mark.parametrize("value, error, match", [
    (np.full((3, 2), np.nan), InputError, "W1"),
    (np.zeros((2, 3)), ShapeError, "W1"),
    (np.full((3, 2), 1e300), InputError, "W1"),  # inf in float32, finite in float64: below
    ("W", InputError, "W1"),
])
def test_item_assignment_refuses_what_assignment_refuses(value, error, match):
    net = Network([2, 3, 1], backend="numpy", dtype="float32")
    before = {k: v.copy() for k, v in net.parameters.items()}
    with pytest.raises(error, match=match):
        net.parameters["W1"] = value
    assert all(np.array_equal(before[k], v) for k, v in net.parameters.items())


def test_entries_cannot_be_added_or_removed():
    net = Network([2, 3, 1], backend="numpy")
    with pytest.raises(InputError, match="cannot be added"):
        net.parameters["W3"] = np.zeros((1, 1))
    for call in (lambda p: p.pop("W1"), lambda p: p.__delitem__("b1"), lambda p: p.clear(),
                 lambda p: p.popitem(), lambda p: p.setdefault("W9", 1)):
        with pytest.raises(InputError, match="cannot be removed"):
            call(net.parameters)
    assert sorted(net.parameters) == ["W1", "W2", "b1", "b2"]
    net.parameters.update(W2=np.ones((1, 3)))  # update goes through the check
    assert np.array_equal(net.parameters["W2"], np.ones((1, 3)))


def test_copies_and_pickles_keep_working():
    net = Network([2, 3, 1], backend="numpy")
    p = copy.deepcopy(net.parameters)
    assert type(p) is dict and sorted(p) == sorted(net.parameters)
    clone = pickle.loads(pickle.dumps(net))
    clone.parameters["W1"] = np.zeros((3, 2))  # the clone's dict checks against the clone
    assert not np.array_equal(net.parameters["W1"], clone.parameters["W1"])
    with pytest.raises(ShapeError):
        clone.parameters["W1"] = np.zeros((2, 2))


@pytest.mark.parametrize("how", ["dict", "item", "set_state"])
def test_assigning_during_fit_is_refused_and_the_model_agrees_with_its_history(how):
    X, Y = data()
    net = Network([2, 3, 1], backend="numpy")
    zeros = {k: np.zeros_like(v) for k, v in net.parameters.items()}

    class Assign(Callback):
        def on_epoch_end(self, net, epoch, logs):
            if how == "dict":
                net.parameters = zeros
            elif how == "item":
                net.parameters["W1"] = zeros["W1"]
            else:
                net.set_state(zeros)

    with pytest.raises(ChainruleError, match="while fit runs"):
        net.fit(X, Y, epochs=3, cost_every=1, progress=False, callbacks=[Assign()])
    AL, _ = net.forward(X)
    assert np.isclose(net.cost(AL, Y), net.history_["cost"][-1])
    net.parameters = zeros  # after the fit it works again
    assert all(np.array_equal(v, zeros[k]) for k, v in net.parameters.items())


def test_an_assignment_in_on_fit_begin_applies_to_the_fit():
    X, Y = data()
    net = Network([2, 3, 1], backend="numpy")
    start = {k: v * 0.5 for k, v in net.parameters.items()}

    class Begin(Callback):
        def on_fit_begin(self, net):
            net.parameters = start

    net.fit(X, Y, epochs=0, progress=False, callbacks=[Begin()])
    AL, _ = net.forward(X)
    assert np.isclose(net.cost(AL, Y), net.history_["cost"][-1])
    assert all(np.array_equal(v, start[k]) for k, v in net.parameters.items())
