"""Matching one output of a learner's function against the reference and its known mistakes.

Shared by :mod:`.doctor` (the three backward functions of course 1 week 4) and
:mod:`.course` (every other function of courses 1 and 2 in which a learner writes gradient,
cost or update math).
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref

RTOL = 1e-7


def shape_text(a):
    return str(tuple(int(x) for x in np.shape(a)))


def describe(result):
    """A returned value in words: ``"a tuple of 3 ((3, 4), (3, 1), float)"``."""
    if isinstance(result, (tuple, list)):
        parts = ", ".join(shape_text(r) if isinstance(r, np.ndarray) else type(r).__name__
                          for r in result)
        return f"a {type(result).__name__} of {len(result)} ({parts})"
    if isinstance(result, np.ndarray):
        return f"one array of shape {shape_text(result)}"
    return type(result).__name__


def close(actual, expected):
    """``actual`` equals ``expected`` (same shape, finite, within :data:`RTOL` of its scale)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return False
    if not np.all(np.isfinite(actual)):
        return False
    scale = float(np.max(np.abs(expected), initial=0.0))
    return bool(np.allclose(actual, expected, rtol=RTOL, atol=RTOL * scale + 1e-300))


def factors(m, role):
    """The constant factors tried, and what each means for an output of this ``role``.

    ``"average"``: dW, db in convention L (the 1/m belongs there); ``"sum"``: dW, db in
    convention J (the 1/m is already in dZ); ``"none"``: dA_prev, dZ (no 1/m at all);
    ``"exact"``: only the value itself (updates, costs: their alternatives are explicit).
    """
    if role == "average":
        return [(1.0, None), (m, "missing_1_over_m"), (1.0 / m, "double_1_over_m"),
                (-1.0, "sign_flipped")]
    if role == "sum":
        return [(1.0, None), (1.0 / m, "double_1_over_m"), (-1.0, "sign_flipped"),
                (float(m), "wrong_factor")]
    if role == "exact":
        return [(1.0, None)]
    return [(1.0, None), (1.0 / m, "extra_1_over_m"), (-1.0, "sign_flipped"),
            (float(m), "wrong_factor")]


def as_float_array(U):
    try:
        return np.asarray(U, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def explain_output(U, E, alternatives, m, role):
    """The mistakes turning the expected ``E`` into the actual ``U``: ``[]`` if equal, else None.

    ``alternatives`` are ``(code or codes, array)``: what a structural mistake computes, at
    the correct scale; each is tried with the constant factors of ``role`` too.
    """
    U = as_float_array(U)
    if U is None:
        return None
    for code, S in [(None, E)] + list(alternatives):
        if S is None or U.shape != np.shape(S):
            continue
        for c, factor_code in factors(m, role):
            if close(U, c * np.asarray(S)):
                codes = list(code) if isinstance(code, tuple) else [code]
                return [x for x in codes + [factor_code] if x]
    return None


def constant_factor(actual, expected, rtol=1e-6):
    """``c`` if ``actual ~= c * expected`` entry by entry (within ``rtol``), else ``None``."""
    actual = as_float_array(actual)
    if actual is None:
        return None
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape or not np.all(np.isfinite(actual)):
        return None
    actual, expected = actual.ravel(), expected.ravel()
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    if not scale:
        return None
    big = np.abs(expected) > 1e-3 * scale
    c = float(np.median(actual[big] / expected[big]))
    if np.isclose(c, 1.0, rtol=1e-4):
        return None  # not a factor: a small difference (rounding, float32) is reported as it is
    if c and np.allclose(actual, c * expected, rtol=rtol, atol=rtol * abs(c) * scale):
        return c
    return None


def factor_text(c, m):
    for value, text in ((m, "m"), (1 / m, "1/m"), (-1, "-1"), (2, "2"), (0.5, "1/2"),
                        (m * m, "m²"), (1 / (m * m), "1/m²")):
        if np.isclose(c, value, rtol=1e-6):
            return f"{text} (= {c:.6g})" if text not in ("2", "1/2", "-1") else text
    return f"{c:.6g}"


def difference_text(U, E):
    U = as_float_array(U)
    E = np.asarray(E, dtype=np.float64)
    if U is None:
        return "not a number or an array"
    if U.shape != E.shape:
        return f"shape {shape_text(U)}, expected {shape_text(E)}"
    diff = np.abs(U - E)
    if diff.size == 0:
        return "empty"
    i = np.unravel_index(int(np.argmax(np.where(np.isfinite(diff), diff, np.inf))), diff.shape)
    return (f"max |actual - expected| = {diff[i]:.3g} at {list(int(x) for x in i)} "
            f"(actual {U[i]:.6g}, expected {E[i]:.6g})")


def dZ_hypotheses(dA, Z, A_prev, activation):
    """``(codes, dZ)`` for the correct dZ and each upstream mistake in forming it."""
    name, _ = ref.parse_activation(activation)
    correct = ref.activation_backward(dA, Z, activation)
    out = [((), correct)]
    with np.errstate(all="ignore"):
        A = ref.activation_forward(Z, activation)
        if name in ("sigmoid", "tanh", "relu", "leaky_relu"):
            out.append((("g_prime_at_A",), dA * ref.activation_derivative(A, activation)))
            out.append((("g_instead_of_g_prime",), dA * A))
        if name == "sigmoid":
            out.append((("a_form_at_Z",), dA * Z * (1 - Z)))
            out.append((("sigmoid_tanh_mixup",), dA * ref.tanh_prime(Z)))
            out.append((("sigmoid_tanh_mixup",), dA * (1 - A ** 2)))
        if name == "tanh":
            out.append((("a_form_at_Z",), dA * (1 - Z ** 2)))
            out.append((("sigmoid_tanh_mixup",), dA * ref.sigmoid_prime(Z)))
            out.append((("sigmoid_tanh_mixup",), dA * A * (1 - A)))
        if name in ("relu", "leaky_relu"):
            out.append((("relu_mask_wrong_array",), np.where(dA > 0, dA, 0.0)))
            if A_prev.shape == dA.shape:
                out.append((("relu_mask_wrong_array",), np.where(A_prev > 0, dA, 0.0)))
            out.append((("relu_mask_inverted",), np.where(Z > 0, 0.0, dA)))
        if name != "identity":
            out.append((("dA_dZ_mixup",), dA))
    return out
