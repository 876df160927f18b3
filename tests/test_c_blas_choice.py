"""The C backend's BLAS on this machine: measured by ``chainrule bench --calibrate``
(``calibrate.c_blas_choice``), stored in the wisdom, taken by ``CHAINRULE_C_BLAS=auto``."""

from __future__ import annotations

import pytest

from chainrule import _wisdom

cb = pytest.importorskip("chainrule.backends.c")

TABLE = dict(backends=["numpy", "c"], grid=dict(depth=1), cells=[
    dict(width=4, m=16, dtype="float64", seconds={"numpy": 2.0, "c": 1.0})])


@pytest.fixture
def where(tmp_path, monkeypatch):
    path = tmp_path / _wisdom.FILENAME
    monkeypatch.setenv("CHAINRULE_WISDOM", str(path))
    _wisdom._cache.clear()
    yield path
    _wisdom._cache.clear()


@pytest.fixture
def restore_blas():
    before = cb.blas.current["source"]
    yield
    cb.use_blas(before)


def _loads(source):
    try:
        cb.use_blas(source)
    except ImportError:
        return False
    return True


def test_auto_takes_the_measured_blas_first(where, restore_blas):
    if not _loads("scipy"):
        pytest.skip("SciPy's BLAS does not load here")
    _wisdom.save(_wisdom.make(TABLE, c_blas=dict(source="scipy", reason="test")))
    assert _wisdom.c_blas() == "scipy"
    assert cb.use_blas("auto") == "scipy"


def test_a_measured_blas_that_does_not_load_falls_back_to_the_usual_order(where, restore_blas,
                                                                          monkeypatch):
    from chainrule.backends.c import blas

    def missing():
        raise ImportError("libmkl_rt not found: pip install mkl")

    monkeypatch.setitem(blas._BLAS_SOURCES, "mkl", missing)
    monkeypatch.delitem(blas._loaded_blas, "mkl", raising=False)
    _wisdom.save(_wisdom.make(TABLE, c_blas=dict(source="mkl", reason="test")))
    expected = next(s for s in ("numpy", "scipy") if _loads(s))
    assert cb.use_blas("auto") == expected


def test_without_wisdom_auto_keeps_the_usual_order(where, restore_blas):
    assert _wisdom.c_blas() is None
    expected = next(s for s in ("numpy", "scipy", "mkl") if _loads(s))
    assert cb.use_blas("auto") == expected


def test_c_blas_choice_measures_every_source_that_loads_and_says_why(restore_blas):
    from chainrule.bench.calibrate import C_BLAS_MARGIN, c_blas_choice

    before = cb.blas.current["source"]
    lines = []
    choice = c_blas_choice(problems=("planar",), rounds=1, calls=1, log=lines.append)
    assert cb.blas.current["source"] == before  # restored
    loaded = [s for s in ("numpy", "scipy", "mkl") if _loads(s)]
    assert set(choice["seconds"]) == set(loaded)
    assert choice["source"] in loaded and choice["reason"] and lines
    default = loaded[0]
    if choice["source"] != default:  # only when measured faster by the margin
        pick = choice["seconds"][choice["source"]]["planar"]
        assert pick <= C_BLAS_MARGIN * choice["seconds"][default]["planar"]
