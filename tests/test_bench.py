"""The comparison (``chainrule bench``), its correctness gate, and the rule behind ``auto``.

No timing assertions: timings only have to exist and be finite.
"""

from __future__ import annotations

import importlib.util
import math
import os
import runpy

import numpy as np
import pytest

from chainrule import _peers, bench, cli
from chainrule.backends import auto, registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _peer_params():
    modules = {"torch": "torch", "jax": "jax", "sklearn": "sklearn"}
    params = []
    for name in ("course", "torch", "jax", "sklearn"):
        module = modules.get(name)
        missing = module is not None and importlib.util.find_spec(module) is None
        params.append(pytest.param(name, id=name, marks=pytest.mark.skipif(
            missing, reason=f"{module} is not installed")))
    return params


def _small_problems():
    yield bench.make_problem((3, 5, 1), 7, "float64", "tanh", "sigmoid")
    yield bench.make_problem((20, 8, 6, 4), 16, "float32", "relu", "softmax")


# --------------------------------------------------------------------------- the workloads
def test_workloads_match_the_asv_suite():
    common = runpy.run_path(os.path.join(REPO, "benchmarks", "common.py"))
    asv_workloads = common["WORKLOADS"]
    assert set(asv_workloads) == set(bench.WORKLOADS)
    for name, w in bench.WORKLOADS.items():
        assert asv_workloads[name] == (w.layer_dims, w.m, w.dtype, w.hidden, w.output)


def test_make_problem_shapes_and_dtypes():
    p = bench.workload_problem("mnist-like")
    assert p.X.shape == (784, 256) and p.X.dtype == np.float32
    assert p.Y.shape == (10, 256) and np.all(p.Y.sum(axis=0) == 1)
    assert [W.shape for W in p.Ws] == [(128, 784), (64, 128), (10, 64)]
    assert [b.shape for b in p.bs] == [(128, 1), (64, 1), (10, 1)]
    assert all(a.dtype == np.float32 for a in p.Ws + p.bs)


# --------------------------------------------------------------------------- the correctness gate
@pytest.mark.parametrize("name", _peer_params())
def test_check_implementation_accepts_each_peer(name):
    for problem in _small_problems():
        impl = bench.make_implementation(name)
        impl.setup(problem)
        ok, err = bench.check_implementation(impl, problem)
        assert ok, f"{name} on {problem.layer_dims} {problem.dtype}: relative error {err:.2e}"
        # it is left at the problem's parameters, ready for timing
        Ws, bs = impl.get_params()
        for W, W0 in zip(Ws, problem.Ws):
            np.testing.assert_array_equal(W, W0)


def test_check_implementation_accepts_each_available_backend(backend):
    for problem in _small_problems():
        impl = bench.make_implementation(backend)
        impl.setup(problem)
        ok, err = bench.check_implementation(impl, problem)
        assert ok, f"{backend}: relative error {err:.2e}"


class _SignFlipped(_peers.CourseNumpy):
    """Course-style, but climbing the gradient."""

    def step(self):
        p = self.p
        AL, caches = _peers.L_model_forward(p.X, self.parameters, self.hidden, self.output)
        grads = _peers.L_model_backward(AL, p.Y, caches, self.hidden, self.output)
        self.parameters = _peers.update_parameters(self.parameters, grads, -p.learning_rate)


class _NoOneOverM(_peers.CourseNumpy):
    """Course-style, but ``db`` forgets the 1/m (the classic bug)."""

    def step(self):
        super().step()
        m = self.p.X.shape[1]
        L = len(self.parameters) // 2
        # undo b's update and redo it m times larger
        for l in range(1, L + 1):
            b_new = self.parameters[f"b{l}"]
            b_old = self.p.bs[l - 1]
            self.parameters[f"b{l}"] = b_old + m * (b_new - b_old)


