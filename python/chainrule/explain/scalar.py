"""Scalar expansion: write ``Z = W·A_prev + b`` and a backward formula entry by entry, and show
that the scalar chain rule gives the matrix formula.

The calculus is done on an explicit representation: every entry of ``Z`` is a sum of
products of named scalars (``W[i,j]·A_prev[j,k]`` and ``b[i,0]``); the derivative of such
a sum with respect to one scalar keeps the terms that contain it, without it. The chain
rule ``dX[p] = Σ_(i,k) dZ[i,k] · ∂Z[i,k]/∂X[p]`` then gives each entry of ``dX`` as a sum
of products, which is compared, as a multiset of terms, with the entry of the matrix
formula (``(Wᵀ·dZ)[j,k] = Σ_i (Wᵀ)[j,i]·dZ[i,k]``, where ``(Wᵀ)[j,i]`` *is* ``W[i,j]``).
When SymPy is installed (the ``explain`` extra), the derivatives are also taken by
``sympy.diff`` and checked against the matrix formula symbolically.

Indices start at 0, as in NumPy. ``dZ`` means ``∂J/∂Z`` (convention J); in convention L,
``dZ`` is ``m`` times that, which is why ``dW`` and ``db`` carry a ``1/m`` there.
"""

from __future__ import annotations

from collections import Counter

from ..errors import InputError
from . import display

MAX_DIM = 3
FORMULAS = ("Z", "dA_prev", "dW", "db")

_LATEX_NAME = {"W": "W", "A_prev": r"A^{\mathrm{prev}}", "b": "b", "Z": "Z", "dZ": "dZ",
               "dA_prev": r"dA^{\mathrm{prev}}", "dW": "dW", "db": "db",
               "WT": r"(W^{\top})", "A_prevT": r"(A^{\mathrm{prev}\top})"}
_TEXT_NAME = {"WT": "(Wᵀ)", "A_prevT": "(A_prevᵀ)"}


class ScalarExpansion(str):
    """The expansion's text or LaTeX (a ``str``: ``print`` shows it). In a notebook it renders
    the equations typeset; ``latex`` holds the LaTeX whichever form was asked for."""

    def _repr_html_(self):
        return display.scalar_html(self._text, self.latex.split("\n\n")[1:])


def _f(name, i, j, latex):
    if latex:
        return f"{_LATEX_NAME.get(name, name)}_{{{i},{j}}}"
    return f"{_TEXT_NAME.get(name, name)}[{i},{j}]"


def _term(term, latex):
    if not term:
        return "1"
    return (r" \, " if latex else "·").join(_f(*factor, latex) for factor in term)


def _sum(terms, latex):
    return " + ".join(_term(t, latex) for t in terms) if terms else "0"


def _z_entries(n, n_prev, m):
    """``Z[i,k]`` as a list of terms; a term is a tuple of factors ``(name, row, col)``."""
    return {(i, k): [(("W", i, j), ("A_prev", j, k)) for j in range(n_prev)] + [(("b", i, 0),)]
            for i in range(n) for k in range(m)}


def _derivative(terms, variable):
    """∂(Σ terms)/∂variable: each term containing it once, without it (the product rule)."""
    out = []
    for term in terms:
        if variable in term:
            rest = list(term)
            rest.remove(variable)
            out.append(tuple(rest))
    return out


def _chain_rule(Z, variable):
    """``Σ_(i,k) dZ[i,k] · ∂Z[i,k]/∂variable`` and the Z entries that contain the variable."""
    terms, appears = [], []
    for (i, k), z in Z.items():
        coefficient = _derivative(z, variable)
        if coefficient:
            appears.append(((i, k), coefficient))
        terms += [c + (("dZ", i, k),) for c in coefficient]
    return terms, appears


def _matrix_entry(formula, p, q, n, n_prev, m):
    """The terms of the matrix formula's entry, written with the transposes as the code has them,
    and the same terms with ``(Wᵀ)[j,i]`` read as ``W[i,j]`` (the definition of the transpose)."""
    if formula == "dA_prev":
        shown = [(("WT", p, i), ("dZ", i, q)) for i in range(n)]
        read = [(("W", i, p), ("dZ", i, q)) for i in range(n)]
    elif formula == "dW":
        shown = [(("dZ", p, k), ("A_prevT", k, q)) for k in range(m)]
        read = [(("dZ", p, k), ("A_prev", q, k)) for k in range(m)]
    else:  # db
        shown = [(("dZ", p, k),) for k in range(m)]
        read = shown
    return shown, read


