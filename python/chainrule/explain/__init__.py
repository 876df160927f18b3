"""Tools that answer the learner's questions about the backward pass.

=========================  ==============================================================
:func:`gradient_check`     the course's two-sided gradient check, with a report per
                           parameter (worst entries, indices, analytic vs numeric)
:func:`jacobians`          every step's Jacobian in numerator layout, analytic and by
                           finite differences, and the course's gradients as their
                           transposes, reshaped
:func:`scalar_expansion`   ``Z = W·A_prev + b`` and the backward formulas entry by entry
                           (plain text or LaTeX; SymPy optional, the ``explain`` extra)
:func:`shape_narrative`    every formula of a network with the shape of every operand,
                           for conventions L and J, marking where 1/m enters
:func:`diagnose`           the gradient doctor: runs a learner's backward function and
                           names the mistake
=========================  ==============================================================

The command line has the same tools: ``chainrule explain``, ``chainrule gradcheck``,
``chainrule jacobians``, ``chainrule expand`` and ``chainrule doctor``.
"""

from .doctor import KINDS, MISTAKES, Diagnosis, DoctorReport, diagnose
from .gradcheck import GradientCheckReport, ParameterCheck, gradient_check
from .jacobian import JacobianReport, jacobians
from .narrative import narrative_steps, shape_narrative
from .scalar import expand, scalar_expansion

__all__ = [
    "gradient_check", "GradientCheckReport", "ParameterCheck",
    "jacobians", "JacobianReport",
    "scalar_expansion", "expand",
    "shape_narrative", "narrative_steps",
    "diagnose", "DoctorReport", "Diagnosis", "MISTAKES", "KINDS",
]
