"""The gradient doctor: run a learner's function, compare with the reference, name each mistake.

How it works
------------
The function is called on generated inputs (seeded, float64) of two kinds of shapes:
``distinct`` (every dimension different, so a transpose or a wrong array fails loudly or
shows in a shape) and ``square`` (every dimension equal, so code with a shape bug still
runs and its *values* can be examined). Every output is compared with the reference.

When an output differs, the doctor looks for the mistake that explains it. It knows how
each common mistake changes the result, computed from the reference's own functions:

* upstream hypotheses, which change everything downstream: how ``dZ`` was formed (``g'``
  at ``A``, the sigmoid/tanh derivative mixed up, the ReLU mask on ``dA``, the activation
  skipped...) and, for ``L_model_backward``, how the pass starts (``A - Y`` used as
  ``dAL``, ``dAL`` used as ``dZ[L]``, a ``1/m`` in ``dAL``), which cache each layer uses,
  and whether ``dA_prev`` gained a ``1/m``;
* per-output mistakes, which change one output only: a transposed result, a missing
  transpose, a sum over the wrong axis or without ``keepdims``, and a constant factor
  ``m``, ``1/m`` or ``-1``.

The explanation with the fewest mistakes that reproduces every output (within a relative
tolerance of 1e-7) is the diagnosis. If none does, ``L_model_backward`` is judged layer by
layer (:func:`chainrule.explain.course.analyse_model_layers`), so that mistakes in
different layers are each named in theirs; what is still unexplained is reported with how
it differs, and the correct formulas with their shapes.

The other functions of courses 1 and 2 (the planar network, regularization, dropout,
gradient checking, costs, updates, forward functions) are in :mod:`.course`; the learner's
code runs under :func:`chainrule.explain.sandbox.call_limited` (time limit, exceptions and
exits as findings).
"""

from __future__ import annotations

import copy
import inspect
import itertools
from dataclasses import dataclass, field

import numpy as np

from .. import reference as ref
from .. import spec
from ..errors import InputError
from ._match import RTOL, close as _close, describe as _describe
from ._match import difference_text as _difference_text, shape_text as _shape
from ._match import dZ_hypotheses as _dZ_hypotheses, explain_output as _explain_output
from . import course_batchnorm  # noqa: F401  (registers batchnorm_backward in the table)
from .course import FUNCTIONS as COURSE_FUNCTIONS
from .course import analyse_model_layers
from .mistakes import G_PRIME_TEXT, MISTAKES, linear_alternatives, seen as _seen
from .sandbox import DEFAULT_TIME_LIMIT, call_limited, time_limit
from .source import axis0_m_line, offending_line, raise_location

KINDS = ("linear_backward", "linear_activation_backward", "L_model_backward")
_SIGNATURES = {
    "linear_backward": ("dZ", "cache"),
    "linear_activation_backward": ("dA", "cache", "activation"),
    "L_model_backward": ("AL", "Y", "caches"),
}

_RTOL = RTOL


@dataclass
class Diagnosis:
    """One named mistake: ``code`` (a key of :data:`MISTAKES`), where it shows, and the fix."""

    code: str
    where: list = field(default_factory=list)
    detail: str = ""
    formulas: list = field(default_factory=list)
    #: the layers (1-based) where it shows, when the function has layers
    layers: list = field(default_factory=list)
    #: the learner's line it is in, when it can be located ("cell 4, line 6: db = ...")
    line: str = ""

    @property
    def title(self):
        return MISTAKES[self.code][0]

    @property
    def why(self):
        return MISTAKES[self.code][1]


@dataclass
class DoctorReport:
    """What :func:`diagnose` found. ``report.ok`` is the clean bill; ``print(report)`` explains."""

    function: str
    kind: str
    convention: str
    diagnoses: list
    checked: list
    notes: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.diagnoses

    @property
    def codes(self):
        """The set of mistake codes found (empty for a clean bill)."""
        return {d.code for d in self.diagnoses}

    def __bool__(self):
        return self.ok

    def __str__(self):
        return format_report(self)

    def _repr_html_(self):
        """In a notebook: each mistake, why, and the correct formulas typeset with the shapes."""
        from .display import doctor_html

        return doctor_html(self)


# --------------------------------------------------------------------------- inputs

@dataclass
class _Probe:
    name: str
    args: tuple
    m: int


def _linear_probe(name, n, n_prev, m, rng):
    A_prev = rng.standard_normal((n_prev, m))
    W = rng.standard_normal((n, n_prev))
    b = rng.standard_normal((n, 1))
    dZ = rng.standard_normal((n, m))
    return _Probe(name, (dZ, (A_prev, W, b)), m)


def _activation_probe(name, n, n_prev, m, activation, rng):
    A_prev = rng.standard_normal((n_prev, m))
    W = rng.standard_normal((n, n_prev)) / np.sqrt(n_prev)
    b = rng.standard_normal((n, 1)) * 0.5
    Z, linear_cache = ref.linear_forward(A_prev, W, b)
    dA = rng.standard_normal((n, m))
    return _Probe(name, (dA, (linear_cache, Z), activation), m)


def _model_probe(name, dims, m, rng):
    params = ref.initialize_parameters(dims, "xavier", rng=rng)
    for l in range(1, len(dims)):
        params[f"b{l}"] = rng.standard_normal(params[f"b{l}"].shape) * 0.5
    X = rng.standard_normal((dims[0], m))
    AL, caches = ref.model_forward(X, params)  # relu hidden, sigmoid output: the course's
    Y = (rng.random((dims[-1], m)) > 0.5).astype(np.float64)
    Y[:, 0], Y[:, 1] = 0.0, 1.0  # both labels present
    return _Probe(name, (AL, Y, caches), m)


