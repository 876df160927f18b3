"""Optimisers and learning-rate schedules: the public import path of
:mod:`chainrule.training.optim`, where they live (everything in its ``__all__``)."""

from .training.optim import *  # noqa: F401,F403
from .training.optim import __all__  # noqa: F401
