"""Everything behind :meth:`chainrule.Network.fit`.

``config``
    fit's arguments, defined once (defaults, docs, validators, the checkpoint fingerprint).
``state``
    the training state (counters) and the model state as arrays (``get_state``/``set_state``).
``loop``
    :class:`FitRun`: one call's data, start, epochs, steps, records and checkpoints.
``batches``
    permutations, mini-batches, dropout masks, example weights.
``trainable``
    :class:`Trainable`, the base of ``Network``: ``fit``, ``get_state``/``set_state``, the
    optimiser and the counters.
``optim``, ``callbacks``, ``interrupts``
    optimisers and schedules, callbacks, Ctrl-C between steps.
"""

from __future__ import annotations

from .config import FitConfig
from .loop import FitRun
from .state import TrainState
from .trainable import Trainable

__all__ = ["FitConfig", "FitRun", "TrainState", "Trainable"]
