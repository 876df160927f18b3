"""The floor: only the matrix products a training step needs, into preallocated arrays.

A step of an L-layer network needs ``W[l] A[l-1]`` for every layer, ``dZ[l] A[l-1]ᵀ`` for
every layer and ``W[l]ᵀ dZ[l]`` for every layer but the first (training never needs
``dA[0]``): ``3L - 1`` GEMMs, nothing else. No implementation can take a step faster
than its BLAS multiplies those matrices. ``GemmFloor`` is the floor of one full-batch step
(the step comparison), ``MiniBatchFloor`` that of a whole mini-batch fit and the score after
it (``--train``).
"""

from __future__ import annotations

import numpy as np

from .peers import Implementation


class StepProducts:
    """The ``3L - 1`` products of one step for parameters ``Ws`` and a batch of ``m``
    columns, into arrays allocated once (``As``, ``dZs``, ``dWs``, ``dAs``)."""

    def __init__(self, Ws, m, dtype):
        self.Ws = [np.array(W, dtype=dtype) for W in Ws]
        self.WTs = [W.T for W in self.Ws]
        self.As = [None] + [np.ones((W.shape[0], m), dtype=dtype) for W in self.Ws]
        self.dZs = [np.ones((W.shape[0], m), dtype=dtype) for W in self.Ws]
        self.dWs = [np.empty_like(W) for W in self.Ws]
        self.dAs = [np.empty((W.shape[1], m), dtype=dtype) for W in self.Ws]
        self.ATs = [None] + [A.T for A in self.As[1:]]

    def run(self, X):
        """The products for the batch ``X`` (``(n[0], m)``, any strides)."""
        matmul = np.matmul
        Ws, As, dZs, dWs, dAs, WTs, ATs = (self.Ws, self.As, self.dZs, self.dWs, self.dAs,
                                           self.WTs, self.ATs)
        As[0], ATs[0] = X, X.T
        L = len(Ws)
        for l in range(L):
            matmul(Ws[l], As[l], out=As[l + 1])
        for l in range(L - 1, -1, -1):
            matmul(dZs[l], ATs[l], out=dWs[l])
            if l:
                matmul(WTs[l], dZs[l], out=dAs[l])


class GemmFloor(Implementation):
    """The products of one full-batch step of the problem."""

    name = "bare GEMMs (floor)"
    kind = "floor"
    trains = False

    def setup(self, problem):
        self.p = problem
        self.products = StepProducts(problem.Ws, problem.m, problem.dtype)
        self.products.run(problem.X)

    @property
    def As(self):
        return self.products.As

    @property
    def dZs(self):
        return self.products.dZs

    @property
    def dWs(self):
        return self.products.dWs

    @property
    def dAs(self):
        return self.products.dAs

    def step(self):
        self.products.run(self.p.X)

    def version(self):
        return np.__version__


class ForwardProducts:
    """The ``L`` products ``W[l] A[l-1]`` of one forward pass over ``m`` columns (a score's),
    into arrays allocated once."""

    def __init__(self, Ws, m, dtype):
        self.Ws = [np.array(W, dtype=dtype) for W in Ws]
        self.As = [np.empty((W.shape[0], m), dtype=dtype) for W in self.Ws]

    def run(self, X):
        A = X
        for W, out in zip(self.Ws, self.As):
            np.matmul(W, A, out=out)
            A = out


class MiniBatchFloor:
    """The products of every mini-batch step of a whole fit and of the score after it: the
    same batches (complete ones, then the smaller rest) of consecutive rows of ``X_rows``
    (contiguous: no gather, no shuffle, no loss, no update), then ``W[l] A[l-1]`` over all
    the data (``X_rows.T``, read in place by the BLAS). The data are as the products want
    them (contiguous, measured as fast as C-ordered copies of each batch) and every output
    is allocated once, in ``setup``: nothing but the products is timed."""

    name = "bare GEMMs (floor)"
    kind = "floor"
    package = None

    def setup(self, data):
        w = data.workload
        self.data, self.w = data, w
        rng = np.random.default_rng(0)
        dims = w.layer_dims
        Ws = [rng.standard_normal((dims[l], dims[l - 1])) * np.sqrt(2 / dims[l - 1])
              for l in range(1, len(dims))]
        rest = w.m % w.batch_size
        self.full = StepProducts(Ws, w.batch_size, w.dtype)
        self.rest = StepProducts(Ws, rest, w.dtype) if rest else None
        self.score = ForwardProducts(Ws, w.m, w.dtype)
        X_rows, b = data.X_rows, w.batch_size
        n_full = w.m // b
        self.batches = [X_rows[k * b:(k + 1) * b].T for k in range(n_full)]
        self.last = X_rows[n_full * b:].T if rest else None

    def run(self):
        for _ in range(self.w.epochs):
            for Xb in self.batches:
                self.full.run(Xb)
            if self.rest is not None:
                self.rest.run(self.last)
        self.score.run(self.data.X)

    def accuracy(self):
        return float("nan")

    def version(self):
        return np.__version__
