"""A cold numba cache is counted against the work at hand (``chainrule._coldstart``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chainrule import _coldstart, _dispatch

SECONDS = {"numpy": 100e-6, "numba": 8e-6, "c": 12e-6}


def _pick(candidates):
    """The table's rule in miniature: the fastest measured candidate."""
    return min(candidates, key=lambda b: SECONDS[b])


def _cold(*backends):
    return lambda b: 1.0 if b in backends else 0.0


def test_a_warm_backend_is_chosen_by_the_table_alone():
    pick = _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, steps=1,
                             cold=_cold(), compile_seconds={"numba": 15.0})
    assert pick == "numba"


def test_a_cold_backend_is_passed_over_when_its_gain_does_not_pay_for_compiling():
    # the main job: 10000 full-batch steps, 4 µs saved each, against 15 s of compiling
    pick = _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, steps=10_000,
                             cold=_cold("numba"), compile_seconds={"numba": 15.0})
    assert pick == "c"
    # without c, the next pick is numpy: 92 µs × 10000 = 0.92 s, still below 15 s
    assert _coldstart.choose(["numpy", "numba"], _pick, SECONDS, 10_000, _cold("numba"),
                             {"numba": 15.0}) == "numpy"


def test_a_cold_backend_is_chosen_when_the_work_pays_for_compiling():
    steps = int(15.0 / 4e-6) + 1000
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, steps, _cold("numba"),
                             {"numba": 15.0}) == "numba"


def test_a_partly_warm_cache_costs_its_fraction():
    # half the kernels compiled: 7.5 s, paid back by 2e6 steps of 4 µs (8 s) but not 1e6
    cold = lambda b: 0.5 if b == "numba" else 0.0  # noqa: E731
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 2_000_000, cold,
                             {"numba": 15.0}) == "numba"
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 1_000_000, cold,
                             {"numba": 15.0}) == "c"


def test_unknown_steps_or_seconds_never_pay_for_compiling():
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, None, _cold("numba"),
                             {"numba": 15.0}) == "c"
    assert _coldstart.choose(["numpy", "numba"], _pick, {"numpy": 1.0}, 10**9,
                             _cold("numba"), {"numba": 15.0}) == "numpy"


def test_numpy_is_always_left():
    assert _coldstart.choose(["numpy", "numba", "c"], _pick, SECONDS, 0, _cold("numba", "c"),
                             {"numba": 15.0, "c": 15.0}) == "numpy"


def test_backends_without_a_compiler_are_never_cold():
    assert _coldstart.cold_fraction("numpy") == 0.0
    assert _coldstart.cold_fraction("c") == 0.0


@pytest.mark.skipif("numba" not in _dispatch.available_backends(), reason="numba is missing")
def test_an_empty_numba_cache_is_cold(tmp_path):
    code = ("from chainrule import _coldstart; "
            "print(_coldstart.numba_cold_fraction(), _coldstart.numba_cache_is_warm())")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["1.0", "False"]


@pytest.mark.skipif("numba" not in _dispatch.available_backends(), reason="numba is missing")
def test_kernels_compiled_in_this_process_are_warm():
    import numpy as np

    from chainrule import Network

    X = np.random.default_rng(0).random((2, 8))
    Y = (X[:1] > 0.5).astype(float)
    Network([2, 3, 1], backend="numba").fit(X, Y, epochs=2, progress=False)
    before = _coldstart.numba_cold_fraction()
    assert 0.0 <= before < 1.0
    for kernel in _coldstart._kernels():  # every cached kernel: compiled or indexed
        if hasattr(getattr(kernel, "_cache", None), "_cache_file") and not kernel.signatures:
            if not os.path.exists(kernel._cache._cache_file._index_path):
                break
    else:
        assert _coldstart.numba_cache_is_warm()
