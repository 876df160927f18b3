"""The one table of activations and losses: names, the integer codes the kernels share, and
the rules that tie them together.

Everything else reads it: the validation (``_validate``), the reference's dispatch, the
numba backend's codes (``chainrule.core`` keeps its own constants for ``@njit``; a test checks
they equal these), the C enum ``cr_activation`` of ``csrc/dense.h`` (a test parses it), the
docstrings and CLI help (:func:`activation_help`, :func:`loss_help`), and the tests'
parameter lists.

Adding an activation: a row here, its formula and derivative in ``reference.py``, its case in
the Numba kernels (``core/``) and in the C kernels (``csrc/``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Activation:
    """One activation ``A = g(Z)``.

    ``code`` is shared with the kernels (``core/dense.py``, ``csrc/dense.h``).
    ``output_only``: it has no elementwise derivative, so only the output layer may use it.
    ``fused_loss``: the loss with which ``dZ[L] = A[L] - Y``. ``default_loss``: the loss a
    network with this output gets when none is given. ``predicts``: how an output of it
    becomes a prediction (``"threshold"``: ``A > 0.5``; ``"argmax"``: the class index; ``None``:
    ``A`` itself); a classifier's score is then the accuracy, a regressor's R².
    """

    name: str
    code: int
    formula: str
    derivative: str
    output_only: bool = False
    fused_loss: str | None = None
    default_loss: str = "mean_squared_error"
    has_alpha: bool = False
    predicts: str | None = None  # "threshold" (A > 0.5), "argmax" (class index) or A itself


@dataclass(frozen=True)
class Loss:
    """One loss ``L(a, y)``; ``outputs``: the output activations it accepts (``None``: any);
    ``min_units``: the output units it needs; ``clipped``: ``A`` is clipped inside the cost, so
    the cost is finite whenever ``A[L]`` is."""

    name: str
    code: int
    formula: str
    outputs: tuple[str, ...] | None = None
    min_units: int = 1
    clipped: bool = False


ACTIVATION_TABLE = (
    Activation("sigmoid", 0, "1 / (1 + exp(-Z))", "s (1 - s), s = sigmoid(Z)",
               fused_loss="binary_crossentropy", default_loss="binary_crossentropy",
               predicts="threshold"),
    Activation("relu", 1, "max(0, Z)", "1 where Z > 0 else 0"),
    Activation("tanh", 2, "tanh(Z)", "1 - tanh(Z)^2"),
    Activation("leaky_relu", 3, "Z where Z > 0 else alpha Z", "1 where Z > 0 else alpha",
               has_alpha=True),
    Activation("identity", 4, "Z", "1", fused_loss="mean_squared_error"),
    Activation("softmax", 5, "exp(Z) / sum_i exp(Z_i) per column",
               "the Jacobian-vector product A * (dA - sum_i A dA)", output_only=True,
               fused_loss="categorical_crossentropy", default_loss="categorical_crossentropy",
               predicts="argmax"),
)

LOSS_TABLE = (
    Loss("binary_crossentropy", 0, "-(Y log A + (1 - Y) log(1 - A))", outputs=("sigmoid",),
         clipped=True),
    Loss("categorical_crossentropy", 1, "-sum_i Y log A", outputs=("softmax", "sigmoid"),
         min_units=2, clipped=True),
    Loss("mean_squared_error", 2, "1/2 ||a - y||^2"),
)

ACTIVATIONS = {a.name: a for a in ACTIVATION_TABLE}
LOSSES = {loss.name: loss for loss in LOSS_TABLE}
ACTIVATION_NAMES = tuple(ACTIVATIONS)
LOSS_NAMES = tuple(LOSSES)
HIDDEN_ACTIVATIONS = tuple(a.name for a in ACTIVATION_TABLE if not a.output_only)
ACTIVATION_CODES = {a.name: a.code for a in ACTIVATION_TABLE}
LOSS_CODES = {loss.name: loss.code for loss in LOSS_TABLE}
# Output activation and loss pairs whose dZ[L] simplifies to A[L] - Y.
FUSED_OUTPUT_LOSS = frozenset((a.name, a.fused_loss) for a in ACTIVATION_TABLE if a.fused_loss)
DEFAULT_LEAKY_ALPHA = 0.01


def default_loss(output_activation):
    """The loss a network with this output activation gets when none is given."""
    return ACTIVATIONS[output_activation].default_loss


def loss_outputs(loss):
    """The output activations ``loss`` accepts."""
    return LOSSES[loss].outputs or ACTIVATION_NAMES


def activation_help(hidden_only=False):
    """``"sigmoid, relu, ..."``: the names for docstrings and CLI help."""
    return ", ".join(HIDDEN_ACTIVATIONS if hidden_only else ACTIVATION_NAMES)


def loss_help():
    """``"binary_crossentropy, ..."``: the loss names for docstrings and CLI help."""
    return ", ".join(LOSS_NAMES)
