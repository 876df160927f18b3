"""This machine's calibration of ``backend="auto"`` ("wisdom", as FFTW calls it).

The table shipped with chainrule was measured on one CPU; ``chainrule bench --calibrate``
measures the same table on the user's machine and stores it here, in the user's cache
directory (``platformdirs.user_cache_dir("chainrule")``, else ``$XDG_CACHE_HOME/chainrule``
or ``~/.cache/chainrule``), as JSON::

    {"format": 1, "cpu": "<model name>", "versions": {"chainrule": ..., "numpy": ...},
     "date": ..., "table": {<the shipped table's layout>},
     "first_use_seconds": {"numba": {"cold": <s>, "warm": <s>}},
     "c_blas": {"source": "mkl", "reason": "...", "seconds": {...}}}

(``first_use_seconds``: what numba's first use costs a first fit with an empty and with a
warm cache, beyond the C backend's first fit; see ``chainrule._coldstart``. ``c_blas``: the
BLAS the C backend's ``CHAINRULE_C_BLAS=auto`` takes first on this machine, measured
against the others that load, see ``chainrule.bench.calibrate.c_blas_choice``).

``auto`` reads it when present. It is ignored, with a warning, when it cannot be read or
parsed, has another ``format``, was measured on another CPU or by another chainrule
version (kernels change between versions). ``CHAINRULE_WISDOM=<path>`` moves it,
``CHAINRULE_WISDOM=0`` turns it off. This module imports nothing of chainrule, so the
dispatch can import it.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import warnings

FORMAT = 1
FILENAME = "auto-wisdom.json"

_cache = {}


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_dirs = {}


def cache_dir():
    """chainrule's folder in the user's cache directory (found once per ``$HOME`` and
    ``$XDG_CACHE_HOME``: ``auto`` asks at every public call)."""
    key = (os.environ.get("HOME"), os.environ.get("XDG_CACHE_HOME"))
    if key not in _dirs:
        _dirs[key] = _find_cache_dir()
    return _dirs[key]


def _find_cache_dir():
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        return os.path.join(base, "chainrule")
    return user_cache_dir("chainrule", appauthor=False)


def path():
    """Where the wisdom lives, or ``None`` when ``CHAINRULE_WISDOM=0`` turns it off."""
    env = os.environ.get("CHAINRULE_WISDOM", "").strip()
    if env.lower() in ("0", "off", "false", "no"):
        return None
    return env or os.path.join(cache_dir(), FILENAME)


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    try:  # not ``chainrule.__version__``: the dispatch imports this module (no circle)
        chainrule = version("chainrule")
    except PackageNotFoundError:
        chainrule = "0.0.0+unknown"
    return {"chainrule": chainrule, "numpy": numpy.__version__}


def make(table, first_use_seconds=None, note="", c_blas=None):
    """The wisdom record for ``table`` measured on this machine now."""
    import datetime

    record = {"format": FORMAT, "cpu": cpu_model(), "versions": _versions(),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                  "%Y-%m-%d %H:%M UTC"),
              "note": note, "table": table,
              "first_use_seconds": dict(first_use_seconds or {})}
    if c_blas is not None:
        record["c_blas"] = dict(c_blas)
    return record


def save(record, where=None):
    """Write ``record`` atomically (a temporary file renamed over the old one: a failed
    write leaves the previous wisdom as it was). Returns the path."""
    where = where or path()
    if where is None:
        raise ValueError("CHAINRULE_WISDOM=0: wisdom is turned off, nowhere to write it")
    folder = os.path.dirname(os.path.abspath(where))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".wisdom-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.replace(tmp, where)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _cache.clear()
    return where


def _problem(record):
    """Why ``record`` cannot be used on this machine, or ``None``."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        return f"format {found!r}, expected {FORMAT}"
    table = record.get("table")
    if not isinstance(table, dict) or not isinstance(table.get("cells"), list) \
            or not isinstance(table.get("backends"), list):
        return "no table of cells and backends in it"
    if record.get("cpu") != cpu_model():
        return f"measured on another CPU ({record.get('cpu')!r}, this one is {cpu_model()!r})"
    version = _versions()["chainrule"]
    if record.get("versions", {}).get("chainrule") != version:
        return (f"measured with chainrule {record.get('versions', {}).get('chainrule')}, "
                f"this is {version}")
    return None


def load(where=None):
    """The wisdom record for this machine, or ``None`` (absent, turned off, or unusable:
    then a ``RuntimeWarning`` says why, once per file and process)."""
    where = where or path()
    if where is None or not os.path.exists(where):
        return None
    try:
        stamp = os.stat(where).st_mtime_ns
    except OSError:
        stamp = None
    key = (where, stamp)
    if key in _cache:
        return _cache[key]
    try:
        with open(where) as f:
            record = json.load(f)
        problem = _problem(record)
    except (OSError, ValueError) as exc:
        problem = f"unreadable ({type(exc).__name__}: {exc})"
    if problem is not None:
        warnings.warn(f"chainrule: ignoring the auto calibration in {where}: {problem}; "
                      "rerun `python -m chainrule bench --calibrate` to measure this machine",
                      RuntimeWarning, stacklevel=2)
        record = None
    _cache[key] = record
    return record


def table(default, where=None):
    """The calibrated table of this machine if there is one, else ``default`` (the shipped
    table)."""
    record = load(where)
    return default if record is None else record["table"]


def first_use_seconds(default, where=None):
    """``{backend: {"cold": s, "warm": s}}``: what a backend's first use costs with a cold
    and a warm compile cache, this machine's measurement where there is one, else
    ``default``."""
    record = load(where)
    out = dict(default)
    if record is not None:
        for backend, costs in record.get("first_use_seconds", {}).items():
            try:
                out[backend] = {"cold": float(costs["cold"]), "warm": float(costs["warm"])}
            except (KeyError, TypeError, ValueError):
                continue  # a malformed entry: the default stays
    return out


def c_blas(where=None):
    """The BLAS source (``"numpy"``, ``"scipy"``, ``"mkl"``) this machine's calibration found
    fastest for the C backend, or ``None`` (no usable wisdom, or none recorded)."""
    record = load(where)
    if record is None:
        return None
    source = record.get("c_blas", {})
    source = source.get("source") if isinstance(source, dict) else None
    return source if isinstance(source, str) else None
