"""A backend's first-use cost (numba's compile or cache load) is counted against the work
at hand (``chainrule._coldstart``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chainrule import _coldstart
from chainrule.backends import auto, registry

SECONDS = {"numpy": 100e-6, "numba": 8e-6, "c": 12e-6}
HAS_NUMBA = "numba" in registry.available_backends()


def _pick(candidates):
    """The table's rule in miniature: the fastest measured candidate."""
    return min(candidates, key=lambda b: SECONDS[b])


def _cost(**seconds):
    return lambda b: seconds.get(b, 0.0)


def test_a_backend_without_a_first_use_cost_is_chosen_by_the_table_alone():
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 1, _cost()) == "numba"


def test_a_first_use_cost_the_gain_does_not_pay_for_passes_the_backend_over():
    # the main job: 10000 full-batch steps, 4 µs saved each, against 15 s of compiling
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 10_000,
                             _cost(numba=15.0)) == "c"
    # without c, the next pick is numpy: 92 µs x 10000 = 0.92 s, still below 15 s
    assert _coldstart.choose(["numpy", "numba"], _pick, SECONDS, 10_000,
                             _cost(numba=15.0)) == "numpy"
    # a warm cache's 1.2 s is not paid back by 0.04 s either
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 10_000,
                             _cost(numba=1.2)) == "c"


def test_a_first_use_cost_the_work_pays_for_is_paid():
    steps = int(15.0 / 4e-6) + 1000
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, steps,
                             _cost(numba=15.0)) == "numba"


def test_unknown_steps_or_seconds_never_pay_a_first_use_cost():
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, None,
                             _cost(numba=15.0)) == "c"
    assert _coldstart.choose(["numpy", "numba"], lambda c: "numba" if "numba" in c else "numpy",
                             {"numpy": 1.0}, 10**9, _cost(numba=15.0)) == "numpy"


def test_numpy_is_always_left():
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 0,
                             _cost(numba=15.0, c=15.0)) == "numpy"


def test_first_use_seconds_interpolates_between_warm_and_cold(monkeypatch):
    costs = {"numba": {"cold": 15.0, "warm": 1.0}}
    monkeypatch.setattr(_coldstart, "engine_compiled", lambda: False)
    for state, expected in [((0.0, 0.0, 1.0), 15.0), ((0.0, 1.0, 0.0), 1.0),
                            ((0.0, 0.5, 0.5), 8.0), ((0.5, 0.5, 0.0), 1.0),
                            ((1.0, 0.0, 0.0), 0.0)]:
        monkeypatch.setattr(_coldstart, "numba_kernel_state", lambda s=state: s)
        assert _coldstart.first_use_seconds("numba", costs) == pytest.approx(expected)
    assert _coldstart.first_use_seconds("c", costs) == 0.0
    assert _coldstart.first_use_seconds("numpy", costs) == 0.0


def test_installed_looks_without_importing():
    assert _coldstart.installed("numpy") and _coldstart.installed("c")
    if HAS_NUMBA:
        assert _coldstart.installed("numba")
    code = "import sys; from chainrule import _coldstart; _coldstart.installed('numba'); " \
           "print('numba' in sys.modules, 'scipy' in sys.modules)"
    assert _in_fresh_interpreter(code) == ["False", "False"]


def _in_fresh_interpreter(code, cache_dir=None):
    """``cache_dir=None``: the cache this test session uses (warm: nothing compiles)."""
    env = dict(os.environ) if cache_dir is None else dict(os.environ,
                                                          NUMBA_CACHE_DIR=str(cache_dir))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.split()


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is missing")
def test_an_empty_numba_cache_is_cold_and_numba_is_not_imported_to_see_it(tmp_path):
    code = ("import sys; from chainrule import _coldstart; "
            "print(*_coldstart.numba_kernel_state(), _coldstart.numba_cache_is_warm(), "
            "'numba' in sys.modules)")
    assert _in_fresh_interpreter(code, tmp_path) == ["0.0", "0.0", "1.0", "False", "False"]


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is missing")
def test_index_files_are_found_where_numba_writes_them():
    fit = ("import numpy as np; from chainrule import Network; "
           "X = np.random.default_rng(0).random((2, 8)); Y = (X[:1] > 0.5) * 1.0; "
           "Network([2, 3, 1], backend='numba').fit(X, Y, epochs=2, progress=False)")
    _in_fresh_interpreter(fit)
    code = ("from chainrule import _coldstart; "
            "print(_coldstart.any_index_file(), *_coldstart.numba_kernel_state())")
    found, compiled, cached, missing = _in_fresh_interpreter(code)
    assert found == "True" and float(compiled) == 0.0
    assert float(cached) > 0.0 and float(cached) + float(missing) == pytest.approx(1.0)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is missing")
def test_kernels_compiled_in_this_process_cost_nothing_more():
    import numpy as np

    from chainrule import Network

    X = np.random.default_rng(0).random((2, 8))
    Y = (X[:1] > 0.5).astype(float)
    Network([2, 3, 1], backend="numba").fit(X, Y, epochs=2, progress=False)
    compiled, cached, missing = _coldstart.numba_kernel_state()
    assert compiled > 0.0 and compiled + cached + missing == pytest.approx(1.0)


# --------------------------------------------------------------------------- auto: wisdom and first use
TABLE = dict(backends=["numpy", "numba", "c"], grid=dict(depth=1), cells=[
    dict(width=4, m=16, dtype="float64", seconds={"numpy": 100e-6, "numba": 8e-6, "c": 12e-6})])


