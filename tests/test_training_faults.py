"""Faults during training: non-finite steps, KeyboardInterrupt, checkpoints and resume."""

import os
import signal

import numpy as np
import pytest

from chainrule import Network, NonFiniteError
from chainrule.backends import compose as _compose
from chainrule.backends import registry as _dispatch


def data(m=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, m))
    Y = (X[0] * X[1] + 0.3 * X[2] > 0).astype(np.float64).reshape(1, -1)
    return X, Y


def make_net(seed=0, backend="numpy"):
    return Network([3, 6, 4, 1], hidden="relu", output="sigmoid", seed=seed, backend=backend)


KW = dict(learning_rate=0.01, optimizer="adam", mini_batch_size=16, keep_prob=0.8, lambd=0.1,
          progress=False)  # 64 examples: 4 steps per epoch


@pytest.fixture
def poison_step(monkeypatch):
    """Make the numpy backend's backward pass (``backward_delta``, which its training steps
    call) return a NaN gradient at the given step numbers."""
    def install(bad_steps):
        calls = {"n": 0}

        def backward_delta(*args, **kwargs):
            out = _compose.backward_delta(_dispatch.Ops("numpy"), *args, **kwargs)
            calls["n"] += 1
            if calls["n"] in bad_steps:
                out[1][1][0, 0] = np.nan  # dW2
            return out

        ops = dict(_dispatch._REGISTRY.get("backward_delta", {}), numpy=backward_delta)
        monkeypatch.setitem(_dispatch._REGISTRY, "backward_delta", ops)
        return calls

    return install


def state_without_rng(net):
    return {k: v for k, v in net.get_state().items() if not k.startswith("train/")}


def assert_same_state(actual, expected, ignore=()):
    assert sorted(actual) == sorted(expected)
    for key in expected:
        if key not in ignore:
            np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


# The fingerprint of the arguments and data is recorded only by fits that write or read a
# checkpoint (issue 12: no hashing that nobody asked for), so an uninterrupted run without
# one has none.
NO_SIGNATURE = ("train/signature",)


def test_nonfinite_gradient_stops_with_last_good_parameters_and_optimiser_state(poison_step):
    X, Y = data()
    clean = make_net().fit(X, Y, epochs=2, **KW)  # 8 good steps
    poison_step({9})
    net = make_net()
    with pytest.raises(NonFiniteError, match=r"epoch 2, mini-batch 0: the gradient dW2"):
        net.fit(X, Y, epochs=5, **KW)
    assert net.stop_reason_ == "nonfinite"
    assert_same_state(state_without_rng(net), state_without_rng(clean))
    assert int(net.get_state()["opt/t"]) == 8
    assert net.history_["epoch"] == [0, 1]
    # Still usable: predicts, and training goes on from there.
    assert np.isfinite(net.predict_proba(X)).all()
    net.fit(X, Y, epochs=1, continue_training=True, **KW)


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_nonfinite_step_can_be_skipped(poison_step, optimizer):
    X, Y = data()
    poison_step({3, 10})
    net = make_net().fit(X, Y, epochs=4, on_nonfinite="skip", **dict(KW, optimizer=optimizer))
    assert net.history_["skipped"][-1] == 2
    assert net.steps_trained_ == 4 * 4 - 2
    if optimizer == "adam":
        assert int(net.get_state()["opt/t"]) == 4 * 4 - 2
    assert all(np.isfinite(v).all() for v in net.parameters.values())


def test_nonfinite_gradient_in_fused_gd_step_keeps_last_good_parameters(poison_step):
    X, Y = data()
    clean = make_net().fit(X, Y, epochs=1, **dict(KW, optimizer="gd"))
    poison_step({5})
    net = make_net()
    with pytest.raises(NonFiniteError, match="epoch 1, mini-batch 0"):
        net.fit(X, Y, epochs=3, **dict(KW, optimizer="gd"))
    assert_same_state(net.parameters, clean.parameters)


