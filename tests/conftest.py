"""Shared fixtures: backends (unavailable ones shown as skipped), dtypes, seeded rng, tolerances."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import _dispatch

# Tolerances keyed by dtype, tuned by measurement (see the style guide's starting points).
TOLERANCES = {
    np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
    np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),
}

DTYPES = [np.float32, np.float64]


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