def _loader(loaded, fails=()):
    def load(backend):
        loaded.append(backend)
        return backend not in fails
    return load


@pytest.fixture
def numba_found(monkeypatch):
    monkeypatch.setattr(_coldstart, "installed", lambda b: True)


def test_auto_passes_over_a_costly_first_use_without_importing_it(monkeypatch, numba_found):
    monkeypatch.setattr(auto, "_first_use_cost", lambda b: 15.0 if b == "numba" else 0.0)
    monkeypatch.setattr(auto, "_AUTO_PREDICATES", {})
    loaded = []
    pick = auto.choose([4, 4, 1], 16, "float64", _loader(loaded), ("numpy", "numba", "c"),
                       steps=10_000, table=TABLE)
    assert pick == "c" and "numba" not in loaded
    assert auto.choose([4, 4, 1], 16, "float64", _loader(loaded), ("numpy", "numba", "c"),
                       table=TABLE) == "c"  # steps unknown: nothing to gain
    pick = auto.choose([4, 4, 1], 16, "float64", _loader(loaded), ("numpy", "numba", "c"),
                       steps=10**7, table=TABLE)  # 40 s saved
    assert pick == "numba" and "numba" in loaded


def test_auto_without_a_first_use_cost_follows_the_table(monkeypatch, numba_found):
    monkeypatch.setattr(auto, "_first_use_cost", lambda b: 0.0)
    monkeypatch.setattr(auto, "_AUTO_PREDICATES", {})
    assert auto.choose([4, 4, 1], 16, "float64", _loader([]), ("numpy", "numba", "c"),
                       table=TABLE) == "numba"


def test_auto_falls_back_when_the_chosen_backend_does_not_import(monkeypatch, numba_found):
    monkeypatch.setattr(auto, "_first_use_cost", lambda b: 1.0 if b == "numba" else 0.0)
    monkeypatch.setattr(auto, "_AUTO_PREDICATES", {})
    pick = auto.choose([4, 4, 1], 16, "float64", _loader([], fails=("numba",)),
                       ("numpy", "numba", "c"), steps=10**7, table=TABLE)
    assert pick == "c"


def test_auto_reads_this_machines_wisdom(monkeypatch, tmp_path):
    from chainrule import _wisdom

    monkeypatch.setenv("CHAINRULE_WISDOM", str(tmp_path / "wisdom.json"))
    _wisdom._cache.clear()
    assert auto.current_table() is auto._auto_table()
    mine = dict(TABLE, backends=["numpy"], cells=[dict(TABLE["cells"][0],
                                                       seconds={"numpy": 1.0})])
    _wisdom.save(_wisdom.make(mine))
    assert auto.current_table() == mine
    assert auto.seconds_per_step([4, 4, 1], 16, "float64", mine) == {"numpy": 1.0}


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is missing")
def test_fit_tells_auto_its_steps(monkeypatch):
    import numpy as np

    from chainrule import Network

    table = dict(backends=["numpy", "numba"], grid=dict(depth=1), cells=[
        dict(width=w, m=m, dtype="float64", seconds={"numpy": 1.0, "numba": 0.001})
        for w in (2, 4) for m in (8, 16)])
    monkeypatch.setattr(auto, "current_table", lambda: table)
    monkeypatch.setattr(auto, "_first_use_cost", lambda b: 5.0 if b == "numba" else 0.0)
    monkeypatch.setattr(auto, "_AUTO_PREDICATES", {})
    monkeypatch.delenv("CHAINRULE_BACKEND", raising=False)
    X = np.random.default_rng(0).random((2, 16))
    Y = (X[:1] > 0.5).astype(float)
    net = Network([2, 3, 1])
    assert net.backend != "numba"  # steps unknown: nothing to gain yet
    net.fit(X, Y, epochs=2, progress=False)  # 2 steps save ~2 s < 5 s
    assert net.backend == "numpy"
    net.fit(X, Y, epochs=3, mini_batch_size=8, progress=False)  # 6 steps save ~6 s > 5 s
    assert net.backend == "numba"


def test_a_process_whose_numba_engine_runs_pays_no_first_use(monkeypatch):
    """Once numba's training engine is compiled in the process, another fit's first-use
    charge is nothing (its kernels' state no longer matters)."""
    costs = {"numba": {"cold": 15.0, "warm": 1.0}}
    monkeypatch.setattr(_coldstart, "numba_kernel_state", lambda: (0.3, 0.7, 0.0))
    monkeypatch.setattr(_coldstart, "engine_compiled", lambda: False)
    assert _coldstart.first_use_seconds("numba", costs) == pytest.approx(1.0)
    monkeypatch.setattr(_coldstart, "engine_compiled", lambda: True)
    assert _coldstart.first_use_seconds("numba", costs) == 0.0


def test_engine_compiled_reads_the_engine_without_importing_numba():
    import subprocess
    import sys

    code = ("import sys; from chainrule import _coldstart; "
            "print(_coldstart.engine_compiled(), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_engine_compiled_after_a_numba_fit():
    import numpy as np

    import chainrule
    from chainrule import Network

    if "numba" not in chainrule.available_backends():
        pytest.skip("numba is not installed")
    net = Network([2, 3, 1], backend="numba")
    net.fit(np.ones((2, 4)), np.array([[0.0, 1.0, 0.0, 1.0]]), epochs=1, progress=False)
    assert _coldstart.engine_compiled()
