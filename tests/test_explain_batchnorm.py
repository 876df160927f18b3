"""The doctor's batchnorm_backward (both layouts, the named mistakes) and the narrative and
display of a batch-norm network."""

# ruff: noqa: N802, N803, N806

import textwrap

import pytest
from chainrule.explain import diagnose, shape_narrative
from chainrule.explain.doctor import detect_kind, known_signatures
from chainrule.explain.mistakes import MISTAKES

# ----------------------------------------------------------------------------- learner code

COURSE = """
import numpy as np

def batchnorm_forward(Z, gamma, beta, eps=1e-5):
    mu = np.mean(Z, axis=1, keepdims=True)
    var = {var}
    s = {s}
    Z_hat = (Z - mu) / s
    return gamma * Z_hat + beta, (Z, Z_hat, mu, var, gamma, eps)

def batchnorm_backward(dZ_tilde, cache):
    Z, Z_hat, mu, var, gamma, eps = cache
    m = Z.shape[1]
    s = {s}
    dbeta = {dbeta}
    dgamma = {dgamma}
    dZ = {dZ}
    return dZ, dgamma, dbeta
"""

CORRECT = dict(
    var="np.var(Z, axis=1, keepdims=True)",
    s="np.sqrt(var + eps)",
    dbeta="np.sum(dZ_tilde, axis=1, keepdims=True)",
    dgamma="np.sum(dZ_tilde * Z_hat, axis=1, keepdims=True)",
    dZ="gamma / (m * s) * (m * dZ_tilde - dbeta - Z_hat * dgamma)",
)

ROWS = """
import numpy as np

def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu = x.mean(axis=0)
    var = {var}
    std = {std}
    x_hat = (x - mu) / std
    return gamma * x_hat + beta, (x_hat, gamma, std)

def batchnorm_backward(dout, cache):
    x_hat, gamma, std = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = {dx}
    return dx, dgamma, dbeta
"""

ROWS_DX = "gamma / (N * std) * (N * dout - dbeta - x_hat * dgamma)"
ROWS_VAR, ROWS_STD = "x.var(axis=0)", "np.sqrt(var + eps)"


def _rows(dx=ROWS_DX, var=ROWS_VAR, std=ROWS_STD):
    return _load(ROWS.format(dx=dx, var=var, std=std))


def _load(source, name="batchnorm_backward"):
    namespace = {}
    exec(compile(textwrap.dedent(source), "<learner>", "exec"), namespace)
    return namespace[name]


def _course(**changes):
    return _load(COURSE.format(**{**CORRECT, **changes}))


# ----------------------------------------------------------------------------- clean verdicts

def test_known_and_detected():
    assert any(line.startswith("batchnorm_backward(dZ_tilde, cache)")
               for line in known_signatures())
    assert detect_kind(_course()) == "batchnorm_backward"
    assert detect_kind(_rows()) == "batchnorm_backward"


def test_course_layout_clean_in_both_conventions():
    report = diagnose(_course())                         # sums: convention J
    assert report.ok, str(report)
    assert report.convention == "J"
    assert any("convention J" in n for n in report.notes)
    assert any("the course's" in n for n in report.notes)
    mean = _course(dbeta="np.mean(dZ_tilde, axis=1, keepdims=True)",
                   dgamma="np.mean(dZ_tilde * Z_hat, axis=1, keepdims=True)",
                   dZ="gamma / s * (dZ_tilde - dbeta - Z_hat * dgamma)")
    report = diagnose(mean)                              # means: convention L, the reference's
    assert report.ok, str(report)
    assert report.convention == "L"
    assert not any("convention J" in n for n in report.notes)


def test_rows_layout_clean():
    report = diagnose(_rows())
    assert report.ok, str(report)
    assert any("rows" in n for n in report.notes)


def test_without_a_forward_the_reference_cache_is_used():
    fn = _load("""
        import numpy as np
        def batchnorm_backward(dZ_tilde, cache):
            Z_hat, s, gamma = cache.Z_hat, cache.s, cache.gamma
            m = Z_hat.shape[1]
            dbeta = np.sum(dZ_tilde, axis=1, keepdims=True) / m
            dgamma = np.sum(dZ_tilde * Z_hat, axis=1, keepdims=True) / m
            return gamma / s * (dZ_tilde - dbeta - Z_hat * dgamma), dgamma, dbeta
    """)
    report = diagnose(fn)
    assert report.ok, str(report)
    assert any("BatchNormCache" in n for n in report.notes)


# ----------------------------------------------------------------------------- named mistakes

@pytest.mark.parametrize("changes, code", [
    (dict(dZ="gamma / s * dZ_tilde"), "bn_stats_constant"),
    (dict(dZ="gamma / (m * s) * (m * dZ_tilde - dbeta)"), "bn_stats_constant"),
    (dict(s="np.sqrt(var) + eps"), "bn_eps_outside_sqrt"),
    (dict(dbeta="np.sum(dZ_tilde, axis=0, keepdims=True)",
          dgamma="np.sum(dZ_tilde * Z_hat, axis=0, keepdims=True)"), "bn_sum_wrong_axis"),
    (dict(dbeta="np.mean(dZ_tilde, axis=1, keepdims=True)",
          dgamma="np.mean(dZ_tilde * Z_hat, axis=1, keepdims=True)"), "bn_double_1_over_m"),
    (dict(var="np.var(Z, axis=1, keepdims=True, ddof=1)"), "bn_unbiased_variance"),
    (dict(dgamma="np.sum(dZ_tilde * Z_hat, axis=1)"), "missing_keepdims"),
])
def test_course_layout_mistakes_are_named(changes, code):
    report = diagnose(_course(**changes))
    assert code in report.codes, str(report)
    assert "unrecognised" not in report.codes, str(report)
    assert code in str(report) and MISTAKES[code].title in str(report)


