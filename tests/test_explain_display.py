"""Rich display as a notebook shows it: the HTML parses, is balanced, and holds the shapes and
the formulas; the TeX is read by a real TeX parser (matplotlib's mathtext) where it can be."""

import html.parser
import re

import numpy as np
import pytest

from chainrule import Network
from chainrule.explain import (
    diagnose, gradient_check, jacobians, narrative_steps, scalar_expansion, shape_narrative)
from chainrule.explain import display
from chainrule.explain.examples import CATALOGUE

VOID = {"br", "hr", "img", "meta", "input", "col"}


class _Checker(html.parser.HTMLParser):
    """Collects text and fails on a closing tag that does not match the open one."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.text, self.tags, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(markup):
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed: {checker.stack}"
    text = "".join(checker.text)
    # every formula is delimited, and its braces balance
    assert text.count(r"\(") == text.count(r"\)")
    for formula in re.findall(r"\\\((.*?)\\\)", text, flags=re.S):
        assert formula.count("{") == formula.count("}"), formula
    return text, checker.tags


def test_html_checker_rejects_broken_markup():
    with pytest.raises(AssertionError):
        parse("<table><tr><td>x</tr></table>")
    with pytest.raises(AssertionError):
        parse("<div>\\(x^{2\\)</div>")


# --------------------------------------------------------------------------- TeX

NARRATIVES = [([4, 3, 2, 1], "relu", "sigmoid"), ([3, 5, 4], "tanh", "softmax"),
              ([2, 3, 2], "sigmoid", "identity"), ([2, 3, 2], "leaky_relu", "tanh")]


@pytest.mark.parametrize("dims, hidden, output", NARRATIVES)
def test_tex_reads_every_narrative_formula(dims, hidden, output):
    steps, *_ = narrative_steps(dims, 5, hidden=hidden, output=output)
    for st in steps:
        t = display.tex(f"{st.result} = {st.formula}")
        assert t is not None, st.formula
        assert t.count("{") == t.count("}")
        assert (r"\boxed{\tfrac{1}{m}}" in t or r"\boxed{\tfrac{1}{2m}}" in t) == (
            "(1/m)" in st.formula or "(1/(2m))" in st.formula)


def test_tex_course_formulas():
    assert display.tex("dW1 = (1/m) dZ1 · A0ᵀ") == \
        r"dW^{[1]} = \boxed{\tfrac{1}{m}} dZ^{[1]} \cdot A^{[0]\top}"
    assert display.tex("dA_prev = Wᵀ · dZ") == r"dA_{\mathrm{prev}} = W^{\top} \cdot dZ"
    assert display.tex("db = (1/m) np.sum(dZ, axis=1, keepdims=True)") == \
        r"db = \boxed{\tfrac{1}{m}} \sum_{k=1}^{m} dZ^{(k)}"
    assert display.tex("∂Z1/∂W1") == r"\frac{\partial Z^{[1]}}{\partial W^{[1]}}"
    assert display.tex("(1/m) dZ", mark_one_over_m=False) == r"\frac{1}{m} dZ"


@pytest.mark.parametrize("text", [
    "dZ = np.array(dA, copy=True); dZ[Z <= 0] = 0", "layer l uses caches[l - 1]",
    "||A - Y", "dW = dZ @ A_prev.T"])
def test_tex_refuses_what_it_cannot_read(text):
    assert display.tex(text) is None
    assert display._tex_or_code(text).startswith("<code>")


def test_tex_is_valid_for_matplotlib_mathtext():
    """The pictures' labels go through mathtext, a real TeX-subset parser."""
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    formulas = ["∂Z1/∂W1", "∂ℓ/∂Z2", "I_2 ⊗ A0ᵀ", "W1 ⊗ I_3", "I_2 ⊗ 1_3",
                "diag(vec(relu'(Z1)))", "dW1 = (1/m) dZ1 · A0ᵀ", "dA0 = W1ᵀ · dZ1",
                "db1 = (1/m) np.sum(dZ1, axis=1, keepdims=True)", "dZ2 = dA2 * sigmoid'(Z2)"]
    for text in formulas:
        t = display.tex(text, mark_one_over_m=False, partial_frac=False)
        parser.parse(f"${t}$")  # raises ValueError on TeX it cannot read


# --------------------------------------------------------------------------- narrative

def test_narrative_html_table_shapes_formulas_and_marks():
    narrative = shape_narrative([12288, 20, 7, 5, 1], 209)
    assert isinstance(narrative, str) and narrative.startswith("Network 12288 -> 20")
    text, tags = parse(narrative._repr_html_())
    for st in narrative.steps:
        assert str(st.shape) in text or st.shape == ()
        assert st.operands in text
    assert r"dW^{[1]} = \boxed{\tfrac{1}{m}} dZ^{[1]} \cdot A^{[0]\top}" in text
    assert r"dA^{[3]} = W^{[4]\top} \cdot dZ^{[4]}" in text
    marked = [t for t, a in tags if t == "tr" and display._MARK_BG in a.get("style", "")]
    assert len(marked) == sum(st.one_over_m for st in narrative.steps) == 1 + 8 + 1
    assert text.count("◀ 1/m") == 10
    assert "mathjax_process" in narrative._repr_html_()


