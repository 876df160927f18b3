"""The functions of courses 1 and 2 where a learner writes gradient, cost or update math.

For each: the course's signature(s), the inputs the course builds (its caches, dictionary
keys and tuple orders, in every notebook version), the reference result, and the known
mistakes as alternative results. :func:`analyse` compares a learner's result with them and
returns findings ``(code, where, detail, formulas, layers)``; :mod:`.doctor` turns them into
diagnoses. The backward passes are analysed layer by layer, from the output down: each
layer's outputs are compared with what that layer must compute *from the learner's own
upstream values* (their ``dA``/``dZ`` when they return them), so that several mistakes in
different layers are each named in their layer, and a mistake is not blamed again
downstream.

The momentum and Adam updates are the course's formulas (the ones :mod:`chainrule.optim`
implements for the models), written out here once per element; everything else is
:mod:`chainrule.reference`.
"""

# ruff: noqa: N802, N803, N806  (the course's names)

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .. import reference as ref
from ._match import (as_float_array, close, constant_factor, dZ_hypotheses, describe,
                     difference_text, explain_output, factor_text, shape_text)
from .mistakes import G_PRIME_TEXT, linear_alternatives, seen


@dataclass
class Finding:
    code: str
    where: list
    detail: str = ""
    formulas: list = field(default_factory=list)
    layers: list = field(default_factory=list)


@dataclass
class Probe:
    name: str
    args: tuple
    m: int
    data: dict = field(default_factory=dict)


@dataclass
class CourseFunction:
    """One function of the course: its name, the course's parameters, where it is taught."""

    name: str
    params: tuple
    where: str
    returns: str
    build: object = None
    analyse: object = None
    #: other parameter lists of the same function in other notebook versions
    variants: tuple = ()
    #: mutating the inputs is how the course itself writes it (update functions)
    mutation_ok: bool = False
    #: ``build_for(fn, seed)``: probes that depend on the learner's module (batchnorm_backward
    #: takes the cache of the learner's own batchnorm_forward)
    build_for: object = None

    @property
    def signature(self):
        return f"{self.name}({', '.join(self.params)})"


# --------------------------------------------------------------------------- shared inputs

def _labels(rng, n, m):
    Y = (rng.random((n, m)) > 0.5).astype(np.float64)
    Y[:, 0], Y[:, 1] = 0.0, 1.0
    return Y


def _params(rng, dims):
    p = {}
    for l in range(1, len(dims)):
        p[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1])) / np.sqrt(dims[l - 1])
        p[f"b{l}"] = rng.standard_normal((dims[l], 1)) * 0.5
    return p


@dataclass
class _Net:
    """A forward pass of a small network, computed with the reference, as the course caches it."""

    X: np.ndarray
    Y: np.ndarray
    params: dict
    acts: dict
    Z: dict
    A: dict
    D: dict
    keep_prob: float | None
    lambd: float

    @property
    def L(self):
        return len(self.acts)

    @property
    def m(self):
        return self.X.shape[1]


def _forward_net(rng, dims, acts, m, keep_prob=None, lambd=0.0):
    params = _params(rng, dims)
    X = rng.standard_normal((dims[0], m))
    Y = _labels(rng, dims[-1], m)
    L = len(dims) - 1
    A, Z, D = {0: X}, {}, {}
    for l in range(1, L + 1):
        Z[l], _ = ref.linear_forward(A[l - 1], params[f"W{l}"], params[f"b{l}"])
        A[l] = ref.activation_forward(Z[l], acts[l - 1])
        if keep_prob is not None and l < L:
            D[l] = (rng.random(A[l].shape) < keep_prob).astype(int)
            A[l] = A[l] * D[l] / keep_prob
    return _Net(X, Y, params, {l: acts[l - 1] for l in range(1, L + 1)}, Z, A, D, keep_prob,
                lambd)


# --------------------------------------------------------------------------- formulas



def _chain_formulas(layer, l, m, keep_prob, lambd, top, dZ_text=None):
    """The correct formulas of layer ``l`` in computation order (dZ, dW, db, dA_prev)."""
    W = layer["W"]
    n, n_prev = W.shape
    shp = f"({n}, {m})"
    out = {}
    if top:
        out[f"dZ{l}"] = dZ_text or f"dZ{l} = A{l} - Y                                  {shp}"
    else:
        out[f"dZ{l}"] = (f"dZ{l} = dA{l} * g'(Z{l}), {G_PRIME_TEXT.get(layer['act'], layer['act'])}"
                         f"   {shp} = {shp} * {shp}")
    reg = f" + (λ/m) W{l}" if lambd else ""
    out[f"dW{l}"] = (f"dW{l} = (1/m) dZ{l} · A{l - 1}ᵀ{reg}        ({n}, {n_prev}) = ({n}, {m}) · "
                     f"({m}, {n_prev}), m = {m}" + (f", λ = {lambd:g}" if lambd else ""))
    out[f"db{l}"] = (f"db{l} = (1/m) np.sum(dZ{l}, axis=1, keepdims=True)   ({n}, 1) from "
                     f"({n}, {m}), m = {m}")
    drop = (f" * D{l - 1} / keep_prob" if layer.get("D_prev") is not None else "")
    out[f"dA{l - 1}"] = (f"dA{l - 1} = W{l}ᵀ · dZ{l}{drop}           ({n_prev}, {m}) = "
                         f"({n_prev}, {n}) · ({n}, {m})"
                         + (f", keep_prob = {keep_prob:g}" if drop else ""))
    return out


# --------------------------------------------------------------------------- layered backward

def _linear_alts(dZ, A_prev, W):
    """Per-output structural mistakes of the linear step (correct scale, convention L)."""
    return linear_alternatives(dZ, A_prev, W, "L")


def _match_dW(U, data, W, lambd, m, alts):
    """Codes for dW, with the L2 term: U = a·(1/m dZ·A_prevᵀ) + c·W is fitted when needed."""
    reg = (lambd / m) * W if lambd else 0.0
    codes = explain_output(U, data + reg, [(c, S + reg) for c, S in alts if np.shape(S) ==
                                           W.shape] + [(c, S) for c, S in alts
                                                       if np.shape(S) != W.shape], m, "average")
    if codes is not None:
        return codes, None
    U = as_float_array(U)
    if U is None or U.shape != W.shape:
        return None, None
    if lambd:
        basis = np.stack([data.ravel(), W.ravel()], axis=1)
        (a, c), *_ = np.linalg.lstsq(basis, U.ravel(), rcond=None)
        if close(U, a * data + c * W):
            out = []
            for value, code in ((1.0, None), (m, "missing_1_over_m"), (1.0 / m, "double_1_over_m"),
                                (-1.0, "sign_flipped")):
                if np.isclose(a, value, rtol=1e-6):
                    if code:
                        out.append(code)
                    break
            else:
                out.append("wrong_factor")
            if np.isclose(c, 0.0, atol=1e-9 * max(1.0, lambd / m)):
                out.append("l2_gradient_missing")
                return out, None
            if not np.isclose(c, lambd / m, rtol=1e-6):
                out.append("l2_gradient_wrong")
                return out, (f"the L2 term is {factor_text(c / (lambd / m), m)} times (λ/m)·W "
                             f"= {c:.6g}·W instead of {lambd / m:.6g}·W")
            return out, None
    c = constant_factor(U, data + reg)
    if c is not None:
        return ["wrong_factor"], f"{factor_text(c, m)} times the correct value"
    return None, None


