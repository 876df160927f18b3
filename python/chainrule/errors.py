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


class ChainruleWarning(UserWarning):
    """Base class of every warning chainrule gives on purpose."""


class DivergenceWarning(ChainruleWarning, RuntimeWarning):
    """A fit's cost ended far above where it began (or not finite): the run diverged, most
    often from too large a learning rate; the message says what to try."""
