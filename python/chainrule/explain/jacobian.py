"""Jacobians of every step of a small network, in numerator layout, analytic and by finite
differences, and how the course's gradients (denominator layout: the shape of the object)
are their transposes, reshaped.

Layout
------
A matrix is flattened in NumPy's C order: ``vec(Z)[i*m + k] = Z[i, k]``. The Jacobian of
``F`` with respect to ``x`` in *numerator layout* has one row per entry of ``F`` and one
column per entry of ``x``: ``J[a, c] = ∂vec(F)[a] / ∂vec(x)[c]``. For a scalar cost ``J``
this is a row, ``1 × x.size``; the course writes ``dx`` with the shape of ``x`` instead
(*denominator layout*), which is that row transposed and reshaped:
``dx = reshape((∂J/∂x)ᵀ, x.shape)``.

Closed forms (C order; ``⊗`` is ``np.kron``)::

    ∂Z/∂W      = I_n ⊗ A_prevᵀ        (n·m, n·n_prev)
    ∂Z/∂b      = I_n ⊗ 1_m            (n·m, n)
    ∂Z/∂A_prev = W ⊗ I_m              (n·m, n_prev·m)   one example (m = 1): W itself
    ∂A/∂Z      = diag(vec(g'(Z)))     (n·m, n·m)        diagonal: g acts entry by entry
    ∂ℓ/∂Z[L]   (ℓ the m per-example losses)             (m, n[L]·m); m × m diag(A - Y) for n[L] = 1
    ∂Z̃/∂Z      (batch norm, training)                   (n·m, n·m)        block diagonal, one
               dense m × m block (γ_i/s_i)(I_m − 1/m − ẑ_i ẑ_iᵀ/m) per unit: examples coupled

so by the chain rule in numerator layout, ``∂J/∂A_prev = ∂J/∂Z · (W ⊗ I_m)`` and,
transposed, ``vec(dA_prev) = (Wᵀ ⊗ I_m) vec(dZ) = vec(Wᵀ·dZ)``: the ``Wᵀ`` of the course
is the transpose of the Jacobian ``∂Z/∂A_prev``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import reference as ref
from ..errors import InputError
from . import display

EPSILON = 1e-7


@dataclass
class Jacobian:
    """One Jacobian in numerator layout, computed both ways."""

    name: str            # e.g. "∂Z1/∂W1"
    closed_form: str     # e.g. "I_n ⊗ A0ᵀ"
    analytic: np.ndarray
    numeric: np.ndarray
    note: str = ""

    @property
    def max_difference(self):
        return float(np.max(np.abs(self.analytic - self.numeric), initial=0.0))


@dataclass
class Transposition:
    """The course's gradient next to the transposed, reshaped numerator-layout row."""

    name: str            # e.g. "dW1"
    how: str             # the chain rule written in numerator layout
    course: np.ndarray   # the reference's gradient (shape of the object)
    from_jacobians: np.ndarray  # reshape((row)ᵀ, shape), the row built from numeric Jacobians

    @property
    def max_difference(self):
        return float(np.max(np.abs(self.course - self.from_jacobians), initial=0.0))


@dataclass
class JacobianReport:
    """Every Jacobian of a small network; ``print(report)`` shows them."""

    layer_dims: list
    m: int
    jacobians: list = field(default_factory=list)
    transpositions: list = field(default_factory=list)
    show_limit: int = 12

    def __str__(self):
        return format_report(self)

    def __getitem__(self, name):
        for j in self.jacobians + self.transpositions:
            if j.name == name:
                return j
        raise KeyError(name)

    def _repr_html_(self):
        """In a notebook: a table of the Jacobians (closed forms typeset, small matrices shown)."""
        return display.jacobian_html(self)

    def plot(self, path=None, layers=None):
        """Heatmaps of every Jacobian, showing its structure (matplotlib, the ``plot`` extra).

        See :func:`chainrule.explain.pictures.plot_jacobians`; returns the figure.
        """
        from .pictures import plot_jacobians

        return plot_jacobians(self, path=path, layers=layers)

    def plot_layouts(self, path=None, names=None):
        """Each gradient as the numerator-layout row ``∂J/∂x`` next to the course's ``dx``
        (that row transposed and reshaped). See
        :func:`chainrule.explain.pictures.plot_layouts`; returns the figure.
        """
        from .pictures import plot_layouts

        return plot_layouts(self, path=path, names=names)


