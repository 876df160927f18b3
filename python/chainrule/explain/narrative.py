"""The shape narrative: every forward and backward formula of a network with the shape of every
operand and result, in convention L and J, marking where the 1/m enters."""

from __future__ import annotations

from dataclasses import dataclass

from .. import _validate as check
from .. import reference as ref
from . import display
from .display import COUPLING_TEXT, parameter_list

_DEFAULT_LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy"}

_COST_TEXT = {
    "binary_crossentropy": "J = -(1/m) Σ_k [Y log A{L} + (1 - Y) log(1 - A{L})][k]",
    "categorical_crossentropy": "J = -(1/m) Σ_k Σ_i (Y log A{L})[i, k]",
    "mean_squared_error": "J = (1/(2m)) Σ_k ||A{L}[:, k] - Y[:, k]||²",
}
_DA_TEXT = {
    "binary_crossentropy": "-(Y / A{L} - (1 - Y) / (1 - A{L}))",
    "categorical_crossentropy": "-Y / A{L}",
    "mean_squared_error": "A{L} - Y",
}
MARK = "◀ 1/m"


@dataclass
class Step:
    """One line of the narrative: ``result = formula`` with the shapes of operands and result."""

    stage: str           # "forward", "cost", "backward L", "backward J"
    result: str          # e.g. "dW2"
    formula: str         # e.g. "(1/m) dZ2 · A1ᵀ"
    shape: tuple         # the result's shape; () for the cost
    operands: str        # e.g. "(1, 209) · (209, 5)"
    one_over_m: bool     # whether a 1/m enters here


class ShapeNarrative(str):
    """The narrative's text (a ``str``: ``print`` shows it), with the steps it was written from.

    In a notebook it renders as a table with the formulas typeset and the rows where the 1/m
    enters marked; :meth:`to_latex` gives the formulas as one LaTeX ``aligned`` block. The
    attributes ``steps`` (:class:`Step` objects), ``layer_dims``, ``activations``, ``loss``,
    ``m``, ``conventions`` and ``batch_norm`` (one bool per layer) are what it was written
    from.
    """

    def _repr_html_(self):
        return display.narrative_html(self.steps, self.layer_dims, self.activations, self.loss,
                                      self.m, self.conventions, self.batch_norm)

    def to_latex(self):
        """Every formula as a LaTeX ``aligned`` block, the result's shape beside it."""
        return display.narrative_latex(self.steps)


def _s(shape):
    return str(tuple(shape))


def _from_network(layer_dims, activations, loss, batch_norm):
    """A :class:`chainrule.Network` given as ``layer_dims``: its dims, activations, loss and
    batch-norm layers (unless given)."""
    if hasattr(layer_dims, "layer_dims") and hasattr(layer_dims, "batch_norm"):
        net = layer_dims
        return (net.layer_dims, net.activations if activations is None else activations,
                net.loss if loss is None else loss,
                list(net.batch_norm[:-1]) if batch_norm is None else batch_norm)
    return layer_dims, activations, loss, bool(batch_norm) if batch_norm is None else batch_norm


def _bn_forward(l, n, n_prev, m, act):
    nm, n1 = _s((n, m)), _s((n, 1))
    return [
        Step("forward", f"Z{l}", f"W{l} · A{l - 1}", (n, m), f"{_s((n, n_prev))} · "
             f"{_s((n_prev, m))} (no b{l}: beta{l} replaces it)", False),
        Step("forward", f"mu{l}", f"(1/m) np.sum(Z{l}, axis=1, keepdims=True)", (n, 1),
             f"mean over the m = {m} columns of {nm}", False),
        Step("forward", f"var{l}", f"(1/m) np.sum((Z{l} - mu{l})², axis=1, keepdims=True)",
             (n, 1), f"biased variance over the m = {m} columns of {nm}", False),
        Step("forward", f"Z_hat{l}", f"(Z{l} - mu{l}) / np.sqrt(var{l} + eps)", (n, m),
             f"({nm} - {n1}) / {n1}", False),
        Step("forward", f"Z_tilde{l}", f"gamma{l} * Z_hat{l} + beta{l}", (n, m),
             f"{n1} * {nm} + {n1}", False),
        Step("forward", f"A{l}", f"{act}(Z_tilde{l})", (n, m), nm, False),
    ]


