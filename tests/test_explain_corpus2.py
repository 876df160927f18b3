"""The doctor on a second corpus of learner code it was not written against (issue 25).

``tests/doctor_corpus/learners2.py`` holds the functions (sources in its comments) and
``tests/doctor_corpus/*.ipynb`` notebooks built from them. The expected verdict of each
entry was written from running it against ``chainrule.reference`` on the course's inputs
(``_ground_truth`` below re-runs that comparison: the entries expected clean must match the
reference, the others must not), before the doctor was run on it; "refuse" is a function
whose signature is not the course's. ``test_verdict_rate`` reports right / total.
"""

# ruff: noqa: N802, N803, N806

import numpy as np
import pytest

from chainrule.errors import InputError
from chainrule.explain import diagnose
from doctor_corpus import learners2 as lr

# name: (function, kind passed (None: detected), the expected verdict)
CORPUS = {
    "etsoni propagate": (lr.propagate__etsoni, None, set()),
    "jiangtian propagate": (lr.propagate__jiangtian, None, set()),
    "mekmoment propagate": (lr.propagate__mekmoment, None, set()),
    "haoyu propagate": (lr.propagate__haoyu, None, set()),
    "adarsh L_model_backward": (lr.L_model_backward__adarsh, None, set()),
    "adarsh linear_backward": (lr.linear_backward__adarsh, None, set()),
    "adarsh compute_cost (np.dot terms)": (lr.compute_cost__adarsh, None, set()),
    "adarsh linear_activation_backward": (lr.linear_activation_backward__adarsh, None, set()),
    # db squeezed and asserted to be a float: raises on every layer with more than one unit
    "jeanpierre linear_backward (squeeze + assert float)": (lr.linear_backward__jeanpierre,
                                                            None, {"raises"}),
    # the copied loop (sigmoid_backward of dAL in every hidden layer) through the linear_backward
    # above: its assert stops the first hidden layer
    "jeanpierre L_model_backward (copied loop)": (lr.L_model_backward__jeanpierre, None,
                                                  {"raises_in_helper"}),
    "jeanpierre compute_cost": (lr.compute_cost__jeanpierre, None, set()),
    "jeanpierre update_parameters": (lr.update_parameters__jeanpierre, None, set()),
    "gpk L_model_backward": (lr.L_model_backward__gpk, None, set()),
    "gpk linear_backward (@)": (lr.linear_backward__gpk, None, set()),
    "ms1373 L_model_backward": (lr.L_model_backward__ms1373, None, set()),
    "ms1373 linear_backward": (lr.linear_backward__ms1373, None, set()),
    "nguyen adam": (lr.update_parameters_with_adam__nguyen, None, set()),
    "nguyen momentum": (lr.update_parameters_with_momentum__nguyen, None, set()),
    "nguyen backward with regularization": (lr.backward_propagation_with_regularization__nguyen,
                                            None, set()),
    "nguyen regularized cost": (lr.compute_cost_with_regularization__nguyen, None, set()),
    # m = Y.shape[0] = 1: the cost is m times too large, and the cause is the axis
    "malys compute_cost (m = Y.shape[0])": (lr.compute_cost__malys, None, {"wrong_m"}),
    "akash linear_backward (dW, db, dA_prev)": (lr.linear_backward__akash, None,
                                                {"wrong_output_order"}),
    "akash linear_activation_backward (same order)": (lr.linear_activation_backward__akash,
                                                      None, {"wrong_output_order"}),
    "akash L_layer_backward (consistent with its helpers)": (
        lr.L_layer_backward__akash, "L_model_backward", set()),
    "kewser backward_propagation (rows, softmax)": (lr.backward_propagation__kewser, None,
                                                    "refuse"),
    "savory compute_cost": (lr.compute_cost__savory, None, set()),
    "roshan update_parameters": (lr.update_parameters__roshan, None, set()),
    "ulichovick cost_function (only Y log AL)": (lr.cost_function__ulichovick, None,
                                                 {"cost_missing_term"}),
    "mofeiyu cost (only Y log AL, optional extras)": (lr.cost__mofeiyu, "compute_cost",
                                                      {"cost_missing_term"}),
    "duc linear_activation_backward (caches, activation_name)": (
        lr.linear_activation_backward__duc, None, set()),
    "duc backward (AL, Y, caches)": (lr.backward__duc, None, set()),
    "pdubz linear_activation_forward (activation_type)": (
        lr.linear_activation_forward__pdubz, None, set()),
    "polaris linear_activation_forward": (lr.linear_activation_forward__polaris, None, set()),
    "ayush lin_act_forward (batch norm, 8 parameters)": (lr.lin_act_forward__ayush, None,
                                                         "refuse"),
    "sayan forward_propagation(X, W1, b1, W2, b2)": (lr.forward_propagation__sayan, None,
                                                     "refuse"),
    "nguyen update_parameters_with_gd": (lr.update_parameters_with_gd__nguyen, None, set()),
    "buiqtuan 1-D forward (np.dot)": (lr.forward_propagation__buiqtuan, None, set()),
    "buiqtuan 1-D backward": (lr.backward_propagation__buiqtuan, None, set()),
    "buiqtuan backward_propagation_n (fixed)": (lr.backward_propagation_n__buiqtuan, None,
                                                set()),
    "vedarth 1-D forward": (lr.forward_propagation__vedarth, None, set()),
    "sauldnn 1-D forward": (lr.forward_propagation__sauldnn, None, set()),
    "sauldnn 1-D backward": (lr.backward_propagation__sauldnn, None, set()),
    "gpk L_model_forward": (lr.L_model_forward__gpk, None, set()),
    "jeanpierre L_model_forward": (lr.L_model_forward__jeanpierre, None, set()),
    "adarsh L_model_forward": (lr.L_model_forward__adarsh, None, set()),
    "ms1373 linear_forward": (lr.linear_forward__ms1373, None, set()),
    "lenka compute_cost (optional L2 parameters)": (lr.compute_cost__lenka, None, set()),
    "lenka linear_backward(dZ, cache, reg)": (lr.linear_backward__lenka, None, "refuse"),
    "lenka L_model_backward (earlier keys, reg=False)": (lr.L_model_backward__lenka, None, set()),
    "lenka linear_forward (W.dot)": (lr.linear_forward__lenka, None, set()),
    "pkraison 1-D forward": (lr.forward_propagation__pkraison, None, set()),
    "pkraison 1-D backward": (lr.backward_propagation__pkraison, None, set()),
    "pkraison backward_propagation_n": (lr.backward_propagation_n__pkraison, None, set()),
}