def _unexplained(where, U, E, formulas, layers=()):
    """The finding for an output no hypothesis explains: ``wrong_shape`` (expected and given
    shapes first) when its shape differs, else ``unrecognised`` with how it differs."""
    arr = as_float_array(U)
    if arr is not None and arr.shape != np.shape(E):
        return Finding("wrong_shape", list(where), seen("wrong_shape", where[0], arr, E),
                       list(formulas), list(layers))
    return Finding("unrecognised", list(where), difference_text(U, E), list(formulas),
                   list(layers))


def _match_plain(U, E, alts, m, role):
    codes = explain_output(U, E, alts, m, role)
    if codes is not None:
        return codes, None
    c = constant_factor(U, E)
    if c is not None:
        return ["wrong_factor"], f"{factor_text(c, m)} times the correct value"
    return None, None


def _dropout_alts(raw, D, keep_prob):
    if D is None:
        return raw, []
    correct = raw * D / keep_prob
    return correct, [("dropout_mask_missing", raw / keep_prob),
                     ("dropout_not_rescaled", raw * D),
                     ("dropout_rescaled_wrong", raw * D * keep_prob),
                     (("dropout_mask_missing", "dropout_not_rescaled"), raw)]


def _usable(U, shape):
    U = as_float_array(U)
    if U is None or U.shape != shape or not np.all(np.isfinite(U)):
        return None
    return U


def _output_detail(code, key, U, E, m, extra=None):
    return seen(code, key, U, E, m, extra)


def _layered(result, layers, top_cands, m, keys, keep_prob=None, lambd=0.0, top_text=None):
    """Findings for a backward pass over ``layers`` (dict l -> layer), from the output down.

    ``top_cands``: ``(codes, dZ[L])`` for the ways the pass can start, the correct first.
    ``keys(what, l)``: the learner's key for ``what`` in {"dZ", "dW", "db", "dA"} of layer
    ``l`` ("dA" is the layer's dA_prev), or None if the function does not return it.
    """
    L = max(layers)
    findings = []
    dA_in = None
    for l in range(L, 0, -1):
        layer = layers[l]
        A_prev, W, Z, act = layer["A_prev"], layer["W"], layer["Z"], layer["act"]
        formulas = _chain_formulas(layer, l, m, keep_prob, lambd, l == L, top_text)
        caches = [((), A_prev, W, Z)] + layer.get("cache_alts", [])
        if l == L:
            dZ_cands = [(codes, dZ, (), A_prev, W) for codes, dZ in top_cands]
        else:
            dZ_cands = []
            for c_codes, Ap, Wc, Zc in caches:
                if Zc.shape != dA_in.shape:
                    continue
                for codes, dZ in dZ_hypotheses(dA_in, Zc, Ap, act):
                    dZ_cands.append((tuple(codes) + tuple(c_codes), dZ, c_codes, Ap, Wc))
                for other in layer.get("wrong_acts", ()):
                    dZ_cands.append((("wrong_activation",) + tuple(c_codes),
                                     ref.activation_backward(dA_in, Zc, other), c_codes, Ap, Wc))
            # another layer's gradient as this layer's dA (a loop copied from the output layer)
            for u_codes, U in layer.get("upstream_alts", ()):
                if np.broadcast_shapes(np.shape(U), Z.shape) != Z.shape:
                    continue
                Ub = np.array(np.broadcast_to(U, Z.shape))
                for a in (act,) + tuple(layer.get("wrong_acts", ())):
                    codes = tuple(u_codes) + (("wrong_activation",) if a != act else ())
                    dZ_cands.append((codes, ref.activation_backward(Ub, Z, a), (), A_prev, W))
        kZ, kW, kb, kA = keys("dZ", l), keys("dW", l), keys("db", l), keys("dA", l)
        present = {k: result[k] for k in (kZ, kW, kb, kA) if k is not None and k in result}

        def outputs_for(dZ, Ap, Wc):
            data, db, raw, alts = _linear_alts(dZ, Ap, Wc)
            dA, d_alts = _dropout_alts(raw, layer.get("D_prev"), keep_prob)
            res, unexplained = {}, []
            for k, U in present.items():
                if k == kZ:
                    continue
                if k == kW:
                    codes, extra = _match_dW(U, data, Wc, lambd, m, alts["dW"])
                    E = data + ((lambd / m) * Wc if lambd else 0.0)
                elif k == kb:
                    codes, extra = _match_plain(U, db, alts["db"], m, "average")
                    E = db
                else:
                    a = [(c, S * layer["D_prev"] / keep_prob) if layer.get("D_prev") is not None
                         and np.shape(S) == raw.shape else (c, S) for c, S in alts["dA"]]
                    codes, extra = _match_plain(U, dA, a + d_alts, m, "none")
                    E = dA
                if codes is None:
                    unexplained.append((k, E))
                else:
                    res[k] = (codes, extra, E)
            return res, unexplained, dA

        learner_dZ = _usable(result.get(kZ), Z.shape) if kZ in present else None
        if kZ in present:
            E = dZ_cands[0][1] if dZ_cands else None
            codes, extra = (None, None)
            if E is not None:
                by = [(c, dZ) for c, dZ, *_ in dZ_cands[1:]]
                codes, extra = _match_plain(present[kZ], E, by, m, "none")
            if codes:
                findings += [Finding(c, [kZ], _dZ_detail(c, kZ, extra), [formulas[f"dZ{l}"]], [l])
                             for c in codes]
            elif codes is None and E is not None:
                findings.append(_unexplained([kZ], present[kZ], E, [formulas[f"dZ{l}"]], [l]))
        if learner_dZ is not None:
            choices = [((), learner_dZ, (), A_prev, W)]
            choices += [(c_codes, learner_dZ, c_codes, Ap, Wc) for c_codes, Ap, Wc, Zc in
                        caches[1:] if Wc.shape[0] == learner_dZ.shape[0]]
        else:
            choices = dZ_cands
        best = None
        for codes, dZ, c_codes, Ap, Wc in choices:
            if Wc.shape[0] != dZ.shape[0]:
                continue
            res, unexplained, dA = outputs_for(dZ, Ap, Wc)
            all_codes = list(codes) + [c for v in res.values() for c in v[0]]
            score = (len(unexplained), len(set(all_codes)), len(all_codes))
            if best is None or score < best[0]:
                best = (score, codes, res, unexplained, dA, dZ)
            if score == (0, 0, 0):
                break
        if best is None:
            findings.append(Finding("unrecognised", sorted(present), "the shapes do not fit "
                                    "this layer", list(formulas.values()), [l]))
            break
        _, codes, res, unexplained, dA, dZ_used = best
        if codes and learner_dZ is None:
            affected = sorted(present) or [f"dZ{l}"]
            for c in codes:
                findings.append(Finding(c, [f"dZ{l}"] if kZ is None else [kZ],
                                        _dZ_detail(c, f"dZ{l}", None) + "; it shows in "
                                        + ", ".join(affected),
                                        [formulas[f"dZ{l}"]] + [formulas[k] for k in
                                                                (f"dW{l}", f"db{l}")], [l]))
        for k, (out_codes, extra, E) in res.items():
            for c in out_codes:
                # dropout acts on A[l-1]: a mistake in dA[l-1]'s mask is layer l-1's
                at = l - 1 if k == kA and c.startswith("dropout") else l
                findings.append(Finding(c, [k], _output_detail(c, k, present[k], E, m, extra),
                                        [_formula_for(formulas, k, l)], [at]))
        for k, E in unexplained:
            findings.append(_unexplained([k], present[k], E, [_formula_for(formulas, k, l)],
                                         [l]))
        if l > 1:
            learner_dA = _usable(result.get(kA), dA.shape) if kA is not None else None
            dA_in = learner_dA if learner_dA is not None else dA
    return findings