def _numeric_jacobian(F, x, epsilon):
    """Numerator layout: rows = entries of F(x), columns = entries of x (C order)."""
    D = ref.central_difference(lambda t: np.asarray(F(t)).reshape(-1), x, epsilon)
    return D.reshape(np.size(x), -1).T


def _activation_jacobian(Z, activation):
    name, _ = ref.parse_activation(activation)
    if name != "softmax":
        return np.diag(ref.activation_derivative(Z, activation).reshape(-1))
    n, m = Z.shape
    A = ref.softmax(Z)
    J = np.zeros((n * m, n * m))
    for k in range(m):
        a = A[:, k]
        block = np.diag(a) - np.outer(a, a)
        idx = np.arange(n) * m + k
        J[np.ix_(idx, idx)] = block
    return J


def _per_example_losses(AL, Y, loss):
    """``ℓ_k``: the cost of column k alone (m = 1), so the formula is the reference's."""
    return np.array([ref.compute_cost(AL[:, k:k + 1], Y[:, k:k + 1], loss)
                     for k in range(AL.shape[1])])


def jacobians(model, X, Y, epsilon=EPSILON):
    """The Jacobians of each step of ``model`` at ``X, Y``, analytic and by finite differences.

    Parameters
    ----------
    model : chainrule.Network
        A small network (every Jacobian is a dense matrix: keep ``n[l]·m`` in the tens).
    X : array, shape (n[0], m)
    Y : array, shape (n[L], m)
    epsilon : float
        The step of the two-sided differences.

    Returns
    -------
    JacobianReport
        ``report.jacobians``: for each layer l, ``∂Z/∂W``, ``∂Z/∂b``, ``∂Z/∂A_prev``,
        ``∂A/∂Z`` and, for the output layer, ``∂ℓ/∂Z[L]``; each with ``analytic`` and
        ``numeric`` matrices. ``report.transpositions``: ``dZ[L]`` (convention J),
        ``dW[l]``, ``db[l]`` and ``dA[l-1]`` rebuilt from the numeric Jacobians by the chain
        rule in numerator layout, transposed and reshaped, next to the course's values.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule import Network
    >>> from chainrule.explain import jacobians
    >>> rng = np.random.default_rng(0)
    >>> net = Network([3, 2, 1], hidden="tanh", backend="numpy")
    >>> X, Y = rng.standard_normal((3, 2)), np.array([[0.0, 1.0]])
    >>> report = jacobians(net, X, Y)
    >>> report["dW1"].max_difference < 1e-8
    True
    """
    from ..model import Network

    if not isinstance(model, Network):
        raise InputError("jacobians takes a chainrule.Network")
    X, Y = model._check_XY(X, Y)
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    params = {k: v.astype(np.float64) for k, v in model.parameters.items()}
    acts, loss = model.activations, model.loss
    L = model.L
    m = X.shape[1]
    AL, caches = ref.model_forward(X, params, acts)
    grads_J = ref.model_backward(AL, Y, caches, acts, loss, convention="J")
    grads_L = ref.model_backward(AL, Y, caches, acts, loss, convention="L")
    report = JacobianReport(layer_dims=list(model.layer_dims), m=m)

    def cost_from(l, Z_l):
        """J as a function of Z[l], the rest of the network fixed."""
        A = ref.activation_forward(Z_l, acts[l - 1])
        for k in range(l + 1, L + 1):
            A, _ = ref.linear_activation_forward(A, params[f"W{k}"], params[f"b{k}"], acts[k - 1])
        return ref.compute_cost(A, Y, loss)

    for l in range(L, 0, -1):
        (A_prev, W, b), Z = caches[l - 1]
        n, n_prev = W.shape
        In, Im = np.eye(n), np.eye(m)
        J_ZW = Jacobian(f"∂Z{l}/∂W{l}", f"I_{n} ⊗ A{l - 1}ᵀ", np.kron(In, A_prev.T),
                        _numeric_jacobian(lambda W_: W_ @ A_prev + b, W, epsilon))
        J_Zb = Jacobian(f"∂Z{l}/∂b{l}", f"I_{n} ⊗ 1_{m}", np.kron(In, np.ones((m, 1))),
                        _numeric_jacobian(lambda b_: W @ A_prev + b_, b, epsilon))
        J_ZA = Jacobian(f"∂Z{l}/∂A{l - 1}", f"W{l} ⊗ I_{m}", np.kron(W, Im),
                        _numeric_jacobian(lambda A_: W @ A_ + b, A_prev, epsilon),
                        note=f"one example at a time (the block of column k): W{l} itself")
        name = ref.parse_activation(acts[l - 1])[0]
        J_AZ = Jacobian(f"∂A{l}/∂Z{l}", f"diag(vec({name}'(Z{l})))" if name != "softmax"
                        else "diag(a) - a·aᵀ for each example k (entries i·m + k), 0 across "
                        "examples",
                        _activation_jacobian(Z, acts[l - 1]),
                        _numeric_jacobian(lambda Z_: ref.activation_forward(Z_, acts[l - 1]), Z,
                                          epsilon),
                        note="diagonal: g acts entry by entry" if name != "softmax" else "")
        layer = [J_ZW, J_Zb, J_ZA, J_AZ]
        # ∂J/∂Z[l] as a numerator-layout row, by finite differences on J(Z[l]).
        row_Z = _numeric_jacobian(lambda Z_: cost_from(l, Z_), Z, epsilon)
        if l == L:
            dZ_L = grads_L[f"dZ{L}"]  # the derivative of the per-example losses (convention L)
            analytic = np.zeros((m, n * m))
            for k in range(m):
                analytic[k, np.arange(n) * m + k] = dZ_L[:, k]
            J_lZ = Jacobian(f"∂ℓ/∂Z{L}", f"row k holds column k of dZ{L} = A{L} - Y "
                            f"(convention L)", analytic,
                            _numeric_jacobian(lambda Z_: _per_example_losses(
                                ref.activation_forward(Z_, acts[-1]), Y, loss), Z, epsilon),
                            note=(f"{m} × {m} diagonal" if n == 1 else
                                  f"{m} × {n * m}: example k's loss depends only on column k"))
            layer.append(J_lZ)
            report.transpositions.append(Transposition(
                f"dZ{L}", f"∂J/∂Z{L} = (1/m) 1ᵀ · ∂ℓ/∂Z{L}  (J is the mean of ℓ)",
                grads_J[f"dZ{L}"],
                ((np.ones((1, m)) / m) @ J_lZ.numeric).T.reshape(Z.shape)))
        report.jacobians[:0] = layer
        report.transpositions += [
            Transposition(f"dW{l}", f"∂J/∂W{l} = ∂J/∂Z{l} · ∂Z{l}/∂W{l}", grads_J[f"dW{l}"],
                          (row_Z @ J_ZW.numeric).T.reshape(W.shape)),
            Transposition(f"db{l}", f"∂J/∂b{l} = ∂J/∂Z{l} · ∂Z{l}/∂b{l}", grads_J[f"db{l}"],
                          (row_Z @ J_Zb.numeric).T.reshape(b.shape)),
            Transposition(f"dA{l - 1}", f"∂J/∂A{l - 1} = ∂J/∂Z{l} · ∂Z{l}/∂A{l - 1}",
                          grads_J[f"dA{l - 1}"], (row_Z @ J_ZA.numeric).T.reshape(A_prev.shape)),
        ]
        if l < L:
            row_A = _numeric_jacobian(
                lambda A_: cost_from(l + 1, params[f"W{l + 1}"] @ A_ + params[f"b{l + 1}"]),
                ref.activation_forward(Z, acts[l - 1]), epsilon)
            report.transpositions.append(Transposition(
                f"dZ{l}", f"∂J/∂Z{l} = ∂J/∂A{l} · ∂A{l}/∂Z{l}  (diagonal: an elementwise "
                f"product)", grads_J[f"dZ{l}"], (row_A @ J_AZ.numeric).T.reshape(Z.shape)))
    return report


