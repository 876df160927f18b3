"""Rich display of the learner tools in Jupyter: HTML tables with the formulas typeset.

Every report keeps its plain text for ``print``; in a notebook, IPython asks an object for
``_repr_html_`` and shows the HTML this module writes. The HTML is a string (no dependency):
inline styles (so it survives JupyterLab, VS Code and Sphinx alike), colours that read on
light and dark themes, and formulas as TeX between ``\\(`` and ``\\)`` for the notebook's
MathJax. The top element carries the class ``mathjax_process`` so MathJax also typesets it
inside pages that otherwise ignore raw HTML (Sphinx with MyST).

:func:`tex` turns the library's plain-text formulas (``dW1 = (1/m) dZ1 · A0ᵀ``) into TeX
(``dW^{[1]} = \\boxed{\\tfrac{1}{m}} dZ^{[1]} \\cdot A^{[0]\\top}``); a formula it does not
know how to read is shown as code instead, never as broken TeX.
"""

from __future__ import annotations

import html
import re

import numpy as np

# the Network summary and the table helpers live below the model (Network.summary uses them)
from .._plaintex import plain  # noqa: F401  (public here, as before)
from .._summary import (_CELL, Rich, _row, _table, _wrap, network_html,  # noqa: F401
                        network_rows, network_text)

# Colours: translucent backgrounds, so the text colour of any theme stays readable.
_MARK_BG = "rgba(255, 170, 0, 0.22)"     # where the 1/m enters
_FAIL_BG = "rgba(220, 40, 40, 0.20)"     # a failing row
_PASS_BG = "rgba(40, 160, 70, 0.16)"     # a passing verdict
_HEAD_BG = "rgba(127, 127, 127, 0.14)"   # a section row


# --------------------------------------------------------------------------- TeX

_FUNCTIONS = {"relu": r"\mathrm{relu}", "sigmoid": r"\sigma", "σ": r"\sigma", "tanh": r"\tanh",
              "leaky_relu": r"\mathrm{leaky\_relu}", "softmax": r"\mathrm{softmax}",
              "identity": r"\mathrm{id}", "g": "g", "log": r"\log", "diag": r"\operatorname{diag}",
              "vec": r"\operatorname{vec}"}