@pytest.mark.parametrize("wrong", [_SignFlipped, _NoOneOverM])
def test_check_implementation_rejects_a_wrong_step(wrong):
    for problem in _small_problems():
        impl = wrong()
        impl.setup(problem)
        ok, err = bench.check_implementation(impl, problem)
        assert not ok and err > 0.5


def test_update_error_is_zero_for_the_reference_itself():
    problem = next(_small_problems())
    Ws, bs = bench.reference_step(problem)
    assert bench.update_error(problem, Ws, bs) == 0.0
    assert bench.update_error(problem, Ws[:-1] + [Ws[-1].T], bs) == math.inf


def test_floor_computes_the_products_of_a_step():
    problem = bench.make_problem((6, 5, 3), 4, "float64")
    floor = bench.make_implementation("floor")
    floor.setup(problem)
    floor.step()
    np.testing.assert_allclose(floor.As[1], problem.Ws[0] @ problem.X)
    np.testing.assert_allclose(floor.As[2], problem.Ws[1] @ floor.As[1])
    np.testing.assert_allclose(floor.dWs[0], floor.dZs[0] @ problem.X.T)
    np.testing.assert_allclose(floor.dAs[1], problem.Ws[1].T @ floor.dZs[1])


# --------------------------------------------------------------------------- the comparison
def test_compare_quick_runs_and_reports_missing_ones():
    rows, info = bench.compare(["planar"], include=["numpy", "numba", "c", "course", "floor"],
                               repeats=3, target_s=1e-4)
    by_name = {r.name: r for r in rows}
    for name in ("chainrule[numpy]", "numpy course-style", "bare GEMMs (floor)"):
        r = by_name[name]
        assert r.status == "ok" and math.isfinite(r.median) and r.q1 <= r.median <= r.q3
        assert r.peak is not None and r.peak >= 0
    for b in ("numba", "c"):
        r = by_name[f"chainrule[{b}]"]
        if b in registry.available_backends():
            assert r.status == "ok"
        else:
            assert r.status.startswith("missing")
    text = bench.markdown(rows, info)
    assert "| workload | implementation |" in text
    assert "× numpy course" in text and info["cpu"] in text
    assert text.count("| planar [2, 4, 1] m=400 f64 |") == len(rows)


def test_compare_does_not_time_a_wrong_implementation(monkeypatch):
    monkeypatch.setitem(_peers.PEERS, "course", _SignFlipped)
    rows, info = bench.compare(["planar"], include=["numpy", "course"], repeats=2, target_s=1e-4)
    wrong = [r for r in rows if r.name == "numpy course-style"][0]
    assert wrong.status.startswith("wrong") and not math.isfinite(wrong.median)
    assert "wrong: update differs" in bench.markdown(rows, info)


def test_bench_cli_quick_writes_the_table(tmp_path, capsys):
    out = tmp_path / "bench.md"
    rc = cli.main(["bench", "--quick", "--workloads", "planar", "--impls", "numpy,course,floor",
                   "--repeats", "2", "--output", str(out)])
    assert rc == 0
    text = out.read_text()
    assert text in capsys.readouterr().out
    assert "chainrule[numpy]" in text and "bare GEMMs (floor)" in text
    assert "BLAS" in text and "versions:" in text


def test_bench_cli_refuses_unknown_names(capsys):
    assert cli.main(["bench", "--workloads", "imagenet", "-o", "-"]) == 2
    assert cli.main(["bench", "--impls", "tensorflow", "-o", "-"]) == 2
    assert "unknown" in capsys.readouterr().err


# --------------------------------------------------------------------------- auto
def _table(cells, backends=("numpy", "numba", "c"), depth=2):
    return dict(backends=list(backends), grid=dict(depth=depth), cells=[
        dict(width=w, m=m, dtype=dt, seconds=s) for w, m, dt, s in cells])


FAST_SMALL = _table([
    (4, 16, "float64", {"numpy": 10.0, "numba": 2.0, "c": 1.0}),
    (4, 1024, "float64", {"numpy": 10.0, "numba": 5.0, "c": 9.5}),
    (1024, 16, "float64", {"numpy": 10.0, "numba": 9.8, "c": 12.0}),
    (1024, 1024, "float64", {"numpy": 10.0, "numba": 11.0, "c": 10.0}),
])


