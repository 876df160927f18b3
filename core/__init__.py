"""Fused Numba kernels (installed as ``chainrule.core``): arithmetic only.

The caller validates, casts every array to one float dtype, makes it C-contiguous and
allocates the outputs; see ``chainrule.backends.numba``.
"""

from ._config import FASTMATH, UNCACHED
from .dense import (ACTIVATION_CODES, LOSS_CODES, bias_activation, dense_backward,
                    dense_forward)

__all__ = ["FASTMATH", "UNCACHED", "ACTIVATION_CODES", "LOSS_CODES", "bias_activation",
           "dense_forward", "dense_backward"]
