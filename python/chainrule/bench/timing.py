"""Interleaved timing: round robin over the implementations, the order rotating every round."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np


def _time_once(impl, k):
    t0 = time.perf_counter()
    for _ in range(k):
        impl.step()
    return (time.perf_counter() - t0) / k


def time_interleaved(impls, repeats, target_s):
    """Seconds per step: ``{name: array of repeats}``. Each sample runs ``k`` steps, ``k``
    chosen so a sample lasts about ``target_s``; the order rotates every round so no
    implementation always runs right after the same one."""
    inner = {}
    for impl in impls:
        impl.step()  # warm-up (caches, JIT, thread pools)
        t = min(_time_once(impl, 1) for _ in range(3))
        inner[impl.name] = max(1, int(target_s / max(t, 1e-9)))
    samples = {impl.name: [] for impl in impls}
    n = len(impls)
    for r in range(repeats):
        for i in range(n):
            impl = impls[(i + r) % n]
            samples[impl.name].append(_time_once(impl, inner[impl.name]))
    return {name: np.array(s) for name, s in samples.items()}


def peak_memory(impl, steps=2):
    """Peak bytes allocated during one step, as ``tracemalloc`` sees them (NumPy's arrays
    included); ``None`` for implementations whose allocator it cannot see."""
    if not impl.traced:
        return None
    impl.step()
    tracemalloc.start()
    try:
        peak = 0
        for _ in range(steps):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            impl.step()
            peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    return peak