def test_narrative_latex_block():
    narrative = shape_narrative([3, 2, 1], 4, conventions=("J",))
    latex = narrative.to_latex()
    assert latex.startswith(r"\begin{aligned}") and latex.endswith(r"\end{aligned}")
    assert latex.count("{") == latex.count("}")
    assert r"dZ^{[2]} &= \boxed{\tfrac{1}{m}}(A^{[2]} - Y) && \text{(1, 4)}" in latex


# --------------------------------------------------------------------------- gradient check

def _wrong_by_m(parameters, X, Y):
    W, b = parameters["W1"], parameters["b1"]
    A = 1 / (1 + np.exp(-(W @ X + b)))
    m = X.shape[1]
    cost = -np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    dZ = A - Y
    return cost, {"dW1": dZ @ X.T, "db1": dZ.sum(axis=1, keepdims=True) / m}


def test_gradcheck_html_highlights_the_failing_row():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5).astype(float)
    report = gradient_check(_wrong_by_m, X, Y, parameters={
        "W1": rng.standard_normal((1, 3)), "b1": np.zeros((1, 1))})
    assert not report.passed
    text, tags = parse(report._repr_html_())
    rows = [a.get("style", "") for t, a in tags if t == "tr"]
    failing = [s for s in rows if display._FAIL_BG in s]
    assert len(failing) == 1
    assert "FAILED" in text and "WRONG" in text and "(1, 3)" in text
    assert "= m: the 1/m is missing" in text
    assert "dW1[0, " in text  # the worst entries


def test_gradcheck_html_passing():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5).astype(float)
    report = gradient_check(Network([3, 4, 1], hidden="tanh", backend="numpy"), X, Y)
    text, tags = parse(report._repr_html_())
    assert "PASSED" in text and "WRONG" not in text
    assert not [a for t, a in tags if t == "tr" and display._FAIL_BG in a.get("style", "")]
    for name, shape in (("W1", "(4, 3)"), ("b1", "(4, 1)"), ("W2", "(1, 4)"), ("b2", "(1, 1)")):
        assert name in text and shape in text


# --------------------------------------------------------------------------- doctor

@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_doctor_html_each_mistake_with_formula_and_shapes(name):
    fn, kind, expected = CATALOGUE[name]
    report = diagnose(fn, kind=kind)
    text, _ = parse(report._repr_html_())
    assert report.function in text
    if report.ok:
        assert "Clean bill" in text
    else:
        assert f"{len(report.diagnoses)} problem(s) found" in text
    for d in report.diagnoses:
        assert d.title in text and f"[{d.code}]" in text
        for formula in d.formulas:
            parts = re.split(r"\s{3,}", formula.strip(), maxsplit=1)
            if len(parts) == 2:
                assert parts[1] in text  # the shapes column


def test_doctor_html_typesets_the_correct_formula():
    from chainrule.explain.examples import linear_backward_missing_1_over_m

    text, _ = parse(diagnose(linear_backward_missing_1_over_m)._repr_html_())
    assert r"dW = \boxed{\tfrac{1}{m}} dZ \cdot A_{\mathrm{prev}}^{\top}" in text
    assert "(3, 4) = (3, 5) · (5, 4), m = 5" in text


# --------------------------------------------------------------------------- Jacobians, scalar

def test_jacobian_html_lists_every_jacobian_and_gradient():
    rng = np.random.default_rng(0)
    report = jacobians(Network([3, 2, 1], hidden="tanh", backend="numpy"),
                       rng.standard_normal((3, 2)), np.array([[0.0, 1.0]]))
    text, _ = parse(report._repr_html_())
    for j in report.jacobians:
        r, c = j.analytic.shape
        assert f"{r} × {c}" in text
    assert r"\frac{\partial Z^{[1]}}{\partial W^{[1]}}" in text
    assert r"I_{2} \otimes A^{[0]\top}" in text
    assert text.count(r"\begin{bmatrix}") == len(report.jacobians)  # all small here
    for t in report.transpositions:
        assert str(t.course.shape) in text


def test_scalar_expansion_html_and_text():
    out = scalar_expansion(2, 2, 2, formulas=("Z", "dA_prev"), use_sympy=False)
    assert "dA_prev[0,0] = W[0,0]·dZ[0,0] + W[1,0]·dZ[1,0]" in out  # still the text
    text, _ = parse(out._repr_html_())
    assert text.count(r"\begin{aligned}") == 2
    assert r"dA^{\mathrm{prev}} = W^{\top} dZ" in text
    latex = scalar_expansion(2, 2, 2, latex=True, use_sympy=False)
    assert latex.startswith("% W (2, 2)") and latex._repr_html_() == out._repr_html_()


# --------------------------------------------------------------------------- Network