def _formula_for(formulas, key, l):
    for prefix in ("dZ", "dW", "db"):
        if key.startswith(prefix):
            return formulas.get(f"{prefix}{l}", "")
    return formulas.get(f"dA{l - 1}", "")


def _dZ_detail(code, key, extra):
    if code == "sign_flipped" and not extra:
        extra = "the negative of the correct value (Y - A instead of A - Y?)"
    if code == "dA_dZ_mixup" and not extra:
        extra = "dA used where dZ belongs (or the reverse)"
    if code in ("extra_1_over_m", "double_1_over_m") and not extra:
        extra = "1/m times the correct value"
    return seen(code, key, extra=extra)


# --------------------------------------------------------------------------- chain functions

_CHAIN_KEYS = ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1")


def _chain_probes(kind, seed):
    rng = np.random.default_rng(seed)
    out = []
    if kind == "backward_propagation":
        for name, dims, m in (("distinct shapes", [3, 4, 1], 7), ("square shapes", [3, 3, 1], 3)):
            net = _forward_net(rng, dims, ["tanh", "sigmoid"], m)
            p = {k: net.params[k] for k in ("W1", "b1", "W2", "b2")}
            cache = {"Z1": net.Z[1], "A1": net.A[1], "Z2": net.Z[2], "A2": net.A[2]}
            out.append(Probe(name, (p, cache, net.X, net.Y), m, {"net": net}))
        return out
    keep_prob = 0.8 if kind == "backward_propagation_with_dropout" else None
    lambd = 0.7 if kind == "backward_propagation_with_regularization" else 0.0
    for name, dims, m in (("distinct shapes", [4, 5, 3, 1], 7),
                          ("square shapes", [3, 3, 3, 1], 3)):
        net = _forward_net(rng, dims, ["relu", "relu", "sigmoid"], m, keep_prob, lambd)
        P = net.params
        if keep_prob is None:
            cache = (net.Z[1], net.A[1], P["W1"], P["b1"], net.Z[2], net.A[2], P["W2"], P["b2"],
                     net.Z[3], net.A[3], P["W3"], P["b3"])
        else:
            cache = (net.Z[1], net.D[1], net.A[1], P["W1"], P["b1"], net.Z[2], net.D[2],
                     net.A[2], P["W2"], P["b2"], net.Z[3], net.A[3], P["W3"], P["b3"])
        last = {"backward_propagation_n": (), "backward_propagation_with_regularization":
                (lambd,), "backward_propagation_with_dropout": (keep_prob,)}[kind]
        out.append(Probe(name, (net.X, net.Y, cache) + last, m, {"net": net}))
    return out


def _analyse_chain(kind, result, probe):
    net = probe.data["net"]
    m, L = net.m, net.L
    required = ([f"d{p}{l}" for l in range(1, L + 1) for p in "Wb"] if kind ==
                "backward_propagation" else list(_CHAIN_KEYS))
    findings = []
    if not isinstance(result, dict):
        return [Finding("wrong_outputs", ["return value"],
                        f"returned {_describe(result)}; expected the dict of gradients with keys "
                        f"{', '.join(required)}")]
    missing = [k for k in required if k not in result]
    if missing:
        findings.append(Finding("wrong_outputs", missing, f"the dict has no {', '.join(missing)}"))
    findings += _matrix_findings(result)
    layers = {}
    for l in range(1, L + 1):
        Z = net.Z[l]
        if l in net.D and net.acts[l] == "relu":
            # relu' as the course writes it, np.int64(A > 0) with the dropped-out A: Z
            # where the unit is kept, a negative number where it is dropped. (Same result
            # for correct code, whose dA is already masked; code that forgets the mask on
            # dA gets it back here, and only its dA is wrong.)
            Z = np.where(net.D[l] == 1, Z, -np.abs(Z) - 1.0)
        layers[l] = dict(A_prev=net.A[l - 1], W=net.params[f"W{l}"], Z=Z, act=net.acts[l],
                         D_prev=net.D.get(l - 1))
    AL = net.A[L]
    top = [((), AL - net.Y), (("sign_flipped",), net.Y - AL),
           (("dA_dZ_mixup",), ref.cost_derivative(AL, net.Y, "binary_crossentropy"))]

    def keys(what, l):
        return f"{what}{l - 1}" if what == "dA" else f"{what}{l}"

    return findings + _layered(result, layers, top, m, keys, net.keep_prob, net.lambd)


_describe = describe


def _matrix_findings(values):
    items = values.items() if isinstance(values, dict) else enumerate(values)
    bad = [str(k) for k, v in items if isinstance(v, np.matrix)]
    if bad:
        return [Finding("np_matrix", bad, "np.matrix instead of np.ndarray")]
    return []


# --------------------------------------------------------------------------- L_model_backward

def analyse_model_layers(result, caches, AL, Y, keys):
    """The layered analysis of ``L_model_backward`` (course 1 week 4), with cache mix-ups."""
    L = len(caches)
    m = AL.shape[1]
    layers = {}
    for l in range(1, L + 1):
        (A_prev, W, _), Z = caches[l - 1]
        alts = []
        for j in range(L):
            if j != l - 1:
                (Ap, Wj, _), Zj = caches[j]
                alts.append((("wrong_cache",), Ap, Wj, Zj))
        layers[l] = dict(A_prev=A_prev, W=W, Z=Z, act="relu" if l < L else "sigmoid",
                         cache_alts=alts, wrong_acts=("sigmoid",) if l < L else ())
    (A_prev, W, _), Z = caches[L - 1]
    dAL = ref.cost_derivative(AL, Y, "binary_crossentropy")
    for l in range(1, L):
        layers[l]["upstream_alts"] = [(("wrong_upstream",), dAL)]
    correct = ref.activation_backward(dAL, Z, "sigmoid")
    top = [((), correct)]
    top += [(tuple(c), dZ) for c, dZ in dZ_hypotheses(dAL, Z, A_prev, "sigmoid")[1:]]
    top += [(("dA_dZ_mixup",), ref.activation_backward(AL - Y, Z, "sigmoid")),
            (("sign_flipped",), -correct), (("double_1_over_m",), correct / m),
            (("wrong_activation",), ref.activation_backward(dAL, Z, "relu"))]
    text = (f"dZ{L} = dAL * σ'(Z{L}) = A{L} - Y, dAL = -(Y/AL - (1 - Y)/(1 - AL))   "
            f"({AL.shape[0]}, {m})")
    return _layered(result, layers, top, m, keys, top_text=text)


