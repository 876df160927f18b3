"""Checkpoints written by an earlier chainrule (tests/data/checkpoint_v1_*.npz, made by
tests/data/make_checkpoint_v1.py at commit dcd72f7, before a checkpoint recorded its call's
start and a digest of every data entry) still resume, to the same parameters as an
uninterrupted fit; with other data they are refused as before."""

import os
import shutil

import numpy as np
import pytest

from chainrule import Network
from chainrule.errors import InputError

DATA = os.path.join(os.path.dirname(__file__), "data")


def _problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 300))
    return X, (X[0] > 0).astype(float)[None]


def _fit(X, Y, mb, **kw):
    net = Network([5, 8, 1], seed=1, backend="numpy")
    net.fit(X, Y, epochs=8, learning_rate=0.1, optimizer="adam", mini_batch_size=mb,
            cost_every=1, progress=False, **kw)
    return net


@pytest.mark.parametrize("mb, name", [(None, "full_batch"), (64, "mini_batch")])
def test_a_checkpoint_of_the_earlier_format_resumes_exactly(mb, name, tmp_path):
    path = tmp_path / "ckpt.npz"
    shutil.copy(os.path.join(DATA, f"checkpoint_v1_{name}.npz"), path)
    X, Y = _problem()
    resumed = _fit(X, Y, mb, checkpoint=str(path), resume=str(path))
    whole = _fit(X, Y, mb)
    assert resumed.epochs_trained_ == whole.epochs_trained_ == 8
    for key, value in whole.parameters.items():
        np.testing.assert_allclose(resumed.parameters[key], value, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["full_batch", "mini_batch"])
def test_a_checkpoint_of_the_earlier_format_refuses_other_data(name, tmp_path):
    path = tmp_path / "ckpt.npz"
    shutil.copy(os.path.join(DATA, f"checkpoint_v1_{name}.npz"), path)
    X, Y = _problem()
    X = X + 1.0  # every entry changed: the sampled digest sees it
    with pytest.raises(InputError, match="other arguments or data"):
        _fit(X, Y, None if name == "full_batch" else 64, resume=str(path))
