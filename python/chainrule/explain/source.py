"""Where a learner's line is: the file and line, or the notebook cell and line, and its text.

The loader (:mod:`.loader`) compiles each notebook cell under its own name (``path, cell
N``) and registers the cell's source with :mod:`linecache`, so that tracebacks and
:mod:`inspect` read the cell, not the notebook's JSON. :func:`raise_location` names the line
an exception came from; :func:`offending_line` finds the line of the learner's function that
computes an output a diagnosis names (its assignment, or the operand the mistake is about).
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import re
import sysconfig
import textwrap
import traceback

#: compiled filename -> how it is shown ("cell 4" of a notebook)
_LABELS = {}

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(_HERE)
_LIBRARY_DIRS = tuple(sorted({os.path.abspath(d) for k, d in sysconfig.get_paths().items()
                              if k in ("stdlib", "platstdlib", "purelib", "platlib") and d}))


def in_library(filename):
    """Whether a traceback frame's file belongs to Python or an installed package (numpy's
    ``__getattr__`` raising for ``np.squre``, ``fromnumeric``...): never the learner's code nor
    chainrule's (the course helpers a learner calls are chainrule's)."""
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE + os.sep):
        return False
    return any(path.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def cell_filename(path, label):
    """The name a notebook cell's code is compiled under."""
    return f"{path}, {label}"


def register(filename, source, label):
    """Make ``source`` the text of ``filename`` for tracebacks and :mod:`inspect`."""
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)
    _LABELS[filename] = label


def where(filename, lineno):
    """``"cell 4, line 6"`` for a registered notebook cell, ``"file.py, line 6"`` else."""
    if filename in _LABELS:
        return f"{_LABELS[filename]}, line {lineno}"
    return f"{os.path.basename(filename)}, line {lineno}"


def quote(filename, lineno):
    """``"cell 4, line 6: dA_prev = np.dot(W, dZ)"`` (the line's text when it is known)."""
    text = linecache.getline(filename, lineno).strip()
    return f"{where(filename, lineno)}: {text}" if text else where(filename, lineno)


def raise_location(exc):
    """The learner's frame an exception came from: ``"in fn, cell 4, line 6: code"``, or
    ``""`` when no frame outside the library is in the traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_HERE) and not in_library(f.filename)]
    if not frames:
        return ""
    f = frames[-1]
    return f"in {f.name}, {quote(f.filename, f.lineno)}"


def _function_tree(fn):
    """``(tree, filename, first line)`` of ``fn``'s definition, or None."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    return tree, code.co_filename, first


def _targets(node):
    out = []
    for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
        for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
            out.append(e)
    return out


def _keys_of(where_name):
    """What an output name is assigned to in learner code: ``grads['dw']`` -> ``dw``,
    ``dW2`` -> ``dW2`` then ``dW``; ``parameters['W1']`` -> ``W1``, ``W``; ``s['dW1']`` ->
    ``s``."""
    m = re.match(r"(\w+)\[['\"](\w+)['\"]\]", where_name)
    if m:
        container, key = m.groups()
        base = re.sub(r"\d+$", "", key)
        if container in ("v", "s", "v_corrected", "s_corrected"):
            return [container, key, base]
        return [key, base, container]
    name = where_name.split(" ")[0]
    base = re.sub(r"\d+$", "", name)
    keys = [name, base]
    if name == "dA_prev":
        keys.append("dA")
    if name.startswith("dA") and name != "dA_prev":
        keys.append("dA_prev")
    if name in ("cost", "cross-entropy"):
        keys += ["cost", "J", "logprobs", "loss"]
    if name == "L2 term":
        keys += ["L2_regularization_cost", "L2", "l2", "reg", "regularization"]
    return keys


#: per code, words of the line the mistake is in (tried before the output's assignment)
_OPERANDS = {
    "missing_keepdims": ("squeeze", "np.sum", "sum("),
    "sum_wrong_axis": ("np.sum", "sum("),
    "cost_missing_term": ("log",),
    "l2_cost_wrong": ("lambd", "square", "**"),
    "l2_gradient_missing": ("lambd",),
    "l2_gradient_wrong": ("lambd",),
    "adam_epsilon_inside_sqrt": ("sqrt",),
    "adam_sqrt_missing": ("epsilon", "eps"),
    "adam_bias_correction": ("beta1 **", "beta2 **", "power", "**"),
    "adam_beta_partial": ("beta",),
    "adam_beta_mixup": ("beta",),
    "dropout_mask_missing": ("keep_prob",),
    "dropout_not_rescaled": ("* D",),
    "dropout_rescaled_wrong": ("keep_prob",),
    "wrong_upstream": ("backward(", "dAL"),
    "wrong_activation": ("backward(", "activation"),
}


def offending_line(fn, code, where_names):
    """``"file.py, line 12: dW = np.dot(dZ, A_prev.T)"`` for the line of ``fn`` that the
    mistake ``code`` shown in the outputs ``where_names`` is in, or ``""``."""
    found = _function_tree(fn)
    if found is None:
        return ""
    tree, filename, first = found
    assigns = []  # (names the line assigns, lineno, its text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            names = set()
            for t in _targets(node):
                if isinstance(t, ast.Name):
                    names.add(t.id)
                elif isinstance(t, ast.Subscript):
                    names.add(ast.unparse(t.value))
                    names.update(str(c.value) for c in ast.walk(t.slice)
                                 if isinstance(c, ast.Constant) and isinstance(c.value, str))
            assigns.append((names, node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Return):
            assigns.append(({"return"}, node.lineno, ast.unparse(node)))
    assigns.sort(key=lambda a: a[1])
    lineno = None
    if code == "wrong_m":
        lineno = next((ln for names, ln, text in assigns if "m" in names), None)
    if code in ("double_1_over_m", "sign_flipped", "dA_dZ_mixup"):
        # where the backward pass starts: dAL (or dZ[L]) with its 1/m, its sign
        lineno = next((ln for names, ln, text in assigns if names & {"dAL", "dZL", "dZ_L"}),
                      None)
    if lineno is None:
        for w in where_names:
            for key in _keys_of(str(w)):
                hits = [(ln, text) for names, ln, text in assigns if key in names]
                words = _OPERANDS.get(code, ())
                pick = next((ln for ln, text in hits for word in words if word in text), None)
                if pick is None and hits:
                    pick = hits[-1][0]
                if pick is not None:
                    lineno = pick
                    break
            if lineno is not None:
                break
    if lineno is None and code in _OPERANDS:
        lineno = next((ln for word in _OPERANDS[code] for names, ln, text in assigns
                       if word in text), None)
    if lineno is None:
        return ""
    return quote(filename, first + lineno - 1)


def axis0_m_line(fn):
    """The line of ``fn`` that reads m from axis 0 (``m = Y.shape[0]``), quoted, or ``""``."""
    found = _function_tree(fn)
    if found is None:
        return ""
    tree, filename, first = found
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "m"
                and isinstance(node.value, ast.Subscript)
                and isinstance(node.value.value, ast.Attribute)
                and node.value.value.attr == "shape"
                and isinstance(node.value.slice, ast.Constant) and node.value.slice.value == 0):
            return quote(filename, first + node.lineno - 1)
    return ""