# --------------------------------------------------------------------------- costs

def _cost_probes(kind, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name, n, m in (("m = 5", 1, 5), ("m = 7", 1, 7)):
        AL = rng.uniform(0.05, 0.95, (n, m))
        Y = _labels(rng, n, m)
        if kind == "compute_cost_with_regularization":
            p = _params(rng, [4, 5, 3, 1])
            out.append(Probe(name, (AL, Y, p, 0.1), m, {"AL": AL, "Y": Y, "params": p,
                                                        "lambd": 0.1}))
        else:
            # the planar notebook's earlier compute_cost(A2, Y, parameters) takes (unused)
            # parameters as well: "extra" is what a longer course signature receives
            out.append(Probe(name, (AL, Y), m, {"AL": AL, "Y": Y,
                                                "extra": (_params(rng, [3, 4, 1]),)}))
    return out


def _scalar(result):
    """``(value, shape, kind)``: the learner's cost as a float, with its shape."""
    if isinstance(result, np.matrix):
        return float(np.asarray(result).reshape(-1)[0]), result.shape, "matrix"
    if isinstance(result, (int, float, np.floating, np.integer)):
        return float(result), (), "scalar"
    arr = as_float_array(result)
    if arr is None or arr.size != 1:
        return None, None if arr is None else arr.shape, "array"
    return float(arr.reshape(-1)[0]), arr.shape, "array"


def _analyse_cost(kind, result, probe):
    d = probe.data
    AL, Y, m = d["AL"], d["Y"], probe.m
    ce = float(ref.compute_cost(AL, Y, "binary_crossentropy"))
    sq = sum(float(np.sum(np.square(v))) for k, v in d.get("params", {}).items()
             if k.startswith("W"))
    lambd = d.get("lambd", 0.0)
    l2 = lambd / (2 * m) * sq
    expected = ce + l2
    formula = (f"cost = -(1/m) Σ [Y log AL + (1 - Y) log(1 - AL)]   a scalar, shape (); AL, Y "
               f"{shape_text(AL)}, m = {m}")
    formulas = [formula]
    if lambd:
        formulas.append(f"L2_regularization_cost = (1/m)(λ/2) Σ_l Σ W[l]²   λ = {lambd:g}, "
                        f"m = {m}")
    value, shape, how = _scalar(result)
    findings = []
    if value is None:
        arr = as_float_array(result)
        if arr is not None and arr.ndim >= 1 and arr.size == m:
            per = ref.example_losses(AL, Y, "binary_crossentropy").reshape(-1)
            if close(arr.reshape(-1), per / m) or close(arr.reshape(-1), per):
                return [Finding("cost_wrong_reduction", ["cost"], f"cost: shape {shape_text(arr)}, "
                                "a sum over the wrong axis (one value per example)", formulas)]
        return [Finding("wrong_outputs", ["cost"], f"returned {_describe(result)}; expected one "
                        "number (shape ())", formulas)]
    if how == "matrix":
        findings.append(Finding("np_matrix", ["cost"], "np.matrix instead of a number", formulas))
    elif shape != ():
        findings.append(Finding("cost_not_scalar", ["cost"], f"cost: shape {shape}, expected () "
                                "— np.squeeze(cost) (or float(...)) makes it a number", formulas))
    if np.isclose(value, expected, rtol=1e-7, atol=1e-12):
        return findings
    # The cross-entropy part first (with the L2 term as it should be), then the L2 term
    # (with the cross-entropy as it should be).
    base = value - l2
    with np.errstate(all="ignore"):
        only_y = float(-np.sum(Y * np.log(AL)) / m)
        only_1my = float(-np.sum((1 - Y) * np.log(1 - AL)) / m)
    where = "cross-entropy" if lambd else "cost"
    for code, target, text in (
            ("missing_1_over_m", ce * m, f"m = {m} times the correct value: the 1/m is missing"),
            ("sign_flipped", -ce, "the negative of the cost: the leading minus is missing"),
            ("double_1_over_m", ce / m, f"1/m = 1/{m} times the correct value")):
        if np.isclose(base, target, rtol=1e-7, atol=1e-12):
            return findings + [Finding(code, [where], f"{where}: {text}", formulas)]
    # one term of the cross-entropy missing, with or without its 1/m and its minus
    for term, text in ((only_y, "only Y log AL: the (1 - Y) log(1 - AL) term is missing"),
                       (only_1my, "only (1 - Y) log(1 - AL): the Y log AL term is missing")):
        for factor, extra_code, extra_text in (
                (1.0, None, ""), (float(m), "missing_1_over_m", f"; and no 1/m (m = {m})"),
                (-1.0, "sign_flipped", "; and the leading minus is missing"),
                (-float(m), "missing_1_over_m", f"; no 1/m (m = {m}) and no leading minus"),
                (1.0 / m, "double_1_over_m", f"; and 1/m twice (m = {m})")):
            if np.isclose(base, factor * term, rtol=1e-7, atol=1e-12):
                out = [Finding("cost_missing_term", [where], f"{where}: {text}{extra_text}",
                               formulas)]
                if extra_code:
                    out.append(Finding(extra_code, [where], f"{where}: "
                                       f"{extra_text[2:].removeprefix('and ')}", formulas))
                if factor == -float(m):
                    out.append(Finding("sign_flipped", [where], f"{where}: the leading minus is "
                                       "missing", formulas))
                return findings + out
    if lambd and l2:
        squares = {k: float(np.sum(np.square(v))) for k, v in d.get("params", {}).items()
                   if k.startswith("W")}
        hints = {1.0: "", m * m: " and lambd/2*m is (lambd/2)·m: write lambd/(2*m)",
                 2.0: " and the 1/2 of λ/(2m) is missing", float(m): " and the 1/m is missing"}
        for k, sq_k in squares.items():
            part = lambd / (2 * m) * (sq - sq_k)
            for factor, hint in hints.items():
                if part and np.isclose(value - ce, factor * part, rtol=1e-7):
                    return findings + [Finding("l2_cost_wrong", ["L2 term"], f"the L2 term has "
                                               f"no {k} term (Σ {k}² is missing){hint}",
                                               formulas)]
        c = (value - ce) / l2
        if np.isclose(c, 0.0, atol=1e-9):
            return findings + [Finding("l2_cost_wrong", ["L2 term"], "the L2 term is missing",
                                       formulas)]
        if np.isfinite(c):
            hint = {m * m: " — lambd/2*m is (lambd/2)·m: write lambd/(2*m)",
                    2.0: " — the 1/2 of λ/(2m) is missing",
                    float(m): " — the 1/m is missing",
                    2.0 * m: " — the 1/(2m) is missing"}
            text = next((t for v, t in hint.items() if np.isclose(c, v, rtol=1e-6)), "")
            return findings + [Finding("l2_cost_wrong", ["L2 term"],
                                       f"the L2 term is {factor_text(c, m)} times λ/(2m) ΣW²"
                                       f"{text}", formulas)]
    return findings + [Finding("unrecognised", ["cost"], f"cost {value:.8g}, expected "
                               f"{expected:.8g}", formulas)]


# --------------------------------------------------------------------------- updates

def _update_probes(kind, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name, dims in (("three layers", [4, 5, 3, 1]), ("two layers", [2, 4, 1])):
        P = _params(rng, dims)
        G = {f"d{k}": rng.standard_normal(v.shape) * 0.5 for k, v in P.items()}
        lr = 0.05
        if kind == "update_parameters":
            out.append(Probe(name, (P, G, lr), 1, {"P": P, "G": G, "lr": lr,
                                                    "planar_ok": True}))
        elif kind == "update_parameters_with_momentum":
            V = {f"d{k}": rng.standard_normal(v.shape) * 0.3 for k, v in P.items()}
            out.append(Probe(name, (P, G, V, 0.9, lr), 1, {"P": P, "G": G, "V": V, "beta": 0.9,
                                                            "lr": lr}))
        else:
            V = {f"d{k}": rng.standard_normal(v.shape) * 0.3 for k, v in P.items()}
            S = {f"d{k}": rng.random(v.shape) * 0.3 for k, v in P.items()}
            hyper = dict(t=3, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-2)
            out.append(Probe(name, (P, G, V, S, hyper["t"], hyper["lr"], hyper["beta1"],
                                    hyper["beta2"], hyper["eps"]), 1,
                             {"P": P, "G": G, "V": V, "S": S, **hyper}))
    return out


def _dict_output(findings, result, name, keys):
    """The dict output ``name``; a finding and None if it is not a dict with ``keys``."""
    if not isinstance(result, dict):
        findings.append(Finding("wrong_outputs", [name], f"{name}: {_describe(result)}, expected "
                                f"a dict with keys {', '.join(keys)}"))
        return None
    missing = [k for k in keys if k not in result]
    if missing:
        findings.append(Finding("wrong_outputs", [f"{name}[{k!r}]" for k in missing],
                                f"{name} has no {', '.join(missing)}"))
    findings += _matrix_findings({f"{name}[{k!r}]": v for k, v in result.items()})
    return result


def _per_key(findings, out, name, key, expected, alternatives, formula, layer):
    if key not in out:
        return
    U = out[key]
    where = f"{name}[{key!r}]"
    codes, extra = None, None
    arr = as_float_array(U)
    if arr is not None:
        for codes_alt, S in [((), expected)] + alternatives:
            if arr.shape == np.shape(S) and close(arr, S):
                codes = list(codes_alt) if isinstance(codes_alt, tuple) else [codes_alt]
                break
    if codes is None:
        findings.append(_unexplained([where], U, expected, [formula], [layer]))
        return
    for c in codes:
        findings.append(Finding(c, [where], seen(c, where, extra=extra or _UPDATE_TEXT.get(c)),
                                [formula], [layer]))


#: the updates' own wording where it differs from the catalogue's
_UPDATE_TEXT = {"sign_flipped": "moved up the gradient (+ instead of -)"}


def _analyse_update(kind, result, probe):
    d = probe.data
    P, G = d["P"], d["G"]
    L = len(P) // 2
    findings = []
    if kind == "update_parameters":
        params = result
        extra = ()
        if (L > 2 and isinstance(result, dict) and set(result) == {"W1", "b1", "W2", "b2"}
                and probe.data.get("planar_ok")):
            # The planar notebook's update_parameters is written for its two layers; on the
            # L-layer inputs of week 4 it returns those two only. Judged on two layers (the
            # other probe), with a note, not as a mistake.
            return [Finding("note", [], "it updates W1, b1, W2, b2 only: the planar "
                            "notebook's two-layer update_parameters (week 4's loops over "
                            "l = 1..L)")]
    else:
        n = {"update_parameters_with_momentum": (2,), "update_parameters_with_adam": (3, 5)}[kind]
        if not isinstance(result, tuple) or len(result) not in n:
            expected = ("(parameters, v)" if kind.endswith("momentum") else
                        "(parameters, v, s) or (parameters, v, s, v_corrected, s_corrected)")
            return [Finding("wrong_outputs", ["return value"], f"returned {_describe(result)}; "
                            f"expected {expected}")]
        params, *extra = result
    params = _dict_output(findings, params, "parameters", list(P))
    outs = [_dict_output(findings, e, nm, list(G)) for e, nm in
            zip(extra, ("v", "s", "v_corrected", "s_corrected"))]
    sizes = {p: ", ".join(f"{p}{l} {shape_text(P[f'{p}{l}'])}" for l in range(1, L + 1))
             for p in "Wb"}
    for l in range(1, L + 1):
        for p in "Wb":
            k, g = f"{p}{l}", G[f"d{p}{l}"]
            lr = d["lr"]
            if kind == "update_parameters":
                E = P[k] - lr * g
                alts = [(("sign_flipped",), P[k] + lr * g), (("learning_rate_missing",), P[k] - g),
                        (("not_updated",), P[k])]
                formula = (f"{p}[l] = {p}[l] - learning_rate * d{p}[l]   {sizes[p]}; "
                           f"learning_rate = {lr:g}")
                if params is not None:
                    _per_key(findings, params, "parameters", k, E, alts, formula, l)
                continue
            if kind == "update_parameters_with_momentum":
                b, v = d["beta"], d["V"][f"d{k}"]
                v_new = b * v + (1 - b) * g
                E = P[k] - lr * v_new
                alts = [(("momentum_update_uses_grads",), P[k] - lr * g),
                        (("momentum_old_velocity",), P[k] - lr * v),
                        (("sign_flipped",), P[k] + lr * v_new),
                        (("momentum_formula",), P[k] - lr * (b * v + g)),
                        (("momentum_formula",), P[k] - lr * ((1 - b) * v + b * g)),
                        (("not_updated",), P[k])]
                f_v = f"v['d{p}l'] = β v['d{p}l'] + (1 - β) d{p}[l]   {sizes[p]}; β = {b:g}"
                f_p = (f"{p}[l] = {p}[l] - learning_rate * v['d{p}l']   {sizes[p]}; "
                       f"learning_rate = {lr:g}")
                if params is not None:
                    _per_key(findings, params, "parameters", k, E, alts, f_p, l)
                if outs and outs[0] is not None:
                    _per_key(findings, outs[0], "v", f"d{k}", v_new,
                             [(("momentum_formula",), b * v + g),
                              (("momentum_formula",), (1 - b) * v + b * g)], f_v, l)
                continue
            _adam_key(findings, params, outs, d, k, g, l, sizes[p])
    return findings


def _adam_key(findings, params, outs, d, k, g, l, sizes):
    b1, b2, eps, t, lr = d["beta1"], d["beta2"], d["eps"], d["t"], d["lr"]
    v, s, P = d["V"][f"d{k}"], d["S"][f"d{k}"], d["P"][k]
    v_new = b1 * v + (1 - b1) * g
    s_new = b2 * s + (1 - b2) * g ** 2
    vc, sc = v_new / (1 - b1 ** t), s_new / (1 - b2 ** t)
    E = P - lr * vc / (np.sqrt(sc) + eps)
    # every combination of the common mistakes, each tagged with its codes
    v_opts = [((), vc), (("adam_bias_correction",), v_new),
              (("adam_beta_mixup",), (b2 * v + (1 - b2) * g) / (1 - b1 ** t)),
              (("adam_beta_partial",), (b1 * v + (1 - b2) * g) / (1 - b1 ** t)),
              (("adam_beta_partial",), (b2 * v + (1 - b1) * g) / (1 - b1 ** t))]
    v_opts += [(("adam_bias_correction",), v_new / (1 - b1 ** tt)) for tt in (1, 2, t + 1, l)
               if tt != t]
    s_base = [((), s_new), (("adam_s_not_squared",), b2 * s + (1 - b2) * g),
              (("adam_beta_mixup",), b1 * s + (1 - b1) * g ** 2),
              (("adam_beta_partial",), b1 * s + (1 - b2) * g ** 2),
              (("adam_beta_partial",), b2 * s + (1 - b1) * g ** 2)]
    s_opts = []
    for codes, sn in s_base:
        s_opts.append((codes, sn / (1 - b2 ** t)))
        s_opts.append((codes + ("adam_bias_correction",), sn))
        s_opts += [(codes + ("adam_bias_correction",), sn / (1 - b2 ** tt)) for tt in
                   (1, 2, t + 1, l) if tt != t]
    with np.errstate(all="ignore"):
        dens = [((), lambda x: np.sqrt(x) + eps), (("adam_epsilon_inside_sqrt",),
                                                    lambda x: np.sqrt(x + eps)),
                (("adam_sqrt_missing",), lambda x: x + eps)]
        alts = []
        for (vcodes, vv), (scodes, ss), (dcodes, den) in itertools.product(v_opts, s_opts, dens):
            codes = tuple(dict.fromkeys(vcodes + scodes + dcodes))
            if codes:
                alts.append((codes, P - lr * vv / den(ss)))
        alts.append((("sign_flipped",), P + lr * vc / (np.sqrt(sc) + eps)))
        alts.append((("not_updated",), P))
    p = k[0]
    f_p = (f"{p}[l] = {p}[l] - learning_rate * v_corrected / (√s_corrected + ε),  v_corrected = "
           f"v / (1 - β1^t), s_corrected = s / (1 - β2^t)   {sizes}; t = {t}, ε = {eps:g}")
    if params is not None:
        _per_key(findings, params, "parameters", k, E, alts, f_p, l)
    names = ("v", "s", "v_corrected", "s_corrected")
    expected = (v_new, s_new, vc, sc)
    alt_for = {
        "v": [(("momentum_formula",), b1 * v + g),
              (("adam_beta_mixup",), b2 * v + (1 - b2) * g),
              (("adam_beta_partial",), b1 * v + (1 - b2) * g),
              (("adam_beta_partial",), b2 * v + (1 - b1) * g)],
        "s": [(("adam_s_not_squared",), b2 * s + (1 - b2) * g),
              (("adam_beta_mixup",), b1 * s + (1 - b1) * g ** 2),
              (("adam_beta_partial",), b1 * s + (1 - b2) * g ** 2),
              (("adam_beta_partial",), b2 * s + (1 - b1) * g ** 2)],
        "v_corrected": [(("adam_bias_correction",), v_new / (1 - b1 ** tt)) for tt in
                        (1, 2, t + 1, l) if tt != t],
        "s_corrected": [(("adam_bias_correction",), s_new / (1 - b2 ** tt)) for tt in
                        (1, 2, t + 1, l) if tt != t],
    }
    forms = {"v": f"v['d{p}l'] = β1 v + (1 - β1) d{p}[l]   {sizes}",
             "s": f"s['d{p}l'] = β2 s + (1 - β2) d{p}[l]²   {sizes}",
             "v_corrected": f"v_corrected['d{p}l'] = v / (1 - β1^t)   ({sizes}); t = {t}",
             "s_corrected": f"s_corrected['d{p}l'] = s / (1 - β2^t)   ({sizes}); t = {t}"}
    for out, name, E_out in zip(outs, names, expected):
        if out is not None:
            _per_key(findings, out, name, f"d{k}", E_out, alt_for[name], forms[name], l)


# --------------------------------------------------------------------------- forward functions

def _forward_probes(kind, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name, n, n_prev, m in (("distinct shapes", 3, 4, 5), ("square shapes", 3, 3, 3)):
        if kind in ("linear_forward", "linear_activation_forward"):
            A = rng.standard_normal((n_prev, m))
            W = rng.standard_normal((n, n_prev))
            b = rng.standard_normal((n, 1))
            if kind == "linear_forward":
                out.append(Probe(name, (A, W, b), m, {"A": A, "W": W, "b": b}))
            else:
                for act in ("sigmoid", "relu"):
                    out.append(Probe(f"{name} shapes, {act}", (A, W, b, act), m,
                                     {"A": A, "W": W, "b": b, "act": act, "group": act}))
        elif kind == "L_model_forward":
            dims = [4, 5, 3, 1] if name.startswith("distinct") else [3, 3, 3, 3]
            P = _params(rng, dims)
            X = rng.standard_normal((dims[0], m))
            out.append(Probe(name, (X, P), m, {"X": X, "P": P}))
        else:  # the planar forward_propagation
            dims = [3, 4, 1] if name.startswith("distinct") else [3, 3, 1]
            P = _params(rng, dims)
            X = rng.standard_normal((dims[0], m))
            out.append(Probe(name, (X, P), m, {"X": X, "P": P}))
    return out


def _z_alts(A, W, b):
    alts = [(("missing_bias",), W @ A)]
    if W.T.shape[1] == A.shape[0]:
        alts.append((("transposed_W",), W.T @ A + b))
        alts.append((("transposed_W", "missing_bias"), W.T @ A))
    if W.shape == A.shape:
        alts.append((("elementwise_product",), W * A + b))
    return alts


def _analyse_forward(kind, result, probe):
    d = probe.data
    findings = []
    if kind in ("linear_forward", "linear_activation_forward"):
        A, W, b = d["A"], d["W"], d["b"]
        Z = W @ A + b
        n, m = Z.shape
        fz = (f"Z = np.dot(W, A_prev) + b   ({n}, {m}) = ({n}, {A.shape[0]}) · ({A.shape[0]}, {m})"
              f" + ({n}, 1)")
        if not (isinstance(result, tuple) and len(result) == 2):
            return [Finding("wrong_outputs", ["return value"], f"returned {_describe(result)}; "
                            f"expected ({'Z' if kind == 'linear_forward' else 'A'}, cache)", [fz])]
        out, cache = result
        findings += _matrix_findings({"Z" if kind == "linear_forward" else "A": out})
        if kind == "linear_forward":
            _value(findings, "Z", out, Z, _z_alts(A, W, b), fz)
            if not _same_cache(cache, (A, W, b)):
                findings.append(Finding("wrong_cache_contents", ["cache"], "cache is not the "
                                        "tuple (A, W, b) the backward pass reads", [fz]))
            return findings
        act = d["act"]
        Aout = ref.activation_forward(Z, act)
        other = "relu" if act == "sigmoid" else "sigmoid"
        alts = [(codes, ref.activation_forward(S, act)) for codes, S in _z_alts(A, W, b)]
        alts += [(("wrong_activation",), ref.activation_forward(Z, other)),
                 (("activation_missing",), Z)]
        fa = f"A = {act}(Z)   ({n}, {m}); " + fz
        _value(findings, f"A ({act})", out, Aout, alts, fa)
        ok = (isinstance(cache, tuple) and len(cache) == 2 and _same_cache(cache[0], (A, W, b))
              and _usable(cache[1], Z.shape) is not None and close(cache[1], Z))
        if not ok:
            findings.append(Finding("wrong_cache_contents", ["cache"], "cache is not "
                                    "((A_prev, W, b), Z), the pair linear_activation_backward "
                                    "unpacks", [fa]))
        return findings
    X, P = d["X"], d["P"]
    if kind == "L_model_forward":
        L = len(P) // 2
        acts = ["relu"] * (L - 1) + ["sigmoid"]
        AL, caches = ref.model_forward(X, P, acts)
        if not (isinstance(result, tuple) and len(result) == 2):
            return [Finding("wrong_outputs", ["return value"], f"returned {_describe(result)}; "
                            "expected (AL, caches)")]
        out, caches_u = result
        fl = (f"A[l] = relu(W[l] · A[l-1] + b[l]) for l = 1..{L - 1}, AL = sigmoid(W[{L}] · "
              f"A[{L - 1}] + b[{L}])   AL {shape_text(AL)}")
        alts = []
        for name, a in (("wrong_activation", ["relu"] * L), ("wrong_activation", ["sigmoid"] * L)):
            alts.append(((name,), ref.model_forward(X, P, a)[0]))
        alts.append((("missing_bias",), ref.model_forward(
            X, {k: (v * 0 if k.startswith("b") else v) for k, v in P.items()}, acts)[0]))
        _value(findings, "AL", out, AL, alts, fl)
        if not isinstance(caches_u, (list, tuple)) or len(caches_u) != L:
            findings.append(Finding("wrong_cache_contents", ["caches"], f"caches must be a list "
                                    f"of L = {L} caches, one per layer; got "
                                    f"{_describe(caches_u)}", [fl]))
        return findings
    # the planar forward_propagation: tanh hidden layer, sigmoid output, cache dict
    W1, b1, W2, b2 = P["W1"], P["b1"], P["W2"], P["b2"]
    Z1 = W1 @ X + b1
    A1 = np.tanh(Z1)
    Z2 = W2 @ A1 + b2
    A2 = ref.sigmoid(Z2)
    f = (f"Z1 = W1 · X + b1, A1 = tanh(Z1), Z2 = W2 · A1 + b2, A2 = σ(Z2)   A1 "
         f"{shape_text(A1)}, A2 {shape_text(A2)}")
    if not (isinstance(result, tuple) and len(result) == 2):
        return [Finding("wrong_outputs", ["return value"], f"returned {_describe(result)}; "
                        "expected (A2, cache)", [f])]
    out, cache = result
    alts = [(("wrong_activation",), ref.sigmoid(W2 @ ref.sigmoid(Z1) + b2)),
            (("wrong_activation",), ref.sigmoid(W2 @ ref.relu(Z1) + b2)),
            (("missing_bias",), ref.sigmoid(W2 @ np.tanh(W1 @ X)))]
    if W1.shape[0] == W1.shape[1]:
        alts.append((("transposed_W",), ref.sigmoid(W2 @ np.tanh(W1.T @ X + b1) + b2)))
    if X.shape[0] == X.shape[1]:
        alts.append((("x_transposed",), ref.sigmoid(W2 @ np.tanh(W1 @ X.T + b1) + b2)))
    _value(findings, "A2", out, A2, alts, f)
    if isinstance(cache, dict):
        for k, E in (("Z1", Z1), ("A1", A1), ("Z2", Z2), ("A2", A2)):
            if k not in cache:
                findings.append(Finding("wrong_cache_contents", [f"cache[{k!r}]"],
                                        f"cache has no {k}", [f]))
            elif not close(cache[k], E) and not findings:
                findings.append(Finding("wrong_cache_contents", [f"cache[{k!r}]"],
                                        difference_text(cache[k], E), [f]))
    else:
        findings.append(Finding("wrong_cache_contents", ["cache"], "cache must be the dict "
                                "{'Z1', 'A1', 'Z2', 'A2'} backward_propagation reads", [f]))
    return findings


def _same_cache(cache, expected):
    if not (isinstance(cache, tuple) and len(cache) == len(expected)):
        return False
    return all(_usable(c, e.shape) is not None and close(c, e) for c, e in zip(cache, expected))


def _value(findings, name, U, E, alts, formula):
    codes, extra = _match_plain(U, E, alts, E.shape[-1], "exact")
    if codes is None:
        findings.append(_unexplained([name], U, E, [formula]))
        return
    texts = {"wrong_activation": "another activation was applied",
             "elementwise_product": "W * A (entrywise) where np.dot(W, A) belongs"}
    for c in codes:
        findings.append(Finding(c, [name], seen(c, name, extra=extra or texts.get(c)),
                                [formula]))


# --------------------------------------------------------------------------- logistic regression

def _propagate_probes(kind, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name, n, m in (("distinct shapes", 3, 5), ("square shapes", 3, 3)):
        w = rng.standard_normal((n, 1)) * 0.5
        b = float(rng.standard_normal())
        X = rng.standard_normal((n, m))
        Y = _labels(rng, 1, m)
        out.append(Probe(name, (w, b, X, Y), m, {"w": w, "b": b, "X": X, "Y": Y}))
    return out


def _analyse_propagate(kind, result, probe):
    d = probe.data
    w, b, X, Y, m = d["w"], d["b"], d["X"], d["Y"], probe.m
    A = ref.sigmoid(w.T @ X + b)
    dw = X @ (A - Y).T / m
    db = float(np.sum(A - Y) / m)
    cost = float(ref.compute_cost(A, Y, "binary_crossentropy"))
    f = [f"A = σ(wᵀ X + b) (1, {m}); dw = (1/m) X (A - Y)ᵀ {shape_text(w)}; db = (1/m) Σ (A - Y) "
         "a number; cost = -(1/m) Σ [Y log A + (1 - Y) log(1 - A)] a number"]
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict)):
        return [Finding("wrong_outputs", ["return value"], f"returned {_describe(result)}; "
                        "expected (grads, cost) with grads = {'dw': dw, 'db': db}", f)]
    grads, c = result
    findings = _matrix_findings(grads)
    for k in ("dw", "db"):
        if k not in grads:
            findings.append(Finding("wrong_outputs", [f"grads[{k!r}]"], f"grads has no {k}", f))
    n_x = X.shape[0]
    r = m / n_x  # m = X.shape[0]: every 1/m divides by n_x instead
    wrong_m = f"m = X.shape[0] = {n_x} (n_x) instead of X.shape[1] = {m}: every 1/m is off by m/n_x"
    if "dw" in grads:
        alts = [("transposed_result", dw.T), ("missing_1_over_m", dw * m)]
        if r != 1:
            alts.append(("wrong_m", dw * r))
        if X.shape[1] == X.shape[0]:
            alts.append(("missing_transpose", X @ (A - Y) .reshape(-1, 1) / m))
        codes, extra = _match_plain(grads["dw"], dw, alts, m, "average")
        if codes is None:
            findings.append(_unexplained(["grads['dw']"], grads["dw"], dw, f))
        for code in codes or []:
            extra = wrong_m if code == "wrong_m" else extra
            findings.append(Finding(code, ["grads['dw']"],
                                    _output_detail(code, "dw", grads["dw"], dw, m, extra), f))
    if "db" in grads:
        value, shape, how = _scalar(grads["db"])
        if value is None or not np.isclose(value, db, rtol=1e-7, atol=1e-12):
            code, text = "unrecognised", f"db {value}, expected {db:.8g}"
            if value is not None and np.isclose(value, db * m, rtol=1e-7):
                code = "missing_1_over_m"
            elif value is not None and r != 1 and np.isclose(value, db * r, rtol=1e-7):
                code, text = "wrong_m", f"db: {wrong_m}"
            findings.append(Finding(code, ["grads['db']"], text, f))
    cost_findings = _analyse_cost("compute_cost", c, Probe("p", (A, Y), m, {"AL": A, "Y": Y}))
    value, _, _ = _scalar(c)
    if (r != 1 and value is not None and any(x.code == "unrecognised" for x in cost_findings)
            and np.isclose(value, cost * r, rtol=1e-7)):
        cost_findings = [x for x in cost_findings if x.code != "unrecognised"]
        cost_findings.append(Finding("wrong_m", ["cost"], f"cost: {wrong_m}", f))
    findings += [Finding(x.code, x.where, x.detail, f) for x in cost_findings]
    return findings


# --------------------------------------------------------------------------- gradient checking 1-D

def _theta_probes(kind, seed):
    rng = np.random.default_rng(seed)
    return [Probe(name, (x, theta), 1, {"x": x, "theta": theta})
            for name, x, theta in (("x = 2, theta = 4", 2.0, 4.0),
                                   ("random x, theta", float(rng.uniform(1, 3)),
                                    float(rng.uniform(-3, -1))))]


def _analyse_theta(kind, result, probe):
    x, theta = probe.data["x"], probe.data["theta"]
    expected, text = ((theta * x, "J = theta · x") if kind == "forward_propagation_1d" else
                      (x, "dtheta = ∂J/∂theta = x"))
    value, shape, how = _scalar(result)
    if value is None:
        return [Finding("wrong_outputs", ["return value"], f"returned {_describe(result)}; "
                        "expected one number", [text])]
    if np.isclose(value, expected, rtol=1e-9):
        return []
    if kind == "backward_propagation_1d" and np.isclose(value, theta, rtol=1e-9):
        return [Finding("dA_dZ_mixup", ["dtheta"], "dtheta equals theta: the derivative of "
                        "theta·x with respect to theta is x", [text])]
    return [Finding("unrecognised", ["J" if kind.startswith("forward") else "dtheta"],
                    f"{value:.8g}, expected {expected:.8g} (x = {x:g}, theta = {theta:g})", [text])]


# --------------------------------------------------------------------------- the table

FUNCTIONS = {}


def _add(name, params, where, returns, build, analyse, variants=(), mutation_ok=False, kind=None,
         build_for=None):
    kind = kind or name
    FUNCTIONS[kind] = CourseFunction(name, params, where, returns,
                                     lambda seed, k=kind: build(k, seed),
                                     lambda result, probe, k=kind: analyse(k, result, probe),
                                     variants, mutation_ok, build_for)


_add("propagate", ("w", "b", "X", "Y"), "course 1 week 2 (logistic regression)",
     "(grads, cost)", _propagate_probes, _analyse_propagate)
_add("forward_propagation", ("X", "parameters"), "course 1 week 3 (planar data)",
     "(A2, cache)", _forward_probes, _analyse_forward, kind="forward_propagation")
_add("compute_cost", ("AL", "Y"), "course 1 weeks 3 and 4", "cost", _cost_probes, _analyse_cost,
     variants=(("A2", "Y"), ("A2", "Y", "parameters"), ("A3", "Y"), ("a3", "Y")))
_add("backward_propagation", ("parameters", "cache", "X", "Y"), "course 1 week 3 (planar data)",
     "grads", _chain_probes, _analyse_chain)
_add("update_parameters", ("parameters", "grads", "learning_rate"), "course 1 weeks 3 and 4",
     "parameters", _update_probes, _analyse_update, variants=(("params", "grads",
                                                                "learning_rate"),),
     mutation_ok=True)
_add("linear_forward", ("A", "W", "b"), "course 1 week 4", "(Z, cache)", _forward_probes,
     _analyse_forward)
_add("linear_activation_forward", ("A_prev", "W", "b", "activation"), "course 1 week 4",
     "(A, cache)", _forward_probes, _analyse_forward)
_add("L_model_forward", ("X", "parameters"), "course 1 week 4", "(AL, caches)", _forward_probes,
     _analyse_forward)
_add("compute_cost_with_regularization", ("A3", "Y", "parameters", "lambd"),
     "course 2 week 1 (regularization)", "cost", _cost_probes, _analyse_cost)
_add("backward_propagation_with_regularization", ("X", "Y", "cache", "lambd"),
     "course 2 week 1 (regularization)", "gradients", _chain_probes, _analyse_chain)
_add("backward_propagation_with_dropout", ("X", "Y", "cache", "keep_prob"),
     "course 2 week 1 (regularization)", "gradients", _chain_probes, _analyse_chain)
_add("backward_propagation_n", ("X", "Y", "cache"), "course 2 week 1 (gradient checking)",
     "gradients", _chain_probes, _analyse_chain)
_add("forward_propagation", ("x", "theta"), "course 2 week 1 (gradient checking, 1-D)", "J",
     _theta_probes, _analyse_theta, kind="forward_propagation_1d")
_add("backward_propagation", ("x", "theta"), "course 2 week 1 (gradient checking, 1-D)",
     "dtheta", _theta_probes, _analyse_theta, kind="backward_propagation_1d")
_add("update_parameters_with_gd", ("parameters", "grads", "learning_rate"),
     "course 2 week 2 (optimization)", "parameters",
     lambda k, seed: _update_probes("update_parameters", seed),
     lambda k, result, probe: _analyse_update("update_parameters", result, probe),
     mutation_ok=True)
_add("update_parameters_with_momentum", ("parameters", "grads", "v", "beta", "learning_rate"),
     "course 2 week 2 (optimization)", "(parameters, v)", _update_probes, _analyse_update,
     mutation_ok=True)
_add("update_parameters_with_adam", ("parameters", "grads", "v", "s", "t", "learning_rate",
                                     "beta1", "beta2", "epsilon"),
     "course 2 week 2 (optimization)", "(parameters, v, s[, v_corrected, s_corrected])",
     _update_probes, _analyse_update, mutation_ok=True)