@pytest.fixture
def no_predicates(monkeypatch):
    """Backends may register vetoes (``_AUTO_PREDICATES``); these tests use only the table."""
    monkeypatch.setattr(auto, "_AUTO_PREDICATES", {})


def test_auto_rule_picks_the_fastest_measured_backend(no_predicates):
    both = ["numpy", "numba", "c"]
    assert auto.auto_rule([4, 4, 1], 16, np.float64, both, table=FAST_SMALL) == "c"
    assert auto.auto_rule([4, 4, 1], 16, np.float64, ["numpy", "numba"],
                               table=FAST_SMALL) == "numba"
    # nearest cell on a log scale: m = 700 is nearer 1024 than 16, where c is not 10% faster
    assert auto.auto_rule([4, 4, 1], 700, np.float64, both, table=FAST_SMALL) == "numba"


def test_auto_rule_never_picks_a_backend_measured_slower_or_barely_faster_than_numpy(
        no_predicates):
    both = ["numpy", "numba", "c"]
    assert auto.auto_rule([1024, 1024, 1], 16, np.float64, both, table=FAST_SMALL) == "numpy"
    assert auto.auto_rule([2048, 2048, 1], 4096, np.float64, both,
                               table=FAST_SMALL) == "numpy"
    # no measurement for this dtype: numpy
    assert auto.auto_rule([4, 4, 1], 16, np.float32, both, table=FAST_SMALL) == "numpy"
    # an empty table: numpy
    assert auto.auto_rule([4, 4, 1], 16, np.float64, both, table={}) == "numpy"


def test_auto_rule_looks_up_a_measured_network_by_its_own_shape(no_predicates):
    table = dict(FAST_SMALL, networks=[
        dict(layer_dims=[1000, 4, 1], m=200, dtype="float64",
             seconds={"numpy": 10.0, "numba": 9.5, "c": 5.0})])
    both = ["numpy", "numba", "c"]
    # its effective width (~63) would fall on the width-4 cells, where numba is fastest
    assert auto.auto_rule([1000, 4, 1], 200, np.float64, both, table=table) == "c"
    assert auto.auto_rule([1000, 4, 1], None, np.float64, both, table=table) == "c"
    assert auto.auto_rule([1000, 4, 1], 200, np.float64, ["numpy", "numba"],
                               table=table) == "numpy"
    # another dtype: the grid again
    assert auto.auto_rule([1000, 4, 1], 200, np.float32, both, table=table) == "numpy"


def test_auto_rule_with_unknown_m_needs_a_win_at_every_m(no_predicates):
    both = ["numpy", "numba", "c"]
    # at width 4, numba wins at m=16 and m=1024; c only at m=16
    assert auto.auto_rule([4, 4, 1], None, np.float64, both, table=FAST_SMALL) == "numba"


def test_auto_rule_never_returns_an_unavailable_backend():
    rng = np.random.default_rng(0)
    for _ in range(200):
        cells = [(w, m, dt, {b: float(rng.uniform(0.1, 2.0)) for b in ("numpy", "numba", "c")})
                 for w in (4, 64, 1024) for m in (16, 256) for dt in ("float32", "float64")]
        table = _table(cells)
        available = ["numpy"] + [b for b in ("numba", "c") if rng.random() < 0.5]
        dims = [int(n) for n in rng.integers(1, 3000, size=rng.integers(2, 5))]
        m = None if rng.random() < 0.2 else int(rng.integers(1, 5000))
        dtype = np.dtype(rng.choice(["float32", "float64"]))
        pick = auto.auto_rule(dims, m, dtype, available, table=table)
        assert pick in available
        if pick != "numpy":  # and it was measured faster than numpy in the nearest cell(s)
            width = np.sqrt(np.mean([dims[i] * dims[i - 1] for i in range(1, len(dims))]))
            w = min((4, 64, 1024), key=lambda c: abs(np.log(c) - np.log(max(width, 1))))
            ms = (16, 256) if m is None else [min((16, 256), key=lambda c: abs(np.log(c) -
                                                                                np.log(m)))]
            for c in table["cells"]:
                if c["width"] == w and c["m"] in ms and c["dtype"] == dtype.name:
                    assert c["seconds"][pick] <= auto._AUTO_MARGIN * c["seconds"]["numpy"]


