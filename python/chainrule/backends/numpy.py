"""The NumPy backend: the reference formulas, registered as the layer ops of the registry."""

from __future__ import annotations

from .. import reference as ref
from .registry import register

# The generic compositions (compose.py) give every network op, masks and L2 included.


@register("dense_forward", "numpy")
def dense_forward(A_prev, W, b, activation):
    Z, _ = ref.linear_forward(A_prev, W, b)
    return Z, ref.activation_forward(Z, activation)


@register("dense_backward", "numpy")
def dense_backward(dZ, A_prev, W, Z_prev, activation_prev, convention="L", lambd=0.0,
                   mask_prev=None, need_dA_prev=False):
    dA_prev, dW, db = ref.linear_backward(dZ, (A_prev, W, None), convention, lambd,
                                          compute_dA_prev=Z_prev is not None or need_dA_prev)
    if mask_prev is not None and dA_prev is not None:
        dA_prev = dA_prev * mask_prev
    dZ_prev = None
    if Z_prev is not None:
        dZ_prev = ref.activation_backward(dA_prev, Z_prev, activation_prev)
    return dZ_prev, dW, db, (dA_prev if need_dA_prev else None)
