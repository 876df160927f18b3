"""Each verdict quotes the learner's line (issue 25): notebook cells and lines (not the
notebook's JSON), .py lines, a SyntaxError with its line, a function that is not there
(exit 2), the exit codes, and the gradient check pointing a course function to the doctor."""

# ruff: noqa: N802, N803, N806

import json

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.errors import InputError
from chainrule.explain import diagnose, gradient_check
from chainrule.explain.loader import load

LINEAR_BACKWARD = """def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T) / m
    db = np.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = np.dot(W, dZ)
    return dA_prev, dW, db
"""

COST = """def compute_cost(AL, Y):
    m = Y.shape[1]
    cost = -np.sum(Y * np.log(AL))
    return float(cost)
"""

L_MODEL_BACKWARD = """def L_model_backward(AL, Y, caches):
    grads = {}
    return grads
"""


def _notebook(path, *codes):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Week 4\n"]},
             {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
              "source": ["import numpy as np\n"]}]
    for code in codes:
        cells.append({"cell_type": "markdown", "metadata": {}, "source": ["exercise\n"]})
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": 2, "outputs": [],
                      "source": code.splitlines(keepends=True)})
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 4}, indent=1))
    return path


def test_a_raise_in_a_notebook_points_to_the_cell_and_line(tmp_path):
    raises = LINEAR_BACKWARD.replace("    dW = np.dot(dZ, A_prev.T) / m\n",
                                     "    dW = np.dot(dZ, A_prev) / m\n").replace(
        "np.dot(W, dZ)", "np.dot(W.T, dZ)")
    path = _notebook(tmp_path / "nb.ipynb", raises)
    fn = load(str(path), ["linear_backward"]).functions["linear_backward"]
    report = diagnose(fn)
    assert report.codes == {"missing_transpose"}, str(report)
    text = str(report)
    assert "cell 4, line 4: dW = np.dot(dZ, A_prev) / m" in text
    assert '"metadata"' not in text and "nb.ipynb, line" not in text


def test_a_mistake_in_a_notebook_quotes_its_cell_and_line(tmp_path):
    path = _notebook(tmp_path / "nb.ipynb", LINEAR_BACKWARD, COST)
    loaded = load(str(path))
    report = diagnose(loaded.functions["compute_cost"])
    assert report.codes == {"cost_missing_term", "missing_1_over_m"}, str(report)
    assert all(d.line == "cell 6, line 3: cost = -np.sum(Y * np.log(AL))"
               for d in report.diagnoses), str(report)
    report = diagnose(loaded.functions["linear_backward"])
    assert report.diagnoses[0].line == "cell 4, line 6: dA_prev = np.dot(W, dZ)"


def test_a_mistake_in_a_py_file_quotes_its_line(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n\n" + LINEAR_BACKWARD.replace(
        "np.dot(dZ, A_prev.T) / m", "np.dot(dZ, A_prev.T)").replace("np.dot(W, dZ)",
                                                                   "np.dot(W.T, dZ)"))
    report = diagnose(load(str(path)).functions["linear_backward"])
    assert report.codes == {"missing_1_over_m"}
    assert report.diagnoses[0].line == "mine.py, line 7: dW = np.dot(dZ, A_prev.T)"


def test_wrong_m_quotes_the_line_that_reads_m():
    def propagate(w, b, X, Y):
        m = X.shape[0]
        A = 1 / (1 + np.exp(-(np.dot(w.T, X) + b)))
        cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
        return {"dw": np.dot(X, (A - Y).T) / m, "db": np.sum(A - Y) / m}, cost

    report = diagnose(propagate)
    assert report.codes == {"wrong_m"}
    assert report.diagnoses[0].line.endswith("m = X.shape[0]")