def test_nonfinite_cost_with_finite_gradient_in_the_fast_loop():
    X, Y = data()
    # MSE of targets near 1e160: the cost overflows to inf, the gradient (~1e160) does not.
    net = Network([3, 5, 1], hidden="relu", output="identity", seed=0, backend="numpy")
    before = {k: v.copy() for k, v in net.parameters.items()}
    with np.errstate(over="ignore"), pytest.raises(NonFiniteError, match="epoch 0: the cost"):
        net.fit(X, Y * 1e160, epochs=10, learning_rate=1e-200, progress=False)
    assert_same_state(net.parameters, before)
    with np.errstate(over="ignore"), pytest.raises(NonFiniteError, match="mini-batch 0: the cost"):
        net.fit(X, Y * 1e160, epochs=10, learning_rate=1e-200, mini_batch_size=8,
                progress=False)
    assert_same_state(net.parameters, before)


def test_huge_learning_rate_stops_cleanly_in_the_fast_loop():
    X, Y = data()
    net = Network([3, 5, 1], hidden="relu", output="identity", seed=0, backend="numpy")
    with np.errstate(all="ignore"), pytest.raises(NonFiniteError) as info:
        net.fit(X, Y * 1e3, epochs=2000, learning_rate=50.0, progress=False)
    assert all(np.isfinite(v).all() for v in net.parameters.values())
    epoch = net.epochs_trained_
    replay = Network([3, 5, 1], hidden="relu", output="identity", seed=0, backend="numpy")
    with np.errstate(all="ignore"):
        replay.fit(X, Y * 1e3, epochs=epoch, learning_rate=50.0, progress=False)
    assert_same_state(net.parameters, replay.parameters)
    assert f"epoch {epoch}" in str(info.value)


def test_keyboard_interrupt_from_callback_leaves_model_at_last_step():
    X, Y = data()

    def interrupt(net, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    net = make_net()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, epochs=10, callbacks=[interrupt], **KW)
    clean = make_net().fit(X, Y, epochs=3, **KW)
    assert net.stop_reason_ == "interrupted"
    assert_same_state(state_without_rng(net), state_without_rng(clean))
    assert net.history_ == clean.history_
    assert np.isfinite(net.predict_proba(X)).all()
    # Continuing in memory gives the same as an uninterrupted run of the remaining epochs.
    net.fit(X, Y, epochs=2, continue_training=True, **KW)
    clean.fit(X, Y, epochs=2, continue_training=True, **KW)
    assert_same_state(net.get_state(), clean.get_state())


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_sigint_is_honoured_between_steps():
    X, Y = data()
    seen = []

    def ctrl_c(net, epoch, logs):
        seen.append(epoch)
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while fit is running

    net = make_net()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, epochs=10, callbacks=[ctrl_c], **KW)
    assert seen == [0, 1]
    assert net.epochs_trained_ == 2 and int(net.get_state()["opt/t"]) == 8
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- checkpoints

RESUME_KW = dict(KW, validation_fraction=0.25, early_stopping=True, patience=50,
                 decay_rate=0.1)


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "gd"])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, optimizer):
    X, Y = data(m=80)
    kw = dict(RESUME_KW, optimizer=optimizer)
    path = tmp_path / "ckpt.npz"
    uninterrupted = make_net().fit(X, Y, epochs=7, **kw)

    def crash(net, epoch, logs):
        if epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_net().fit(X, Y, epochs=7, checkpoint=path, checkpoint_every=2, callbacks=[crash],
                       **kw)
    import chainrule

    assert int(chainrule.load(path).get_state()["train/epoch"][()]) == 4
    resumed = make_net(seed=123).fit(X, Y, epochs=7, resume=path, checkpoint=path,
                                     checkpoint_every=2, **kw)
    assert_same_state(resumed.get_state(), uninterrupted.get_state(), NO_SIGNATURE)
    assert resumed.history_ == uninterrupted.history_
    np.testing.assert_array_equal(resumed.predict_proba(X), uninterrupted.predict_proba(X))
    # The last checkpoint is the finished model.
    assert_same_state(chainrule.load(path).get_state(), uninterrupted.get_state(), NO_SIGNATURE)


