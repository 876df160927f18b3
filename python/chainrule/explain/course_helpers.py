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


def _sigmoid_cached(Z):
    """``dnn_utils.sigmoid``: returns ``(A, cache)`` with ``cache = Z``."""
    return ref.sigmoid(Z), Z


def _relu_cached(Z):
    """``dnn_utils.relu``: returns ``(A, cache)`` with ``cache = Z``."""
    return ref.relu(Z), Z


def _relu_backward(dA, cache):
    return ref.activation_backward(np.asarray(dA), cache, "relu")


def _sigmoid_backward(dA, cache):
    return ref.activation_backward(np.asarray(dA), cache, "sigmoid")


def _compute_cost(a3, Y):
    """``reg_utils.compute_cost`` / ``opt_utils.compute_cost``: the mean cross-entropy."""
    return float(ref.compute_cost(a3, Y, "binary_crossentropy"))


_DNN = {"sigmoid": _sigmoid_cached, "relu": _relu_cached, "sigmoid_backward": _sigmoid_backward,
        "relu_backward": _relu_backward}
_PLAIN = {"sigmoid": ref.sigmoid, "relu": ref.relu}

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
