"""Callbacks for :meth:`chainrule.Network.fit`.

A callback is any callable ``f(net, epoch, logs)`` or an object with some of the methods
below. ``fit`` calls ``on_epoch_end`` after every record (every ``cost_every`` epochs and
after the last one) with ``logs`` holding that record (``epoch``, ``cost``, ``score``,
``lr``, ``skipped`` and, with validation, ``val_cost`` and ``val_score``). Returning
``True`` stops training after that epoch (``net.stop_reason_ == "callback"``).

Examples
--------
>>> from chainrule import Network
>>> from chainrule.callbacks import Callback
>>> from chainrule.datasets import load_planar_dataset
>>> class StopBelow(Callback):
...     def __init__(self, threshold):
...         self.threshold = threshold
...     def on_epoch_end(self, net, epoch, logs):
...         return logs["cost"] < self.threshold
>>> X, Y = load_planar_dataset()
>>> net = Network([2, 4, 1], hidden="tanh", backend="numpy")
>>> _ = net.fit(X, Y, epochs=5000, learning_rate=1.2, progress=False,
...             callbacks=[StopBelow(0.5)])
>>> net.stop_reason_
'callback'
"""

from __future__ import annotations

__all__ = ["Callback"]


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_fit_begin(self, net):
        """Called once before the first epoch of a fit."""

    def on_epoch_end(self, net, epoch, logs):
        """Called after each recorded epoch; return ``True`` to stop training."""
        return None

    def on_fit_end(self, net):
        """Called once after training ended normally (not after an error or interrupt)."""
