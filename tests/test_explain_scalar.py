"""Scalar expansion: the chain rule entry by entry gives the matrix formulas."""

import itertools
import sys
from collections import Counter

import pytest

from chainrule.errors import InputError
from chainrule.explain import expand, scalar_expansion
from chainrule.explain.scalar import _chain_rule, _z_entries


@pytest.mark.parametrize("n, n_prev, m", list(itertools.product([1, 2, 3], repeat=3)))
def test_expand_every_entry_equals_the_matrix_formula(n, n_prev, m):
    data = expand(n, n_prev, m, ("Z", "dA_prev", "dW", "db"))
    assert len(data["Z"]) == n * m
    for (i, k), terms in data["Z"]:
        assert len(terms) == n_prev + 1
    assert len(data["dA_prev"]) == n_prev * m
    assert len(data["dW"]) == n * n_prev
    assert len(data["db"]) == n
    for formula in ("dA_prev", "dW", "db"):
        assert all(row["equal"] for row in data[formula]), formula


def test_chain_rule_check_can_fail():
    # W·dZ (no transpose) is not what the chain rule gives: the multiset check says so.
    Z = _z_entries(2, 2, 2)
    terms, _ = _chain_rule(Z, ("A_prev", 0, 1))
    wrong = [(("W", 0, i), ("dZ", i, 1)) for i in range(2)]  # (W·dZ)[0,1]
    right = [(("W", i, 0), ("dZ", i, 1)) for i in range(2)]  # (Wᵀ·dZ)[0,1]
    canon = lambda ts: Counter(tuple(sorted(t)) for t in ts)  # noqa: E731
    assert canon(terms) == canon(right)
    assert canon(terms) != canon(wrong)


def test_scalar_expansion_text():
    text = scalar_expansion(2, 3, 2, use_sympy=False)
    assert "Z[0,0] = W[0,0]·A_prev[0,0] + W[0,1]·A_prev[1,0] + W[0,2]·A_prev[2,0] + b[0,0]" in text
    assert "dA_prev[2,1] = W[0,2]·dZ[0,1] + W[1,2]·dZ[1,1]" in text
    assert "hence dA_prev = Wᵀ · dZ   (3, 2) = (3, 2) · (2, 2)" in text
    assert "✗" not in text and text.count("✓") == 6
    assert "SymPy" not in text


def test_scalar_expansion_latex():
    text = scalar_expansion(2, 2, 1, formulas=("Z", "dW", "db"), latex=True, use_sympy=False)
    assert text.count(r"\begin{aligned}") == 3
    assert r"Z_{0,0} &= W_{0,0} \, A^{\mathrm{prev}}_{0,0}" in text
    assert r"dW = dZ\, A^{\mathrm{prev}\top}" in text


def test_scalar_expansion_limits():
    with pytest.raises(InputError, match="from 1 to 3"):
        scalar_expansion(4, 2, 2)
    with pytest.raises(InputError, match="from 1 to 3"):
        scalar_expansion(2, 0, 2)
    with pytest.raises(InputError, match="unknown formula"):
        scalar_expansion(2, 2, 2, formulas=("dZ",))


def test_scalar_expansion_without_sympy(monkeypatch):
    monkeypatch.setitem(sys.modules, "sympy", None)  # import sympy -> ImportError
    text = scalar_expansion(2, 2, 2, use_sympy=None)
    assert "SymPy" not in text and "✓" in text
    with pytest.raises(ImportError, match=r'pip install "\.\[explain\]"'):
        scalar_expansion(2, 2, 2, use_sympy=True)


def test_scalar_expansion_with_sympy():
    pytest.importorskip("sympy")
    text = scalar_expansion(3, 2, 2, formulas=("Z", "dA_prev", "dW", "db"), use_sympy=True)
    assert text.count("confirmed") == 3 and "NOT confirmed" not in text