def _probes(kind, activation, seed):
    rng = np.random.default_rng(seed)
    if kind == "linear_backward":
        return [_linear_probe("distinct", 3, 4, 5, rng), _linear_probe("square", 3, 3, 3, rng)]
    if kind == "linear_activation_backward":
        return [_activation_probe("distinct", 3, 4, 5, activation, rng),
                _activation_probe("square", 3, 3, 3, activation, rng)]
    return [_model_probe("distinct", [5, 4, 3, 1], 6, rng),
            _model_probe("square", [3, 3, 3, 3], 3, rng)]


# --------------------------------------------------------------------------- formulas

def _linear_formulas(dZ, A_prev, W, convention, suffix="", prev_suffix=""):
    """The correct linear_backward formulas with this probe's shapes."""
    m = A_prev.shape[1]
    s = "(1/m) " if convention == "L" else ""
    n, n_prev = W.shape
    return {
        f"dW{suffix}": f"dW{suffix} = {s}dZ{suffix} · A{prev_suffix or '_prev'}ᵀ        "
                       f"({n}, {n_prev}) = ({n}, {m}) · ({m}, {n_prev}), m = {m}",
        f"db{suffix}": f"db{suffix} = {s}np.sum(dZ{suffix}, axis=1, keepdims=True)   "
                       f"({n}, 1) from ({n}, {m}), m = {m}",
        f"dA{prev_suffix or '_prev'}": f"dA{prev_suffix or '_prev'} = W{suffix}ᵀ · dZ{suffix}"
                                       f"           ({n_prev}, {m}) = ({n_prev}, {n}) · ({n}, {m})",
    }




def _dZ_formula(activation, shape, suffix=""):
    name, _ = ref.parse_activation(activation)
    return (f"dZ{suffix} = dA{suffix} * g'(Z{suffix}), {G_PRIME_TEXT.get(name, name)}   "
            f"{shape} = {shape} * {shape}")


# --------------------------------------------------------------------------- matching

def _role(name, convention):
    if name.startswith(("dW", "db")):
        return "average" if convention == "L" else "sum"
    return "none"


def _linear_alternatives(dZ, A_prev, W, convention):
    """What each per-output structural mistake in linear_backward computes (the catalogue's
    :func:`~.mistakes.linear_alternatives`, keyed by the doctor's output names)."""
    *_, alt = linear_alternatives(dZ, A_prev, W, convention)
    return {"dW": alt["dW"], "db": alt["db"], "dA_prev": alt["dA"]}


# --------------------------------------------------------------------------- hypotheses

def _score(codes):
    return (len(set(codes)), len(codes))


# --------------------------------------------------------------------------- calling

#: seconds each call of the learner's function may take; set by :func:`diagnose`
_LIMIT = {"timeout": DEFAULT_TIME_LIMIT}


def _call(fn, args):
    """``(result, None)`` or ``(None, (exception, one-line summary, kind))``.

    ``kind``: ``"raises"``, ``"raises_in_helper"``, ``"signature"``, ``"timed_out"`` or
    ``"exits"`` (see :func:`chainrule.explain.sandbox.call_limited`).
    """
    return call_limited(fn, args, _LIMIT["timeout"])


def _exception_hint(exc):
    text = str(exc)
    if isinstance(exc, ValueError) and any(w in text for w in ("matmul", "aligned", "broadcast",
                                                               "shape")):
        return ("a shape mismatch: compare with the formulas and shapes below; a missing "
                "transpose or a wrong cache is the usual cause")
    if isinstance(exc, IndexError):
        return ("an index out of range: caches holds L entries, caches[0] .. caches[L-1]; layer "
                "l's cache is caches[l-1]")
    if isinstance(exc, KeyError):
        return "a missing key: the course stores grads['dA' + str(l)], grads['dW' + str(l)], ..."
    if isinstance(exc, NameError):
        return "a name is not defined: is a helper (sigmoid_backward, relu_backward...) missing?"
    if isinstance(exc, UnboundLocalError):
        return "a variable is used before it is assigned (on some branch of an if?)"
    return ""


def _snapshot(args):
    return copy.deepcopy(args)


def _mutated(before, after):
    """True when an array inside ``after`` differs from its copy ``before``."""
    if isinstance(before, np.ndarray):
        return not np.array_equal(before, after)
    if isinstance(before, (tuple, list)):
        return any(_mutated(b, a) for b, a in zip(before, after))
    return False


# --------------------------------------------------------------------------- linear kinds

_LINEAR_NAMES = ("dA_prev", "dW", "db")


def _as_triple(result):
    if isinstance(result, (tuple, list)) and len(result) == 3:
        try:
            return [np.asarray(r, dtype=np.float64) for r in result]
        except (TypeError, ValueError):
            return None
    return None


def _analyse_linear_outputs(outs, dZ, linear_cache, convention, upstream=()):
    """``(codes, per_output)`` explaining ``outs`` given the dZ that reached linear_backward."""
    A_prev, W, _ = linear_cache
    m = A_prev.shape[1]
    expected = ref.linear_backward(dZ, linear_cache, convention)
    alt = _linear_alternatives(dZ, A_prev, W, convention)
    per_output = {}
    for name, U, E in zip(_LINEAR_NAMES, outs, expected):
        codes = _explain_output(U, E, alt[name], m, _role(name, convention))
        if codes is None:
            return None
        per_output[name] = codes
    codes = list(upstream) + [c for v in per_output.values() for c in v]
    return codes, per_output


