"""The explain subcommands: chainrule explain, gradcheck, jacobians, expand, doctor."""

import textwrap

import pytest

from chainrule.cli import main

LEARNER_WRONG = textwrap.dedent("""
    import numpy as np

    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        dW = 1 / m * np.dot(dZ, A_prev.T)
        db = 1 / m * np.sum(dZ, axis=1)
        dA_prev = np.dot(W.T, dZ)
        return dA_prev, dW, db
""")

LEARNER_RIGHT = LEARNER_WRONG.replace("axis=1)", "axis=1, keepdims=True)")


def test_cli_explain(capsys):
    assert main(["explain", "--layers", "12288,20,7,5,1", "--m", "209"]) == 0
    out = capsys.readouterr().out
    assert "Backward, convention L" in out and "Backward, convention J" in out
    assert "dW1 = (1/m) dZ1 · A0ᵀ" in out and "◀ 1/m" in out


def test_cli_explain_bad_layers(capsys):
    assert main(["explain", "--layers", "3,0,1", "--m", "5"]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cli_gradcheck(capsys, dtype):
    assert main(["gradcheck", "--dtype", dtype]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and f"analytic gradient in {dtype}" in out


def test_cli_gradcheck_function(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(textwrap.dedent("""
        from chainrule import reference as ref

        def fn(parameters, X, Y):
            acts = ["tanh", "tanh", "sigmoid"]
            AL, caches = ref.model_forward(X, parameters, acts)
            grads = ref.model_backward(AL, Y, caches, acts)
            grads["dW2"] = grads["dW2"] * X.shape[1]   # forgot the 1/m
            return ref.compute_cost(AL, Y), grads
    """))
    assert main(["gradcheck", "--function", f"{path}:fn"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "the 1/m is missing" in out


def test_cli_jacobians(capsys):
    assert main(["jacobians", "--layers", "2,2,1", "--m", "2"]) == 0
    assert "∂Z1/∂A0" in capsys.readouterr().out


def test_cli_expand(capsys):
    assert main(["expand", "--n", "2", "--n-prev", "2", "--m", "2", "--formulas", "Z,dW",
                 "--latex", "--no-sympy"]) == 0
    assert r"\begin{aligned}" in capsys.readouterr().out
    assert main(["expand", "--n", "4"]) == 2


def test_cli_doctor_names_the_mistake(tmp_path, capsys):
    path = tmp_path / "week4.py"
    path.write_text(LEARNER_WRONG)
    assert main(["doctor", str(path)]) == 1
    out = capsys.readouterr().out
    assert "missing keepdims" in out and "(3, 1)" in out


def test_cli_doctor_clean_bill(tmp_path, capsys):
    path = tmp_path / "week4.py"
    path.write_text(LEARNER_RIGHT)
    assert main(["doctor", f"{path}:linear_backward"]) == 0
    assert "clean bill" in capsys.readouterr().out


def test_cli_doctor_bad_files(tmp_path, capsys):
    assert main(["doctor", str(tmp_path / "missing.py")]) == 2
    broken = tmp_path / "broken.py"
    broken.write_text("def linear_backward(dZ, cache):\n    return (\n")
    assert main(["doctor", str(broken)]) == 2
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["doctor", str(empty)]) == 2
    assert main(["doctor", f"{empty}:nothing"]) == 2
    assert main(["doctor"]) == 2
    assert "error" in capsys.readouterr().err


def test_cli_doctor_demo(capsys):
    assert main(["doctor", "--demo"]) == 0
    out = capsys.readouterr().out
    assert "named correctly" in out and "MISSED" not in out
