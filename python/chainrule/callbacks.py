"""Callbacks for :meth:`chainrule.Network.fit`: the public import path of
:mod:`chainrule.training.callbacks`, where they live."""

from .training.callbacks import Callback

__all__ = ["Callback"]