def _diagnose_linear_probe(fn, kind, probe, convention):
    """Diagnoses on one probe, or ``None`` when the function raised there (with the error)."""
    before = _snapshot(probe.args)
    result, error = _call(fn, probe.args)
    if error is not None:
        return None, error
    diagnoses = []
    if _mutated(before, probe.args):
        diagnoses.append(Diagnosis("mutates_input", ["inputs"],
                                   "an input array was changed by the call",
                                   ["dZ = np.array(dA, copy=True); dZ[Z <= 0] = 0   (a new "
                                    f"array of shape {_shape(probe.args[0])})"]))
    outs = _as_triple(result)
    if isinstance(result, (tuple, list)) and any(isinstance(r, np.matrix) for r in result):
        bad = [n for n, r in zip(_LINEAR_NAMES, result) if isinstance(r, np.matrix)]
        diagnoses.append(Diagnosis("np_matrix", bad, "np.matrix instead of np.ndarray"))
    if kind == "linear_backward":
        dZ, linear_cache = probe.args
        hypotheses = [((), dZ)]
    else:
        dA, (linear_cache, Z), activation = probe.args
        hypotheses = _dZ_hypotheses(dA, Z, linear_cache[0], activation)
    A_prev, W, _ = linear_cache
    formulas = _linear_formulas(hypotheses[0][1], A_prev, W, convention)
    if kind == "linear_activation_backward":
        formulas = {"dZ": _dZ_formula(probe.args[2], _shape(probe.args[1][1])), **formulas}
    if outs is None:
        diagnoses.append(Diagnosis("wrong_outputs", ["return value"],
                                   f"returned {_describe(result)}; expected the tuple "
                                   f"(dA_prev, dW, db) of shapes {_shape(A_prev)}, {_shape(W)}, "
                                   f"({W.shape[0]}, 1)", list(formulas.values())))
        return diagnoses, None

    best = None
    for upstream, dZ_h in hypotheses:
        found = _analyse_linear_outputs(outs, dZ_h, linear_cache, convention, upstream)
        if found is not None and (best is None or _score(found[0]) < _score(best[0][0])):
            best = (found, upstream, dZ_h)
    if best is None:
        # The outputs in another order?
        expected = ref.linear_backward(hypotheses[0][1], linear_cache, convention)
        for perm in itertools.permutations(range(3)):
            if perm != (0, 1, 2) and all(_close(outs[i], expected[j]) for i, j in enumerate(perm)):
                order = ", ".join(_LINEAR_NAMES[j] for j in perm)
                diagnoses.append(Diagnosis("wrong_output_order", ["return value"],
                                           f"returned ({order})", list(formulas.values())))
                return diagnoses, None
        # No one hypothesis explains every output: output by output, under the upstream
        # hypothesis that explains the most of them; the rest wrong_shape or unrecognised.
        A_prev, W, _ = linear_cache
        best_h = None
        for upstream, dZ_h in hypotheses:
            exp_h = ref.linear_backward(dZ_h, linear_cache, convention)
            alt = _linear_alternatives(dZ_h, A_prev, W, convention)
            per = [_explain_output(U, E, alt[n], probe.m, _role(n, convention))
                   for n, U, E in zip(_LINEAR_NAMES, outs, exp_h)]
            explained = sum(p is not None for p in per)
            if best_h is None or explained > best_h[0]:
                best_h = (explained, upstream, per, exp_h)
        explained, upstream, per, exp_h = best_h
        if explained == 0:
            upstream, per, exp_h = (), [None] * 3, expected
        for code in upstream:
            diagnoses.append(Diagnosis(code, ["dZ"], "dZ is not dA * g'(Z)", [formulas["dZ"]]))
        for name, U, E, codes in zip(_LINEAR_NAMES, outs, exp_h, per):
            if codes is None:
                diagnoses.append(_unexplained(name, U, E, [formulas[name]]))
            for code in codes or []:
                diagnoses.append(Diagnosis(code, [name], _output_detail(code, name, U, E,
                                                                        probe.m),
                                           [formulas[name]]))
        return _merge(diagnoses), None

    (codes, per_output), upstream, dZ_best = best
    for code in upstream:
        detail = "dZ is not dA * g'(Z): every output that uses it is off"
        diagnoses.append(Diagnosis(code, ["dZ", *_LINEAR_NAMES], detail,
                                   [formulas["dZ"]] + [formulas[n] for n in _LINEAR_NAMES]))
    expected = ref.linear_backward(dZ_best, linear_cache, convention)
    for name, out_codes in per_output.items():
        for code in out_codes:
            i = _LINEAR_NAMES.index(name)
            detail = _output_detail(code, name, outs[i], expected[i], probe.m)
            diagnoses.append(Diagnosis(code, [name], detail, [formulas[name]]))
    return _merge(diagnoses), None


def _unexplained(name, U, E, formulas, layers=()):
    """``wrong_shape`` (the expected and given shapes first) or ``unrecognised``."""
    if np.shape(U) != np.shape(E):
        return Diagnosis("wrong_shape", [name], _seen("wrong_shape", name, U, E), formulas,
                         list(layers))
    return Diagnosis("unrecognised", [name], _difference_text(U, E), formulas, list(layers))


def _merge(diagnoses):
    """One diagnosis per code, listing every place it shows."""
    merged = {}
    for d in diagnoses:
        if d.code in merged:
            m = merged[d.code]
            m.where += [w for w in d.where if w not in m.where]
            lhs = {f.split(" = ")[0] for f in m.formulas}
            m.formulas += [f for f in d.formulas if f.split(" = ")[0] not in lhs]
            m.layers += [x for x in d.layers if x not in m.layers]
            m.line = m.line or d.line
            if d.detail and d.detail not in m.detail:
                m.detail = f"{m.detail}; {d.detail}" if m.detail else d.detail
        else:
            merged[d.code] = Diagnosis(d.code, list(d.where), d.detail, list(d.formulas),
                                       list(d.layers), d.line)
    for d in merged.values():
        d.detail = _group_detail(d.detail)
    return list(merged.values())


def _group_detail(detail):
    """``"dW: x; db: x"`` -> ``"dW, db: x"``."""
    groups = {}
    for part in detail.split("; "):
        name, sep, rest = part.partition(": ")
        key = rest if sep and " " not in name else part
        groups.setdefault(key, []).append(name if sep and " " not in name else None)
    out = []
    for rest, names in groups.items():
        names = [n for n in names if n]
        out.append(f"{', '.join(names)}: {rest}" if names else rest)
    return "; ".join(out)


