"""Optimisers and learning-rate schedules: the public import path of
:mod:`chainrule.training.optim`, where they live."""

from .training.optim import (OPTIMIZERS, Adam, GradientDescent, Momentum, Optimizer, RMSprop,
                             inverse_time_decay, make_optimizer, scheduled_decay)

__all__ = ["Optimizer", "GradientDescent", "Momentum", "RMSprop", "Adam", "OPTIMIZERS",
           "make_optimizer", "inverse_time_decay", "scheduled_decay"]
