"""chainrule: fully-connected networks with the Deep Learning Specialization's backward pass.

>>> import chainrule
>>> net = chainrule.Network([2, 4, 1], hidden="tanh")
>>> "numpy" in chainrule.available_backends()
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

from . import datasets, reference
from .backends import available_backends
from .errors import ChainruleError, InputError, ModelFileError, NonFiniteError, ShapeError
from .io import save
from .model import Network, load

try:
    __version__ = _version("chainrule")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Network", "available_backends", "reference", "datasets", "__version__", "save", "load",
    "ChainruleError", "ShapeError", "InputError", "NonFiniteError", "ModelFileError",
]