@pytest.mark.parametrize("changes, code", [
    ({"dx": "gamma / std * dout"}, "bn_stats_constant"),
    ({"std": "np.sqrt(var) + eps"}, "bn_eps_outside_sqrt"),
    ({"var": "x.var(axis=0, ddof=1)"}, "bn_unbiased_variance"),
])
def test_rows_layout_mistakes_are_named(changes, code):
    report = diagnose(_rows(**changes))
    assert report.codes == {code}, str(report)
    assert "dx" in str(report) and any("rows" in n for n in report.notes)


def test_catalogue_has_the_batchnorm_mistakes():
    for code in ("bn_stats_constant", "bn_eps_outside_sqrt", "bn_sum_wrong_axis",
                 "bn_double_1_over_m", "bn_unbiased_variance"):
        title, why, _ = MISTAKES[code]
        assert title.startswith("batch norm") and why


# ----------------------------------------------------------------------------- narrative, display

def test_narrative_and_display_of_a_batch_norm_network():
    from chainrule import Network

    net = Network([4, 5, 3, 1], batch_norm=True, backend="numpy")
    text = shape_narrative(net, 7)
    assert "gamma1 (5, 1), beta1 (5, 1)" in text and "beta2 (3, 1)" in text
    assert "b3 (1, 1)" in text and "parameters (55)" in text   # the output layer keeps b
    for gone in ("b1 (", "b2 (", "db1 =", "db2 =", "Z1 = W1 · A0 +"):
        assert gone not in text
    assert "Z_tilde1 = gamma1 * Z_hat1 + beta1" in text
    assert "dZ2 = (gamma2 / s2) * (dZ_tilde2 - dbeta2 - Z_hat2 * dgamma2)" in text     # L
    assert "dZ2 = (gamma2 / (m s2)) * (m dZ_tilde2 - dbeta2 - Z_hat2 * dgamma2)" in text  # J
    assert "dgamma1 = (1/m) np.sum(dZ_tilde1 * Z_hat1, axis=1, keepdims=True)" in text
    assert "couples the examples" in text and "m x m block" in text
    page = text._repr_html_()
    assert r"\gamma^{[1]}" in page and r"\beta^{[2]}" in page and "b^{[3]}" in page
    assert "b^{[1]}" not in page and "couples the examples" in page
    assert text.batch_norm == (True, True, False)


def test_narrative_batch_norm_by_flags_and_plain_unchanged():
    text = shape_narrative([4, 5, 3, 1], 7, batch_norm=[True, False])
    assert "gamma1 (5, 1)" in text and "b2 (3, 1)" in text and "gamma2" not in text
    assert "db2 = (1/m)" in text and "Layers 1:" in text
    plain = shape_narrative([4, 5, 3, 1], 7)
    assert "gamma" not in plain and "couples" not in plain and "b1 (5, 1)" in plain


def test_a_forward_with_its_own_eps():
    """A forward without an eps parameter: the eps it used is read from its Z_tilde."""
    own = COURSE.format(**CORRECT).replace("def batchnorm_forward(Z, gamma, beta, eps=1e-5):",
                                           "def batchnorm_forward(Z, gamma, beta):\n    eps = 1e-8")
    report = diagnose(_load(own))
    assert report.ok, str(report)
    assert any("default eps" in n for n in report.notes)
    outside = own.replace("s = np.sqrt(var + eps)\n    Z_hat", "s = np.sqrt(var) + eps\n    Z_hat")
    assert outside != own
    report = diagnose(_load(outside))                   # in the forward only
    assert report.codes == {"bn_eps_outside_sqrt"}, str(report)


def test_doctor_on_a_file_loads_the_learners_forward(tmp_path, capsys):
    """From a file, naming only batchnorm_backward: its forward is loaded beside it."""
    from chainrule.cli import main

    path = tmp_path / "bn.py"
    path.write_text(textwrap.dedent(ROWS.format(dx="gamma / std * dout", var=ROWS_VAR,
                                                std=ROWS_STD)), encoding="utf-8")
    assert main(["doctor", f"{path}:batchnorm_backward", "--in-process"]) == 1
    out = capsys.readouterr().out
    assert "[bn_stats_constant] in dx" in out and "returns (called with bn_param)" in out


def test_explain_command_batch_norm(capsys):
    from chainrule.cli import main

    assert main(["explain", "--layers", "4,5,3,1", "--m", "7", "--batch-norm"]) == 0
    out = capsys.readouterr().out
    assert "gamma2 (3, 1), beta2 (3, 1)" in out and "couples the examples" in out
