"""The doctor's ``batchnorm_backward(dout, cache)`` (course 2 week 3): inputs, layout, mistakes.

Two layouts are known, told apart by the shapes the learner's functions accept and return:

* the course's (:func:`chainrule.reference.batchnorm_backward`): ``dZ_tilde`` and ``Z`` are
  ``(n, m)``, units x examples, ``gamma``, ``beta``, ``dgamma``, ``dbeta`` are ``(n, 1)``;
* the rows layout most public derivations use (cs231n's ``dx, dgamma, dbeta =
  batchnorm_backward(dout, cache)``): ``dout`` and ``x`` are ``(m, n)``, examples x units,
  ``gamma`` and the parameter gradients ``(n,)``.

The cache is the learner's own. When the module of the function under diagnosis (a file,
a notebook) defines ``batchnorm_forward``, the doctor calls it on its inputs (``(Z, gamma,
beta, eps)``, or cs231n's ``(x, gamma, beta, bn_param)`` with ``bn_param = {"mode":
"train", "eps": eps}``) and passes the cache it returns, whatever its structure: a learner's
backward unpacks the cache its forward wrote, and no guess of that structure is more robust
than the forward itself. Without such a forward, the cache is the reference's
:class:`chainrule.reference.BatchNormCache` (a named tuple: ``Z, Z_hat, mu, var, s, gamma,
beta, eps``; transposed and flattened the same way in the rows layout). The reference
result is always computed from the doctor's own ``Z, gamma, beta, eps``, so a mistake in
the learner's forward that reaches the backward's values (the unbiased variance, ε outside
the root) is named too.

Both conventions are right: ``dZ`` is the same map in both, and ``dgamma``, ``dbeta`` are
sums over the examples (convention J, cs231n) or means (convention L, the course's
reference); the doctor reads which one from the result.
"""

# ruff: noqa: N802, N803, N806  (the course's names)

from __future__ import annotations

import inspect

import numpy as np

from .. import reference as ref
from ._match import as_float_array, close, describe, explain_output
from .course import Finding, Probe, _add, _unexplained
from .mistakes import seen
from .sandbox import DEFAULT_TIME_LIMIT, call_limited

LAYOUTS = ("course", "rows")
#: ε of the doctor's inputs: large enough that ε outside the square root shows in the values
PROBE_EPS = 0.1


def _inputs(rng, n, m):
    Z = rng.standard_normal((n, m)) * rng.uniform(0.5, 2.0, (n, 1)) + rng.uniform(-1, 1, (n, 1))
    gamma = rng.uniform(0.5, 2.0, (n, 1))
    beta = rng.uniform(-1.0, 1.0, (n, 1))
    dZt = rng.standard_normal((n, m))
    return Z, gamma, beta, dZt


def _to(layout, a, what):
    """A course-layout array in ``layout``: ``what`` "full" (n, m) or "param" (n, 1)."""
    if layout == "course":
        return a
    return a.T if what == "full" else a.reshape(-1)


def _reference_cache(layout, Z, gamma, beta, eps):
    _, c = ref.batchnorm_forward(Z, gamma, beta, eps)
    if layout == "course":
        return c
    full = {"Z", "Z_hat"}
    return ref.BatchNormCache(*[_to(layout, getattr(c, f), "full" if f in full else "param")
                                if f != "eps" else c.eps for f in c._fields])


def _forward_of(fn):
    forward = getattr(fn, "__globals__", {}).get("batchnorm_forward")
    return forward if callable(forward) and forward is not fn else None


def _call(fn, args):
    """``(result, error)`` of the learner's code, under the sandbox's time limit."""
    return call_limited(fn, args, DEFAULT_TIME_LIMIT)