def _output_detail(code, name, U, E, m):
    """What was seen, for a per-output mistake (the catalogue's wording)."""
    if code == "dA_dZ_mixup":
        return f"{name}: equals dZ, not Wᵀ·dZ"
    return _seen(code, name, U, E, m)


# --------------------------------------------------------------------------- L_model_backward

_STARTS = {
    # name: (codes, how dZ[L] is formed)
    "ok": (),
    "A-Y as dAL": ("dA_dZ_mixup",),
    "dAL as dZL": ("dA_dZ_mixup",),
    "sign": ("sign_flipped",),
    "dAL/m": ("double_1_over_m",),
}


def _simulate_model(AL, Y, caches, start, offset, activations, dA_scale, convention):
    """A course-style L_model_backward with the given mistakes; returns (grads, per-layer ctx)."""
    L = len(caches)
    m = AL.shape[1]
    grads, ctx = {}, {}
    dAL = ref.cost_derivative(AL, Y, "binary_crossentropy")
    if start == "sign":
        dAL = -dAL
    if start == "dAL/m" or convention == "J":
        dAL = dAL / m
    dA = None
    for l in range(L, 0, -1):
        index = l - 1 if l == L else (l - 1 + offset) % L
        linear_cache, Z = caches[index]
        if l == L and start == "A-Y as dAL":
            dZ = ref.activation_backward(AL - Y, Z, activations[l - 1])
        elif l == L and start == "dAL as dZL":
            dZ = dAL
        else:
            dZ = ref.activation_backward(dAL if l == L else dA, Z, activations[l - 1])
        if dZ.shape[0] != linear_cache[1].shape[0]:
            raise ValueError("shapes do not fit")
        dA_prev, dW, db = ref.linear_backward(dZ, linear_cache, convention)
        dA_prev = dA_prev * dA_scale
        grads[f"dA{l - 1}"], grads[f"dW{l}"], grads[f"db{l}"] = dA_prev, dW, db
        grads[f"dZ{l}"] = dZ
        ctx[l] = (dZ, linear_cache)
        dA = dA_prev
    return grads, ctx


def _model_hypotheses(L):
    acts_ok = ["relu"] * (L - 1) + ["sigmoid"]
    acts = [((), acts_ok), (("wrong_activation",), ["relu"] * L),
            (("wrong_activation",), ["sigmoid"] * L),
            (("wrong_activation",), ["sigmoid"] * (L - 1) + ["relu"])]
    for start, (offset, o_codes), (a_codes, activations), (scale_codes, scale) in itertools.product(
            _STARTS, [(0, ()), (1, ("wrong_cache",)), (-1, ("wrong_cache",))], acts,
            [((), None), (("extra_1_over_m",), "1/m")]):
        codes = _STARTS[start] + o_codes + a_codes + scale_codes
        yield codes, dict(start=start, offset=offset, activations=activations, scale=scale)


def _diagnose_model_probe(fn, probe, convention, notes=None):
    AL, Y, caches = probe.args
    L = len(caches)
    m = AL.shape[1]
    before = _snapshot(probe.args)
    result, error = _call(fn, probe.args)
    if error is not None:
        return None, error
    diagnoses = []
    if (isinstance(result, dict) and "dA0" not in result and f"dA{L}" in result
            and all(f"dA{l}" in result for l in range(1, L + 1))):
        # The course's earlier notebooks store each dA one key higher: grads["dA" + str(l)]
        # holds dA[l-1] (dA1 is the gradient of A0 = X, ..., dAL of A[L-1]).
        result = {**{k: v for k, v in result.items() if not k.startswith("dA")},
                  **{f"dA{l - 1}": result[f"dA{l}"] for l in range(1, L + 1)}}
        if notes is not None:
            note = ("grads uses the earlier notebook's keys (grads['dA' + str(l)] holds "
                    "dA[l-1], dA1 .. dAL): read as dA0 .. dA{L-1}")
            if note not in notes:
                notes.append(note)
    if _mutated(before, probe.args):
        diagnoses.append(Diagnosis("mutates_input", ["inputs"], "an input array was changed",
                                   ["dZ = np.array(dA, copy=True); dZ[Z <= 0] = 0   (a new "
                                    "array: the caches and grads stay as they were)"]))
    reference, ref_ctx = _simulate_model(AL, Y, caches, "ok", 0, ["relu"] * (L - 1) + ["sigmoid"],
                                         1.0, convention)
    formulas = _model_formulas(ref_ctx, caches, convention)
    keys = [f"dA{l - 1}" for l in range(1, L + 1)] + [f"d{p}{l}" for l in range(1, L + 1)
                                                      for p in "Wb"]
    if not isinstance(result, dict):
        diagnoses.append(Diagnosis("wrong_outputs", ["return value"],
                                   f"returned {_describe(result)}; expected the dict grads",
                                   [formulas[k] for k in keys if k in formulas]))
        return diagnoses, None
    bad = sorted(k for k, v in result.items() if isinstance(v, np.matrix))
    if bad:
        diagnoses.append(Diagnosis("np_matrix", bad, "np.matrix instead of np.ndarray"))
    missing = [k for k in keys if k not in result]
    if missing:
        diagnoses.append(Diagnosis("wrong_outputs", missing,
                                   f"grads has no {', '.join(missing)}",
                                   [formulas[k] for k in missing if k in formulas]))
    present = [k for k in keys + [f"dZ{l}" for l in range(1, L + 1)] if k in result]
    if not present:
        return diagnoses, None

    best = None
    for h_codes, h in _model_hypotheses(L):
        scale = 1.0 / m if h["scale"] else 1.0
        try:
            sim, ctx = _simulate_model(AL, Y, caches, h["start"], h["offset"], h["activations"],
                                       scale, convention)
        except ValueError:
            continue
        found = _explain_model_outputs(result, present, sim, ctx, m, convention, h_codes)
        if found is not None and (best is None or _score(found[0]) < _score(best[0][0])):
            best = (found, h_codes)
        if best is not None and not best[0][0]:
            break
    if best is None:
        # No single explanation for the whole pass: layer by layer, from the output down,
        # each layer judged from the learner's own dA (several mistakes, each in its layer).
        def keys(what, l):
            return f"dA{l - 1}" if what == "dA" else f"{what}{l}"

        for f in analyse_model_layers(result, caches, AL, Y, keys):
            diagnoses.append(Diagnosis(f.code, f.where, f.detail, f.formulas, f.layers))
        return _merge(diagnoses), None
    (codes, per_key), h_codes = best
    affected = sorted((k for k in present if not _close(np.asarray(result[k], dtype=np.float64),
                                                        reference[k])), key=_computation_order)
    for code in h_codes:
        diagnoses.append(Diagnosis(code, affected, _model_detail(code),
                                   [formulas[k] for k in affected if k in formulas]
                                   + _model_extra_formulas(code, L)))
    for k, out_codes in sorted(per_key.items(), key=lambda kv: _computation_order(kv[0])):
        for code in out_codes:
            detail = _output_detail(code, k, result[k], reference[k], m)
            diagnoses.append(Diagnosis(code, [k], detail,
                                       [formulas[k]] if k in formulas else []))
    return _merge(diagnoses), None