def _rename(fn):
    """The transcribed name carries its source; the name before ``__`` is the learner's."""
    fn.__name__ = fn.__name__.split("__")[0]
    return fn


def _verdict(name):
    fn, kind, truth = CORPUS[name]
    fn = _rename(fn)
    if truth == "refuse":
        try:
            diagnose(fn, kind=kind)
        except InputError as exc:
            return "refuse", str(exc)
        return "accepted", ""
    report = diagnose(fn, kind=kind)
    return report.codes, str(report)


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus2_verdict(name):
    found, text = _verdict(name)
    assert found == CORPUS[name][2], text


def test_verdict_rate(capsys):
    right = sum(_verdict(name)[0] == CORPUS[name][2] for name in CORPUS)
    with capsys.disabled():
        print(f"\ncorpus 2: {right} / {len(CORPUS)} verdicts right")
    assert right / len(CORPUS) >= 0.95


def test_corpus2_size_and_sources():
    source = open(lr.__file__, encoding="utf-8").read()
    repositories = {line.split(" : ")[0].lstrip("# ").strip() for line in source.splitlines()
                    if line.startswith("# ") and " : " in line and "/" in line.split(" : ")[0]}
    assert len(CORPUS) >= 30
    assert len(repositories) >= 25


# notebooks built from the transcriptions (tests/doctor_corpus/make_notebooks.py): every
# function the doctor finds in them, its expected verdict, and the exit status
NOTEBOOKS = {
    "jeanpierre_week4.ipynb": ({"linear_backward": {"raises"},
                                "L_model_backward": {"raises_in_helper"},
                                "compute_cost": set()}, 1),
    "akash_backward.ipynb": ({"linear_backward": {"wrong_output_order"},
                              "linear_activation_backward": {"wrong_output_order"}}, 1),
    "buiqtuan_gradient_checking.ipynb": ({"forward_propagation": set(),
                                          "backward_propagation": set(),
                                          "backward_propagation_n": set()}, 0),
    "malys_cost.ipynb": ({"compute_cost": {"wrong_m"}}, 1),
}