def test_resume_full_batch_fast_loop(tmp_path):
    X, Y = data(m=40)
    path = tmp_path / "ckpt.npz"
    kw = dict(learning_rate=0.1, cost_every=10, progress=False)
    uninterrupted = make_net().fit(X, Y, epochs=50, **kw)

    def crash(net, epoch, logs):
        if epoch == 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_net().fit(X, Y, epochs=50, checkpoint=path, checkpoint_every=20,
                       callbacks=[crash], **kw)
    resumed = make_net().fit(X, Y, epochs=50, resume=path, **kw)
    assert_same_state(resumed.get_state(), uninterrupted.get_state(), NO_SIGNATURE)
    assert resumed.history_ == uninterrupted.history_


def test_resume_refuses_other_arguments_data_or_network(tmp_path):
    X, Y = data()
    path = tmp_path / "ckpt.npz"
    make_net().fit(X, Y, epochs=2, checkpoint=path, **KW)
    with pytest.raises(ValueError, match="other arguments or data"):
        make_net().fit(X, Y, epochs=3, resume=path, **KW)
    with pytest.raises(ValueError, match="other arguments or data"):
        make_net().fit(X * 2, Y, epochs=2, resume=path, **KW)
    other = Network([3, 7, 4, 1], seed=0, backend="numpy")
    with pytest.raises(ValueError, match="layer_dims"):
        other.fit(X, Y, epochs=2, resume=path, **KW)
    plain = tmp_path / "plain.npz"
    make_net().save(plain)
    with pytest.raises(ValueError, match="no training state"):
        make_net().fit(X, Y, epochs=2, resume=plain, **KW)


def test_checkpoint_holds_optimiser_state_and_loads_as_a_model(tmp_path):
    import chainrule

    X, Y = data()
    path = tmp_path / "ckpt.npz"
    net = make_net().fit(X, Y, epochs=3, checkpoint=path, checkpoint_every=1, **KW)
    loaded = chainrule.load(path)
    assert_same_state(loaded.get_state(), net.get_state())
    assert any(k.startswith("opt/v_dW") for k in loaded.get_state())
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_set_state_refuses_optimiser_state_of_the_wrong_shape():
    X, Y = data()
    net = make_net().fit(X, Y, epochs=1, **KW)
    state = net.get_state()
    before = net.get_state()
    state["opt/v_dW2"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"opt/v_dW2 has shape \(2, 2\)"):
        net.set_state(state)
    assert_same_state(net.get_state(), before)
    state = dict(before, **{"opt/v_dW9": np.zeros((1, 1))})
    with pytest.raises(ValueError, match="is for W9, which this network does not have"):
        net.set_state(state)


@pytest.mark.parametrize("cost_every", [1, 3])
def test_a_refused_step_keeps_the_records_of_the_epochs_before_it(poison_step, cost_every):
    """A chunk of engine steps runs past records made of its sums alone (a sigmoid output's
    running accuracy); when a later step of the chunk is refused, the epochs it completed
    before are recorded all the same, as smaller chunks would have recorded them."""
    X, Y = data()
    poison_step({4 * 7 + 3})  # epoch 7, mini-batch 2: one chunk from epoch 0 (4 steps each)
    net = make_net()
    with pytest.raises(NonFiniteError, match=r"epoch 7, mini-batch 2"):
        net.fit(X, Y, epochs=20, cost_every=cost_every, **KW)
    assert net.epochs_trained_ == 7 and net.stop_reason_ == "nonfinite"
    assert net.history_["epoch"] == list(range(0, 7, cost_every))
    assert len(net.history_["cost"]) == len(net.history_["epoch"])
    assert all(np.isfinite(net.history_["cost"]))