def _matrix_text(M, indent="    "):
    with np.printoptions(precision=4, suppress=True, linewidth=160):
        return "\n".join(indent + line for line in str(M + 0.0).splitlines())  # no -0.


def format_report(report):
    """The text of a :class:`JacobianReport`."""
    dims = " -> ".join(map(str, report.layer_dims))
    lines = [f"Jacobians of {dims}, m = {report.m}: numerator layout (one row per entry of the "
             f"result, one column per entry of the variable, C order: vec(Z)[i*m + k] = Z[i,k]); "
             f"analytic vs two-sided differences"]
    for jac in report.jacobians:
        r, c = jac.analytic.shape
        lines.append("")
        lines.append(f"{jac.name}  ({r} × {c}) = {jac.closed_form}   max |analytic - numeric| = "
                     f"{jac.max_difference:.2e}" + (f"   [{jac.note}]" if jac.note else ""))
        if max(r, c) <= report.show_limit:
            lines.append(_matrix_text(jac.analytic))
    lines += ["", "The course's gradients have the shape of the object (denominator layout): the "
                  "numerator-layout row ∂J/∂x, transposed and reshaped to x's shape. Rows built "
                  "from the numeric Jacobians above:"]
    for t in report.transpositions:
        lines.append(f"  {t.name} {str(t.course.shape):<8} row: {t.how}")
        lines.append(f"  {'':<{len(t.name) + 9}} reshape(rowᵀ, {t.course.shape}) vs the course's "
                     f"{t.name}: max |difference| = {t.max_difference:.2e}")
        if t.course.size <= 6:
            flat = lambda a: np.array2string(a.reshape(-1) + 0.0, precision=6,  # noqa: E731
                                             suppress_small=True)
            lines.append(f"  {'':<{len(t.name) + 9}} course {flat(t.course)}, from Jacobians "
                         f"{flat(t.from_jacobians)}")
    lines.append("(the course's values are convention J, derivatives of the cost J; convention "
                 "L's dZ and dA are m times these, its dW and db the same.)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- batch normalization

@dataclass
class BatchNormJacobians:
    """The Jacobians of a batch-norm layer's normalization and activation, numerator layout.

    ``∂Z̃/∂Z`` is block diagonal with one dense ``m × m`` block per unit (the batch's mean and
    variance couple the examples); ``∂A/∂Z̃`` is diagonal (``g`` acts entry by entry); ``∂A/∂Z``
    is their product. ``print(report)`` shows them; :meth:`plot` draws them side by side.
    """

    n: int
    m: int
    activation: str
    jacobians: list = field(default_factory=list)
    show_limit: int = 12

    def __getitem__(self, name):
        for j in self.jacobians:
            if j.name == name:
                return j
        raise KeyError(name)

    def __str__(self):
        lines = [f"Batch norm of n = {self.n} units over m = {self.m} examples, then "
                 f"{self.activation}: numerator layout, C order (vec(Z)[i*m + k] = Z[i,k]); "
                 "analytic vs two-sided differences"]
        for jac in self.jacobians:
            r, c = jac.analytic.shape
            lines += ["", f"{jac.name}  ({r} × {c}) = {jac.closed_form}   max |analytic - "
                          f"numeric| = {jac.max_difference:.2e}   [{jac.note}]"]
            if max(r, c) <= self.show_limit:
                lines.append(_matrix_text(jac.analytic))
        return "\n".join(lines)

    def plot(self, path=None):
        """Heatmaps of ``∂Z̃/∂Z``, ``∂A/∂Z̃`` and ``∂A/∂Z`` side by side (the ``plot`` extra).

        See :func:`chainrule.explain.pictures.plot_batchnorm_jacobians`; returns the figure.
        """
        from .pictures import plot_batchnorm_jacobians

        return plot_batchnorm_jacobians(self, path=path)


def batchnorm_jacobians(Z, gamma=None, beta=None, activation="tanh", epsilon=EPSILON,
                        bn_epsilon=ref.BATCHNORM_EPSILON):
    """The Jacobians of ``Z̃ = batchnorm(Z)`` and ``A = g(Z̃)`` (training mode), analytic and
    by finite differences.

    Parameters
    ----------
    Z : array, shape (n, m)
        ``W A_prev`` of a batch-norm layer: n units, m >= 2 examples.
    gamma, beta : arrays, shape (n, 1), optional
        Default ones and zeros (PyTorch's and Keras's start).
    activation : str or (str, float)
        An elementwise activation of the table.
    epsilon : float
        The step of the finite differences.
    bn_epsilon : float
        Batch norm's ``ε``, inside the square root.

    Returns
    -------
    BatchNormJacobians
        ``report["∂Z̃/∂Z"]``, ``report["∂A/∂Z̃"]``, ``report["∂A/∂Z"]``, each a
        :class:`Jacobian` of shape ``(n m, n m)``.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.explain import batchnorm_jacobians
    >>> report = batchnorm_jacobians(np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]]))
    >>> block = report["∂Z̃/∂Z"].analytic[:3, :3]  # unit 0: dense, every example coupled
    >>> bool(np.all(block != 0)), report["∂Z̃/∂Z"].max_difference < 1e-6
    (True, True)
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2:
        raise InputError(f"batchnorm_jacobians: Z must be 2-D (n, m), units x examples; got "
                         f"shape {Z.shape}")
    n, m = Z.shape
    gamma = np.ones((n, 1)) if gamma is None else np.asarray(gamma, dtype=np.float64)
    beta = np.zeros((n, 1)) if beta is None else np.asarray(beta, dtype=np.float64)
    if ref.parse_activation(activation)[0] == "softmax":
        raise InputError("batchnorm_jacobians draws an elementwise activation; softmax couples "
                         "the units of an example (see jacobians)")
    Z_tilde, cache = ref.batchnorm_forward(Z, gamma, beta, bn_epsilon)

    def normalize(Z_):
        return ref.batchnorm_forward(Z_, gamma, beta, bn_epsilon)[0]

    J_bn = np.zeros((n * m, n * m))
    for i in range(n):
        J_bn[i * m:(i + 1) * m, i * m:(i + 1) * m] = ref.batchnorm_jacobian(cache, i)
    J_act = _activation_jacobian(Z_tilde, activation)
    name = ref.parse_activation(activation)[0]
    report = BatchNormJacobians(n=n, m=m, activation=name)
    report.jacobians = [
        Jacobian("∂Z̃/∂Z", "blockdiag_i (γ_i/s_i)(I_m − 1/m − ẑ_i ẑ_iᵀ/m)", J_bn,
                 _numeric_jacobian(normalize, Z, epsilon),
                 "block diagonal: units apart, the m examples of a unit coupled"),
        Jacobian("∂A/∂Z̃", "diag(vec(g'(Z̃)))", J_act,
                 _numeric_jacobian(lambda Zt: ref.activation_forward(Zt, activation), Z_tilde,
                                   epsilon),
                 "diagonal: g acts entry by entry"),
        Jacobian("∂A/∂Z", "∂A/∂Z̃ · ∂Z̃/∂Z", J_act @ J_bn,
                 _numeric_jacobian(lambda Z_: ref.activation_forward(normalize(Z_), activation),
                                   Z, epsilon),
                 "the coupling survives the activation"),
    ]
    return report