def test_network_summary_text_and_html():
    net = Network([12288, 20, 7, 5, 1], backend="numpy")
    summary = net.summary(m=209)
    text = str(summary)
    assert "(20, 12288)" in text and "(20, 209)" in text and "245,973" in text
    assert repr(summary) == text
    html_text, _ = parse(summary._repr_html_())
    for shape in ("(20, 12288)", "(20, 1)", "(20, 209)", "(1, 5)", "(1, 209)"):
        assert shape in html_text
    assert "245,973" in html_text and "numpy" in html_text and "sigmoid" in html_text
    plain, _ = parse(net._repr_html_())
    assert "(20, m)" in plain and "(12288, m)" in plain


def test_network_summary_leaky_relu_and_training():
    from chainrule.datasets import load_planar_dataset

    X, Y = load_planar_dataset()
    net = Network([2, 4, 1], activations=[("leaky_relu", 0.1), "sigmoid"], backend="numpy")
    net.fit(X, Y, epochs=20, learning_rate=0.1, progress=False)
    text = str(net.summary())
    assert "leaky_relu(0.1)" in text and "trained: " in text
    assert "trained: " in parse(net._repr_html_())[0]


# --------------------------------------------------------------------------- without MathJax

class _WithoutMathJax(html.parser.HTMLParser):
    """The text a front-end without MathJax shows: the cr-tex spans are hidden by the
    stylesheet (kept, measurable, for MathJax to typeset), everything else is shown."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden, self.depth, self.text, self.style = 0, 0, [], False
        self.pairs = []  # (tex span's text, plain span's text)

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class", "")
        if tag == "style":
            self.style = True
        if self.hidden:
            self.hidden += tag not in VOID
        elif cls == "cr-tex":
            self.hidden = 1
            self.pairs.append(["", None])
        elif cls == "cr-plain":
            self.pairs[-1][1] = ""
            self.depth = 1
        elif self.depth:
            self.depth += tag not in VOID

    def handle_endtag(self, tag):
        if tag == "style":
            self.style = False
        if self.hidden:
            self.hidden -= 1
        elif self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.style:
            return
        if self.hidden:
            self.pairs[-1][0] += data
            return
        if self.depth:
            self.pairs[-1][1] += data
        self.text.append(data)


def _without_mathjax(markup):
    p = _WithoutMathJax()
    p.feed(markup)
    p.close()
    return "".join(p.text), p.pairs


def _reports():
    from chainrule.explain.examples import linear_backward_missing_1_over_m

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5).astype(float)
    yield "network", Network([12288, 20, 7, 5, 1], backend="numpy").summary(m=209)
    yield "narrative", shape_narrative([4, 3, 1], 5)
    yield "gradcheck", gradient_check(Network([3, 4, 1], hidden="tanh", backend="numpy"), X, Y)
    yield "doctor", diagnose(linear_backward_missing_1_over_m)
    yield "jacobians", jacobians(Network([3, 2, 1], hidden="tanh", backend="numpy"),
                                 X[:, :2], np.array([[0.0, 1.0]]))
    yield "scalar", scalar_expansion(2, 2, 2, formulas=("Z", "dA_prev"), use_sympy=False)


@pytest.mark.parametrize("name, report", list(_reports()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_every_formula_has_a_plain_text_fallback(name, report):
    markup = report._repr_html_()
    parse(markup)  # still balanced, every formula delimited
    shown, pairs = _without_mathjax(markup)
    assert pairs, "no formulas"
    assert markup.count(r"\(") + markup.count(r"\[") == len(pairs)  # every one is paired
    for tex_text, text in pairs:
        assert tex_text.startswith((r"\(", r"\[")) and text, (tex_text, text)
    # what a front-end without MathJax shows reads as text: no TeX left
    assert "\\" not in shown, shown[shown.index("\\") - 40:shown.index("\\") + 40]
    assert "^{" not in shown and "_{" not in shown
    assert ".cr-math > .cr-tex:has(" in markup  # MathJax front-ends: the TeX, typeset


def test_plain_text_reads_like_the_course():
    net_text, _ = _without_mathjax(Network([4, 3, 1], backend="numpy")._repr_html_())
    assert "units n[l]" in net_text and "W[l]" in net_text and "Z[l], A[l]" in net_text
    narrative, _ = _without_mathjax(shape_narrative([4, 3, 1], 5)._repr_html_())
    assert "dW[1] = (1/m) dZ[1] · A[0]ᵀ" in narrative
    assert "db[2] = (1/m) Σ(k=1..m) dZ[2](k)" in narrative
    assert "the 1/m enters once, in dZ[L]" in narrative
    assert display.plain(r"\begin{bmatrix}1 & 0 \\ 0 & 2\end{bmatrix}") == "[1, 0; 0, 2]"
    assert display.plain(r"\frac{\partial Z^{[1]}}{\partial W^{[1]}}") == "∂Z[1]/∂W[1]"
    assert display.plain(r"\frac{1}{2m}") == "1/(2m)"
    assert display.plain(r"dA_{\mathrm{prev}} = W^{\top} \cdot dZ") == "dA_prev = Wᵀ · dZ"
