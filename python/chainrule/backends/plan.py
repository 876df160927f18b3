"""The plan of a fit: what every backend's ``fit_epochs`` needs besides the data, built once.

:class:`FitPlan` is the Python twin of csrc's ``struct cr_fit_config``: the network as layer
records (:class:`Layer`: units, activation, keep probability; a per-layer option such as a
normalisation is one more field here and one more stage in each engine), the loss, the L2
strength, the batch size and the optimiser as the engines read it (its code, hyperparameter
vector and state prefixes, from the optimiser table ``chainrule.optim.OPTIMIZERS``). It is
frozen: :class:`~chainrule.training.loop.FitRun` builds it once per fit and hands it whole to
every call (:func:`chainrule.backends.engine.fit_epochs`, numba's, C's), which cache their
workspaces under :attr:`FitPlan.key`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from .. import spec
from .. import reference as ref
from ..errors import InputError


@dataclass(frozen=True)
class Layer:
    """One layer ``l = 1..L``: ``units`` = ``n[l]``, its activation ``(name, alpha)``, the
    keep probability of inverted dropout on its ``A[l]`` (1: none; the output layer keeps
    all) and whether it is batch-normalized (linear, batch norm, activation, dropout; its
    ``bs`` entry is then ``beta[l]``)."""

    units: int
    activation: str
    alpha: float = 0.0
    keep_prob: float = 1.0
    batch_norm: bool = False

    @property
    def code(self):
        """The activation's integer code (``spec``: the kernels' switch)."""
        return spec.ACTIVATION_CODES[self.activation]


@dataclass(frozen=True)
class FitPlan:
    """Everything fixed for one fit. Build it with :meth:`build`."""

    n_x: int
    layers: tuple
    loss: str
    lambd: float
    mini_batch_size: int
    # The optimiser as the engines read it (chainrule.optim's table): its code (None: no
    # compiled engine knows it, the generic composition runs it), its hyperparameter vector
    # (β1, β2, ε, eps_inside_sqrt) and its state prefixes.
    optimizer_code: int | None
    hyper: tuple
    state_prefixes: tuple
    # The optimiser itself: the generic composition applies its ``update`` to candidates.
    optimizer: object = field(compare=False, hash=False, repr=False)
    # Batch norm (the layers that have it say so): the course's beta of the running
    # averages, the epsilon inside the square root, the running variance unbiased or not.
    bn_momentum: float = ref.BATCHNORM_BETA
    bn_epsilon: float = ref.BATCHNORM_EPSILON
    bn_unbiased: bool = True

    @classmethod
    def build(cls, layer_dims, activations, loss, optimizer, *, mini_batch_size, lambd=0.0,
              keep_probs=None, batch_norm=None, bn_momentum=ref.BATCHNORM_BETA,
              bn_epsilon=ref.BATCHNORM_EPSILON, bn_unbiased=True):
        """The plan of a network ``layer_dims`` with ``activations`` (``(name, alpha)`` or
        names, one per layer) and ``loss``, trained by ``optimizer`` (a
        :class:`chainrule.optim.Optimizer`) on batches of ``mini_batch_size`` examples with
        L2 strength ``lambd`` and ``keep_probs`` (one per hidden layer; ``None``: no dropout);
        ``batch_norm``: one bool per layer (``None``: none), with ``bn_momentum`` (the
        course's beta), ``bn_epsilon`` and ``bn_unbiased`` (the running variance)."""
        dims = [int(n) for n in layer_dims]
        L = len(dims) - 1
        if L < 1 or len(activations) != L:
            raise InputError(f"the plan needs one activation per layer: {L} layers, "
                             f"{len(activations)} activations")
        probs = [1.0] * (L - 1) if keep_probs is None else [float(p) for p in keep_probs]
        if len(probs) != L - 1:
            raise InputError(f"keep_probs has {len(probs)} entries, expected L - 1 = {L - 1}")
        flags = [False] * L if batch_norm is None else [bool(f) for f in batch_norm]
        if len(flags) != L or flags[-1]:
            raise InputError(f"batch_norm: one bool per layer ({L}), the output layer's False; "
                             f"got {batch_norm!r}")
        layers = []
        for l, (act, p) in enumerate(zip(activations, probs + [1.0]), 1):
            name, alpha = ref.parse_activation(act)
            row = spec.ACTIVATIONS.get(name)
            if row is None:
                raise InputError(f"layer {l}: unknown activation {name!r}; valid: "
                                 f"{', '.join(spec.ACTIVATION_NAMES)}")
            if row.output_only and l < L:
                raise InputError(f"layer {l}: {name} is only supported as the output activation")
            if not math.isfinite(alpha):
                raise InputError(f"layer {l}: alpha must be finite, got {alpha!r}")
            if not 0 < p <= 1:
                raise InputError(f"layer {l}: keep probability must be in (0, 1], got {p!r}")
            layers.append(Layer(dims[l], name, alpha, p, flags[l - 1]))
        if loss not in spec.LOSSES:
            raise InputError(f"unknown loss {loss!r}; valid: {', '.join(spec.LOSS_NAMES)}")
        s = int(mini_batch_size)
        if s < 1:
            raise InputError(f"mini_batch_size must be >= 1, got {mini_batch_size!r}")
        lambd = float(lambd)
        if not (math.isfinite(lambd) and lambd >= 0):
            raise InputError(f"lambd must be finite and >= 0, got {lambd!r}")
        return cls(dims[0], tuple(layers), loss, lambd, s, optimizer.code,
                   tuple(float(h) for h in optimizer.hyperparameters()),
                   tuple(optimizer.state_prefixes), optimizer, float(bn_momentum),
                   float(bn_epsilon), bool(bn_unbiased))

    # ---- derived views (the immutable ones computed once: every engine call reads them)
    @cached_property
    def L(self):
        return len(self.layers)

    @property
    def layer_dims(self):
        """``[n[0], ..., n[L]]``."""
        return [self.n_x] + [layer.units for layer in self.layers]

    @property
    def activations(self):
        """``[(name, alpha), ...]``, the ops' form."""
        return [(layer.activation, layer.alpha) for layer in self.layers]

    @property
    def keep_probs(self):
        """The hidden layers' keep probabilities (``L - 1``)."""
        return [layer.keep_prob for layer in self.layers[:-1]]

    @cached_property
    def drops(self):
        """Whether some hidden layer drops units."""
        return any(layer.keep_prob < 1.0 for layer in self.layers)

    @cached_property
    def batch_norm(self):
        """Whether some layer is batch-normalized (every engine then runs the generic
        composition: :func:`chainrule.backends.engine.fit_epochs`)."""
        return any(layer.batch_norm for layer in self.layers)

    @cached_property
    def key(self):
        """A hashable key of everything but the optimiser object (workspace caches)."""
        return (self.n_x, self.layers, self.loss, self.lambd, self.mini_batch_size,
                self.optimizer_code, self.hyper, self.bn_momentum, self.bn_epsilon,
                self.bn_unbiased)
