"""Stand-ins for the helper files the course's notebooks import (``dnn_utils``, ``reg_utils``...).

A learner's notebook usually sits apart from the course's files. When the doctor loads a
function from it and an import of one of these fails, the names the function uses are bound
to these versions: the course's formulas, written with :mod:`chainrule.reference`. Files
that only hold test data or plotting (``testCases``, ``public_tests``, ``h5py``...) are
skipped: a function under diagnosis does not need them.
"""

# ruff: noqa: N802, N803, N806

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .course_style import (relu, relu_backward, relu_cached, sigmoid, sigmoid_backward,
                           sigmoid_cached)


def _relu_backward(dA, cache):
    return relu_backward(np.asarray(dA), cache)


def _sigmoid_backward(dA, cache):
    return sigmoid_backward(np.asarray(dA), cache)


def _compute_cost(a3, Y):
    """``reg_utils.compute_cost`` / ``opt_utils.compute_cost``: the mean cross-entropy."""
    return float(ref.compute_cost(a3, Y, "binary_crossentropy"))


_DNN = {"sigmoid": sigmoid_cached, "relu": relu_cached, "sigmoid_backward": _sigmoid_backward,
        "relu_backward": _relu_backward}
_PLAIN = {"sigmoid": sigmoid, "relu": relu}

#: module name (without a version suffix like ``_v2`` or ``_v1a``) -> the names it provides
STANDINS = {
    "dnn_utils": _DNN,
    "dnn_app_utils": _DNN,
    "planar_utils": _PLAIN,
    "reg_utils": {**_PLAIN, "compute_cost": _compute_cost},
    "opt_utils": {**_PLAIN, "compute_cost": _compute_cost},
    "init_utils": {**_PLAIN, "compute_loss": _compute_cost},
    "gc_utils": _PLAIN,
}

#: course files with only test cases, data or plots: skipped when missing
SKIPPABLE = ("testCases", "testcases", "public_tests", "test_utils", "lr_utils", "h5py",
             "outputs", "improv_utils", "tf_utils")


def base_name(module):
    """``dnn_utils_v2`` -> ``dnn_utils``; ``testCases_v4a`` -> ``testCases``."""
    import re

    name = module.split(".")[-1]
    return re.sub(r"_v\d+[a-z]?$", "", name)