def _run_forward(forward, layout, Z, gamma, beta, eps):
    """``(out, cache, how)`` of the learner's forward on the layout's inputs, or ``None``."""
    x, g, b = (np.array(_to(layout, a, what)) for a, what in ((Z, "full"), (gamma, "param"),
                                                              (beta, "param")))
    try:
        n_params = len(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        n_params = 4
    tries = [("eps", (x, g, b, eps)), ("bn_param", (x, g, b, {"mode": "train", "eps": eps,
                                                                "momentum": 0.9}))]
    if n_params == 3:
        tries = [("default eps", (x, g, b))]
    for how, args in tries:
        result, error = _call(forward, args)
        if error is None and isinstance(result, tuple) and len(result) == 2:
            return result[0], result[1], how
    return None


def _fits(layout, result, n, m):
    """How well a backward result fits ``layout``'s shapes (higher is better)."""
    if not (isinstance(result, tuple) and len(result) == 3):
        return 0
    shapes = [np.shape(as_float_array(r)) if as_float_array(r) is not None else None
              for r in result]
    full = (n, m) if layout == "course" else (m, n)
    param = (n, 1) if layout == "course" else (n,)
    return 1 + (shapes[0] == full) + (shapes[1] == param) + (shapes[2] == param)


def _forward_ok(layout, out, Z, gamma, beta, eps):
    E, _ = ref.batchnorm_forward(Z, gamma, beta, eps)
    arr = as_float_array(out)
    return arr is not None and arr.shape == _to(layout, E, "full").shape and close(
        arr, _to(layout, E, "full"))


def build_for(fn, seed):
    """The probes for ``fn``: its layout chosen, its cache from its own forward when there is one."""
    rng = np.random.default_rng(seed)
    forward = _forward_of(fn)
    shapes = (("distinct shapes", 3, 5), ("square shapes", 4, 4))
    inputs = [(name, n, m) + _inputs(rng, n, m) for name, n, m in shapes]
    name, n, m, Z, gamma, beta, dZt = inputs[0]
    best = None
    for layout in LAYOUTS:
        score, run = 0, None
        if forward is not None:
            run = _run_forward(forward, layout, Z, gamma, beta, PROBE_EPS)
            if run is not None:
                score += 10 * _forward_ok(layout, run[0], Z, gamma, beta, PROBE_EPS)
                cache = run[1]
        if run is None:
            cache = _reference_cache(layout, Z, gamma, beta, PROBE_EPS)
        result, error = _call(fn, (np.array(_to(layout, dZt, "full")), cache))
        score += _fits(layout, result, n, m) if error is None else 0
        if best is None or score > best[0]:
            best = (score, layout)
    layout = best[1]
    probes = []
    for name, n, m, Z, gamma, beta, dZt in inputs:
        notes = []
        eps = PROBE_EPS
        run = _run_forward(forward, layout, Z, gamma, beta, eps) if forward else None
        if run is not None:
            out, cache, how = run
            if how == "default eps":
                eps = _eps_from(layout, out, Z, gamma, beta) or ref.BATCHNORM_EPSILON
            notes.append(f"layout: {_LAYOUT_TEXT[layout]}; the cache is the one your "
                         f"batchnorm_forward returns (called with {how})")
            if not _forward_ok(layout, out, Z, gamma, beta, eps):
                notes.append("your batchnorm_forward's Z_tilde differs from gamma * (Z - mu) / "
                             "sqrt(sigma^2 + eps) + beta: a mistake there reaches the backward "
                             "through the cache")
        else:
            cache = _reference_cache(layout, Z, gamma, beta, eps)
            notes.append(f"layout: {_LAYOUT_TEXT[layout]}; " + (
                "your batchnorm_forward did not run, so " if forward else "")
                + "the cache is chainrule.reference.BatchNormCache (Z, Z_hat, mu, var, s, "
                "gamma, beta, eps) in this layout")
        probes.append(Probe(name, (np.array(_to(layout, dZt, "full")), cache), m,
                            {"layout": layout, "Z": Z, "gamma": gamma, "beta": beta,
                             "dZt": dZt, "eps": eps, "notes": notes}))
    return probes


_LAYOUT_TEXT = {"course": "the course's (units x examples, gamma (n, 1))",
                "rows": "rows (examples x units, gamma (n,)), as cs231n writes it"}


def _eps_from(layout, out, Z, gamma, beta):
    """The ε a forward with its own default used, read from its ``Z_tilde`` (or None)."""
    arr = as_float_array(out)
    if arr is None or arr.shape != _to(layout, Z, "full").shape:
        return None
    Zt = arr if layout == "course" else arr.T
    D = Z - Z.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        s = np.median(gamma * D / (Zt - beta), axis=1, keepdims=True)
    var = np.mean(D ** 2, axis=1, keepdims=True)
    # one ε for every unit: under the root (s² - var), or outside it (s - sqrt(var))
    for eps in (s ** 2 - var, s - np.sqrt(var)):
        if np.all(np.isfinite(eps)) and np.ptp(eps) <= 1e-4 * float(np.max(np.abs(eps))) + 1e-13:
            return max(float(np.mean(eps)), 0.0)
    return None


def build(kind, seed):
    """The probes without a learner's forward (trial calls): the course's layout."""
    rng = np.random.default_rng(seed)
    out = []
    for name, n, m in (("distinct shapes", 3, 5), ("square shapes", 4, 4)):
        Z, gamma, beta, dZt = _inputs(rng, n, m)
        out.append(Probe(name, (dZt, _reference_cache("course", Z, gamma, beta, PROBE_EPS)), m,
                         {"layout": "course", "Z": Z, "gamma": gamma, "beta": beta, "dZt": dZt,
                          "eps": PROBE_EPS, "notes": []}))
    return out


# --------------------------------------------------------------------------- the mistakes

def _staged(dZt, Z, gamma, eps, *, ddof=0, eps_outside=False, axis=1, m_div=None,
            keep_mu=True, keep_var=True, root_rule=True):
    """A staged backward through a variant of the forward, in the course layout.

    ``ddof=1``: the unbiased variance; ``eps_outside``: ``s = sqrt(var) + eps``; ``axis=0``:
    statistics and sums over the units; ``m_div``: the count the means divide by;
    ``keep_mu``/``keep_var``: False treats that statistic as a constant; ``root_rule``
    False (with ``eps_outside``) keeps ``d s / d var = 1 / (2 s)`` of the correct ``s``, which
    is what the compact formula assumes. Returns ``(dZ,
    sum dZt, sum dZt * Z_hat)`` with the sums over ``axis`` (keepdims).
    """
    N = Z.shape[axis]
    m_div = N if m_div is None else m_div
    mu = np.sum(Z, axis=axis, keepdims=True) / m_div
    D = Z - mu
    var = np.sum(D ** 2, axis=axis, keepdims=True) / (m_div - ddof)
    s = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    Z_hat = D / s
    dZ_hat = gamma * dZt
    dD = dZ_hat / s
    if keep_var:
        ds = -np.sum(dZ_hat * D, axis=axis, keepdims=True) / s ** 2
        dvar = ds / (2 * np.sqrt(var)) if eps_outside and root_rule else ds / (2 * s)
        dD = dD + (2 / (m_div - ddof)) * D * dvar
    dZ = dD - np.sum(dD, axis=axis, keepdims=True) / m_div if keep_mu else dD
    return dZ, np.sum(dZt, axis=axis, keepdims=True), np.sum(dZt * Z_hat, axis=axis,
                                                             keepdims=True)


def _hypotheses(Z, gamma, eps, dZt):
    """``(codes, dZ, dbeta_J, dgamma_J)`` for the correct backward and each known mistake
    (course layout; the parameter gradients as sums, convention J)."""
    m = Z.shape[1]
    out = [((), *_staged(dZt, Z, gamma, eps))]
    for keep in ((False, False), (False, True), (True, False)):
        out.append((("bn_stats_constant",), *_staged(dZt, Z, gamma, eps, keep_mu=keep[0],
                                                     keep_var=keep[1])))
    # eps outside the root: in forward and backward (exact, or the compact formula on s =
    # sqrt(var) + eps), or in the backward only (the cache's Z_hat is right)
    for rule in (True, False):
        out.append((("bn_eps_outside_sqrt",), *_staged(dZt, Z, gamma, eps, eps_outside=True,
                                                       root_rule=rule)))
    _, c = ref.batchnorm_forward(Z, gamma, gamma * 0, eps)
    s_out = np.sqrt(c.var) + eps
    S1, S2 = dZt.sum(axis=1, keepdims=True), (dZt * c.Z_hat).sum(axis=1, keepdims=True)
    out.append((("bn_eps_outside_sqrt",), (gamma / (m * s_out)) * (m * dZt - S1 - c.Z_hat * S2),
                S1, S2))
    # ... or in the forward only (the cache's Z_hat), the backward's s right
    Zh_out = (Z - c.mu) / s_out
    S2o = (dZt * Zh_out).sum(axis=1, keepdims=True)
    out.append((("bn_eps_outside_sqrt",), (gamma / (m * c.s)) * (m * dZt - S1 - Zh_out * S2o),
                S1, S2o))
    out.append((("bn_unbiased_variance",), *_staged(dZt, Z, gamma, eps, ddof=1)))
    # the unbiased variance in the forward only (the cache), the correct backward formula on it
    D = Z - Z.mean(axis=1, keepdims=True)
    s_u = np.sqrt(np.sum(D ** 2, axis=1, keepdims=True) / (m - 1) + eps)
    Zh = D / s_u
    S1, S2 = dZt.sum(axis=1, keepdims=True), (dZt * Zh).sum(axis=1, keepdims=True)
    out.append((("bn_unbiased_variance",), (gamma / (m * s_u)) * (m * dZt - S1 - Zh * S2), S1,
                S2))
    # sums over the units (axis 0) instead of the examples: forward and backward (the means
    # divided by m or by n), or the backward's sums only
    for m_div in dict.fromkeys((None, m)):
        dZ, S1w, S2w = _staged(dZt, Z, gamma, eps, axis=0, m_div=m_div)
        out.append((("bn_sum_wrong_axis",), dZ, S1w, S2w))
    S1w, S2w = dZt.sum(axis=0, keepdims=True), (dZt * c.Z_hat).sum(axis=0, keepdims=True)
    out.append((("bn_sum_wrong_axis",), (gamma / (m * c.s)) * (m * dZt - S1w - c.Z_hat * S2w),
                S1w, S2w))
    # 1/m applied twice: the compact formula fed the means (dgamma, dbeta of convention L)
    _, S1, S2 = out[0][1:]
    out.append((("bn_double_1_over_m",), (gamma / (m * c.s)) * (m * dZt - S1 / m - c.Z_hat * S2 / m),
                S1, S2))
    return out


def _param_alts(layout, value, m):
    """A parameter gradient's shape mistakes in ``layout``: no keepdims."""
    if layout == "course" and value.shape[1] == 1:
        return [("missing_keepdims", value.reshape(-1))]
    return []


def analyse(kind, result, probe):
    d = probe.data
    layout, Z, gamma, eps, dZt = d["layout"], d["Z"], d["gamma"], d["eps"], d["dZt"]
    n, m = Z.shape
    findings = [Finding("note", [], note) for note in d["notes"]]
    f = _formulas(layout, n, m)
    names = ("dZ", "dgamma", "dbeta") if layout == "course" else ("dx", "dgamma", "dbeta")
    if not (isinstance(result, tuple) and len(result) == 3):
        return findings + [Finding("wrong_outputs", ["return value"],
                                   f"returned {describe(result)}; expected ({', '.join(names)})",
                                   f)]
    hyps = _hypotheses(Z, gamma, eps, dZt)
    _, dZ, S1, S2 = hyps[0]
    # convention: the parameter gradients as sums (J, cs231n) or as means (L, the reference)
    dgamma_u, dbeta_u = (as_float_array(r) for r in result[1:])
    J = any(u is not None and u.shape == _to(layout, E, "param").shape and close(
        u, _to(layout, E, "param")) for u, E in ((dgamma_u, S2), (dbeta_u, S1)))
    scale = 1.0 if J else 1.0 / m
    if J and layout == "course":
        findings.append(Finding("note", [], "convention J: dgamma and dbeta are sums over the "
                                "examples (the reference's convention L divides them by m); "
                                "dZ is the same in both"))
    for i, (key, role) in enumerate(zip(names, ("none", "param", "param"))):
        U = result[i]
        if role == "none":
            E = _to(layout, dZ, "full")
            alts = [(c, _to(layout, x, "full")) for c, x, *_ in hyps[1:]]
            codes = explain_output(U, E, alts, m, "none")
        else:
            pick = 3 if key == "dgamma" else 2  # hyps: (codes, dZ, dbeta, dgamma)
            E = _to(layout, hyps[0][pick] * scale, "param")
            # the correct value's shape mistakes first: a hypothesis that changes only dZ has
            # this same value, and must not be named for it
            alts = list(_param_alts(layout, hyps[0][pick] * scale, m))
            for codes_h, *h in hyps[1:]:
                value = h[pick - 1] * scale
                alts.append((codes_h, _to(layout, value, "param")))
                if value.shape[0] == 1:  # a sum over the units, without keepdims
                    alts.append((codes_h, value.reshape(-1)))
                alts += [((c,) + tuple(codes_h), a) for c, a in _param_alts(layout, value, m)]
            codes = explain_output(U, E, alts, m, "average" if not J else "sum")
        if codes is None:
            findings.append(_unexplained([key], U, E, f))
            continue
        for c in codes:
            if c == "missing_1_over_m":
                continue  # a sum where the reference has a mean: convention J, read above
            findings.append(Finding(c, [key], _detail(c, key, U, E, m), f))
    return findings


def _detail(code, key, U, E, m):
    return seen(code, key, as_float_array(U), E, m)


def _formulas(layout, n, m):
    if layout == "course":
        return [f"dbeta = np.sum(dZ_tilde, axis=1, keepdims=True)   ({n}, 1), (1/m) of it in "
                "convention L",
                f"dgamma = np.sum(dZ_tilde * Z_hat, axis=1, keepdims=True)   ({n}, 1)",
                f"dZ = (gamma / (m s)) * (m dZ_tilde - Σ_k dZ_tilde - Z_hat * Σ_k dZ_tilde "
                f"Z_hat)   ({n}, {m}), s = np.sqrt(var + eps), m = {m}"]
    return [f"dbeta = np.sum(dout, axis=0)   ({n},)",
            f"dgamma = np.sum(dout * x_hat, axis=0)   ({n},)",
            f"dx = (gamma / (N s)) * (N dout - dbeta - x_hat * dgamma)   ({m}, {n}), "
            f"s = np.sqrt(var + eps), N = {m}"]


_add("batchnorm_backward", ("dZ_tilde", "cache"), "course 2 week 3 (batch normalization)",
     "(dZ, dgamma, dbeta)", build, analyse, variants=(("dout", "cache"),),
     build_for=build_for)
