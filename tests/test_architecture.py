"""The architecture's invariants: one table (spec) that the kernels' codes equal, and no
import circle among the modules (function-level imports included)."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from chainrule import spec

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"chainrule": ROOT / "python" / "chainrule", "chainrule.core": ROOT / "core"}


def test_spec_codes_are_unique_and_name_every_row():
    for table in (spec.ACTIVATION_TABLE, spec.LOSS_TABLE):
        codes = [row.code for row in table]
        assert sorted(codes) == list(range(len(codes)))
    for a in spec.ACTIVATION_TABLE:
        assert a.default_loss in spec.LOSSES
        assert a.fused_loss is None or a.fused_loss in spec.LOSSES
        if a.output_only:
            assert a.fused_loss is not None, a.name  # no g': its dZ[L] must be A - Y
    for loss in spec.LOSS_TABLE:
        assert all(out in spec.ACTIVATIONS for out in spec.loss_outputs(loss.name))


def test_core_constants_equal_spec():
    core = pytest.importorskip("chainrule.core")
    assert core.ACTIVATION_CODES == spec.ACTIVATION_CODES
    assert core.LOSS_CODES == spec.LOSS_CODES


def test_c_enum_in_dense_h_equals_spec():
    text = (ROOT / "csrc" / "dense.h").read_text()
    body = re.search(r"enum\s+cr_activation\s*\{(.*?)\}", text, re.S).group(1)
    enum = {name.lower(): int(value) for name, value in re.findall(r"CR_(\w+)\s*=\s*(\d+)", body)}
    assert enum == spec.ACTIVATION_CODES


def test_compiled_module_enum_equals_spec():
    cdense = pytest.importorskip("chainrule._cdense")
    for name, code in spec.ACTIVATION_CODES.items():
        assert getattr(cdense.lib, f"CR_{name.upper()}") == code, name
    for name, code in spec.LOSS_CODES.items():
        assert getattr(cdense.lib, f"CR_{name.upper()}") == code, name


def test_c_loss_enum_in_train_h_equals_spec():
    text = (ROOT / "csrc" / "train.h").read_text()
    body = re.search(r"enum\s+cr_loss\s*\{(.*?)\}", text, re.S).group(1)
    enum = {name.lower(): int(value) for name, value in re.findall(r"CR_(\w+)\s*=\s*(\d+)", body)}
    assert enum == spec.LOSS_CODES


def _modules():
    mods = {}
    for pkg, base in PACKAGES.items():
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            mods[".".join((pkg,) + rel)] = path
    return mods


def _imports(name, path, mods):
    """Every module ``name`` imports, at module or function level (relative ones resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            # a package's own parents are imported by Python anyway: not an edge
            if t and t != name and not name.startswith(t + "."):
                out.add(t)
    return out


def _circles(mods):
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    circles = []
    state = {}  # name -> "active" | "done"

    def visit(node, trail):
        state[node] = "active"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "active":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return circles


def test_no_import_circles():
    circles = _circles(_modules())
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_cycle_walker_finds_a_circle(tmp_path):
    """The walker above is not vacuous: two modules importing each other inside functions."""
    (tmp_path / "a.py").write_text("def f():\n    from . import b\n")
    (tmp_path / "b.py").write_text("def g():\n    from .a import f\n")
    mods = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    assert _imports("pkg.a", mods["pkg.a"], mods) == {"pkg.b"}
    assert _circles(mods) == [["pkg.a", "pkg.b", "pkg.a"]]


@pytest.mark.parametrize("module", ["chainrule.io", "chainrule._interop"])
def test_io_level_modules_reach_neither_the_model_nor_training_nor_a_tool(module):
    """``io`` and ``_interop`` sit below the model: Network hands them its class (load, the
    from_* classmethods), so nothing they import, however indirectly, reaches upward."""
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    reached, todo = set(), [module]
    while todo:
        for nxt in graph[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    above = ("chainrule.model", "chainrule.training", "chainrule.sklearn", "chainrule.cli",
             "chainrule.explain", "chainrule.bench", "chainrule.plot")
    upward = sorted(m for m in reached if any(m == a or m.startswith(a + ".") for a in above))
    assert not upward, f"{module} reaches {upward}"
