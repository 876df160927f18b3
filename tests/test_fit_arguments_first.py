"""Issue 15 §4: every argument of fit is checked before any work: a bad one raises a
ChainruleError and leaves the model (parameters, optimiser and training state, history) as
it was."""

import os

import numpy as np
import pytest

from chainrule import ChainruleError, Network
from chainrule.errors import InputError

M = 12


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, M)), (rng.random((1, M)) > 0.5).astype(float)


def same(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def net():
    X, Y = data()
    return Network([2, 3, 1], backend="numpy").fit(X, Y, epochs=2, optimizer="adam",
                                                   progress=False)


BAD = {
    "callbacks=[5]": dict(callbacks=[5]),
    "callbacks=one function": dict(callbacks=lambda net, epoch, logs: None),
    "callbacks='cb'": dict(callbacks="cb"),
    "checkpoint=5": dict(checkpoint=5),
    "checkpoint in a missing directory": dict(checkpoint="{tmp}/missing/ck.npz"),
    "checkpoint a directory": dict(checkpoint="{tmp}"),
    "optimizer=['adam']": dict(optimizer=["adam"]),
    "optimizer=5": dict(optimizer=5),
    "resume=True": dict(resume=True),
    "resume=3": dict(resume=3),
    "shuffle_seed=2**40": dict(shuffle_seed=2 ** 40, mini_batch_size=4),
    "shuffle_seed + epochs = 2**32": dict(shuffle_seed=2 ** 32 - 3, mini_batch_size=4),
    "float32 sample_weight=1e-46": dict(sample_weight=np.full(M, 1e-46), dtype="float32"),
    "float32 sample_weight=1e39": dict(sample_weight=np.full(M, 1e39), dtype="float32"),
}


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("continue_training", [False, True])
def test_a_bad_argument_is_refused_before_training(net, tmp_path, name, continue_training):
    X, Y = data()
    kwargs = dict(BAD[name])
    if kwargs.pop("dtype", None) == "float32":
        net = Network([2, 3, 1], backend="numpy", dtype="float32").fit(X, Y, epochs=1,
                                                                     progress=False)
    for k, v in kwargs.items():
        if isinstance(v, str):
            kwargs[k] = v.format(tmp=tmp_path)
    before, history = net.get_state(), {k: list(v) for k, v in net.history_.items()}
    with pytest.raises(InputError if "missing" not in name and "directory" not in name
                       else ChainruleError) as info:
        net.fit(X, Y, epochs=3, progress=False, continue_training=continue_training, **kwargs)
    assert same(net.get_state(), before), name
    assert net.history_ == history
    text = str(info.value)
    key = name.split("=")[0].split(" ")[0]
    assert key in text or "example weights" in text, text


def test_callback_objects_and_functions_are_accepted(tmp_path):
    from chainrule.callbacks import Callback

    X, Y = data()
    seen = []

    class Begin(Callback):
        def on_fit_begin(self, net):
            seen.append("begin")

    class OnlyEnd:  # not a Callback subclass: any object with a hook
        def on_fit_end(self, net):
            seen.append("end")

    Network([2, 3, 1], backend="numpy").fit(
        X, Y, epochs=2, progress=False, callbacks=(Begin(), OnlyEnd(), lambda n, e, l: None),
        checkpoint=os.fspath(tmp_path / "ck.npz"))
    assert seen == ["begin", "end"] and (tmp_path / "ck.npz").exists()


def test_shuffle_seed_is_checked_against_the_epochs_of_a_continued_fit():
    X, Y = data()
    net = Network([2, 3, 1], backend="numpy").fit(X, Y, epochs=5, mini_batch_size=4,
                                                  progress=False)
    before = net.get_state()
    net.fit(X, Y, epochs=2, mini_batch_size=4, progress=False, shuffle_seed=2 ** 32 - 8,
            continue_training=True)  # epochs 5, 6 seed 2**32 - 2, 2**32 - 1: fine
    with pytest.raises(InputError, match="shuffle_seed"):
        net.fit(X, Y, epochs=2, mini_batch_size=4, progress=False, shuffle_seed=2 ** 32 - 8,
                continue_training=True)
    assert net.epochs_trained_ == 7 and not same(net.get_state(), before)
