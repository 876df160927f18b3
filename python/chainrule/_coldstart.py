"""A first run that does not wait for a compiler it can avoid.

numba compiles chainrule's kernels on their first use and caches them on disk; with a cold
cache the main job (``python -m chainrule train``) spent about 15 s of its 17.5 s compiling
for 0.6 s of training, while the C backend (compiled at install) ran it in 1.06 s. Even a
warm cache costs a first use something (importing numba, loading and linking the cached
kernels). So ``auto`` counts that first-use cost against the work at hand:

    pick a backend with a first-use cost only if
        steps × (seconds per step of the next pick − its own) > its first-use seconds

with the seconds per step from the calibration table (this machine's wisdom, else the
shipped one). Otherwise the next pick is taken, and so on down to NumPy, which costs
nothing (nor does C: compiled at install). numba's first-use seconds are

    warm + (cold − warm) × the fraction of chainrule.core's cached kernels not yet cached

(``first_use_seconds``), 0 once every kernel is compiled in this process, with ``cold`` and
``warm`` measured by ``chainrule bench --calibrate`` (the first fit with an empty, then a
warm cache, minus the C backend's first fit, each in a fresh interpreter) or
``DEFAULT_FIRST_USE_SECONDS``. A cache is found by numba's index files (``.nbi``) where its
cache locator looks; with none there at all, numba is not even imported to find out.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import pkgutil
import sys
import time

#: First-use seconds where this machine has not measured them (``--calibrate`` does): the
#: main job on a fresh install (issue 12 §7, 2-core AMD EPYC: ~15 s of 17.5 s compiling);
#: a warm cache measured here at 1.2 s (numba's import, loading the kernels).
DEFAULT_FIRST_USE_SECONDS = {"numba": {"cold": 15.0, "warm": 1.2}}


#: The packages a backend with a first-use cost needs (found without importing them).
REQUIRES = {"numba": ("numba", "scipy")}


@functools.lru_cache(maxsize=None)
def installed(backend):
    """Whether ``backend``'s packages are installed (``find_spec``: nothing is imported;
    looked up once per process: ``auto`` asks at every public call)."""
    return all(importlib.util.find_spec(name) is not None
               for name in REQUIRES.get(backend, ()))


def _core_dir():
    spec = importlib.util.find_spec("chainrule.core")
    return None if spec is None else list(spec.submodule_search_locations)[0]


def _index_dirs(core_dir):
    """Where numba's cache locators may keep ``chainrule.core``'s index files (without
    importing numba): ``NUMBA_CACHE_DIR`` (then only there), else ``__pycache__`` beside
    the sources and the user-wide cache."""
    import hashlib

    # numba's _CacheLocator.get_suitable_cache_subpath of a file in core_dir
    subpath = "_".join([os.path.basename(core_dir),
                        hashlib.sha1(core_dir.encode()).hexdigest()])
    user_dir = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    if user_dir:
        return [os.path.join(user_dir, subpath)]
    try:
        from platformdirs import user_cache_dir
        user_wide = user_cache_dir("numba", appauthor=False)
    except ImportError:
        user_wide = os.path.join(os.path.expanduser("~"), ".cache", "numba")
    return [os.path.join(core_dir, "__pycache__"), os.path.join(user_wide, subpath)]


def any_index_file():
    """Whether any numba index file of ``chainrule.core`` exists (numba not imported)."""
    core_dir = _core_dir()
    if core_dir is None:
        return False
    for folder in _index_dirs(os.path.abspath(core_dir)):
        try:
            if any(name.endswith(".nbi") for name in os.listdir(folder)):
                return True
        except OSError:
            continue
    return False


_found_kernels = []


def _kernels():
    """The dispatchers of every module of ``chainrule.core`` (imports numba; found once)."""
    if _found_kernels:
        return _found_kernels
    import chainrule.core as core
    from numba.core.dispatcher import Dispatcher

    found = []
    for info in pkgutil.iter_modules(core.__path__, core.__name__ + "."):
        module = sys.modules.get(info.name) or importlib.import_module(info.name)
        found += [v for v in vars(module).values() if isinstance(v, Dispatcher)]
    _found_kernels[:] = found
    return found


#: How long a measured kernel state is reused while no kernel compiled in this process
#: (index files written by another process meanwhile are seen after it). ``auto`` asks at
#: every public call; stating every kernel's index file took ~5 ms of a 1 ms tabular
#: score on the shared 2-core machine.
STATE_SECONDS = 5.0
_state = {"key": None, "time": -math.inf, "value": None}


def numba_kernel_state():
    """``(compiled, cached, missing)`` fractions of ``chainrule.core``'s cached kernels:
    compiled in this process, with their index file (``.nbi``) where numba's cache
    locator looks, neither. ``(0, 0, 1)`` when caching is off or numba's internals cannot
    be read; without any index file at all, numba is not imported to find out. Reused for
    ``STATE_SECONDS`` while nothing compiles in this process."""
    if "numba" not in sys.modules and not any_index_file():
        return 0.0, 0.0, 1.0
    if _state["value"] is not None and _state["value"][0] == 1.0:
        return _state["value"]  # every kernel compiled in this process: nothing more to pay
    try:
        key = (os.environ.get("NUMBA_CACHE_DIR", ""),
               tuple(len(k.signatures) for k in _kernels()))
    except ImportError:
        return 0.0, 0.0, 1.0
    now = time.monotonic()
    if _state["key"] == key and now - _state["time"] < STATE_SECONDS:
        return _state["value"]
    value = _measure_kernel_state()
    _state.update(key=key, time=now, value=value)
    return value


def _measure_kernel_state():
    try:
        kernels = _kernels()
        from chainrule.core import _config
    except ImportError:
        return 0.0, 0.0, 1.0
    if not _config.CACHE_WANTED or _config.UNCACHED:
        compiled = sum(bool(k.signatures) for k in kernels) / max(len(kernels), 1)
        return compiled, 0.0, 1.0 - compiled  # compiled in memory in every process
    # Only ``kernel``s have a disk cache; ``inline`` helpers compile into their callers.
    cached = [k for k in kernels if hasattr(getattr(k, "_cache", None), "_cache_file")]
    if not cached:
        return 0.0, 0.0, 1.0
    counts = [0, 0, 0]
    for kernel in cached:
        if kernel.signatures:
            counts[0] += 1
            continue
        try:
            index = kernel._cache._cache_file._index_path
        except AttributeError:  # another numba's internals
            return 0.0, 0.0, 1.0
        counts[1 if os.path.exists(index) else 2] += 1
    return tuple(c / len(cached) for c in counts)


def numba_cache_is_warm():
    """True when no kernel of ``chainrule.core`` would compile on first use."""
    return numba_kernel_state()[2] == 0.0


def engine_compiled():
    """Whether numba's training engine (``chainrule.core.train.fit_epochs``, what every fit
    and ``Network.step`` run, and the bulk of numba's first-use cost) has been compiled or
    loaded in this process: numba is imported and the engine loaded, so another fit pays at
    most a load of another signature from the cache. Never imports numba."""
    train = sys.modules.get("chainrule.core.train")
    engine = getattr(train, "fit_epochs", None)
    return bool(getattr(engine, "signatures", None))


def first_use_seconds(backend, costs=None):
    """Seconds the first use of ``backend`` in this process is expected to cost beyond its
    steps (``costs``: ``{backend: {"cold": s, "warm": s}}``, default
    ``DEFAULT_FIRST_USE_SECONDS``)."""
    costs = DEFAULT_FIRST_USE_SECONDS if costs is None else costs
    if backend != "numba" or backend not in costs:
        return 0.0  # numpy and c: nothing to compile (c is compiled at install)
    if engine_compiled():
        return 0.0  # numba's training engine already runs in this process: paid
    compiled, cached, missing = numba_kernel_state()
    if compiled == 1.0:
        return 0.0
    cold, warm = float(costs[backend]["cold"]), float(costs[backend]["warm"])
    return warm + (cold - warm) * missing


def choose(candidates, pick, seconds, steps, cost=first_use_seconds):
    """The backend to use for ``steps`` training steps.

    Parameters
    ----------
    candidates : list of str
        Backends that may be used (``"numpy"`` among them).
    pick : callable
        ``pick(candidates) -> backend``: the table's rule (fastest measured, never slower
        than NumPy) among some of the candidates.
    seconds : dict
        ``{backend: seconds per step}`` the table measured for this shape (a missing one:
        no gain is known, so its first-use cost is never paid).
    steps : int or None
        Training steps of the work at hand (``None``: unknown, counted as none).
    cost : callable
        ``cost(backend) -> seconds`` its first use here costs beyond its steps.
    """
    candidates = list(candidates)
    while True:
        best = pick(candidates)
        rest = [c for c in candidates if c != best]
        first = cost(best)
        if first <= 0.0 or not rest:
            return best
        alternative = pick(rest)
        gain = (steps or 0) * (seconds.get(alternative, math.nan) - seconds.get(best, math.nan))
        if gain > first:  # NaN (no measurement) is never more
            return best
        candidates = rest
