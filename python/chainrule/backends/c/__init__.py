"""The "c" backend: the C kernels of ``csrc/`` through cffi (``chainrule._cdense``).

``wrappers``
    the checked calls (the only module touching ``ffi``/``lib``) and the layer ops.
``blas``
    which BLAS the kernels call (``CHAINRULE_C_BLAS``), its threads (``CHAINRULE_C_THREADS``).
``plans``
    the network ops and the training engine ``fit_epochs`` (``cr_fit_epochs``,
    csrc/train.h), which ``fit`` and ``Network.step`` both run.

Importing this package registers the ops and fails (the backend is unavailable) when the
compiled module is missing.
"""

from __future__ import annotations

import os

from ...errors import InputError
from . import blas, plans, wrappers
from .blas import blas_info, get_num_threads, set_blas_threshold, set_num_threads, use_blas
from .plans import backward, fit_epochs, forward
from .wrappers import CKernelError, dense_backward, dense_forward, sgd_update

__all__ = ["CKernelError", "blas_info", "set_num_threads", "get_num_threads", "use_blas",
           "set_blas_threshold", "dense_forward", "dense_backward", "sgd_update",
           "forward", "backward", "fit_epochs", "blas", "plans",
           "wrappers"]




def _configure_from_environment():
    """``CHAINRULE_C_BLAS`` and ``CHAINRULE_C_THREADS``; a bad value is an InputError that
    names the variable and what it may be (the backend is then unavailable for that reason)."""
    source = os.environ.get("CHAINRULE_C_BLAS", "auto")
    try:
        use_blas(source)
    except (InputError, ImportError) as exc:
        raise InputError(f"the environment variable CHAINRULE_C_BLAS={source!r} is not usable: "
                         f"{exc} (unset, it means auto)") \
            from exc
    threads = os.environ.get("CHAINRULE_C_THREADS")
    if threads:
        try:
            n = int(threads)
            if n < 1:
                raise ValueError(n)
        except ValueError as exc:
            raise InputError(f"the environment variable CHAINRULE_C_THREADS={threads!r} must "
                             f"be an integer >= 1") from exc
        set_num_threads(n)


_configure_from_environment()
