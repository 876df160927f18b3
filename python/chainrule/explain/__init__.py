"""Tools that answer the learner's questions about the backward pass.

=============================  ==============================================================
:func:`gradient_check`         the course's two-sided gradient check, with a report per
                               parameter (worst entries, indices, analytic vs numeric)
:func:`jacobians`              every step's Jacobian in numerator layout, analytic and by
                               finite differences, and the course's gradients as their
                               transposes, reshaped
:func:`batchnorm_jacobians`    a batch-norm layer's ``∂Z̃/∂Z`` (one dense m × m block per
                               unit: the examples coupled) beside its activation's diagonal
:func:`scalar_expansion`       ``Z = W·A_prev + b`` and the backward formulas entry by entry
                               (plain text or LaTeX; SymPy optional, the ``explain`` extra)
:func:`shape_narrative`        every formula of a network with the shape of every operand,
                               for conventions L and J, marking where 1/m enters
:func:`diagnose`               the gradient doctor: runs a learner's function of courses 1-2
                               (gradients, costs, updates; :func:`known_signatures`) and
                               names each mistake
=============================  ==============================================================

The command line has the same tools: ``chainrule explain``, ``chainrule gradcheck``,
``chainrule jacobians``, ``chainrule expand`` and ``chainrule doctor``.
"""

from .doctor import (ALL_KINDS, KINDS, MISTAKES, Diagnosis, DoctorReport, diagnose,
                     known_signatures)
from .gradcheck import GradientCheckReport, ParameterCheck, gradient_check
from .jacobian import BatchNormJacobians, JacobianReport, batchnorm_jacobians, jacobians
from .narrative import narrative_steps, shape_narrative
from .scalar import expand, scalar_expansion

__all__ = [
    "gradient_check", "GradientCheckReport", "ParameterCheck",
    "jacobians", "JacobianReport", "batchnorm_jacobians", "BatchNormJacobians",
    "scalar_expansion", "expand",
    "shape_narrative", "narrative_steps",
    "diagnose", "DoctorReport", "Diagnosis", "MISTAKES", "KINDS", "ALL_KINDS",
    "known_signatures",
]
