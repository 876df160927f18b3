"""The backends: one registry of operations, ``{op: {backend: callable}}``, and their modules.

``registry``
    the op contract (its docstring), :class:`Ops`, :func:`available_backends`,
    :func:`choose_backend`.
``plan``
    :class:`~chainrule.backends.plan.FitPlan`, what a fit hands every ``fit_epochs`` call.
``engine``
    ``fit_epochs`` composed plainly (the oracle of the compiled engines).
``compose``
    the generic compositions of the network ops from the layer ops; ``update_is_safe``.
``auto``
    the policy behind ``backend="auto"`` and its measured table (``_auto_table.py``).
``numpy``, ``numba``, ``c``
    one module (or subpackage) per backend, all of its Python side; importing it registers
    its ops. A new backend is a module here plus its name in ``registry.BACKENDS`` and
    ``registry._MODULES``; the oracle suite (tests/test_backends_oracle.py) tests it at once.
"""

from __future__ import annotations

from .registry import (BACKENDS, Ops, available_backends, choose_backend, import_error,
                       requested_backend)

__all__ = ["BACKENDS", "Ops", "available_backends", "choose_backend", "import_error",
           "requested_backend"]