@pytest.mark.parametrize("notebook", list(NOTEBOOKS))
def test_corpus2_notebooks(notebook, capsys):
    import os

    from chainrule.cli import main
    from chainrule.explain.loader import load

    path = os.path.join(os.path.dirname(lr.__file__), notebook)
    expected, status = NOTEBOOKS[notebook]
    loaded = load(path)
    for name, codes in expected.items():
        report = diagnose(loaded.functions[name])
        assert report.codes == codes, str(report)
        for d in report.diagnoses:  # every verdict points into a cell, never the JSON
            assert d.line.startswith(("cell ", "in ")) and "cell " in d.line, str(report)
    assert main(["doctor", path, "--in-process"]) == status
    out = capsys.readouterr().out
    assert '"metadata"' not in out and '"source"' not in out


# --------------------------------------------------------------------------- ground truth
# Independent of the doctor: each function on the course's shapes (every dimension
# different), its result against chainrule.reference. "match", "differs" or "raises".

def _close_all(got, want):
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _close_all(got[k], v)
                                             for k, v in want.items())
    if isinstance(want, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(want)
                and all(_close_all(g, w) for g, w in zip(got, want)))
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return g.shape == np.shape(want) and np.allclose(g, want, rtol=1e-7, atol=1e-12)


def _course_inputs(kind, rng):
    """``(args, expected)`` for ``kind`` from chainrule.reference, or None (not covered)."""
    from chainrule import reference as ref

    dims, m = [4, 5, 3, 1], 7
    P = {}
    for l in range(1, len(dims)):
        P[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1])) / np.sqrt(dims[l - 1])
        P[f"b{l}"] = rng.standard_normal((dims[l], 1)) * 0.5
    X = rng.standard_normal((dims[0], m))
    Y = (rng.random((1, m)) > 0.5).astype(float)
    Y[0, :2] = 0.0, 1.0
    AL, caches = ref.model_forward(X, P, ["relu", "relu", "sigmoid"])
    G = {f"d{k}": rng.standard_normal(v.shape) for k, v in P.items()}
    if kind == "linear_backward":
        dZ = rng.standard_normal((3, m))
        cache = (rng.standard_normal((4, m)), rng.standard_normal((3, 4)), np.zeros((3, 1)))
        return (dZ, cache), ref.linear_backward(dZ, cache)
    if kind == "linear_activation_backward":
        dA = rng.standard_normal((5, m))
        return (dA, caches[0], "relu"), ref.linear_activation_backward(dA, caches[0], "relu")
    if kind == "L_model_backward":
        g = ref.model_backward(AL, Y, caches, ["relu", "relu", "sigmoid"], from_dAL=True)
        keys = [k for k in g if k.startswith(("dW", "db"))]  # dA keys differ by notebook
        return (AL, Y, caches), {k: g[k] for k in keys}
    if kind == "propagate":
        w, b = rng.standard_normal((4, 1)), 0.3
        A = ref.sigmoid(w.T @ X + b)
        return (w, b, X, Y), ({"dw": X @ (A - Y).T / m, "db": np.sum(A - Y) / m},
                              ref.compute_cost(A, Y))
    if kind == "compute_cost":
        return (AL, Y), ref.compute_cost(AL, Y)
    if kind == "compute_cost_with_regularization":
        return (AL, Y, P, 0.1), ref.compute_cost(AL, Y) + ref.l2_cost(P, 0.1, m)
    if kind in ("update_parameters", "update_parameters_with_gd"):
        return (dict(P), G, 0.1), {k: P[k] - 0.1 * G["d" + k] for k in P}
    if kind == "update_parameters_with_momentum":
        V = {k: rng.standard_normal(v.shape) for k, v in G.items()}
        v_new = {k: 0.9 * V[k] + 0.1 * G[k] for k in G}
        return (dict(P), G, dict(V), 0.9, 0.1), ({k: P[k] - 0.1 * v_new["d" + k] for k in P},
                                                v_new)
    if kind == "update_parameters_with_adam":
        V = {k: rng.standard_normal(v.shape) for k, v in G.items()}
        S = {k: rng.random(v.shape) for k, v in G.items()}
        v_new = {k: 0.9 * V[k] + 0.1 * G[k] for k in G}
        s_new = {k: 0.999 * S[k] + 0.001 * G[k] ** 2 for k in G}
        new_p = {k: P[k] - 0.01 * (v_new["d" + k] / (1 - 0.9 ** 2))
                 / (np.sqrt(s_new["d" + k] / (1 - 0.999 ** 2)) + 1e-8) for k in P}
        return (dict(P), G, dict(V), dict(S), 2, 0.01, 0.9, 0.999, 1e-8), (new_p, v_new, s_new)
    if kind in ("backward_propagation_with_regularization", "backward_propagation_n"):
        lambd = 0.7 if kind.endswith("regularization") else 0.0
        g = ref.model_backward(AL, Y, caches, ["relu", "relu", "sigmoid"], lambd=lambd)
        Z1, A1, Z2, A2, Z3 = caches[0][1], ref.relu(caches[0][1]), caches[1][1], \
            ref.relu(caches[1][1]), caches[2][1]
        cache = (Z1, A1, P["W1"], P["b1"], Z2, A2, P["W2"], P["b2"], Z3, AL, P["W3"], P["b3"])
        want = {k: g[k] for k in ("dW1", "db1", "dW2", "db2", "dW3", "db3")}
        return ((X, Y, cache, lambd) if lambd else (X, Y, cache)), want
    if kind == "forward_propagation_1d":
        return (1.7, -2.3), 1.7 * -2.3
    if kind == "backward_propagation_1d":
        return (1.7, -2.3), 1.7
    if kind == "linear_forward":
        return (X, P["W1"], P["b1"]), ref.linear_forward(X, P["W1"], P["b1"])
    if kind == "linear_activation_forward":
        return (X, P["W1"], P["b1"], "relu"), ref.linear_activation_forward(X, P["W1"], P["b1"],
                                                                            "relu")
    if kind == "L_model_forward":
        return (X, P), (AL, caches)
    return None


def _ground_truth(fn, kind):
    import copy

    from chainrule.explain.doctor import detect_kind

    kind = kind or detect_kind(fn)
    made = _course_inputs(kind, np.random.default_rng(7))
    if made is None:
        return None
    args, want = made
    try:
        with np.errstate(all="ignore"):
            got = fn(*copy.deepcopy(args))
    except Exception:  # the learner's code: a raise is a result here
        return "raises"
    return "match" if _close_all(got, want) else "differs"


@pytest.mark.parametrize("name", [n for n, (_, _, t) in CORPUS.items() if t != "refuse"])
def test_corpus2_ground_truth(name):
    fn, kind, truth = CORPUS[name]
    found = _ground_truth(_rename(fn), kind)
    if found is None:
        pytest.skip("no independent harness for this kind")
    if not truth:
        assert found == "match"
    elif truth & {"raises", "raises_in_helper"}:
        assert found == "raises"
    else:
        assert found in ("differs", "raises")
