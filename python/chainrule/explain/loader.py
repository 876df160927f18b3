"""Loading a learner's function from a notebook (``.ipynb``) or a ``.py`` (also one exported
from a notebook) without running the notebook.

Only definitions are taken: the function asked for, the functions and constants it uses
(transitively), and the imports that bind the names they use. Magics (``%matplotlib``),
shell lines (``!pip``), ``get_ipython()`` calls, test-case calls and plots are never run.
An import of a course helper file that is not there (``dnn_utils``, ``reg_utils``...) is
replaced by :mod:`.course_helpers`; test-case and data files (``testCases``,
``public_tests``, ``h5py``...) are skipped. Everything that could not be loaded is listed
in :attr:`Loaded.problems`, in words.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from dataclasses import dataclass, field

from ..errors import InputError
from .course_helpers import SKIPPABLE, STANDINS, base_name
from .sandbox import DEFAULT_TIME_LIMIT, call_limited
from .source import cell_filename, register

SUFFIXES = (".py", ".ipynb")


@dataclass
class Loaded:
    path: str
    namespace: dict
    #: name -> function, for the functions asked for (or every top-level function)
    functions: dict
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    #: names the loaded functions need that are not defined or could not be loaded
    missing: list = field(default_factory=list)


def split_target(target):
    """``"nb.ipynb:fn"`` -> ``("nb.ipynb", "fn")``; a path that exists wins over a colon."""
    if os.path.exists(target):
        return target, None
    path, sep, name = target.rpartition(":")
    if sep and path and os.sep not in name and "." not in name:
        return path, name or None
    return target, None


def _cells(path):
    """``[(label, source)]`` of the code in ``path``."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: only Python files (.py) and notebooks (.ipynb) are read, "
                         f"not {suffix or 'files without a suffix'}")
    if not os.path.isfile(path):
        raise InputError(f"no such file: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if suffix == ".py":
        return _py_cells(text)
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a notebook (invalid JSON: {exc})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if cells is None and isinstance(nb, dict):  # nbformat 3
        cells = [c for ws in nb.get("worksheets", []) for c in ws.get("cells", [])]
    if not isinstance(cells, list):
        raise InputError(f"{path}: not a notebook (no cells)")
    out = []
    for i, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", cell.get("input", ""))
        out.append((f"cell {i}", "".join(src) if isinstance(src, list) else str(src)))
    return out


_CELL_MARKER = re.compile(r"^# (In\[[^\]]*\]:|%%)")
_HELP_LINE = re.compile(r"^\??[\w.]+\?{1,2}$")


def _py_cells(text):
    """A .py exported from a notebook (``# In[3]:`` or ``# %%`` markers) split into its cells,
    so that one cell that does not parse loses only itself; line numbers are kept."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _CELL_MARKER.match(line)]
    if not starts:
        return [("", text)]
    starts = [0] + [i for i in starts if i] if starts[0] else starts
    out = []
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        # blank lines in front keep the line numbers of the file in error messages
        out.append((f"line {a + 1}", "\n" * a + "\n".join(lines[a:b])))
    return out


def _clean(source):
    """The source with IPython-only lines made harmless (kept as ``pass``, so lines keep
    their numbers and blocks stay valid)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return "", f"a cell magic ({lines[0].strip()}) — skipped"
    out = []
    for line in lines:
        s = line.strip()
        if s.startswith(("%", "!")) or "get_ipython()" in s or _HELP_LINE.match(s):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return "\n".join(out), None


def _bound_names(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _used_names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


#: function -> the functions of the same file the doctor also needs to run it
COMPANIONS = {"batchnorm_backward": ("batchnorm_forward",)}


def load(path, names=None, timeout=DEFAULT_TIME_LIMIT):
    """Load ``names`` (default: every top-level function) from ``path`` and what they need.

    Raises :class:`~chainrule.errors.InputError` for a file that is not ``.py``/``.ipynb``,
    missing, or not a notebook; a name that is not defined is a problem in the result.
    """
    problems, notes, missing = [], [], []
    defs, imports, assigns = {}, [], {}
    filenames = {}  # label -> the name its code is compiled under
    for label, raw in _cells(path):
        source, skipped = _clean(raw)
        if skipped:
            notes.append(f"{label}: {skipped}")
            continue
        if label.startswith("cell"):
            # a notebook cell: compiled under its own name, its text registered, so that
            # tracebacks and the doctor quote "cell 4, line 6: ..." and not the JSON
            filenames[label] = cell_filename(path, label)
            register(filenames[label], raw, label)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            if label.startswith("cell"):
                where, what = f"{label}, line {exc.lineno}", "this cell was"
            elif label:
                where, what = f"line {exc.lineno}", f"the cell starting at {label} was"
            else:
                where, what = f"line {exc.lineno}", "the file was"
            problems.append(f"{where}: SyntaxError: {exc.msg}: {(exc.text or '').strip()!r} — "
                            f"{what} not loaded")
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs[node.name] = (node, label)  # a later definition replaces an earlier one
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imports.append((node, label))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and not any(
                    isinstance(n, ast.Call) for n in ast.walk(node)):
                for name in _bound_names(node):
                    assigns[name] = (node, label)
    if names is None:
        wanted = [n for n, (node, _) in defs.items() if not isinstance(node, ast.ClassDef)]
    else:
        wanted = list(names)
    needed, queue = set(), [n for n in wanted if n in defs]
    # functions the doctor calls beside the one asked for (the cache of batchnorm_backward
    # is what the learner's own batchnorm_forward returns)
    queue += [c for n in wanted for c in COMPANIONS.get(n, ()) if c in defs]
    while queue:
        name = queue.pop()
        if name in needed:
            continue
        needed.add(name)
        node = (defs.get(name) or assigns.get(name))[0]
        for used in _used_names(node):
            if (used in defs or used in assigns) and used not in needed:
                queue.append(used)
    used = set().union(*(_used_names((defs.get(n) or assigns.get(n))[0]) for n in needed)) \
        if needed else set()
    namespace = {"__name__": "_chainrule_user_" + os.path.splitext(os.path.basename(path))[0],
                 "__builtins__": __builtins__}
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        for node, label in imports:
            if not set(_bound_names(node)) & used and not _is_star(node):
                continue
            _import(node, label, namespace, used, problems, notes, timeout)
        order = sorted(needed, key=lambda n: (defs.get(n) or assigns.get(n))[0].lineno)
        for name in order:
            node, label = defs.get(name) or assigns.get(name)
            code = compile(ast.Module(body=[node], type_ignores=[]),
                           filenames.get(label, path), "exec")
            _, error = call_limited(exec, (code, namespace), timeout)
            if error is not None:
                problems.append(f"{label + ': ' if label else ''}{name}: {error[1]} — not "
                                f"loaded")
                missing.append(name)
    finally:
        sys.path.pop(0)
    functions = {}
    for name in wanted:
        if callable(namespace.get(name)):
            functions[name] = namespace[name]
        elif names is not None:
            problems.append(f"no function {name!r} in {path}"
                            + (f" (it defines {', '.join(sorted(defs))})" if defs else ""))
    import builtins

    known = set(namespace) | needed | set(dir(builtins)) | _locals_of(defs, needed)
    imported = {n for node, _ in imports for n in _bound_names(node)}
    for name in sorted(used - known - imported):
        problems.append(f"{name} is used but not defined or imported in {path}")
        missing.append(name)
    return Loaded(path, namespace, functions, problems, notes, missing)


def _locals_of(defs, needed):
    """Names bound inside the needed functions (parameters, local variables, comprehensions)."""
    out = set()
    for name in needed:
        entry = defs.get(name)
        if entry is None:
            continue
        for n in ast.walk(entry[0]):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                out.add(n.id)
            elif isinstance(n, ast.arg):
                out.add(n.arg)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(n.name)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                out.update(_bound_names(n))
            elif isinstance(n, ast.ExceptHandler) and n.name:
                out.add(n.name)
    return out


def _is_star(node):
    return isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)


def _import(node, label, namespace, used, problems, notes, timeout):
    code = compile(ast.Module(body=[node], type_ignores=[]), "<import>", "exec")
    # An import runs the imported module (the learner's own utils.py, say): under the time
    # limit, with its exceptions and exits reported like the learner's code.
    _, failure = call_limited(exec, (code, namespace), timeout)
    if failure is None:
        return
    error, summary, how = failure
    if how in ("timed_out", "exits"):
        problems.append(f"{label + ': ' if label else ''}{ast.unparse(node)}: {summary}")
        return
    module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
    base = base_name(module or "")
    where = f"{label}: " if label else ""
    if base in STANDINS and isinstance(node, ast.ImportFrom):
        provided = STANDINS[base]
        wanted = list(provided) if _is_star(node) else [a.name for a in node.names]
        got = []
        for a in node.names if not _is_star(node) else [ast.alias(n) for n in wanted]:
            if a.name in provided:
                namespace[a.asname or a.name] = provided[a.name]
                got.append(a.asname or a.name)
            elif (a.asname or a.name) in used:
                problems.append(f"{where}{module}.{a.name} is not available ({module} not "
                                f"found here)")
        if got:
            notes.append(f"{module} not found: used the doctor's course versions of "
                         f"{', '.join(got)}")
        return
    if base in SKIPPABLE or base.lower().startswith("testcase"):
        notes.append(f"{module} not found: skipped (test cases and data are not needed)")
        return
    problems.append(f"{where}{ast.unparse(node)}: {type(error).__name__}: {error}")
