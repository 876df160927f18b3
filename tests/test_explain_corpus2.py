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
    assert len(repositories) >= 15


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
