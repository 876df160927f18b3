"""The harness (``chainrule.bench``): the step comparison and its correctness gate, the fit
comparison (``--train``), the floors, and the rule behind ``auto``.

No timing assertions: timings only have to exist and be finite.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import runpy

import numpy as np
import pytest

from chainrule import _coldstart, bench, cli
from chainrule.backends import auto, registry
from chainrule.bench import comparison as bench_compare
from chainrule.bench import peers as _peers
from chainrule.bench import train as bench_train

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
def test_the_asv_suite_uses_the_harness_workloads():
    common = runpy.run_path(os.path.join(REPO, "benchmarks", "common.py"))
    assert common["WORKLOADS"] is bench.WORKLOADS
    assert set(common["TRAIN_WORKLOAD_NAMES"]) == set(bench.TRAIN_WORKLOADS)
    p = common["problem"]("planar", "float32", m=3)
    assert p.X.shape == (2, 3) and p.X.dtype == np.float32 and p.loss == "binary_crossentropy"


def test_no_second_step_or_floor_outside_the_harness():
    """The scripts that had their own PyTorch step and GEMM floor are gone."""
    for name in ("c_step.py", "numba_step.py", "training_digits.py"):
        assert not os.path.exists(os.path.join(REPO, "benchmarks", name))
    for name in os.listdir(os.path.join(REPO, "benchmarks")):
        if name.endswith(".py"):
            with open(os.path.join(REPO, "benchmarks", name)) as f:
                text = f.read()
            assert "import torch" not in text and "np.matmul" not in text, name


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
    monkeypatch.setitem(bench_compare.STEP_IMPLEMENTATIONS, "course", _SignFlipped)
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
    monkeypatch.setenv("CHAINRULE_WISDOM", "0")
    monkeypatch.setattr(auto, "_first_use_cost", lambda backend: 0.0)
    monkeypatch.setattr(registry, "_load", lambda backend: backend in ("numpy", "numba"))
    monkeypatch.setattr(_coldstart, "installed", lambda backend: False)
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
    original = bench_compare.time_interleaved

    def spy(impls, repeats, target_s):
        seen.append(os.sched_getaffinity(0))
        return original(impls, repeats, target_s)

    monkeypatch.setattr(bench_compare, "time_interleaved", spy)
    bench.compare(["planar"], include=["numpy"], repeats=2, target_s=1e-4, threads=1)
    assert os.sched_getaffinity(0) == before
    assert len(seen[0]) == 1  # one thread: one CPU while timing


# --------------------------------------------------------------------------- whole fits (--train)
TINY = bench.TrainWorkload("tiny", "synthetic", (6, 8, 3), 150, "float64", "relu", "softmax",
                           epochs=2, batch_size=32, learning_rate=0.05)
TINY_SIGMOID = bench.TrainWorkload("tiny-sigmoid", "synthetic", (5, 8, 1), 130, "float32",
                                   "relu", "sigmoid", epochs=3, batch_size=16,
                                   learning_rate=0.05)
# Long enough that every implementation learns the teacher (chance: 1/3 and 1/2).
LEARNABLE = [dataclasses.replace(TINY, epochs=15), dataclasses.replace(TINY_SIGMOID, epochs=15)]


def _fit_peer_params():
    modules = {"sklearn": "sklearn", "torch": "torch", "jax": "jax"}
    return [pytest.param(name, id=name, marks=pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"{module} is not installed"))
        for name, module in modules.items()]


def test_train_workloads_are_the_issues_fits():
    w = bench.TRAIN_WORKLOADS
    assert (w["digits"].m, w["digits"].layer_dims, w["digits"].batch_size, w["digits"].epochs,
            w["digits"].dtype) == (1347, (64, 64, 10), 64, 10, "float64")
    assert (w["mnist-like"].m, w["mnist-like"].layer_dims, w["mnist-like"].batch_size,
            w["mnist-like"].dtype) == (60000, (784, 128, 64, 10), 128, "float32")
    assert (w["tabular"].m, w["tabular"].layer_dims, w["tabular"].output,
            w["tabular"].batch_size) == (100000, (20, 64, 64, 1), "sigmoid", 256)
    assert all(x.learning_rate == 1e-3 for x in w.values())
    assert w["mnist-like"].steps == 469 and w["digits"].steps == 220
    quick = w["mnist-like"].sized(quick=True)
    assert quick.m < w["mnist-like"].m and quick.layer_dims == w["mnist-like"].layer_dims


@pytest.mark.parametrize("workload", [TINY, TINY_SIGMOID])
def test_train_data_rows_and_a_view_for_the_course_layout(workload):
    data = bench.train_data(workload)
    assert data.X_rows.shape == (workload.m, workload.layer_dims[0])
    assert data.X_rows.flags.c_contiguous and data.X_rows.dtype == workload.dtype
    assert data.X.shape == (workload.layer_dims[0], workload.m)
    assert np.shares_memory(data.X, data.X_rows)  # no copy
    classes = max(workload.layer_dims[-1], 2)
    assert set(np.unique(data.y)) == set(range(classes))  # every class occurs
    if workload.output == "sigmoid":
        assert data.Y.shape == (1, workload.m)
    np.testing.assert_array_equal(bench.train_data(workload).X_rows, data.X_rows)  # seeded


def test_minibatch_floor_runs_the_gemms_of_every_batch(monkeypatch):
    data = bench.train_data(TINY)
    floor = bench.make_fit_implementation("floor")
    floor.setup(data, 1)
    seen = []
    original = type(floor.full).run

    def spy(self, X):
        seen.append(X.shape)
        return original(self, X)

    monkeypatch.setattr(type(floor.full), "run", spy)
    floor.run()
    # 150 = 4 x 32 + 22, twice
    assert seen == ([(6, 32)] * 4 + [(6, 22)]) * 2
    last = floor.rest
    np.testing.assert_allclose(last.As[1], last.Ws[0] @ data.X_rows[128:].T)
    np.testing.assert_allclose(last.dWs[0], last.dZs[0] @ data.X_rows[128:])


@pytest.mark.parametrize("workload", LEARNABLE, ids=["softmax", "sigmoid"])
def test_each_backend_fit_trains(backend, workload):
    data = bench.train_data(workload)
    impl = bench.make_fit_implementation(backend)
    impl.setup(data, 1)
    impl.run()
    assert impl.accuracy() > 0.6


@pytest.mark.parametrize("name", _fit_peer_params())
@pytest.mark.parametrize("workload", LEARNABLE, ids=["softmax", "sigmoid"])
def test_each_peer_fit_trains(name, workload):
    data = bench.train_data(workload)
    impl = bench.make_fit_implementation(name)
    impl.setup(data, 1)
    impl.run()
    assert impl.accuracy() > 0.6, name


def test_compare_train_times_fits_and_reports_missing_ones(monkeypatch):
    monkeypatch.setitem(bench.TRAIN_WORKLOADS, "tiny", TINY)

    class Missing(bench_train.TorchFit):
        def setup(self, data, threads):
            raise ImportError("No module named 'torch'")

    monkeypatch.setitem(bench_train.FIT_PEERS, "torch", Missing)
    rows, info = bench.compare_train(["tiny"], include=["numpy", "auto", "torch", "floor"],
                                     repeats=2, threads=1, log=lambda s: None)
    by_name = {r.name.split(" → ")[0]: r for r in rows}
    assert by_name["pytorch (cpu)"].status.startswith("missing: ImportError")
    for name in ("chainrule[numpy]", "chainrule[auto", "bare GEMMs (floor)"):
        r = next(r for key, r in by_name.items() if key.startswith(name))
        assert r.status == "ok" and 0 < r.best <= r.median and r.q1 <= r.median <= r.q3
        assert r.steps == TINY.steps == 10
    assert by_name["chainrule[numpy]"].accuracy > 0.6
    auto = next(r for r in rows if r.name.startswith("chainrule[auto"))
    assert auto.name.split(" → ")[1].rstrip("]") in registry.available_backends()
    two = [(rows, info), (rows, dict(info, threads=0))]
    text = bench.markdown_train(two)
    assert "| 1 thread s | × peer | × floor | default threads s |" in text
    assert "speed-up" in text and "1.00×" in text and info["cpu"] in text
    fits, scores = text.split("`score(X, Y)` of the training data alone", 1)
    assert fits.count("| tiny 150×6 [6, 8, 3] f64 |") == len(rows)
    seconds = info["scores"]["tiny"]["seconds"]
    assert seconds["products"] > 0 and "chainrule[numpy]" in seconds
    assert "| tiny 150×6 [6, 8, 3] f64 | products |" in scores
    assert scores.count("| tiny 150×6 [6, 8, 3] f64 | chainrule[numpy] |") == 2  # both runs
    assert bench_train.rows_from_json(bench_train.rows_to_json(rows)) == rows


def test_bench_cli_train_quick_writes_the_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(bench.TRAIN_WORKLOADS, "tiny", TINY)
    out = tmp_path / "train.md"
    rc = cli.main(["bench", "--train", "--quick", "--workloads", "tiny", "--impls",
                   "numpy,floor", "--threads", "1", "--repeats", "1", "--output", str(out)])
    assert rc == 0
    text = out.read_text()
    assert text in capsys.readouterr().out
    assert "chainrule[numpy]" in text and "bare GEMMs (floor)" in text and "1 thread s" in text


def test_bench_cli_train_refuses_unknown_names_and_bad_threads(capsys):
    assert cli.main(["bench", "--train", "--workloads", "imagenet", "-o", "-"]) == 2
    assert cli.main(["bench", "--train", "--impls", "tensorflow", "-o", "-"]) == 2
    assert cli.main(["bench", "--threads", "1,2", "-o", "-"]) == 2
    assert "unknown" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--threads", "-1"])


def test_calibrate_measures_the_training_loop():
    grid = dict(widths=(4,), ms=(8,), dtypes=("float64",), depth=1, workloads=())
    table = bench.calibrate(grid, repeats=1, target_s=1e-4, log=lambda s: None)
    assert table["measure"] == "fit"
    (cell,) = table["cells"]
    assert set(cell["seconds"]) == set(registry.available_backends())
    assert all(0 < s < 1 for s in cell["seconds"].values())
    with pytest.raises(ValueError, match="measure"):
        bench.calibrate(grid, measure="epoch")


def test_bench_cli_calibrate_stores_this_machines_wisdom(tmp_path, monkeypatch, capsys):
    from chainrule import _wisdom
    from chainrule.bench import cli as bench_cli

    where = tmp_path / "wisdom.json"
    monkeypatch.setenv("CHAINRULE_WISDOM", str(where))
    monkeypatch.setattr(bench_cli, "QUICK_CALIBRATION_GRID",
                        dict(widths=(4,), ms=(8,), dtypes=("float64",), depth=1, workloads=()))
    monkeypatch.setattr(bench_cli, "first_use_seconds",
                        lambda: {"numba": {"cold": 2.5, "warm": 0.25}})
    assert cli.main(["bench", "--calibrate", "--repeats", "1"]) == 0
    assert str(where) in capsys.readouterr().out
    _wisdom._cache.clear()
    record = _wisdom.load()
    assert record["first_use_seconds"] == {"numba": {"cold": 2.5, "warm": 0.25}}
    assert record["table"]["cells"][0]["width"] == 4


@pytest.mark.skipif("c" not in registry.available_backends(), reason="the C backend is missing")
def test_c_blas_threshold_times_loops_and_blas_and_restores_the_source():
    from chainrule.backends import c as cb
    from chainrule.bench.calibrate import c_blas_threshold

    before = {k: cb.blas_info()[k] for k in ("source", "threshold")}
    rows = c_blas_threshold(rounds=1, sources=("numpy",), shapes=((2, 3, 4),),
                            dtypes=("float64",), log=lambda s: None)
    assert [(r["blas"], r["macs"]) for r in rows] == [("numpy", 24)]
    assert rows[0]["loops_us"] > 0 and rows[0]["blas_us"] > 0
    assert {k: cb.blas_info()[k] for k in ("source", "threshold")} == before


def test_fit_rows_say_threads_and_batch_norm_and_auto_reads_them():
    rows = bench.fit_networks(("digits",), threads=(1,), repeats=1, target_s=1e-4,
                              log=lambda s: None)
    assert [(r["workload"], r["threads"], r["batch_norm"], r["m"]) for r in rows] == \
        [("digits", 1, False, 64)]
    assert set(rows[0]["seconds"]) == set(registry.available_backends())
    # a table where c wins one thread without batch norm, numba two threads and batch norm
    dims = [784, 128, 64, 10]

    def row(threads, bn, c, numba):
        return dict(layer_dims=dims, m=128, dtype="float32", threads=threads, batch_norm=bn,
                    seconds={"numpy": 1.0, "c": c, "numba": numba})

    table = dict(backends=["numpy", "numba", "c"], threads=1, cells=[], networks=[
        row(1, False, 0.5, 0.6), row(2, False, 0.6, 0.5), row(1, True, 0.7, 0.6),
        row(2, True, 0.7, 0.6)])
    both = ["numpy", "numba", "c"]
    pick = lambda **kw: auto.auto_rule(dims, 128, np.float32, both, table=table, **kw)  # noqa: E731
    assert pick(threads=1) == "c"
    assert pick(threads=2) == "numba"
    assert pick(threads=16) == "numba"  # the nearest measured count
    assert pick() == "c"  # unknown threads (a single step): the fewest measured
    assert pick(threads=1, batch_norm=True) == "numba"
    # a table without such rows: threads and batch norm change nothing
    old = dict(table, networks=[dict(r, threads=None) for r in table["networks"][:1]])
    old["networks"][0].pop("threads")
    old["networks"][0].pop("batch_norm")
    assert auto.auto_rule(dims, 128, np.float32, both, table=old, threads=2) == "c"


def test_scores_and_fits_settle_alike_with_several_threads(monkeypatch):
    """With several threads every timed score starts after the fits' pause (a BLAS pool
    still spinning from the products before took a core from it); with one, none waits."""
    monkeypatch.setitem(bench.TRAIN_WORKLOADS, "tiny", TINY)
    pauses = []
    monkeypatch.setattr(bench_train.time, "sleep", pauses.append)
    data = bench_train.train_data(TINY)
    impl = bench_train.make_fit_implementation("numpy")
    impl.setup(data, 1)
    impl.run()
    seconds = bench_train.time_scores([impl], data, repeats=2, settle=0.2)
    assert set(seconds) == {"products", "chainrule[numpy]"}
    assert pauses == [0.2] * (2 * (2 * 2 + 1))  # every timed call of both, none untimed
    pauses.clear()
    bench_train.time_scores([impl], data, repeats=2)
    assert pauses == []
    rows, info = bench.compare_train(["tiny"], include=["numpy", "floor"], repeats=1,
                                     threads=0, log=lambda s: None)
    assert pauses and set(pauses) == {bench_train.SETTLE_SECONDS}
    text = bench.markdown_train([(rows, info)])
    assert f"each after {bench_train.SETTLE_SECONDS:g} s idle as the fits" in text