def _bn_backward(stage, convention, l, n, m, act):
    s = "(1/m) " if convention == "L" else ""
    nm, n1 = _s((n, m)), _s((n, 1))
    dZ = (f"(gamma{l} / s{l}) * (dZ_tilde{l} - dbeta{l} - Z_hat{l} * dgamma{l})"
          if convention == "L" else
          f"(gamma{l} / (m s{l})) * (m dZ_tilde{l} - dbeta{l} - Z_hat{l} * dgamma{l})")
    return [
        Step(stage, f"dZ_tilde{l}", f"dA{l} * {act}'(Z_tilde{l})", (n, m), f"{nm} * {nm}", False),
        Step(stage, f"dbeta{l}", f"{s}np.sum(dZ_tilde{l}, axis=1, keepdims=True)", (n, 1),
             f"sum over the m = {m} columns of {nm}", convention == "L"),
        Step(stage, f"dgamma{l}", f"{s}np.sum(dZ_tilde{l} * Z_hat{l}, axis=1, keepdims=True)",
             (n, 1), f"sum over the m = {m} columns of {nm}", convention == "L"),
        Step(stage, f"dZ{l}", dZ, (n, m), f"{n1} * {nm}, s{l} = np.sqrt(var{l} + eps) {n1}: "
             f"couples the m = {m} columns", False),
    ]


def narrative_steps(layer_dims, m, activations=None, hidden="relu", output="sigmoid", loss=None,
                    conventions=("L", "J"), batch_norm=None):
    """The steps of the narrative (see :func:`shape_narrative`), as :class:`Step` objects:
    ``(steps, layer_dims, activations, loss)``."""
    return _steps(layer_dims, m, activations, hidden, output, loss, conventions, batch_norm)[:4]


def _steps(layer_dims, m, activations, hidden, output, loss, conventions, batch_norm):
    """:func:`narrative_steps` and the batch-norm flags (one per layer)."""
    layer_dims, activations, loss, batch_norm = _from_network(layer_dims, activations, loss,
                                                              batch_norm)
    dims = check.layer_dims(layer_dims)
    if isinstance(m, bool) or not isinstance(m, int) or m <= 0:
        raise check.InputError(f"m must be a positive integer (the number of examples), got {m!r}")
    L = len(dims) - 1
    if activations is None:
        activations = [hidden] * (L - 1) + [output]
    acts = [check.activation(a, l, l == L)[0] for l, a in enumerate(activations, 1)]
    loss = check.loss(loss or _DEFAULT_LOSS.get(acts[-1], "mean_squared_error"), acts[-1], dims[-1])
    bn = check.batch_norm(batch_norm, L)
    steps = []
    for l in range(1, L + 1):
        n, n_prev = dims[l], dims[l - 1]
        if bn[l - 1]:
            steps += _bn_forward(l, n, n_prev, m, acts[l - 1])
            continue
        steps.append(Step("forward", f"Z{l}", f"W{l} · A{l - 1} + b{l}", (n, m),
                          f"{_s((n, n_prev))} · {_s((n_prev, m))} + {_s((n, 1))}", False))
        steps.append(Step("forward", f"A{l}", f"{acts[l - 1]}(Z{l})", (n, m), _s((n, m)), False))
    steps.append(Step("cost", "J", _COST_TEXT[loss].format(L=L).split(" = ", 1)[1], (),
                      f"Y {_s((dims[-1], m))}, A{L} {_s((dims[-1], m))}: a mean over m = {m} "
                      f"columns", True))
    for convention in conventions:
        check.convention(convention)
        stage = f"backward {convention}"
        s = "(1/m) " if convention == "L" else ""
        nL = dims[-1]
        fused = (acts[-1], loss) in ref.FUSED_OUTPUT_LOSS
        if fused:
            formula = f"A{L} - Y" if convention == "L" else f"(1/m)(A{L} - Y)"
            steps.append(Step(stage, f"dZ{L}", formula, (nL, m), f"{_s((nL, m))} - {_s((nL, m))}",
                              convention == "J"))
        else:
            dA = _DA_TEXT[loss].format(L=L)
            formula = dA if convention == "L" else f"(1/m)({dA})"
            steps.append(Step(stage, f"dA{L}", formula, (nL, m),
                              f"from Y {_s((nL, m))}, A{L} {_s((nL, m))}", convention == "J"))
            steps.append(Step(stage, f"dZ{L}", f"dA{L} * {acts[-1]}'(Z{L})", (nL, m),
                              f"{_s((nL, m))} * {_s((nL, m))}", False))
        for l in range(L, 0, -1):
            n, n_prev = dims[l], dims[l - 1]
            if bn[l - 1]:
                steps += _bn_backward(stage, convention, l, n, m, acts[l - 1])
            elif l < L:
                steps.append(Step(stage, f"dZ{l}", f"dA{l} * {acts[l - 1]}'(Z{l})", (n, m),
                                  f"{_s((n, m))} * {_s((n, m))}", False))
            steps.append(Step(stage, f"dW{l}", f"{s}dZ{l} · A{l - 1}ᵀ", (n, n_prev),
                              f"{_s((n, m))} · {_s((m, n_prev))}", convention == "L"))
            if not bn[l - 1]:
                steps.append(Step(stage, f"db{l}", f"{s}np.sum(dZ{l}, axis=1, keepdims=True)",
                                  (n, 1), f"sum over the m = {m} columns of {_s((n, m))}",
                                  convention == "L"))
            if l > 1:
                steps.append(Step(stage, f"dA{l - 1}", f"W{l}ᵀ · dZ{l}", (n_prev, m),
                                  f"{_s((n_prev, n))} · {_s((n, m))}", False))
    return steps, dims, acts, loss, bn


