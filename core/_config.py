"""The one place where the kernels' compile options are set.

``kernel`` is ``@njit(cache=..., nogil=True, fastmath=FASTMATH, error_model="numpy")``:

- ``error_model="numpy"``: a float division by zero gives inf/NaN as in NumPy instead of
  raising, which also lets LLVM vectorise loops that divide.
- ``nogil=True``: two models can train in two threads at once (kernels keep no global
  mutable state; every buffer is passed in).
- ``fastmath``: the flags below, never ``nnan``/``ninf`` (the non-finite-gradient check and
  NaN propagation through the activations must survive). ``reassoc`` lets LLVM vectorise
  the sums (``db``, the cost, the finiteness check) and ``contract`` fuses multiply-adds;
  `CHAINRULE_NUMBA_FASTMATH=0 chainrule bench --impls numba` measures what it buys. ``CHAINRULE_NUMBA_FASTMATH=0`` turns it
  off; a non-default setting also turns the on-disk cache off, because numba's cache index
  does not record compile flags and would hand back kernels compiled the other way.
- ``cache``: on when numba can write its cache somewhere (next to the source, in
  ``NUMBA_CACHE_DIR`` or in the user cache dir). Where it can write nowhere (a read-only
  install without a writable home), ``njit(cache=True)`` raises at decoration; the kernels
  are then compiled in memory on first use instead. ``CHAINRULE_NUMBA_CACHE=0`` turns it off.
"""

from __future__ import annotations

import os

from numba import njit

FASTMATH_FLAGS = frozenset({"contract", "reassoc", "nsz", "arcp", "afn"})
_FASTMATH_DEFAULT = True

_fastmath_env = os.environ.get("CHAINRULE_NUMBA_FASTMATH", "").strip()
FASTMATH_ON = (_FASTMATH_DEFAULT if _fastmath_env == ""
               else _fastmath_env not in ("0", "false", "no"))
FASTMATH = set(FASTMATH_FLAGS) if FASTMATH_ON else False
CACHE_WANTED = (os.environ.get("CHAINRULE_NUMBA_CACHE", "1").strip() not in ("0", "false", "no")
                and FASTMATH_ON == _FASTMATH_DEFAULT)

# Filled by ``kernel``: names of the kernels compiled without an on-disk cache because
# numba found nowhere to write one.
UNCACHED: list[str] = []


def kernel(fn):
    """Compile ``fn`` with the package's options; without a disk cache if none is writable."""
    options = dict(nogil=True, fastmath=FASTMATH, error_model="numpy")
    if CACHE_WANTED:
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            UNCACHED.append(fn.__name__)
    return njit(cache=False, **options)(fn)


def inline(fn):
    """A scalar helper compiled into its callers (no call, no cache entry of its own)."""
    return njit(inline="always", fastmath=FASTMATH, error_model="numpy")(fn)
