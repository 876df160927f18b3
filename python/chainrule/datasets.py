"""Built-in data sets, generated (no download). Examples are columns: ``X (2, m)``, ``Y (1, m)``."""

from __future__ import annotations

import numpy as np

from .errors import InputError

DATASETS = ("planar", "moons", "circles")


def _m(m):
    """The number of examples: an integer >= 2 (one class each way at least)."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
        raise InputError(f"m must be an integer >= 2 (the examples of two classes), got {m!r}")
    return int(m)


def _number(value, what):
    """A finite number >= 0 (noise, factor)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise InputError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def _seed(value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not 0 <= value < 2 ** 32:
        raise InputError(f"seed must be an integer in [0, 2**32), got {value!r}")
    return int(value)


def load_planar_dataset(seed=1, m=400):
    """The course's planar "flower": two classes of ``m/2`` points on interleaved petals.

    With the default ``seed=1`` and ``m=400`` the draws are exactly those of the course's
    ``load_planar_dataset`` (``np.random.seed(1)``), taken from a private ``RandomState``
    so NumPy's global generator is left alone.
    """
    m = _m(m)
    rs = np.random.RandomState(_seed(seed))
    X = np.zeros((m, 2))
    Y = np.zeros((m, 1), dtype=np.uint8)
    a = 4  # maximum ray of the flower
    for j, (lo, hi) in enumerate(((0, m // 2), (m // 2, m))):  # an odd m: one more of class 1
        ix, N = range(lo, hi), hi - lo
        t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + rs.randn(N) * 0.2  # theta
        r = a * np.sin(4 * t) + rs.randn(N) * 0.2  # radius
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X.T, Y.T


def make_moons(m=400, noise=0.2, seed=0):
    """Two interleaving half circles, ``m`` points, Gaussian noise of std ``noise``."""
    m, noise = _m(m), _number(noise, "noise")
    rng = np.random.default_rng(_seed(seed))
    n_out = m // 2
    n_in = m - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.vstack([np.r_[np.cos(t_out), 1 - np.cos(t_in)],
                   np.r_[np.sin(t_out), 1 - np.sin(t_in) - 0.5]])
    X += rng.normal(scale=noise, size=X.shape)
    Y = np.r_[np.zeros(n_out), np.ones(n_in)].reshape(1, -1)
    perm = rng.permutation(m)
    return X[:, perm], Y[:, perm].astype(np.uint8)


def make_circles(m=400, noise=0.1, factor=0.5, seed=0):
    """A small circle (class 1, radius ``factor``) inside a large one (class 0, radius 1)."""
    m, noise = _m(m), _number(noise, "noise")
    factor = _number(factor, "factor")
    rng = np.random.default_rng(_seed(seed))
    n_out = m // 2
    n_in = m - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.vstack([np.r_[np.cos(t_out), factor * np.cos(t_in)],
                   np.r_[np.sin(t_out), factor * np.sin(t_in)]])
    X += rng.normal(scale=noise, size=X.shape)
    Y = np.r_[np.zeros(n_out), np.ones(n_in)].reshape(1, -1)
    perm = rng.permutation(m)
    return X[:, perm], Y[:, perm].astype(np.uint8)


def load(name, seed=None, m=400):
    """``X, Y`` of a built-in data set by name: ``planar``, ``moons`` or ``circles``."""
    if name == "planar":
        return load_planar_dataset(seed=1 if seed is None else seed, m=m)
    if name == "moons":
        return make_moons(m=m, seed=0 if seed is None else seed)
    if name == "circles":
        return make_circles(m=m, seed=0 if seed is None else seed)
    raise InputError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def train_test_split(X, Y, test_fraction=0.2, seed=0):
    """Split the columns of ``X, Y`` by a seeded permutation; returns ``X_train, Y_train, X_test, Y_test``."""
    m = X.shape[1]
    perm = np.random.default_rng(seed).permutation(m)
    n_test = int(round(m * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return X[:, train], Y[:, train], X[:, test], Y[:, test]
