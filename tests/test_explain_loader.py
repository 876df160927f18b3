"""Loading a learner's function from a notebook or an exported .py, and the time limit."""

import json
import textwrap

import pytest

from chainrule.cli import main
from chainrule.errors import InputError
from chainrule.explain import diagnose
from chainrule.explain.loader import load

# Modelled on hvsbombay/SOC-2025-DEEP-LEARNING-2025 Week3/.../Exercise6.py: course imports
# that are missing here, a magic, a shell line, and test-case calls at top level.
CELLS = [
    "%matplotlib inline\n!pip install nothing\nimport numpy as np\nimport h5py\n"
    "from testCases_v4a import *\nfrom dnn_utils_v2 import sigmoid, sigmoid_backward, "
    "relu_backward\nfrom public_tests import *",
    textwrap.dedent("""
        def linear_backward(dZ, cache):
            A_prev, W, b = cache
            m = A_prev.shape[1]
            return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, np.sum(dZ, axis=1, keepdims=True) / m

        def linear_activation_backward(dA, cache, activation):
            linear_cache, activation_cache = cache
            if activation == "relu":
                dZ = relu_backward(dA, activation_cache)
            else:
                dZ = sigmoid_backward(dA, activation_cache)
            return linear_backward(dZ, linear_cache)
    """),
    "t_dZ, t_cache = linear_backward_test_case()\nlinear_backward_test(linear_backward)",
    "def L_model_backward(AL, Y, caches):\n    grads = {}\n    L = len(caches)\n"
    "    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))\n"
    "    grads['dA' + str(L - 1)], grads['dW' + str(L)], grads['db' + str(L)] = "
    "linear_activation_backward(dAL, caches[L - 1], 'sigmoid')\n"
    "    for l in reversed(range(L - 1)):\n"
    "        dA, dW, db = linear_activation_backward(grads['dA' + str(l + 1)], caches[l], 'relu')\n"
    "        grads['dA' + str(l)], grads['dW' + str(l + 1)], grads['db' + str(l + 1)] = dA, dW, db\n"
    "    return grads\n",
    "def broken(:\n    pass",
]


def _notebook(path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": c} for c in CELLS]
          + [{"cell_type": "markdown", "metadata": {}, "source": "# text"}]}
    path.write_text(json.dumps(nb))
    return path


def test_load_notebook_takes_only_what_the_function_needs(tmp_path):
    loaded = load(str(_notebook(tmp_path / "assignment.ipynb")), ["L_model_backward"])
    fn = loaded.functions["L_model_backward"]
    assert diagnose(fn).ok
    assert any("SyntaxError" in p for p in loaded.problems)
    assert any("dnn_utils_v2 not found" in n for n in loaded.notes)
    assert "linear_backward_test_case" not in loaded.namespace  # no test-case call was run


def test_cli_doctor_notebook_function(tmp_path, capsys):
    path = _notebook(tmp_path / "assignment.ipynb")
    assert main(["doctor", f"{path}:L_model_backward", "--in-process"]) == 0
    out = capsys.readouterr().out
    assert "clean bill" in out and "not loaded: cell 5" in out


def test_cli_doctor_exported_py(tmp_path, capsys):
    text = "\n\n".join(f"# In[{i}]:\n{c}" for i, c in enumerate(CELLS[:4], 1))
    path = tmp_path / "assignment.py"
    path.write_text(text)
    assert main(["doctor", f"{path}:linear_backward"]) == 0
    assert "clean bill" in capsys.readouterr().out


def test_load_refuses_other_files(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(InputError, match=r"only Python files \(\.py\) and notebooks \(\.ipynb\)"):
        load(str(other))


@pytest.mark.parametrize("body, code", [("while True:\n        pass", "timed_out"),
                                        ("import sys\n    sys.exit(0)", "exits"),
                                        ("raise KeyboardInterrupt", "exits")])
def test_diagnose_time_limit_and_exits_are_findings(body, code):
    namespace = {}
    exec(f"def linear_backward(dZ, cache):\n    {body}\n", namespace)
    report = diagnose(namespace["linear_backward"], timeout=0.5)
    assert report.codes == {code}


def test_cli_doctor_sys_exit_and_os_exit_are_not_a_clean_bill(tmp_path, capsys):
    for body in ("import sys\n    sys.exit(0)", "import os\n    os._exit(0)"):
        path = tmp_path / "fn.py"
        path.write_text(f"def linear_backward(dZ, cache):\n    {body}\n")
        assert main(["doctor", str(path)]) == 1
        assert capsys.readouterr().out.strip()


def test_cli_gradcheck_rejects_bad_m(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gradcheck", "--m", "-1"])
    assert exc.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err


def test_exported_py_with_a_broken_cell_loses_only_that_cell(tmp_path):
    text = ("# In[1]:\nimport numpy as np\n\n# In[2]:\ndef broken(:\n    pass\n\n# In[3]:\n"
            "x = 1  # a comment ending in a question?\n" + CELLS[1])
    path = tmp_path / "exported.py"
    path.write_text(text)
    loaded = load(str(path), ["linear_backward"])
    assert "linear_backward" in loaded.functions
    assert any("line 5" in p and "SyntaxError" in p for p in loaded.problems)


def test_diagnose_time_limit_outside_the_main_thread():
    import threading

    namespace, out = {}, {}
    exec("def linear_backward(dZ, cache):\n    while True:\n        pass\n", namespace)
    thread = threading.Thread(target=lambda: out.update(
        report=diagnose(namespace["linear_backward"], timeout=0.3)))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert out["report"].codes == {"timed_out"}


@pytest.mark.parametrize("body, message", [("import sys\n    sys.exit(0)", "called sys.exit(0)"),
                                           ("while True:\n        pass", "still running after")])
def test_cli_gradcheck_function_exits_and_loops_are_errors(tmp_path, capsys, body, message):
    path = tmp_path / "mine.py"
    path.write_text(f"def fn(parameters, X, Y):\n    {body}\n")
    assert main(["gradcheck", "--function", f"{path}:fn", "--time-limit", "0.5",
                 "--in-process"]) == 1
    assert message in capsys.readouterr().err


def test_cli_gradcheck_function_reads_only_py_and_ipynb(tmp_path, capsys):
    path = tmp_path / "mine.txt"
    path.write_text("x")
    assert main(["gradcheck", "--function", f"{path}:fn", "--in-process"]) == 2
    assert "only Python files" in capsys.readouterr().err
