"""The architecture's invariants: one table (spec) that the kernels' codes equal, one
optimiser table whose codes the compiled engines share, no import circle among the modules
and no import against the layer order of docs/architecture.md (function-level imports
included)."""

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


def test_optimizer_codes_equal_the_engines():
    """Each registered optimiser with a code is the one the compiled engines know by it."""
    from chainrule.optim import OPTIMIZERS

    codes = {name: cls.code for name, cls in OPTIMIZERS.items() if cls.code is not None}
    assert sorted(codes.values()) == list(range(len(codes)))
    text = (ROOT / "csrc" / "train.h").read_text()
    body = re.search(r"enum\s+cr_optimizer\s*\{(.*?)\}", text, re.S).group(1)
    enum = {name.lower(): int(value) for name, value in re.findall(r"CR_(\w+)\s*=\s*(\d+)", body)}
    assert enum == {"gd": codes["gd"], "momentum": codes["momentum"],
                    "rmsprop": codes["rmsprop"], "adam": codes["adam"]}
    try:
        from chainrule.core import train as core_train
    except ImportError:
        return
    assert core_train.OPTIMIZER_CODES == codes


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


# --------------------------------------------------------------------------- layers
# The layer order of docs/architecture.md, lowest first: a module may import its own layer
# and the layers below it, never one above. Every module belongs to one layer (a new module
# must be placed here, and so in the document).
LAYERS = [
    ("spec", ["chainrule.spec", "chainrule.errors", "chainrule.core", "chainrule._argtypes",
              "chainrule._threads", "chainrule.datasets", "chainrule._plaintex"]),
    ("reference", ["chainrule.reference", "chainrule._wisdom", "chainrule._coldstart"]),
    ("backends", ["chainrule.backends"]),
    ("validation", ["chainrule._validate", "chainrule._state_checks"]),
    ("io", ["chainrule.io", "chainrule._interop"]),
    ("training", ["chainrule.training"]),
    ("model", ["chainrule.model", "chainrule._parameters", "chainrule._persistence",
               "chainrule._summary", "chainrule._scoring", "chainrule._batchnorm",
               "chainrule.callbacks", "chainrule.optim"]),
    ("tools", ["chainrule.explain", "chainrule.sklearn", "chainrule.cli", "chainrule.bench",
               "chainrule.plot", "chainrule.interop", "chainrule.__main__", "chainrule",
               "chainrule._sklearn_stream"]),
]


def _layer(module):
    """The index in LAYERS of ``module`` (its longest matching prefix), or None."""
    best = None
    for rank, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and \
                    (best is None or len(name) > best[1]):
                best = (rank, len(name))
    return None if best is None else best[0]


def _upward(mods):
    out = []
    for name, path in sorted(mods.items()):
        for target in sorted(_imports(name, path, mods)):
            if _layer(target) > _layer(name):
                out.append(f"{name} ({LAYERS[_layer(name)][0]}) imports {target} "
                           f"({LAYERS[_layer(target)][0]})")
    return out


def test_every_module_has_a_layer():
    assert [name for name in _modules() if _layer(name) is None] == []


def test_no_import_points_up_the_layers():
    upward = _upward(_modules())
    assert not upward, "upward imports: " + "; ".join(upward)


def test_the_layer_order_is_the_documents():
    text = (ROOT / "docs" / "architecture.md").read_text()
    order = " → ".join(name for name, _ in reversed(LAYERS))
    assert f"`{order}`" in text, f"docs/architecture.md must state the layer order `{order}`"


def test_the_layer_walker_finds_an_upward_import(tmp_path):
    """Not vacuous: a reference function importing the model inside a function."""
    (tmp_path / "reference.py").write_text("def f():\n    from .model import Network\n")
    (tmp_path / "model.py").write_text("from . import reference\n")
    mods = {"chainrule.reference": tmp_path / "reference.py",
            "chainrule.model": tmp_path / "model.py"}
    assert _upward(mods) == ["chainrule.reference (reference) imports chainrule.model (model)"]