def test_cli_exit_codes_clean_mistakes_and_could_not_check(tmp_path, capsys):
    clean = tmp_path / "clean.py"
    clean.write_text("import numpy as np\n\n" + LINEAR_BACKWARD.replace("np.dot(W, dZ)",
                                                                        "np.dot(W.T, dZ)"))
    wrong = _notebook(tmp_path / "wrong.ipynb", COST)
    assert main(["doctor", str(clean), "--in-process"]) == 0
    assert main(["doctor", str(wrong), "--in-process"]) == 1
    assert "line: cell 4, line 3: cost = -np.sum(Y * np.log(AL))" in capsys.readouterr().out
    assert main(["doctor", f"{clean}:L_model_backward", "--in-process"]) == 2
    assert "no function 'L_model_backward'" in capsys.readouterr().err


def test_cli_syntax_error_is_reported_with_its_line(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\ndef linear_backward(dZ, cache):\n"
                    "    dW = np.dot(dZ, cache[0].T\n    return dW\n")
    assert main(["doctor", str(path), "--in-process"]) == 2
    err = capsys.readouterr().err
    assert "SyntaxError" in err and "line 4" in err
    assert "defines no function named like a course function" not in err


def test_cli_syntax_error_in_a_notebook_cell(tmp_path, capsys):
    path = _notebook(tmp_path / "nb.ipynb", "def compute_cost(AL, Y:\n    return 0\n")
    assert main(["doctor", str(path), "--in-process"]) == 2
    assert "cell 4, line 1: SyntaxError" in capsys.readouterr().err


def test_cli_a_needed_function_that_did_not_load_exits_2(tmp_path, capsys):
    # compute_cost is clean, but its helper's definition raised when it was loaded
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n"
                    "def helper(x, scale=1 / 0):\n    return x\n\n"
                    "def compute_cost(AL, Y):\n    m = Y.shape[1]\n"
                    "    if m < 0:\n        helper(m)\n"
                    "    return float(-np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m)\n")
    assert main(["doctor", str(path), "--in-process"]) == 2
    out = capsys.readouterr().out
    assert "not loaded" in out and "clean bill" in out


def test_gradcheck_redirects_a_course_function_to_the_doctor(tmp_path, capsys):
    path = _notebook(tmp_path / "nb.ipynb", L_MODEL_BACKWARD)
    assert main(["gradcheck", "--function", f"{path}:L_model_backward", "--in-process"]) == 2
    err = capsys.readouterr().err
    assert "chainrule doctor" in err and f"{path}:L_model_backward" in err
    assert "def fn(parameters, X, Y)" in err
    assert "AttributeError" not in err

    def L_model_backward(AL, Y, caches):
        return {}

    with pytest.raises(InputError, match="the course's L_model_backward"):
        gradient_check(L_model_backward, np.zeros((2, 3)), np.zeros((1, 3)),
                       parameters={"W1": np.zeros((1, 2)), "b1": np.zeros((1, 1))})


def test_gradcheck_says_a_shared_factor_once():
    from chainrule import Network

    net = Network([2, 3, 1], hidden="tanh", output="sigmoid", backend="numpy", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 8))
    Y = (rng.random((1, 8)) > 0.5).astype(float)
    params = {k: np.asarray(v, dtype=np.float64) for k, v in net.parameters.items()}

    def fn(parameters, X, Y):
        m = X.shape[1]
        W1, b1, W2, b2 = (parameters[k] for k in ("W1", "b1", "W2", "b2"))
        A1 = np.tanh(W1 @ X + b1)
        A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
        cost = -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / m
        dZ2 = A2 - Y
        dZ1 = (W2.T @ dZ2) * (1 - A1 ** 2)
        return cost, {"dW1": dZ1 @ X.T, "db1": np.sum(dZ1, axis=1, keepdims=True),
                      "dW2": dZ2 @ A1.T, "db2": np.sum(dZ2, axis=1, keepdims=True)}

    text = str(gradient_check(fn, X, Y, parameters=params))
    assert text.count("= m: the 1/m is missing") == 1, text
    assert "W1, b1, W2, b2: analytic" in text
