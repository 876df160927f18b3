"""This machine's calibration of ``auto`` (``chainrule._wisdom``): where it lives, what it
holds, and that anything unusable is ignored with a warning, never trusted."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from chainrule import __version__, _wisdom

TABLE = dict(backends=["numpy", "c"], grid=dict(depth=1), cells=[
    dict(width=4, m=16, dtype="float64", seconds={"numpy": 2.0, "c": 1.0})])
SHIPPED = dict(backends=["numpy"], cells=[])


@pytest.fixture
def where(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "chainrule" / _wisdom.FILENAME
    monkeypatch.setenv("CHAINRULE_WISDOM", str(path))
    _wisdom._cache.clear()
    return path


def test_cache_dir_is_the_user_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("CHAINRULE_WISDOM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # platformdirs honours it on Linux
    assert _wisdom.path() == os.path.join(_wisdom.cache_dir(), _wisdom.FILENAME)
    assert "chainrule" in _wisdom.cache_dir()
    monkeypatch.setenv("CHAINRULE_WISDOM", "0")
    assert _wisdom.path() is None
    assert _wisdom.load() is None


def test_save_then_load_round_trips_with_cpu_and_versions(where):
    record = _wisdom.make(TABLE, {"numba": {"cold": 3.5, "warm": 0.5}}, note="test")
    assert record["cpu"] == _wisdom.cpu_model()
    assert record["versions"]["chainrule"] == __version__ and "numpy" in record["versions"]
    assert _wisdom.save(record) == str(where)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _wisdom.load() == json.loads(where.read_text())
        assert _wisdom.table(SHIPPED) == TABLE
        default = {"numba": {"cold": 15.0, "warm": 1.0}, "x": {"cold": 1.0, "warm": 0.0}}
        assert _wisdom.first_use_seconds(default) == {"numba": {"cold": 3.5, "warm": 0.5},
                                                      "x": {"cold": 1.0, "warm": 0.0}}


def test_absent_wisdom_gives_the_shipped_table_silently(where):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _wisdom.load() is None
        assert _wisdom.table(SHIPPED) is SHIPPED
        default = {"numba": {"cold": 15.0, "warm": 1.0}}
        assert _wisdom.first_use_seconds(default) == default


def test_a_malformed_first_use_entry_keeps_the_default(where):
    _wisdom.save(_wisdom.make(TABLE, {"numba": {"cold": "fast"}}))
    default = {"numba": {"cold": 15.0, "warm": 1.0}}
    assert _wisdom.first_use_seconds(default) == default


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.update(cpu="Some Other CPU 9000"), "another CPU"),
    (lambda r: r.update(format=_wisdom.FORMAT + 1), "format"),
    (lambda r: r["versions"].update(chainrule="0.0.0-other"), "chainrule 0.0.0-other"),
    (lambda r: r.update(table={"cells": "nonsense"}), "no table"),
])
def test_wisdom_from_elsewhere_is_ignored_with_a_warning(where, change, reason):
    record = _wisdom.make(TABLE)
    change(record)
    _wisdom.save(record)
    with pytest.warns(RuntimeWarning, match=reason):
        assert _wisdom.table(SHIPPED) is SHIPPED
    with warnings.catch_warnings():  # once per file and process
        warnings.simplefilter("error")
        assert _wisdom.load() is None


def test_unreadable_wisdom_is_ignored_with_a_warning(where):
    where.parent.mkdir(parents=True)
    where.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert _wisdom.table(SHIPPED) is SHIPPED


def test_a_failed_save_keeps_the_previous_wisdom(where, monkeypatch):
    _wisdom.save(_wisdom.make(TABLE))
    before = where.read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_wisdom.json, "dump", broken)
    with pytest.raises(OSError, match="disk full"):
        _wisdom.save(_wisdom.make(SHIPPED))
    assert where.read_text() == before
    assert os.listdir(where.parent) == [where.name]  # no temporary file left behind


def test_save_refuses_when_wisdom_is_off(monkeypatch):
    monkeypatch.setenv("CHAINRULE_WISDOM", "0")
    with pytest.raises(ValueError, match="CHAINRULE_WISDOM=0"):
        _wisdom.save(_wisdom.make(TABLE))