_WORDS = {"where": r"\ \text{where}\ ", "else": r"\ \text{else}\ ", "alpha": r"\alpha"}
_SYMBOLS = {"·": r" \cdot ", "*": r" \ast ", "⊗": r" \otimes ", "+": " + ", "-": " - ", "=": " = ",
            "/": " / ", "(": "(", ")": ")", ",": ", ", ">": " > ", "<=": r" \le ", "<": " < ",
            "ᵀ": r"^{\top}", "²": "^{2}", ":": ":"}

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<npsum>np\.sum\((?P<sumarg>[A-Za-z_]\w*),\ axis=1,\ keepdims=True\))
  | (?P<frac>\(1/(?P<den>m|\(2m\))\))
  | (?P<partial>∂(?P<num>[^/\s]+)/∂(?P<var>[^\s,)]+))
  | (?P<norm>\|\|)
  | (?P<sigma>Σ_(?P<over>\w|\(\w,\ ?\w\)))
  | (?P<index>\[(?P<idx>[a-z:0-9](?:,\ ?[a-z:0-9])*)\])
  | (?P<bracket>[\[\]])
  | (?P<eye>(?P<eyename>[I1])_(?P<eyedim>\w+))
  | (?P<func>(?:relu|sigmoid|σ|tanh|leaky_relu|softmax|identity|g|log|diag|vec)(?P<prime>')?
              (?=\(|\s))
  | (?P<sym>(?P<d>d)?(?P<base>[WbZAYXJ]|ℓ)(?P<layer>_prev|\d+|L|\[L\]|\[l\])?(?!(?!ᵀ)[\w']))
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>where|else|alpha)
  | (?P<op><=|[·*⊗+\-=/(),><:ᵀ²])
""", re.VERBOSE)


def _symbol(d, base, layer, sup=()):
    """``dZ`` with layer ``4`` -> ``dZ^{[4]}``; ``sup`` adds superscripts (``\\top``, ``(k)``)."""
    name = ("d" if d else "") + (r"\ell" if base == "ℓ" else base)
    parts = []
    sub = ""
    if layer == "_prev":
        sub = r"_{\mathrm{prev}}"
    elif layer:
        parts.append("[" + layer.strip("[]") + "]")
    parts += list(sup)
    return name + sub + ("^{" + "".join(parts) + "}" if parts else "")


def tex(text, mark_one_over_m=True, partial_frac=True):
    """The TeX of one of the library's plain-text formulas, or ``None`` if it has a word this
    converter does not know (the caller then shows the text as code).

    ``(1/m)`` becomes ``\\boxed{\\tfrac{1}{m}}`` when ``mark_one_over_m``: where the 1/m enters.
    ``∂Z1/∂W1`` is a ``\\frac`` when ``partial_frac``, else written inline with a slash.

    Examples
    --------
    >>> tex("dW1 = (1/m) dZ1 · A0ᵀ")
    'dW^{[1]} = \\\\boxed{\\\\tfrac{1}{m}} dZ^{[1]} \\\\cdot A^{[0]\\\\top}'
    >>> tex("dZ = np.array(dA, copy=True)") is None
    True
    """
    out, pos, norm_open = [], 0, False
    tokens = list(_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        t = tokens[i]
        i += 1
        if t.start() != pos:
            return None  # a character no token reads
        pos = t.end()
        g = t.groupdict()
        if g["space"] is not None:
            out.append(" ")
        elif g["npsum"] is not None:
            inner = _TOKEN.fullmatch(g["sumarg"])
            if inner is None or inner.group("sym") is None:
                return None
            out.append(r"\sum_{k=1}^{m} " + _symbol(inner["d"], inner["base"], inner["layer"],
                                                     ("(k)",)))
        elif g["frac"] is not None:
            frac = r"\frac{1}{m}" if g["den"] == "m" else r"\frac{1}{2m}"
            out.append(rf"\boxed{{\tfrac{frac[5:]}}}" if mark_one_over_m else frac)
        elif g["partial"] is not None:
            num, var = tex(g["num"], mark_one_over_m), tex(g["var"], mark_one_over_m)
            if num is None or var is None:
                return None
            out.append(rf"\frac{{\partial {num}}}{{\partial {var}}}" if partial_frac
                       else rf"\partial {num} / \partial {var}")
        elif g["norm"] is not None:
            out.append(r"\rVert" if norm_open else r"\lVert ")
            norm_open = not norm_open
        elif g["sigma"] is not None:
            out.append(r"\sum_{" + g["over"].replace(" ", "") + "} ")
        elif g["index"] is not None:
            out.append("_{" + g["idx"].replace(" ", "") + "}")
        elif g["bracket"] is not None:
            out.append(r"\left[" if g["bracket"] == "[" else r"\right]")
        elif g["eye"] is not None:
            out.append((r"\mathbf{1}" if g["eyename"] == "1" else "I") + "_{" + g["eyedim"] + "}")
        elif g["func"] is not None:
            out.append(_FUNCTIONS[g["func"].rstrip("'")] + ("'" if g["prime"] else ""))
        elif g["sym"] is not None:
            sup = []
            # a transpose right after the symbol joins its superscript: A^{[0]\top}
            if i < len(tokens) and tokens[i].group("op") == "ᵀ" and tokens[i].start() == pos:
                sup.append(r"\top")
                pos = tokens[i].end()
                i += 1
            out.append(_symbol(g["d"], g["base"], g["layer"], sup))
        elif g["number"] is not None:
            out.append(g["number"])
        elif g["word"] is not None:
            out.append(_WORDS[g["word"]])
        else:
            out.append(_SYMBOLS[g["op"]])
    if pos != len(text) or norm_open:
        return None
    result = re.sub(r" {2,}", " ", "".join(out)).strip()
    return result if result.count("{") == result.count("}") else None


def _tex_or_code(text, mark_one_over_m=True):
    """HTML for a formula: typeset TeX when :func:`tex` reads it, else the text as code."""
    t = tex(text, mark_one_over_m)
    if t is None:
        return f"<code>{html.escape(text)}</code>"
    return r"\(" + html.escape(t, quote=False) + r"\)"


def _shape(shape):
    return html.escape(str(tuple(shape))) if shape != () else "scalar"


def _section(text, ncols):
    return (f'<tr style="background: {_HEAD_BG};"><td colspan="{ncols}" style="{_CELL} '
            f'font-weight: bold;">{text}</td></tr>')


# --------------------------------------------------------------------------- shape narrative

_STAGE_TITLES = {
    "forward": "Forward",
    "backward L": r"Backward, convention L (the lectures): \(dZ^{[L]} = A^{[L]} - Y\) is the "
                  r"derivative of the per-example losses; the \(\frac{1}{m}\) enters in every "
                  r"\(dW\) and \(db\)",
    "backward J": r"Backward, convention J: every d-quantity is a derivative of the cost \(J\); "
                  r"the \(\frac{1}{m}\) enters once, in \(dZ^{[L]}\)",
}


#: the coupling of the examples by a batch-norm layer, said once (text and display)
COUPLING_TEXT = ("batch norm couples the examples: dZ_tilde[i, j] / dZ[i, k] = (gamma_i / s_i)"
                 "(delta_jk - 1/m - Z_hat[i, j] Z_hat[i, k] / m), s = sqrt(var + eps), a dense "
                 "m x m block per unit (not a diagonal), so upstream of a BN layer convention "
                 "L's d-quantities are derivatives of the summed loss Σ_j L_j = m·J, not of one "
                 "example's loss; dgamma and dbeta carry the 1/m like dW.")
def parameter_list(dims, bn):
    """``[(name, shape)]`` of every parameter, ``gamma{l}, beta{l}`` for a batch-norm layer."""
    out = []
    for l in range(1, len(dims)):
        out.append((f"W{l}", (dims[l], dims[l - 1])))
        out += ([(f"gamma{l}", (dims[l], 1)), (f"beta{l}", (dims[l], 1))] if bn[l - 1]
                else [(f"b{l}", (dims[l], 1))])
    return out

_PARAM_TEX = {"W": "W", "b": "b", "gamma": r"\gamma", "beta": r"\beta"}


def narrative_html(steps, dims, acts, loss, m, conventions, batch_norm=None):
    """The shape narrative as a table: formula (typeset), shape, operand shapes, the 1/m.
    ``batch_norm`` (one bool per layer): those layers list ``gamma``, ``beta`` instead of ``b``
    and the coupling of the examples is said under the table."""
    bn = list(batch_norm) if batch_norm else [False] * (len(dims) - 1)
    plist = parameter_list(dims, bn)
    count = sum(a * b for _, (a, b) in plist)
    params = ", ".join(rf"\({_PARAM_TEX[p]}^{{[{l}]}}\) {_shape(shape)}" for (p, l), shape in
                       ((re.fullmatch(r"([a-zA-Z]+)(\d+)", name).groups(), shape)
                        for name, shape in plist))
    head = (f"<p><b>Network</b> {' → '.join(map(str, dims))}, <b>m = {m}</b> examples (the "
            rf"columns of \(X\), shape {_shape((dims[0], m))}); activations "
            f"{html.escape(', '.join(acts))}; loss <code>{html.escape(loss)}</code><br>"
            f"parameters ({count:,}): {params}</p>")
    rows, stage = [], None
    for st in steps:
        if st.stage != stage and st.stage != "cost":
            rows.append(_section(_STAGE_TITLES[st.stage], 4))
        stage = st.stage
        formula = _tex_or_code(f"{st.result} = {st.formula}")
        mark = '<span style="white-space: nowrap;">◀ 1/m</span>' if st.one_over_m else ""
        style = f"background: {_MARK_BG};" if st.one_over_m else ""
        rows.append(_row([formula, _shape(st.shape), html.escape(st.operands),
                          f"<b>{mark}</b>"], style))
    table = _table(["formula", "shape", "operand shapes", r"\(\frac{1}{m}\)"], rows)
    foot = []
    if len(conventions) > 1:
        foot.append(rf"\(dW\) and \(db\) are the same in both conventions; every \(dZ\) and "
                    rf"\(dA\) of convention L is \(m = {m}\) times the one of convention J.")
    foot.append(rf"\(dA^{{[0]}} = W^{{[1]\top}} dZ^{{[1]}}\) {_shape((dims[0], m))} is not "
                "needed: X is data, not a parameter.")
    if any(bn):
        foot.append("<b>Batch norm</b> (layers " + ", ".join(
            str(l) for l in range(1, len(dims)) if bn[l - 1]) + "): "
            + html.escape(COUPLING_TEXT))
    return _wrap("narrative", head + table + "<p>" + "<br>".join(foot) + "</p>")


def narrative_latex(steps):
    """The narrative's formulas as one LaTeX ``aligned`` block (shapes as ``\\text``)."""
    lines = []
    for st in steps:
        t = tex(f"{st.result} = {st.formula}")
        if t is None:
            continue
        left, right = t.split(" = ", 1)
        shape = str(tuple(st.shape)) if st.shape != () else "scalar"
        lines.append(rf"{left} &= {right} && \text{{{shape}}}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


# --------------------------------------------------------------------------- gradient check

def gradcheck_html(report, hints):
    """The gradient-check report: a verdict line, a table (failing rows highlighted), and
    the worst entries of each failing parameter. ``hints`` maps a parameter to its
    constant-factor hint (``analytic = 5 x numeric = m: the 1/m is missing``)."""
    verdict = "PASSED" if report.passed else "FAILED"
    op = "&lt;" if report.difference < report.threshold else "≥"
    bg = _PASS_BG if report.passed else _FAIL_BG
    head = (f'<p><b>Gradient check</b>: two-sided differences, ε = {report.epsilon:g}; analytic '
            f"gradient in {report.dtype.name}, numeric in float64<br>"
            r"\(\mathrm{difference} = \frac{\lVert grad - gradapprox\rVert}{\lVert grad\rVert + "
            r"\lVert gradapprox\rVert}\) = "
            f'{report.difference:.3e} {op} {report.threshold:g} '
            f'<span style="background: {bg}; padding: 1px 6px; font-weight: bold;">{verdict}'
            f"</span>")
    if report.retry_difference is not None:
        rop = "&lt;" if report.retry_difference < report.threshold else "≥"
        head += (f"<br>repeated with ε = {10 * report.epsilon:g}: difference = "
                 f"{report.retry_difference:.3e} {rop} {report.threshold:g}")
    head += "</p>"
    rows = []
    for p in report.parameters:
        index, g, ga = p.worst[0] if p.worst else ((), float("nan"), float("nan"))
        sampled = ("" if p.n_checked == int(np.prod(p.shape))
                   else f"{p.n_checked} sampled")
        status = "ok" if p.passed else "<b>WRONG</b>"
        style = "" if p.passed else f"background: {_FAIL_BG};"
        rows.append(_row([f"<code>{html.escape(p.name)}</code>", _shape(p.shape),
                          f"{p.difference:.3e}", status, html.escape(str(list(index))),
                          f"{g:.8g}", f"{ga:.8g}", sampled], style, numeric=(2, 5, 6)))
    table = _table(["param", "shape", "difference", "", "worst entry", "analytic", "numeric",
                    ""], rows)
    details = []
    for p in report.failed():
        items = "".join(f"<li><code>d{html.escape(p.name)}{list(index)}</code>: analytic "
                        f"{g:.10g}, numeric {ga:.10g}, |diff| {abs(g - ga):.3e}</li>"
                        for index, g, ga in p.worst)
        hint = f"<br><b>{html.escape(hints[p.name])}</b>" if p.name in hints else ""
        details.append(f"<p><code>{html.escape(p.name)}</code>: relative difference "
                       f"{p.difference:.3e} ≥ {report.threshold:g}; worst entries:</p>"
                       f'<ul style="margin-top: 0;">{items}</ul>{hint}')
    return _wrap("gradcheck", head + table + "".join(details))


# --------------------------------------------------------------------------- doctor

_SPLIT = re.compile(r"\s{3,}")


def _formula_row(text):
    """A doctor formula ``dW = (1/m) dZ · A_prevᵀ        (3, 4) = (3, 5) · (5, 4), m = 5`` as
    (typeset formula, shapes)."""
    parts = _SPLIT.split(text.strip(), maxsplit=1)
    formula, shapes = (parts + [""])[:2]
    pieces = [p.strip() for p in formula.split(", ") if p.strip()]
    # "dZ = dA * g'(Z), σ'(Z) = σ(Z)(1 - σ(Z))": each equation typeset on its own
    typeset = [_tex_or_code(p) for p in pieces] if all(tex(p) for p in pieces) \
        else [_tex_or_code(formula)]
    return ", ".join(typeset), html.escape(shapes)


def doctor_html(report):
    """The doctor's report: each mistake with what was seen, why it is wrong, and the correct
    formulas with this probe's shapes."""
    head = (f"<p><b>Gradient doctor</b>: <code>{html.escape(report.function)}</code> "
            f"({html.escape(report.kind)}, convention {html.escape(report.convention)})<br>"
            f"checked on: {html.escape(', '.join(dict.fromkeys(report.checked)))}</p>")
    if report.ok:
        body = (f'<p style="background: {_PASS_BG}; padding: 4px 8px;"><b>Clean bill</b>: every '
                "output matches the reference, and no input was modified.</p>")
    else:
        body = (f'<p style="background: {_FAIL_BG}; padding: 4px 8px;"><b>'
                f"{len(report.diagnoses)} problem(s) found</b></p>")
    cards = []
    for i, d in enumerate(report.diagnoses, 1):
        where = ", ".join(f"<code>{html.escape(w)}</code>" for w in d.where)
        seen = f"<br><i>seen</i>: {html.escape(d.detail)}" if d.detail else ""
        if getattr(d, "line", ""):
            seen += f"<br><i>line</i>: <code>{html.escape(d.line)}</code>"
        formulas = ""
        if d.formulas:
            formulas = _table(["correct formula", "shapes"],
                              [_row(list(_formula_row(f))) for f in d.formulas])
        cards.append(f'<div style="border-left: 4px solid rgba(220, 40, 40, 0.6); '
                     f'padding: 2px 10px; margin: 8px 0;"><b>{i}. {html.escape(d.title)}</b> '
                     f"<code>[{html.escape(d.code)}]</code> in {where}{seen}<br>"
                     f"<i>why</i>: {html.escape(d.why)}{formulas}</div>")
    notes = "".join(f"<p><i>note</i>: {html.escape(n)}</p>" for n in report.notes)
    return _wrap("doctor", head + body + "".join(cards) + notes)


# --------------------------------------------------------------------------- Jacobians

def _bmatrix(M, digits=3):
    rows = [" & ".join(("0" if v == 0 else f"{v:.{digits}g}") for v in row) for row in M + 0.0]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def jacobian_html(report):
    """Every Jacobian (shape, closed form, the check against finite differences, the matrix
    itself when small) and how the course's gradients are their transposes, reshaped."""
    dims = " → ".join(map(str, report.layer_dims))
    head = (f"<p><b>Jacobians</b> of {dims}, m = {report.m}, in numerator layout: one row per "
            "entry of the result, one column per entry of the variable (C order: "
            r"\(\operatorname{vec}(Z)_{i m + k} = Z_{i,k}\)); max |Δ| is the largest difference "
            "between the closed form and two-sided differences. <code>report.plot()</code> "
            "draws them.</p>")
    rows = []
    for j in report.jacobians:
        r, c = j.analytic.shape
        closed = _tex_or_code(j.closed_form) if tex(j.closed_form) else html.escape(j.closed_form)
        note = f'<br><small><i>{html.escape(j.note)}</i></small>' if j.note else ""
        rows.append(_row([_tex_or_code(j.name), f"{r} × {c}", closed + note,
                          f"{j.max_difference:.1e}"], numeric=(1, 3)))
        if max(r, c) <= report.show_limit:
            rows.append(f'<tr><td></td><td colspan="3" style="{_CELL} padding-bottom: 8px;">'
                        r"\(" + _bmatrix(j.analytic) + r"\)</td></tr>")
    table = _table(["Jacobian", "size", "closed form", "max |Δ|"], rows)
    trows = [_row([_tex_or_code(t.name), _shape(t.course.shape),
                   _tex_or_code(t.how.split("  (")[0]),
                   rf"\(\mathrm{{reshape}}\big((\cdot)^{{\top}}, {t.course.shape}\big)\)",
                   f"{t.max_difference:.1e}"], numeric=(4,)) for t in report.transpositions]
    ttable = _table(["course's gradient", "shape", "row in numerator layout",
                     "denominator layout", "max |Δ|"], trows)
    foot = ("<p>The course's gradients have the shape of the object (denominator layout): the "
            r"numerator-layout row \(\partial J/\partial x\), transposed and reshaped to "
            "x's shape. The values are convention J (derivatives of the cost); convention L's "
            "dZ and dA are m times these, its dW and db the same.</p>")
    return _wrap("jacobians", head + table + ttable + foot)


# --------------------------------------------------------------------------- scalar expansion

def scalar_html(text, latex_blocks):
    """The scalar expansion: the text's first line, then each LaTeX block typeset."""
    first = html.escape(text.splitlines()[0])
    blocks = []
    for block in latex_blocks:
        comments = [ln[1:].strip() for ln in block.splitlines() if ln.startswith("%")]
        body = "\n".join(ln for ln in block.splitlines() if not ln.startswith("%"))
        blocks.append(r"<div>\[" + html.escape(body, quote=False) + r"\]</div>"
                      + "".join(f"<p><i>{html.escape(c)}</i></p>" for c in comments))
    return _wrap("scalar", f"<p>{first}</p>" + "".join(blocks))