def _explain_model_outputs(result, present, sim, ctx, m, convention, h_codes):
    codes, per_key = list(h_codes), {}
    for k in present:
        if k not in sim:
            continue
        l = int(k[2:]) if not k.startswith("dA") else int(k[2:]) + 1
        dZ, linear_cache = ctx[l]
        alt = _linear_alternatives(dZ, linear_cache[0], linear_cache[1], convention)
        name = k[:2] if not k.startswith("dA") else "dA_prev"
        alternatives = alt.get(name, [])
        found = _explain_output(result[k], sim[k], alternatives, m, _role(name, convention))
        if found is None:
            return None
        if found:
            per_key[k] = found
            codes += found
    return codes, per_key


def _computation_order(key):
    """Sort key of a gradient's name in the order the backward pass computes it: layer L
    first, and within a layer dZ, dW, db, then dA_prev (``dA{l-1}``)."""
    prefix, number = key[:2], int(key[2:])
    layer = number + 1 if prefix == "dA" else number
    return (-layer, {"dZ": 0, "dW": 1, "db": 2, "dA": 3}.get(prefix, 4))


def _model_detail(code):
    return {
        "dA_dZ_mixup": "the pass starts from the wrong quantity: dZ[L] must be dAL * σ'(Z[L]) "
                       "= A[L] - Y",
        "wrong_cache": "a hidden layer's gradients use another layer's cache",
        "wrong_activation": "a layer's backward step uses another activation's derivative",
        "double_1_over_m": "dAL (or dZ[L]) is divided by m and dW, db divide by m again",
        "extra_1_over_m": "dA_prev is divided by m, which compounds layer after layer",
        "sign_flipped": "dAL has the wrong sign; every gradient is negated",
    }.get(code, "")


def _model_extra_formulas(code, L):
    if code == "wrong_cache":
        return [f"layer l uses caches[l - 1]: layer {L} caches[{L - 1}], ..., layer 1 caches[0]"]
    if code == "wrong_activation":
        return [f"layers 1..{L - 1}: relu_backward; layer {L}: sigmoid_backward"]
    if code in ("dA_dZ_mixup", "sign_flipped", "double_1_over_m"):
        return ["dAL = -(Y/AL - (1 - Y)/(1 - AL));  dZ[L] = dAL * σ'(Z[L]) = A[L] - Y"]
    return []


def _model_formulas(ctx, caches, convention):
    formulas = {}
    L = len(caches)
    for l, (dZ, linear_cache) in ctx.items():
        A_prev, W, _ = linear_cache
        f = _linear_formulas(dZ, A_prev, W, convention, suffix=str(l), prev_suffix=str(l - 1))
        formulas.update(f)
        Z = caches[l - 1][1]
        act = "sigmoid" if l == L else "relu"
        formulas[f"dZ{l}"] = _dZ_formula(act, _shape(Z), str(l))
    return formulas


# --------------------------------------------------------------------------- public

def _params_of(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, None
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in params if p.default is p.empty]
    return [p.name for p in params], required


def known_signatures():
    """Every signature the doctor knows, one line each, grouped by assignment."""
    lines = [f"{k}({', '.join(_SIGNATURES[k])})   course 1 week 4" for k in KINDS]
    for kind, spec in COURSE_FUNCTIONS.items():
        lines.append(f"{spec.signature}   {spec.where}")
    return lines


_WRAPPER = """a hand-written network can be checked through gradient_check instead:
    from chainrule.explain import gradient_check
    def fn(parameters, X, Y):          # your forward and backward pass
        AL, caches = L_model_forward(X, parameters)
        cost = compute_cost(AL, Y)
        grads = L_model_backward(AL, Y, caches)
        return cost, grads             # grads keyed 'dW1', 'db1', ...
    print(gradient_check(fn, X, Y, parameters=parameters))
(chainrule gradcheck --function FILE.py:fn on the command line)"""


def _refusal(name, params, why):
    return InputError(
        f"{why}\nthe doctor knows these functions of courses 1 and 2 (by name, with the "
        f"course's parameters):\n  " + "\n  ".join(known_signatures())
        + f"\nname yours like one of them, or choose with --kind KIND on the command line "
          f"(kind= in Python).\n{_WRAPPER}")