def test_auto_rule_respects_a_registered_predicate(monkeypatch, no_predicates):
    monkeypatch.setitem(auto._AUTO_PREDICATES, "c", lambda dims, m, dtype: False)
    assert auto.auto_rule([4, 4, 1], 16, np.float64, ["numpy", "numba", "c"],
                               table=FAST_SMALL) == "numba"


def test_environment_override_beats_the_table(monkeypatch, no_predicates):
    monkeypatch.setattr(auto, "_auto_table", lambda: FAST_SMALL)
    monkeypatch.setattr(registry, "available_backends", lambda: ["numpy", "numba"])
    monkeypatch.delenv("CHAINRULE_BACKEND", raising=False)
    assert registry.choose_backend([4, 4, 1], 16, np.float64) == "numba"
    monkeypatch.setenv("CHAINRULE_BACKEND", "numpy")
    assert registry.choose_backend([4, 4, 1], 16, np.float64) == "numpy"
    monkeypatch.setenv("CHAINRULE_BACKEND", "auto")
    assert registry.choose_backend([4, 4, 1], 16, np.float64) == "numba"


def test_auto_with_the_committed_table_returns_an_available_backend():
    for name, w in bench.WORKLOADS.items():
        for m in (w.m, None, 1):
            for dtype in ("float32", "float64"):
                assert registry.choose_backend(w.layer_dims, m, dtype) in \
                    registry.available_backends()


def test_committed_table_is_well_formed():
    table = auto._auto_table()
    assert set(table["backends"]) <= set(registry.BACKENDS) and "numpy" in table["backends"]
    assert table["cells"]
    for c in table["cells"]:
        assert c["dtype"] in ("float32", "float64") and c["width"] > 0 and c["m"] > 0
        assert set(c["seconds"]) == set(table["backends"])
        assert all(s > 0 and math.isfinite(s) for s in c["seconds"].values())


def test_calibrate_quick_writes_a_table_that_auto_reads(tmp_path):
    grid = dict(widths=(4, 16), ms=(8,), dtypes=("float64",), depth=1, workloads=("planar",))
    table = bench.calibrate(grid, repeats=2, target_s=1e-4, log=lambda s: None)
    assert table["backends"] == registry.available_backends()
    assert len(table["cells"]) == 2
    assert [n["layer_dims"] for n in table["networks"]] == [[2, 4, 1]]
    path = tmp_path / "_auto_table.py"
    bench.write_table(table, path)
    loaded = runpy.run_path(str(path))["TABLE"]
    assert loaded == table
    pick = auto.auto_rule([4, 4, 1], 8, np.float64, registry.available_backends(),
                               table=loaded)
    assert pick in registry.available_backends()
    summary = bench.rule_summary(loaded)
    assert "auto picks" in summary
    assert summary.count("\n") == 1 + len(loaded["cells"]) + len(loaded["networks"])


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_compare_pins_while_timing_and_restores_the_cpu_affinity(monkeypatch):
    before = os.sched_getaffinity(0)
    seen = []
    original = bench.time_interleaved

    def spy(impls, repeats, target_s):
        seen.append(os.sched_getaffinity(0))
        return original(impls, repeats, target_s)

    monkeypatch.setattr(bench, "time_interleaved", spy)
    bench.compare(["planar"], include=["numpy"], repeats=2, target_s=1e-4, threads=1)
    assert os.sched_getaffinity(0) == before
    assert len(seen[0]) == 1  # one thread: one CPU while timing