_VARIABLE = {"dA_prev": "A_prev", "dW": "W", "db": "b"}
_MATRIX_TEXT = {
    "dA_prev": ("dA_prev[j,k] = Σ_i W[i,j]·dZ[i,k] = Σ_i (Wᵀ)[j,i]·dZ[i,k]", "dA_prev = Wᵀ · dZ"),
    "dW": ("dW[i,j] = Σ_k dZ[i,k]·A_prev[j,k] = Σ_k dZ[i,k]·(A_prevᵀ)[k,j]", "dW = dZ · A_prevᵀ"),
    "db": ("db[i,0] = Σ_k dZ[i,k]", "db = np.sum(dZ, axis=1, keepdims=True)"),
}
_MATRIX_LATEX = {
    "dA_prev": (r"dA^{\mathrm{prev}}_{j,k} = \sum_i W_{i,j}\, dZ_{i,k} = \sum_i (W^{\top})_{j,i}"
                r"\, dZ_{i,k}", r"dA^{\mathrm{prev}} = W^{\top} dZ"),
    "dW": (r"dW_{i,j} = \sum_k dZ_{i,k}\, A^{\mathrm{prev}}_{j,k} = \sum_k dZ_{i,k}\, "
           r"(A^{\mathrm{prev}\top})_{k,j}", r"dW = dZ\, A^{\mathrm{prev}\top}"),
    "db": (r"db_{i,0} = \sum_k dZ_{i,k}", r"db = \textstyle\sum_k dZ_{:,k}"),
}


def _shapes(formula, n, n_prev, m):
    return {"dA_prev": f"({n_prev}, {m}) = ({n_prev}, {n}) · ({n}, {m})",
            "dW": f"({n}, {n_prev}) = ({n}, {m}) · ({m}, {n_prev})",
            "db": f"({n}, 1) = sum over the {m} columns of ({n}, {m})"}[formula]


def _entries_of(formula, n, n_prev, m):
    if formula == "dA_prev":
        return [(j, k) for j in range(n_prev) for k in range(m)]
    if formula == "dW":
        return [(i, j) for i in range(n) for j in range(n_prev)]
    return [(i, 0) for i in range(n)]