def shape_narrative(layer_dims, m, activations=None, hidden="relu", output="sigmoid", loss=None,
                    conventions=("L", "J"), batch_norm=None):
    """Every formula of the network's forward and backward pass, with shapes, as text.

    Parameters
    ----------
    layer_dims : sequence of int or Network
        ``[n[0], ..., n[L]]``, e.g. ``[12288, 20, 7, 5, 1]``; or a :class:`chainrule.Network`,
        whose dims, activations, loss and batch-norm layers are used.
    m : int
        The number of examples (columns).
    activations, hidden, output, loss
        As for :class:`chainrule.Network`.
    conventions : sequence of {"L", "J"}
        The backward passes to show.
    batch_norm : bool or sequence of bool, optional
        As for :class:`chainrule.Network`: a batch-norm layer shows ``mu``, ``var``,
        ``Z_hat``, ``Z_tilde = gamma * Z_hat + beta`` (no ``b``) and, backward, ``dgamma``,
        ``dbeta`` and the ``dZ`` that couples the examples.

    Returns
    -------
    ShapeNarrative
        A ``str``: one line per formula, ``result = formula`` then ``result shape = operand
        shapes``; lines where a ``1/m`` enters end with ``◀ 1/m``. In a notebook it renders
        as a table with the formulas typeset (``_repr_html_``).

    Examples
    --------
    >>> from chainrule.explain import shape_narrative
    >>> text = shape_narrative([12288, 20, 7, 5, 1], 209)
    >>> "dW4 = (1/m) dZ4 · A3ᵀ" in text
    True
    """
    steps, dims, acts, loss, bn = _steps(layer_dims, m, activations, hidden, output, loss,
                                         conventions, batch_norm)
    width = max(len(f"{st.result} = {st.formula}") for st in steps) + 2
    swidth = max(len(_s(st.shape)) if st.shape else 6 for st in steps)
    plist = parameter_list(dims, bn)
    params = ", ".join(f"{name} {_s(shape)}" for name, shape in plist)
    count = sum(a * b for _, (a, b) in plist)
    lines = [f"Network {' -> '.join(map(str, dims))}, m = {m} examples (columns of X, shape "
             f"{_s((dims[0], m))}); activations {', '.join(acts)}; loss {loss}",
             f"parameters ({count}): {params}"]
    headers = {
        "forward": "Forward",
        "backward L": "Backward, convention L (the lectures): dZ[L] = A[L] - Y is the derivative "
                      "of the per-example losses; the 1/m enters in dW and db",
        "backward J": "Backward, convention J: every d-quantity is a derivative of the cost J; "
                      "the 1/m enters once, in dZ[L]",
    }
    stage = None
    for st in steps:
        if st.stage != stage and st.stage != "cost":
            lines += ["", headers[st.stage]]
        stage = st.stage
        left = f"  {st.result} = {st.formula}".ljust(width + 2)
        shape = _s(st.shape) if st.shape else "scalar"
        middle = f"{shape.rjust(swidth)} = {st.operands}" if st.stage != "cost" else \
            f"{shape.rjust(swidth)}: {st.operands}"
        lines.append(f"{left}{middle}" + (f"   {MARK}" if st.one_over_m else ""))
    if len(conventions) > 1:
        lines += ["", f"dW and db{', dgamma, dbeta' if any(bn) else ''} are the same in both "
                      f"conventions; every dZ and dA of convention L is m = {m} times the one of "
                      f"convention J."]
    if any(bn):
        lines += [f"Layers {', '.join(str(l) for l in range(1, len(dims)) if bn[l - 1])}: "
                  + COUPLING_TEXT]
    lines += [f"dA0 = W1ᵀ · dZ1 {_s((dims[0], m))} is not needed: X is data, not a parameter."]
    narrative = ShapeNarrative("\n".join(lines))
    narrative.steps, narrative.layer_dims, narrative.activations = steps, dims, acts
    narrative.loss, narrative.m, narrative.conventions = loss, m, tuple(conventions)
    narrative.batch_norm = tuple(bn)
    return narrative