def detect_kind(fn):
    """The course function ``fn`` implements: a key of :data:`ALL_KINDS`.

    By its name when it is one of the course's (and its parameters fit that name's
    signature in some notebook version), else by its parameters alone when they are exactly
    one known signature. Anything else is refused with the list of known signatures.
    """
    name = getattr(fn, "__name__", "")
    params, required = _params_of(fn)
    if params is None:
        raise _refusal(name, None, f"cannot read the parameters of {fn!r}")
    by_name = [k for k in ALL_KINDS if _course_name(k) == name]
    fitting = [k for k in by_name if any(len(required) <= len(sig) <= len(params)
                                         for sig in _signatures_of(k))]
    if len(fitting) > 1:
        # One name, several course functions (the planar forward_propagation(X, parameters)
        # and the 1-D forward_propagation(x, theta) of gradient checking): the parameter
        # names decide, then a trial call on each one's inputs.
        named = [k for k in fitting if any(tuple(params[:len(sig)]) == tuple(sig)
                                           for sig in _signatures_of(k))]
        if len(named) == 1:
            return named[0]
        ran = [k for k in (named or fitting) if _trial_runs(fn, k)]
        fitting = ran[:1] or fitting
    if fitting:
        return fitting[0]
    if by_name:
        expected = " or ".join(f"{name}({', '.join(sig)})" for k in by_name
                               for sig in _signatures_of(k))
        raise _refusal(name, params, f"{name}({', '.join(params)}) does not take the course's "
                                     f"arguments: expected {expected}")
    matches = [k for k in ALL_KINDS if any(tuple(params[:len(sig)]) == tuple(sig)
                                           and len(required) <= len(sig)
                                           for sig in _signatures_of(k))]
    if "update_parameters" in matches:  # the same analysis under two names
        matches.remove("update_parameters_with_gd")
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise _refusal(name, params, f"{name}({', '.join(params)}) has the parameters of "
                                     f"{' and '.join(_course_name(k) for k in matches)}: name it "
                                     f"like the course")
    if len(params) == 2 and len(required) == 2 and tuple(params) == ("dZ", "cache"):
        return "linear_backward"
    raise _refusal(name, params, f"cannot tell which course function {name or fn!r}"
                                 f"({', '.join(params)}) is")


ALL_KINDS = KINDS + tuple(COURSE_FUNCTIONS)


def _trial_runs(fn, kind):
    """True when ``fn`` runs without an exception on the first inputs of ``kind``."""
    if kind not in COURSE_FUNCTIONS:
        return False
    probe = COURSE_FUNCTIONS[kind].build(0)[0]
    _, error = _call(fn, copy.deepcopy(probe.args))
    return error is None


def _course_name(kind):
    return COURSE_FUNCTIONS[kind].name if kind in COURSE_FUNCTIONS else kind


def _signatures_of(kind):
    if kind in COURSE_FUNCTIONS:
        spec = COURSE_FUNCTIONS[kind]
        return (spec.params,) + tuple(spec.variants)
    return (_SIGNATURES[kind],)


def diagnose(fn, kind=None, activations=("relu", "sigmoid"), convention="L", seed=0,
             timeout=DEFAULT_TIME_LIMIT):
    """Run a learner's function on the course's inputs and name what is wrong with it.

    Parameters
    ----------
    fn : callable
        A function of courses 1 and 2 in which the learner writes gradient, cost or update
        math, with the course's signature (see :func:`known_signatures`):
        ``linear_backward(dZ, cache)`` with ``cache = (A_prev, W, b)``;
        ``linear_activation_backward(dA, cache, activation)`` with
        ``cache = ((A_prev, W, b), Z)``; ``L_model_backward(AL, Y, caches)`` (relu hidden
        layers, a sigmoid output with binary cross-entropy, as the course; either key
        convention of the notebooks); the planar ``backward_propagation(parameters, cache,
        X, Y)``; ``backward_propagation_n``, ``_with_regularization``, ``_with_dropout``;
        ``compute_cost`` (with and without regularisation); ``update_parameters``,
        ``update_parameters_with_momentum``, ``update_parameters_with_adam``; the forward
        functions; ``propagate``; ``batchnorm_backward(dZ_tilde, cache)`` in the course's
        layout or the rows layout (cs231n's ``dout``), with the cache of the learner's own
        ``batchnorm_forward`` when its module defines one (:mod:`.course_batchnorm`).
    kind : str, optional
        One of :data:`ALL_KINDS`; detected from the name or the signature when omitted.
    activations : sequence of str
        The activations ``linear_activation_backward`` is tried with.
    convention : {"L", "J"}
        Where the 1/m is expected in the three backward functions of course 1 week 4: "L"
        (the course: in dW and db) or "J" (in dZ[L]).
    seed : int
        Seeds the generated inputs.
    timeout : float or None
        Seconds each call of ``fn`` may take (default 10); a call past it is stopped and
        reported. ``None`` for no limit.

    Returns
    -------
    DoctorReport
        ``report.ok`` is True for a clean bill; ``report.codes`` is the set of mistake
        codes (keys of :data:`MISTAKES`); ``print(report)`` shows each diagnosis with the
        correct formula and the shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.explain import diagnose
    >>> def linear_backward(dZ, cache):
    ...     A_prev, W, b = cache
    ...     dW = np.dot(dZ, A_prev.T)               # the 1/m is missing
    ...     db = np.sum(dZ, axis=1, keepdims=True) / A_prev.shape[1]
    ...     return np.dot(W.T, dZ), dW, db
    >>> sorted(diagnose(linear_backward).codes)
    ['missing_1_over_m']
    """
    if convention not in ref.CONVENTIONS:
        raise InputError(f"convention must be 'L' or 'J', got {convention!r}")
    timeout = time_limit(timeout)
    activations = _activations(activations)
    kind = kind or detect_kind(fn)
    if kind not in ALL_KINDS:
        raise InputError(f"kind must be one of {', '.join(ALL_KINDS)}, got {kind!r}")
    previous = _LIMIT["timeout"]
    _LIMIT["timeout"] = timeout
    try:
        if kind in COURSE_FUNCTIONS:
            report = _diagnose_course(fn, kind, seed)
        else:
            report = _diagnose_week4(fn, kind, activations, convention, seed)
    finally:
        _LIMIT["timeout"] = previous
    _add_source_hints(fn, report)
    return report


#: diagnoses located by where the call failed, not by the outputs they name
_CALL_CODES = ("raises", "raises_in_helper", "signature", "timed_out", "exits")