def expand(n=2, n_prev=3, m=2, formulas=("Z", "dA_prev")):
    """The expansion as data: ``{formula: [entry, ...]}``.

    For ``"Z"`` each entry is ``((i, k), terms)``. For a backward formula each entry is a
    dict with ``index``, ``appears`` (the Z entries containing the variable and the
    coefficient there), ``terms`` (the chain rule's result), ``matrix`` (the matrix
    formula's terms) and ``equal`` (whether the two are the same multiset of terms).
    """
    for name, value in (("n", n), ("n_prev", n_prev), ("m", m)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
            raise InputError(f"{name} must be an integer from 1 to {MAX_DIM} (the expansion is "
                             f"written out entry by entry), got {value!r}")
    unknown = [f for f in formulas if f not in FORMULAS]
    if unknown:
        raise InputError(f"unknown formula(s) {unknown}; choose from {', '.join(FORMULAS)}")
    Z = _z_entries(n, n_prev, m)
    out = {}
    for formula in formulas:
        if formula == "Z":
            out["Z"] = sorted(Z.items())
            continue
        rows = []
        for p, q in _entries_of(formula, n, n_prev, m):
            terms, appears = _chain_rule(Z, (_VARIABLE[formula], p, q))
            shown, read = _matrix_entry(formula, p, q, n, n_prev, m)
            equal = Counter(tuple(sorted(t)) for t in terms) == Counter(tuple(sorted(t))
                                                                       for t in read)
            rows.append({"index": (p, q), "appears": appears, "terms": terms, "matrix": shown,
                         "equal": equal})
        out[formula] = rows
    return out


def _sympy_check(n, n_prev, m, formulas, use_sympy):
    """Derivatives by sympy.diff, compared with the matrix formulas; None when skipped."""
    try:
        import sympy
    except ImportError as exc:
        if use_sympy:
            raise ImportError('the symbolic check needs SymPy: pip install ".[explain]"') \
                from exc
        return None
    W = sympy.Matrix(n, n_prev, lambda i, j: sympy.Symbol(f"W_{i}{j}"))
    A = sympy.Matrix(n_prev, m, lambda j, k: sympy.Symbol(f"A_{j}{k}"))
    b = sympy.Matrix(n, 1, lambda i, _: sympy.Symbol(f"b_{i}"))
    dZ = sympy.Matrix(n, m, lambda i, k: sympy.Symbol(f"dZ_{i}{k}"))
    Z = W * A + b * sympy.ones(1, m)
    # J's first-order change is Σ dZ ∘ δZ, so ∂J/∂x = ∂/∂x Σ_(i,k) dZ[i,k] Z[i,k] with dZ fixed.
    Jlin = sum(dZ[i, k] * Z[i, k] for i in range(n) for k in range(m))
    targets = {"dA_prev": (A, W.T * dZ), "dW": (W, dZ * A.T),
               "db": (b, dZ * sympy.ones(m, 1))}
    results = {}
    for formula in formulas:
        if formula == "Z":
            continue
        X, expected = targets[formula]
        grad = X.applyfunc(lambda x: sympy.diff(Jlin, x))
        results[formula] = (grad - expected).applyfunc(sympy.expand) == sympy.zeros(*X.shape)
    return results


def scalar_expansion(n=2, n_prev=3, m=2, formulas=("Z", "dA_prev"), latex=False, use_sympy=None):
    """Expand ``Z = W·A_prev + b`` and backward formulas into scalar equations, entry by entry.

    Parameters
    ----------
    n, n_prev, m : int
        The shapes: ``W`` is ``(n, n_prev)``, ``A_prev`` is ``(n_prev, m)``; each at most 3.
    formulas : sequence of {"Z", "dA_prev", "dW", "db"}
        What to expand.
    latex : bool
        LaTeX (an ``aligned`` block per formula) instead of plain text.
    use_sympy : bool, optional
        ``None``: check with SymPy if it is installed; ``True``: require it (ImportError
        naming the ``explain`` extra if missing); ``False``: don't.

    Returns
    -------
    ScalarExpansion
        A ``str`` (the text, or the LaTeX with ``latex=True``); in a notebook it renders
        the equations typeset.

    Examples
    --------
    >>> from chainrule.explain import scalar_expansion
    >>> text = scalar_expansion(2, 3, 2, use_sympy=False)
    >>> "dA_prev[0,0] = W[0,0]·dZ[0,0] + W[1,0]·dZ[1,0]" in text
    True
    """
    data = expand(n, n_prev, m, formulas)
    checked = _sympy_check(n, n_prev, m, formulas, use_sympy) if use_sympy is not False else None
    text = _render_text(data, n, n_prev, m, checked)
    tex = _render_latex(data, n, n_prev, m, checked)
    out = ScalarExpansion(tex if latex else text)
    out.latex, out._text = tex, text
    return out


def _render_text(data, n, n_prev, m, checked):
    lines = [f"W {(n, n_prev)}, A_prev {(n_prev, m)}, b {(n, 1)}, Z {(n, m)}; indices from 0; "
             f"dZ = ∂J/∂Z"]
    for formula, rows in data.items():
        lines.append("")
        if formula == "Z":
            lines.append("Z = W·A_prev + b, entry by entry (b[i,0] is added to every column):")
            for (i, k), terms in rows:
                lines.append(f"  Z[{i},{k}] = {_sum(terms, False)}")
            continue
        var = _VARIABLE[formula]
        lines.append(f"{formula} = ∂J/∂{var}. Chain rule: {formula}[p,q] = Σ_(i,k) dZ[i,k] · "
                     f"∂Z[i,k]/∂{var}[p,q]; the derivative of a sum of products keeps the terms "
                     f"with {var}[p,q], without it:")
        for row in rows:
            p, q = row["index"]
            where = ", ".join(f"Z[{i},{k}] (× {_sum(c, False)})" for (i, k), c in row["appears"])
            lines.append(f"  {var}[{p},{q}] appears in {where}")
            pad = " " * len(f"  {formula}[{p},{q}]")
            lines.append(f"  {formula}[{p},{q}] = {_sum(row['terms'], False)}")
            mark = "✓" if row["equal"] else "✗ (differs)"
            lines.append(f"{pad} = {_sum(row['matrix'], False)}   {mark}")
        entry, matrix = _MATRIX_TEXT[formula]
        every = all(r["equal"] for r in rows)
        lines.append(f"{'Every' if every else 'NOT every'} entry: {entry}, hence {matrix}   "
                     f"{_shapes(formula, n, n_prev, m)}")
        if checked is not None and formula in checked:
            lines.append(f"SymPy: sympy.diff gives {matrix} for every entry: "
                         f"{'confirmed' if checked[formula] else 'NOT confirmed'}")
    return "\n".join(lines)


def _render_latex(data, n, n_prev, m, checked):
    blocks = [f"% W ({n}, {n_prev}), A_prev ({n_prev}, {m}), b ({n}, 1); indices from 0; "
              f"dZ = dJ/dZ"]
    for formula, rows in data.items():
        lines = [r"\begin{aligned}"]
        if formula == "Z":
            for (i, k), terms in rows:
                lines.append(f"Z_{{{i},{k}}} &= {_sum(terms, True)} \\\\")
        else:
            for row in rows:
                p, q = row["index"]
                name = _LATEX_NAME[formula]
                lines.append(f"{name}_{{{p},{q}}} &= {_sum(row['terms'], True)} "
                             f"= {_sum(row['matrix'], True)} \\\\")
            entry, matrix = _MATRIX_LATEX[formula]
            lines.append(f"&\\Rightarrow\\; {entry} \\;\\Rightarrow\\; {matrix}")
        lines.append(r"\end{aligned}")
        if checked is not None and formula in checked:
            lines.append(f"% SymPy: {'confirmed' if checked[formula] else 'NOT confirmed'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
