"""A first run that does not wait for a compiler it can avoid.

numba compiles chainrule's kernels on their first use and caches them on disk; with a cold
cache the main job (``python -m chainrule train``) spent about 15 s of its 17.5 s compiling
for 0.6 s of training, while the C backend (compiled at install) ran it in 1.06 s. So
``auto`` counts the compile cost against the work at hand:

    pick a cold backend only if  steps × (seconds per step of the next pick − its own)
                                 > the compile seconds of a cold cache

with the seconds per step from the calibration table (this machine's wisdom, else the
shipped one) and the compile seconds from ``chainrule bench --calibrate`` (else
``DEFAULT_COMPILE_SECONDS``). Otherwise the next pick is taken, and so on down to NumPy,
which never compiles. The compile cost is scaled by the fraction of ``chainrule.core``'s
cached kernels whose index files numba's cache locator does not find (and that are not
compiled in this process already): a warm cache costs nothing and the table decides alone.
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
import sys

#: Seconds a cold cache costs a first fit, where this machine has not measured it: the
#: main job on a fresh install (issue 12 §7, 2-core AMD EPYC: ~15 s of 17.5 s compiling).
DEFAULT_COMPILE_SECONDS = {"numba": 15.0}

def _kernels():
    """The dispatchers of every module of ``chainrule.core`` (imports numba)."""
    import chainrule.core as core
    from numba.core.dispatcher import Dispatcher

    found = []
    for info in pkgutil.iter_modules(core.__path__, core.__name__ + "."):
        module = sys.modules.get(info.name) or importlib.import_module(info.name)
        found += [v for v in vars(module).values() if isinstance(v, Dispatcher)]
    return found


def numba_cold_fraction():
    """The fraction of ``chainrule.core``'s cached kernels that would compile on first use:
    neither compiled in this process already nor with their index file (``.nbi``) in the
    directory numba's cache locator chose for them (``NUMBA_CACHE_DIR``, ``__pycache__``
    beside the source, or the user-wide cache). 1 when caching is off or numba's internals
    cannot be read; 0 is a warm cache."""
    try:
        kernels = _kernels()
        from chainrule.core import _config
    except ImportError:
        return 1.0
    if not _config.CACHE_WANTED or _config.UNCACHED:
        return 1.0  # compiled in memory in every process
    # Only ``kernel``s have a disk cache; ``inline`` helpers compile into their callers.
    cached = [k for k in kernels if hasattr(getattr(k, "_cache", None), "_cache_file")]
    if not cached:
        return 1.0
    missing = 0
    for kernel in cached:
        if kernel.signatures:
            continue
        try:
            index = kernel._cache._cache_file._index_path
        except AttributeError:  # another numba's internals
            return 1.0
        missing += not os.path.exists(index)
    return missing / len(cached)


def numba_cache_is_warm():
    """True when no kernel of ``chainrule.core`` would compile on first use."""
    return numba_cold_fraction() == 0.0


def cold_fraction(backend):
    """How much of ``backend``'s compile cost its first use in this process pays (0 to 1)."""
    if backend == "numba":
        return numba_cold_fraction()
    return 0.0  # numpy and c: nothing to compile (c is compiled at install)


def choose(candidates, pick, seconds, steps, cold=cold_fraction, compile_seconds=None):
    """The backend to use for ``steps`` training steps.

    Parameters
    ----------
    candidates : list of str
        Available backends (``"numpy"`` among them).
    pick : callable
        ``pick(candidates) -> backend``: the table's rule (fastest measured, never slower
        than NumPy) among some of the candidates.
    seconds : dict
        ``{backend: seconds per step}`` the table measured for this shape (a missing one:
        no gain is known, so its compile cost is never paid).
    steps : int or None
        Training steps of the work at hand (``None``: unknown, counted as none).
    cold : callable
        ``cold(backend) -> fraction``: how much of its compile cost its first use here
        pays (0: warm; 1: all of it).
    compile_seconds : dict, optional
        ``{backend: seconds}`` a cold first use costs (default ``DEFAULT_COMPILE_SECONDS``).
    """
    costs = DEFAULT_COMPILE_SECONDS if compile_seconds is None else compile_seconds
    candidates = list(candidates)
    while True:
        best = pick(candidates)
        rest = [c for c in candidates if c != best]
        cost = costs.get(best, 0.0) * cold(best) if best in costs else 0.0
        if cost <= 0.0 or not rest:
            return best
        alternative = pick(rest)
        gain = (steps or 0) * (seconds.get(alternative, math.nan) - seconds.get(best, math.nan))
        if gain > cost:  # NaN (no measurement) is never more
            return best
        candidates = rest