#: factors that m read from the wrong axis produces when that axis has length 1 (Y.shape[0]
#: of a one-unit output: the 1/m becomes 1/1) or another dimension
_M_FACTOR_CODES = ("missing_1_over_m", "wrong_factor")


def _activations(activations):
    """The activations ``linear_activation_backward`` is tried with: one or more names of
    hidden activations (an empty list would check nothing and report a clean bill)."""
    if isinstance(activations, str) or not hasattr(activations, "__iter__"):
        raise InputError(f"activations must be a list of activation names like "
                         f"['relu', 'sigmoid'], got {activations!r:.60}")
    names = list(activations)
    valid = [a.name for a in spec.ACTIVATION_TABLE if not a.output_only]
    if not names:
        raise InputError(f"activations is empty: give at least one of {', '.join(valid)} "
                         f"(an empty list checks nothing)")
    for name in names:
        if name not in valid:
            raise InputError(f"activations: unknown activation {name!r}; valid: "
                             f"{', '.join(valid)}")
    return names


def _add_source_hints(fn, report):
    m_line = axis0_m_line(fn)
    if m_line:
        # m = Y.shape[0]: the factor the outputs show comes from the axis m was read from
        for d in report.diagnoses:
            if d.code in _M_FACTOR_CODES:
                d.code = "wrong_m"
                d.detail = (f"{d.detail}; m is read from axis 0 (the units), not axis 1 (the "
                            f"examples)")
                d.line = m_line
        report.diagnoses = _merge(report.diagnoses)
    for d in report.diagnoses:
        if not d.line and d.code not in _CALL_CODES:
            d.line = offending_line(fn, d.code, d.where)
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return
    for d in report.diagnoses:
        if d.code == "missing_keepdims" and "keepdims" in source and "squeeze" in source:
            d.detail += ("; the code has keepdims=True, and np.squeeze removes the axis again: "
                         "drop the np.squeeze")


def _call_diagnosis(error, label, formulas):
    exc, summary, how = error
    line = raise_location(exc) if how in ("raises", "raises_in_helper") else ""
    if line:
        # the learner's line (a notebook's cell and line) replaces the traceback's own words
        summary = f"{type(exc).__name__}: {exc}"
    d = _call_diagnosis_text(exc, summary, how, label, formulas)
    d.line = line
    return d


def _call_diagnosis_text(exc, summary, how, label, formulas):
    if how in ("timed_out", "exits"):
        return Diagnosis(how, [f"call{label}"], summary, formulas)
    if how == "raises_in_helper":
        return Diagnosis("raises_in_helper", [f"call{label}"], summary, formulas)
    if how == "signature":
        return Diagnosis("signature", [f"call{label}"], summary + " — it was called with the "
                         "course's arguments", formulas)
    hint = _exception_hint(exc)
    return Diagnosis("raises", [f"call{label}"], summary + (f" — {hint}" if hint else ""),
                     formulas)


#: mistakes that make a function fail on general shapes and run on square ones: found on
#: square shapes they explain the raise on the course's shapes
_EXPLAIN_RAISE = {"missing_transpose", "elementwise_product", "transposed_result",
                  "transposed_W", "x_transposed", "wrong_cache", "relu_mask_wrong_array"}
#: what square shapes can show only because some dimensions are equal (a factor, a value no
#: mistake explains, a shape): a note when the course's shapes raise
_SQUARE_ONLY = {"wrong_factor", "unrecognised", "wrong_shape", "missing_1_over_m",
                "extra_1_over_m", "double_1_over_m", "sign_flipped", "wrong_m"}


def _summary(failure):
    """The one-line summary of a failed call, with the learner's line (cell and line in a
    notebook) when the traceback has it."""
    exc, summary, how = failure
    line = raise_location(exc) if how in ("raises", "raises_in_helper") else ""
    return f"{type(exc).__name__}: {exc} ({line})" if line else summary


def _raise_is_the_verdict(found, error, label, notes, formulas):
    """The diagnoses when the function raised on the course's shapes and ran on others.

    A mistake found where it runs that explains a failure on general shapes (a missing
    transpose...) is the verdict; values that only square shapes produce (a factor, a value
    no mistake explains) are a note, and the raise on the course's shapes is the verdict,
    next to what else was found (outputs in another order, an input modified...).
    """
    probe, failure = error
    square_only = [d for d in found if d.code in _SQUARE_ONLY]
    kept = [d for d in found if d.code not in _SQUARE_ONLY]
    name = getattr(probe, "name", "")
    shapes = name if "shape" in name else f"{name} shapes"
    if square_only:
        notes.append("on square shapes, where it runs, it also shows: " + "; ".join(
            f"{d.code} ({d.detail})" if d.detail else d.code for d in square_only))
    if any(d.code in _EXPLAIN_RAISE for d in kept):
        notes.append(f"on {shapes}{label} it raised {_summary(failure)}; the diagnosis comes "
                     f"from the square shapes, where it runs")
        return kept
    verdict = _call_diagnosis(failure, label, formulas)
    verdict.detail = f"on the course's {shapes}{label}: {verdict.detail}"
    return [verdict] + kept


