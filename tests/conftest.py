"""Shared fixtures: backends (unavailable ones shown as skipped), dtypes, seeded rng, tolerances."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.backends import registry as _dispatch
from chainrule import reference as ref
from chainrule import spec
from chainrule.optim import OPTIMIZERS as _OPTIMIZER_TABLE
from chainrule.optim import make_optimizer
from chainrule.training.step import train_step

# Tolerances keyed by dtype, tuned by measurement (see the style guide's starting points).
TOLERANCES = {
    np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
    np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),
}

DTYPES = [np.float32, np.float64]

# The optimisers every suite runs: each one registered in chainrule.optim.OPTIMIZERS with its
# defaults, and, where it has hyperparameters, a variant with every one moved (ε inside the
# root where it has that choice). A newly registered optimiser is in every list at once.
OPTIMIZER_NAMES = list(_OPTIMIZER_TABLE)
_VARIANT = {"beta": 0.8, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6, "eps_inside_sqrt": True}


def _optimizer_configs():
    configs, ids = [], []
    for name in _OPTIMIZER_TABLE:
        default = make_optimizer(name).get_config()
        configs.append(default)
        ids.append(name)
        moved = {k: _VARIANT[k] for k in default if k in _VARIANT}
        if moved:
            configs.append({**default, **moved})
            ids.append(f"{name}-variant")
    return configs, ids


OPTIMIZER_CONFIGS, OPTIMIZER_IDS = _optimizer_configs()


def optimizer_keeps(name, prefix):
    """Whether the registered optimiser ``name`` keeps state ``prefix`` (``"v"``, ``"s"``)."""
    return prefix in _OPTIMIZER_TABLE[name].state_prefixes


def optimizer_counts_steps(name):
    return bool(_OPTIMIZER_TABLE[name].uses_t)


def backend_params():
    """Every known backend, with the unavailable ones marked to skip (so they show as skipped)."""
    params = []
    for b in _dispatch.BACKENDS:
        available = b in _dispatch.available_backends()
        reason = f"backend {b!r} unavailable: {_dispatch.import_error(b)}"
        params.append(pytest.param(b, marks=pytest.mark.skipif(not available, reason=reason), id=b))
    return params


@pytest.fixture(params=backend_params())
def backend(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def assert_close(actual, expected, dtype=None, name=""):
    """Compare ``actual`` with ``expected``: shape, dtype (if given) and values within tolerance."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    dt = np.dtype(dtype) if dtype is not None else actual.dtype
    if dtype is not None:
        assert actual.dtype == dt, f"{name}: dtype {actual.dtype} != {dt}"
    np.testing.assert_allclose(actual, expected, err_msg=name, **TOLERANCES[dt])


def network_problem(dims, loss, m, dtype, seed=0):
    """Seeded ``X, Y, Ws, bs`` for a network ``dims`` and ``loss`` (labels fit the loss)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    if loss == "categorical_crossentropy":
        Y = np.eye(dims[-1], dtype=dtype)[:, rng.integers(0, dims[-1], m)]
    elif loss == "binary_crossentropy":
        Y = (rng.random((dims[-1], m)) < 0.5).astype(dtype)
    else:
        Y = rng.standard_normal((dims[-1], m)).astype(dtype)
    p = ref.initialize_parameters(dims, rng=rng, dtype=dtype)
    L = len(dims) - 1
    return X, Y, [p[f"W{l}"] for l in range(1, L + 1)], [p[f"b{l}"] for l in range(1, L + 1)]


# --------------------------------------------------------------------------- from the one table

def hidden_activations():
    """Every activation a hidden layer may use, as ``(name, alpha)`` (spec's table); one with
    an ``alpha`` twice, with a positive and a negative one."""
    out = []
    for a in spec.ACTIVATION_TABLE:
        if not a.output_only:
            out += [(a.name, 0.2), (a.name, -0.3)] if a.has_alpha else [(a.name, 0.0)]
    return out


def output_losses():
    """``((output, alpha), loss)`` pairs: every output with its default loss, and every loss
    with each output it accepts that does not fuse with it (the ``dAL * g'`` path)."""
    pairs = [((a.name, 0.2 if a.has_alpha else 0.0), a.default_loss)
             for a in spec.ACTIVATION_TABLE]
    for loss in spec.LOSS_TABLE:
        for out in spec.loss_outputs(loss.name):
            a = spec.ACTIVATIONS[out]
            pair = ((out, 0.2 if a.has_alpha else 0.0), loss.name)
            if (out, loss.name) not in spec.FUSED_OUTPUT_LOSS and pair not in pairs \
                    and not a.output_only:
                pairs.append(pair)
    return pairs


def step_loop(ops, X, Y, Ws, bs, activations, loss, learning_rate, lambd=0.0, n_steps=1,
              cost_every=1):
    """``n_steps`` full-batch ``train_step`` calls of ``ops`` (a backend's ops or module);
    ``costs[i]`` is the cost before step ``i`` when ``i % cost_every == 0`` (else NaN). Stops
    at the first refused step: ``(steps applied, costs)``."""
    costs = np.full(n_steps, np.nan)
    for i in range(n_steps):
        ok, costs[i] = train_step(ops, X, Y, Ws, bs, activations, loss, learning_rate, lambd,
                                      None, cost_every > 0 and i % cost_every == 0)
        if not ok:
            return i, costs
    return n_steps, costs
