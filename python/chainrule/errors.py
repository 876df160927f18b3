"""The library's error types. Every one is a :class:`ChainruleError`."""

from __future__ import annotations


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError):
    """An array's shape does not fit the network (the message gives the dimension analysis)."""


class InputError(ChainruleError, ValueError):
    """A value, dtype or name that chainrule cannot use (NaN, labels, unknown activation...)."""


class NonFiniteError(ChainruleError, FloatingPointError):
    """Training produced a non-finite cost or gradient; the model kept its last good state."""


class ModelFileError(ChainruleError, OSError):
    """A saved model file is missing, truncated, corrupted, tampered with or of another version."""
