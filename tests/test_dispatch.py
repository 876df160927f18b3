"""The registry: selection, the environment override, fallbacks and clear errors."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from chainrule import Network
from chainrule.backends import registry as _dispatch


def test_forced_backend_through_environment(monkeypatch):
    monkeypatch.setenv("CHAINRULE_BACKEND", "numpy")
    assert Network([2, 2, 1]).backend == "numpy"


def test_unknown_backend_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        Network([2, 2, 1], backend="cuda")
    monkeypatch.setenv("CHAINRULE_BACKEND", "tpu")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        Network([2, 2, 1])


def test_auto_never_returns_an_unavailable_backend():
    for dims, m in (([2, 4, 1], 400), ([784, 128, 64, 10], 256), ([3, 2], None)):
        for dtype in (np.float32, np.float64):
            assert _dispatch.choose_backend(dims, m, dtype) in _dispatch.available_backends()


def test_missing_backend_raises_import_error_naming_the_extra():
    # A fresh interpreter where numba and the C module cannot be imported.
    code = (
        "import sys\n"
        "sys.modules['numba'] = None\n"
        "sys.modules['chainrule._cdense'] = None\n"
        "import chainrule\n"
        "assert chainrule.available_backends() == ['numpy'], chainrule.available_backends()\n"
        "net = chainrule.Network([2, 3, 1])\n"
        "assert net.backend == 'numpy'\n"
        "for b, words in (('numba', '.[numba]'), ('c', 'C compiler')):\n"
        "    try:\n"
        "        chainrule.Network([2, 3, 1], backend=b)\n"
        "    except ImportError as exc:\n"
        "        assert words in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError(b)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_ops_expose_every_op_for_every_available_backend():
    for backend in _dispatch.available_backends():
        ops = _dispatch.Ops(backend)
        for op in _dispatch.LAYER_OPS + _dispatch.NETWORK_OPS:
            assert callable(getattr(ops, op))


def test_register_rejects_unknown_names():
    with pytest.raises(ValueError):
        _dispatch.register("dense_forward", "fortran")
    with pytest.raises(ValueError):
        _dispatch.register("conv2d", "numpy")


def test_auto_keeps_the_fit_backend_for_scoring(monkeypatch):
    """After a fit, ``auto`` scores and predicts on the backend it trained with (two
    backends' BLAS pools side by side stall each other on few cores)."""
    import chainrule.model as model_mod

    picks = iter(["numpy", "numpy"])
    seen = []

    def fake_choose(layer_dims, m, dtype, backend="auto", **kwargs):
        pick = next(picks, "numpy")
        seen.append((m, kwargs.get("steps"), pick))
        return pick

    monkeypatch.setattr(model_mod, "choose_backend", fake_choose)
    net = model_mod.Network([2, 3, 1])  # construction: the first pick
    X, Y = np.ones((2, 5)), np.array([[0.0, 1.0, 0.0, 1.0, 1.0]])
    net.fit(X, Y, epochs=1, progress=False)  # chooses for training
    trained = net.backend
    net.predict(np.ones((2, 50)))
    net.score(X, Y)
    assert net.backend == trained
    assert [s for s in seen[1:] if s[1] is None] == []  # no choice after the fit's
    clone = pickle.loads(pickle.dumps(net))
    assert "_fit_backend" not in clone.__dict__