def _diagnose_course(fn, kind, seed):
    spec = COURSE_FUNCTIONS[kind]
    name = getattr(fn, "__name__", repr(fn))
    probes = spec.build_for(fn, seed) if spec.build_for else spec.build(seed)
    diagnoses, checked, notes, errors, ran = [], [], [], [], 0
    _, required = _params_of(fn)
    done = set()  # groups of probes (one per activation tried) with a finding already
    for probe in probes:
        group = probe.data.get("group")
        if group in done:
            continue
        args = copy.deepcopy(probe.args)
        if required is not None and len(required) > len(args):
            args += tuple(copy.deepcopy(probe.data.get("extra", ())))[:len(required) - len(args)]
        before = copy.deepcopy(args)
        result, error = _call(fn, args)
        checked.append(probe.name)
        if error is not None:
            errors.append((probe, error))
            if error[2] in ("timed_out", "exits"):
                break
            continue
        ran += 1
        findings = spec.analyse(result, probe)
        notes += [f.detail for f in findings if f.code == "note" and f.detail not in notes]
        findings = [f for f in findings if f.code != "note"]
        if findings:
            done.add(group)
        diagnoses += [Diagnosis(f.code, f.where, f.detail, f.formulas, f.layers)
                      for f in findings]
        if not spec.mutation_ok and _mutated(before, args):
            diagnoses.append(Diagnosis("mutates_input", ["inputs"], "an input array was "
                                       "changed by the call", ["copy before writing: "
                                                               "np.array(x, copy=True)"]))
    if errors and (not ran or errors[0][1][2] in ("timed_out", "exits")):
        diagnoses.insert(0, _call_diagnosis(errors[0][1], "", []))
    elif errors and errors[0][0] is probes[0]:
        # it raised on the course's shapes (the first probe) and ran on others
        formulas = list(dict.fromkeys(f for d in diagnoses for f in d.formulas))
        diagnoses = _raise_is_the_verdict(diagnoses, errors[0], "", notes, formulas)
    elif errors:
        notes.append(f"on {errors[0][0].name} it raised {_summary(errors[0][1])}; the diagnosis "
                     f"comes from the inputs where it runs")
    # batchnorm_backward reads the convention from the result (its note says "convention J")
    convention = "J" if any(n.startswith("convention J:") for n in notes) else "L"
    report = DoctorReport(function=name, kind=kind, convention=convention,
                          diagnoses=_merge(diagnoses), checked=checked, notes=notes)
    return report


def _diagnose_week4(fn, kind, activations, convention, seed):
    name = getattr(fn, "__name__", repr(fn))
    runs = [None] if kind != "linear_activation_backward" else list(activations)
    diagnoses, checked, notes = [], [], []
    for activation in runs:
        probes = _probes(kind, activation, seed)
        label = f" (activation {activation!r})" if activation else ""
        errors = []
        found = None
        for probe in probes:
            if kind == "L_model_backward":
                found, error = _diagnose_model_probe(fn, probe, convention, notes)
            else:
                found, error = _diagnose_linear_probe(fn, kind, probe, convention)
            checked.append(f"{probe.name} shapes{label}")
            if error is not None:
                errors.append((probe, error))
                if error[2] in ("timed_out", "exits"):
                    break
                continue
            if found or probe is probes[-1]:
                break
        if found is None:
            diagnoses.append(_call_diagnosis(errors[0][1], label,
                                             _formulas_for(kind, probes[0], convention)))
            if errors[0][1][2] in ("timed_out", "exits"):
                break
            continue
        if errors:
            # Show the formulas with the shapes where it failed, which are the informative ones.
            general = {f.split(" = ")[0]: f for f in _formulas_for(kind, errors[0][0], convention)}
            for d in found:
                d.formulas = [general.get(f.split(" = ")[0], f) for f in d.formulas]
            found = _raise_is_the_verdict(found, errors[0], label, notes,
                                          _formulas_for(kind, errors[0][0], convention))
        for d in found:
            if label:
                d.detail = f"{d.detail}{label}" if d.detail else label.strip()
        diagnoses.extend(found)
    if diagnoses and kind == "L_model_backward" and convention == "L" and not any(
            d.code in ("timed_out", "exits") for d in diagnoses):
        # Consistent convention J (dAL/m, no 1/m in dW, db) is right too: same dW, db.
        other = _diagnose_week4(fn, kind, activations, "J", seed)
        if other.ok:
            other.notes.append("this is convention J: dZ[L] carries the 1/m and dW, db have "
                               "none; dW, db equal the course's (convention L), every dA and "
                               "dZ is 1/m times the course's")
            return other
    return DoctorReport(function=name, kind=kind, convention=convention,
                        diagnoses=_merge(diagnoses), checked=checked, notes=notes)


def _formulas_for(kind, probe, convention):
    if kind == "L_model_backward":
        AL, Y, caches = probe.args
        L = len(caches)
        _, ctx = _simulate_model(AL, Y, caches, "ok", 0, ["relu"] * (L - 1) + ["sigmoid"], 1.0,
                                 convention)
        formulas = _model_formulas(ctx, caches, convention)
        return [formulas[k] for k in sorted(formulas, key=_computation_order)]
    if kind == "linear_backward":
        dZ, (A_prev, W, _) = probe.args
        return list(_linear_formulas(dZ, A_prev, W, convention).values())
    dA, (linear_cache, Z), activation = probe.args
    A_prev, W, _ = linear_cache
    return [_dZ_formula(activation, _shape(Z))] + list(
        _linear_formulas(dA, A_prev, W, convention).values())


def format_report(report):
    """The text of a :class:`DoctorReport`."""
    head = f"{report.function}: {report.kind}, convention {report.convention}"
    lines = [head, "checked on: " + ", ".join(dict.fromkeys(report.checked))]
    if report.ok:
        lines.append("clean bill: every output matches the reference (relative tolerance "
                     f"{_RTOL:g}), and no input was modified.")
    else:
        lines.append(f"{len(report.diagnoses)} problem(s) found:")
    for i, d in enumerate(report.diagnoses, 1):
        lines.append("")
        layers = ""
        if d.layers:
            ls = sorted(set(d.layers), reverse=True)
            layers = f" (layer{'s' if len(ls) > 1 else ''} {', '.join(map(str, ls))})"
        lines.append(f"{i}. {d.title} [{d.code}] in {', '.join(d.where)}{layers}")
        if d.detail:
            lines.append(f"   seen: {d.detail}")
        if d.line:
            lines.append(f"   line: {d.line}")
        lines.append(f"   why: {d.why}")
        if d.formulas:
            lines.append("   correct:")
            lines += [f"     {f}" for f in d.formulas]
    for note in report.notes:
        lines.append("")
        lines.append(f"note: {note}")
    return "\n".join(lines)
