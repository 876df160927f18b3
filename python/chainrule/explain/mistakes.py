"""The catalogue of the mistakes :mod:`.doctor` and :mod:`.course` can name.

One entry per code: its title, why it is wrong (the course's formula and reason), and the
wording of what was seen (:func:`seen`). How each structural mistake of the linear step
computes its wrong result is here too (:func:`linear_alternatives`), so that the doctor's
three backward functions and the course's chain functions build the same alternatives.
"""

# ruff: noqa: N803, N806  (the course's names)

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._match import shape_text


class Mistake(NamedTuple):
    """One catalogue entry: ``title``, ``why`` (the rule), ``seen`` (what was seen, a template
    with ``{name}``, ``{m}``, ``{shape}``, ``{expected}``, ``{product}``)."""

    title: str
    why: str
    seen: str = ""


_TEXTS = {
    "missing_1_over_m": (
        "missing 1/m",
        "dW and db are averages over the m examples: in convention L, dW = (1/m) dZ·A_prevᵀ and "
        "db = (1/m) Σ_k dZ. Without the 1/m the result is m times too large. (In convention J "
        "the 1/m is already in dZ[L] = (A[L] - Y)/m, and then dW = dZ·A_prevᵀ has none.)"),
    "extra_1_over_m": (
        "extra 1/m",
        "Only dW and db carry the 1/m (convention L). dA_prev = Wᵀ·dZ and dZ = dA * g'(Z) have "
        "none: a 1/m there is one too many (and it compounds layer after layer)."),
    "double_1_over_m": (
        "1/m applied twice",
        "The 1/m enters once: either in dW, db (convention L, dZ[L] = A[L] - Y) or in dZ[L] = "
        "(A[L] - Y)/m (convention J), never in both. Here the result is 1/m times the correct "
        "one."),
    "transposed_result": (
        "transposed result",
        "A gradient has the shape of what it differentiates: dW like W (n[l], n[l-1]), dA_prev "
        "like A_prev (n[l-1], m). The result is the transpose of the correct one: the product "
        "was written in the other order (e.g. A_prev·dZᵀ instead of dZ·A_prevᵀ)."),
    "missing_transpose": (
        "missing transpose",
        "dW = dZ·A_prevᵀ and dA_prev = Wᵀ·dZ: the transpose is what makes the shapes fit "
        "(dimension analysis: the sum runs over the example index k for dW and over the unit "
        "index i of layer l for dA_prev). Without it the product fails on general shapes."),
    "elementwise_product": (
        "* where a matrix product belongs",
        "dW = (1/m) np.dot(dZ, A_prev.T) and dA_prev = np.dot(W.T, dZ) are matrix products "
        "(np.dot or @); * multiplies entry by entry (and broadcasts), which fails on general "
        "shapes."),
    "wrong_m": (
        "m from the wrong axis",
        "m is the number of examples, the columns: m = A_prev.shape[1]. A_prev.shape[0] is "
        "n[l-1] and dZ.shape[0] is n[l]."),
    "sum_wrong_axis": (
        "sum over the wrong axis",
        "db sums dZ over the examples, which are the columns: np.sum(dZ, axis=1, keepdims=True), "
        "shape (n[l], 1). axis=0 sums over the units instead (shape (1, m)), and no axis sums "
        "everything to one number."),
    "missing_keepdims": (
        "missing keepdims",
        "np.sum(dZ, axis=1) drops the summed axis and returns shape (n[l],); db must have the "
        "shape of b, (n[l], 1): add keepdims=True (a (n,) db broadcasts wrongly in b - lr·db)."),
    "g_prime_at_A": (
        "g' evaluated at A instead of Z",
        "dZ = dA * g'(Z): the derivative is taken at Z, the activation's input. Here g' was "
        "evaluated at A = g(Z) (e.g. sigmoid(A)·(1 - sigmoid(A)))."),
    "a_form_at_Z": (
        "g' written with A but fed Z",
        "σ'(Z) = A(1 - A) and tanh'(Z) = 1 - A² are written with A = g(Z). The cache holds Z, "
        "so compute A = g(Z) first; here Z itself was used in place of A (Z(1 - Z), 1 - Z²)."),
    "g_instead_of_g_prime": (
        "g instead of g'",
        "dZ = dA * g'(Z) multiplies by the derivative of the activation, not by the activation "
        "g(Z)."),
    "sigmoid_tanh_mixup": (
        "sigmoid/tanh derivative mixed up",
        "σ'(Z) = σ(Z)(1 - σ(Z)) and tanh'(Z) = 1 - tanh(Z)²: the derivative of the other "
        "activation was used."),
    "relu_mask_wrong_array": (
        "ReLU mask on the wrong array",
        "relu'(Z) = 1 where Z > 0: the mask is taken from Z (the cache), dZ = dA where Z > 0 "
        "else 0. Here it was taken from another array (dA or A_prev)."),
    "relu_mask_inverted": (
        "ReLU mask inverted",
        "dZ keeps dA where Z > 0 and is 0 where Z <= 0; here the mask kept the other entries."),
    "dA_dZ_mixup": (
        "dA and dZ mixed up",
        "dA = ∂L/∂A and dZ = ∂L/∂Z differ by g': dZ = dA * g'(Z). linear_backward takes dZ; "
        "for sigmoid with cross-entropy, A[L] - Y is already dZ[L] (not dA[L]), while "
        "dA[L] = -(Y/A[L] - (1 - Y)/(1 - A[L])) still needs the sigmoid's backward step."),
    "wrong_cache": (
        "wrong cache (layer off by one)",
        "Layer l (1-based) uses caches[l - 1]: in the course's loop over l in "
        "reversed(range(L - 1)), current_cache = caches[l] for layer l + 1."),
    "wrong_upstream": (
        "a layer starts from another layer's gradient",
        "Layer l's backward step starts from dA[l] = W[l+1]ᵀ · dZ[l+1], the dA_prev that layer "
        "l + 1 returned (grads['dA' + str(l)]). A loop copied from the output layer that keeps "
        "passing dAL feeds every hidden layer the output layer's gradient (it broadcasts when "
        "the output has one unit, so nothing fails)."),
    "wrong_activation": (
        "wrong activation for a layer",
        "L_model_backward uses sigmoid for the output layer L and relu for layers 1..L-1."),
    "sign_flipped": (
        "sign flipped",
        "The result is the negative of the correct one: dAL = -(Y/AL - (1 - Y)/(1 - AL)) "
        "(with its leading minus), dZ[L] = A[L] - Y (not Y - A[L])."),
    "wrong_factor": (
        "off by a constant factor",
        "The result is a constant multiple of the correct one."),
    "wrong_output_order": (
        "outputs in the wrong order",
        "The course's backward functions return (dA_prev, dW, db), in that order."),
    "wrong_outputs": (
        "wrong number or kind of outputs",
        "linear_backward and linear_activation_backward return the tuple (dA_prev, dW, db); "
        "L_model_backward returns the dict grads with keys dA0..dA{L-1}, dW1..dWL, db1..dbL."),
    "bn_stats_constant": (
        "batch norm: mu and sigma^2 treated as constants",
        "The batch statistics depend on every example of the mini-batch: mu = (1/m) Σ_k Z[:, k] "
        "and sigma^2 = (1/m) Σ_k (Z[:, k] - mu)^2 are functions of Z, so the backward goes "
        "through them too: dZ = (gamma / (m s)) * (m dZ_tilde - Σ_k dZ_tilde - Z_hat * Σ_k "
        "dZ_tilde Z_hat), not (gamma / s) * dZ_tilde. Each unit's Jacobian is a dense m x m "
        "block (delta_jk - 1/m - Z_hat_j Z_hat_k / m) gamma / s, and dropping its coupling "
        "lets the parameters drift (Ioffe & Szegedy, section 2)."),
    "bn_eps_outside_sqrt": (
        "batch norm: eps outside the square root",
        "s = np.sqrt(var + eps): eps is added to the variance under the root (and "
        "d s / d var = 1 / (2 s)). np.sqrt(var) + eps is another function, and the "
        "backward of the course's forward differs from it."),
    "bn_sum_wrong_axis": (
        "batch norm: statistics or sums over the wrong axis",
        "mu, sigma^2, dgamma and dbeta run over the examples of the mini-batch: axis=1 "
        "(keepdims=True) in the course's layout (units x examples), axis=0 in the rows layout "
        "(examples x units). Over the other axis they mix the units of one example."),
    "bn_double_1_over_m": (
        "batch norm: 1/m applied twice",
        "In dZ = (gamma / (m s)) * (m dZ_tilde - Σ_k dZ_tilde - Z_hat * Σ_k dZ_tilde Z_hat) "
        "the two terms are sums (convention J's dbeta and dgamma); convention L's dbeta and "
        "dgamma already carry a 1/m, so there dZ = (gamma / s) * (dZ_tilde - dbeta - Z_hat * "
        "dgamma). Feeding the means into the sum form divides them by m twice."),
    "bn_unbiased_variance": (
        "batch norm: unbiased variance in training",
        "In training, batch norm normalises with the biased variance of the mini-batch, "
        "sigma^2 = (1/m) Σ_k (Z[:, k] - mu)^2 (np.var's default, ddof=0). The unbiased one, "
        "divided by m - 1, is only for the running variance used at test time."),
    "raises": (
        "the function raises",
        "The function raised an exception on inputs with the course's shapes."),
    "mutates_input": (
        "modifies its input in place",
        "The function changed an array it was given (e.g. dZ = dA; dZ[Z <= 0] = 0 writes into "
        "dA). Copy first: dZ = np.array(dA, copy=True)."),
    "np_matrix": (
        "np.matrix instead of np.ndarray",
        "The result is an np.matrix (from np.matrix or np.mat): on it * is a matrix product and "
        "** a matrix power, so formulas written for arrays change meaning. Use np.array and "
        "np.dot / @."),
    "wrong_cache_contents": (
        "the cache is not what the backward pass reads",
        "The forward functions store exactly what the course's backward functions unpack: "
        "linear_forward's cache is (A_prev, W, b), linear_activation_forward's is "
        "((A_prev, W, b), Z), L_model_forward's caches is a list of L of them, and the planar "
        "forward_propagation's cache is the dict {'Z1', 'A1', 'Z2', 'A2'}."),
    "missing_bias": (
        "missing bias",
        "Z = W·A_prev + b: the bias b (shape (n[l], 1), broadcast over the m columns) is part of "
        "the linear step."),
    "transposed_W": (
        "Wᵀ where W belongs",
        "Z = np.dot(W, A_prev) + b with W of shape (n[l], n[l-1]): W already maps layer l-1 to "
        "layer l, no transpose (it fails on general shapes and is wrong on square ones)."),
    "x_transposed": (
        "Xᵀ where X belongs",
        "In the course the examples are the columns: X has shape (n_x, m) and Z1 = W1·X + b1. "
        "W1·Xᵀ treats the rows as examples (it fails unless n_x = m)."),
    "activation_missing": (
        "activation not applied",
        "A = g(Z): the layer's output is the activation of Z, not Z itself."),
    "cost_not_scalar": (
        "cost is not a number",
        "The cost is one number: np.squeeze(cost) (or float(cost)) turns the (1, 1) result of "
        "np.dot or a keepdims sum into shape ()."),
    "cost_missing_term": (
        "a term of the cross-entropy is missing",
        "J = -(1/m) Σ [Y log AL + (1 - Y) log(1 - AL)]: both terms, for the examples with "
        "Y = 1 and those with Y = 0."),
    "cost_wrong_reduction": (
        "the cost is not summed over all examples",
        "np.sum over every entry (or over axis=1, then squeeze): the cost is one number, not one "
        "value per example."),
    "l2_cost_wrong": (
        "L2 term of the cost wrong",
        "L2_regularization_cost = (1/m)(λ/2) Σ_l Σ_kj (W[l]_kj)², i.e. lambd/(2*m) * "
        "(np.sum(np.square(W1)) + ...). Note lambd/2*m is (lambd/2)·m in Python."),
    "l2_gradient_missing": (
        "L2 term of dW missing",
        "With the L2 term (λ/2m) Σ ||W||² in the cost, every dW gains its derivative (λ/m)·W: "
        "dW = (1/m) dZ·A_prevᵀ + (λ/m) W (db is unchanged)."),
    "l2_gradient_wrong": (
        "L2 term of dW wrong",
        "d/dW of (λ/2m) ||W||² is (λ/m)·W: lambd/m * W, not lambd * W, lambd/(2*m) * W or "
        "lambd/2*m * W (which is (lambd/2)·m·W)."),
    "dropout_mask_missing": (
        "dropout mask not applied in the backward pass",
        "Backward through dropout uses the same mask as the forward pass: dA = dA * D, then "
        "dA = dA / keep_prob; the units shut down forward get no gradient."),
    "dropout_not_rescaled": (
        "dropout gradient not divided by keep_prob",
        "The forward pass divided A by keep_prob (inverted dropout), so the backward pass "
        "divides dA by keep_prob too: dA = dA * D / keep_prob."),
    "dropout_rescaled_wrong": (
        "dropout gradient multiplied by keep_prob",
        "Inverted dropout scales by 1/keep_prob in both passes: dA = dA * D / keep_prob, not "
        "* keep_prob."),
    "learning_rate_missing": (
        "learning rate missing",
        "Gradient descent moves each parameter by the learning rate times its gradient: "
        "W = W - learning_rate * dW."),
    "not_updated": (
        "parameter not updated",
        "Every parameter is updated, W[l] and b[l] for l = 1..L (keys 'W1'..'WL', 'b1'..'bL'; a "
        "loop over range(L) uses str(l + 1))."),
    "momentum_formula": (
        "velocity formula wrong",
        "v = β v + (1 - β) dW: an exponentially weighted average of the gradients (β on the old "
        "velocity, 1 - β on the new gradient)."),
    "momentum_update_uses_grads": (
        "update uses the gradient, not the velocity",
        "With momentum the parameter moves along the velocity: W = W - learning_rate * v['dW']."),
    "momentum_old_velocity": (
        "update uses the old velocity",
        "Update v first, then the parameter with the new v."),
    "adam_bias_correction": (
        "bias correction wrong",
        "v_corrected = v / (1 - β1^t) and s_corrected = s / (1 - β2^t), with t the step count "
        "passed in (np.power(beta1, t)); t is not the layer index, not a constant."),
    "adam_epsilon_inside_sqrt": (
        "ε inside the square root",
        "The notebook's update is W - lr · v_corrected / (√s_corrected + ε): ε outside the root "
        "(some versions of the lectures put it inside; the grader checks this one)."),
    "adam_sqrt_missing": (
        "square root missing",
        "Adam divides by the root of the second moment: v_corrected / (np.sqrt(s_corrected) + ε)."),
    "adam_s_not_squared": (
        "second moment not squared",
        "s = β2 s + (1 - β2) dW²: the average of the squared gradients (np.square(dW))."),
    "adam_beta_mixup": (
        "β1 and β2 mixed up",
        "β1 (0.9) is the first moment's (v), β2 (0.999) the second's (s)."),
    "adam_beta_partial": (
        "one decay rate swapped in a moment",
        "Each moment uses one decay rate in both of its terms: v = β1 v + (1 - β1) dW and "
        "s = β2 s + (1 - β2) dW². Here one term of a moment has the other β (e.g. "
        "β1 s + (1 - β2) dW²), so the weights no longer sum to 1."),
    "wrong_shape": (
        "wrong shape",
        "A result has the shape of what it updates or differentiates: dW like W (n[l], "
        "n[l-1]), db like b (n[l], 1), dA_prev like A_prev (n[l-1], m), an updated W like W. A "
        "result of another shape is another quantity (a copy of another gradient, a sum over "
        "the wrong axis, a broadcast that went wrong)."),
    "raises_in_helper": (
        "a helper raises",
        "The function was called as the course calls it, and an exception was raised inside a "
        "function it calls (see the line)."),
    "signature": (
        "not the course's signature",
        "The function cannot be called with the course's arguments."),
    "timed_out": (
        "does not return",
        "The function ran past the time limit and was stopped (a loop that never ends? a "
        "while loop whose condition never changes?)."),
    "exits": (
        "ends the program",
        "The function called sys.exit (or raised SystemExit / KeyboardInterrupt): a function "
        "returns its results; it never ends the program."),
    "unrecognised": (
        "wrong, but not a mistake the doctor knows",
        "An output differs from the reference and none of the known mistakes reproduces it."),
}


#: what was seen, per code (the fields of :func:`seen`)
_SEEN = {
    "missing_1_over_m": "m = {m} times the correct value",
    "double_1_over_m": "1/m = 1/{m} times the correct value",
    "extra_1_over_m": "1/m = 1/{m} times the correct value",
    "wrong_factor": "m = {m} times the correct value (no m belongs there)",
    "sign_flipped": "the negative of the correct value",
    "transposed_result": "shape {shape}, the transpose of the correct {expected}",
    "missing_transpose": ("fails on general shapes; on square shapes it equals {product}, the "
                          "product without the transpose"),
    "elementwise_product": "fails on general shapes; on square shapes it equals the entrywise "
                           "product",
    "sum_wrong_axis": "shape {shape}, expected {expected}",
    "missing_keepdims": "shape {shape}, expected {expected}",
    "wrong_shape": "expected shape {expected}, given {shape}",
    "dA_dZ_mixup": "equals dZ (or dA) where the other belongs",
    "wrong_m": "the 1/m divides by another dimension than m = {m}",
    "l2_gradient_missing": "no (λ/m)·W term",
    "dropout_mask_missing": "the dropout mask D is not applied",
    "dropout_not_rescaled": "not divided by keep_prob",
    "dropout_rescaled_wrong": "multiplied by keep_prob instead of divided",
    "g_prime_at_A": "g' evaluated at A instead of Z",
    "a_form_at_Z": "the A-form of g' fed Z",
    "g_instead_of_g_prime": "multiplied by g, not g'",
    "sigmoid_tanh_mixup": "the other activation's derivative",
    "relu_mask_wrong_array": "the ReLU mask taken from another array",
    "relu_mask_inverted": "the ReLU mask inverted",
    "wrong_cache": "computed from another layer's cache",
    "wrong_upstream": "dZ computed from dAL (the output layer's gradient), not from this "
                      "layer's dA",
    "wrong_activation": "another activation's derivative for this layer",
    "learning_rate_missing": "the step is not multiplied by the learning rate",
    "not_updated": "unchanged",
    "momentum_formula": "v is not β v + (1 - β) dW",
    "momentum_update_uses_grads": "the parameter moved by the gradient, not by v",
    "momentum_old_velocity": "the parameter moved by the old v (update v first)",
    "adam_bias_correction": "the bias correction is not 1/(1 - β^t) with this t",
    "adam_epsilon_inside_sqrt": "ε inside the square root: √(ŝ + ε) instead of √ŝ + ε",
    "adam_sqrt_missing": "divided by ŝ + ε, not √ŝ + ε",
    "adam_s_not_squared": "s averages dW, not dW²",
    "adam_beta_mixup": "β1 and β2 swapped",
    "adam_beta_partial": "one term of a moment uses the other decay rate",
    "bn_stats_constant": "part of the coupling dropped: mu or sigma^2 treated as a constant "
                         "(e.g. dZ = (gamma / s) * dZ_tilde)",
    "bn_eps_outside_sqrt": "computed with s = sqrt(sigma^2) + eps",
    "bn_unbiased_variance": "computed with the unbiased variance (divided by m - 1)",
    "bn_sum_wrong_axis": "the means or sums run over the units, not over the examples",
    "bn_double_1_over_m": "the sums in dZ are divided by m twice",
    "missing_bias": "equals W · A without + b",
    "transposed_W": "uses Wᵀ · A",
    "activation_missing": "equals Z: the activation is not applied",
    "x_transposed": "uses Xᵀ where X belongs",
}

#: Every mistake the doctor can name: code -> :class:`Mistake` (title, why, seen).
MISTAKES = {code: Mistake(title, why, _SEEN.get(code, "")) for code, (title, why) in
            _TEXTS.items()}


#: g'(Z) of each activation, as the reports write it (one table for every formula shown)
G_PRIME_TEXT = {
    "sigmoid": "σ'(Z) = σ(Z)(1 - σ(Z))",
    "tanh": "tanh'(Z) = 1 - tanh(Z)²",
    "relu": "relu'(Z) = 1 where Z > 0 else 0",
    "leaky_relu": "leaky_relu'(Z) = 1 where Z > 0 else alpha",
    "identity": "identity'(Z) = 1",
}


def seen(code, name, U=None, E=None, m=None, extra=None, product=None):
    """``"name: what was seen"`` for ``code`` on the output ``name`` (``extra`` overrides)."""
    if extra:
        return f"{name}: {extra}"
    template = MISTAKES[code].seen if code in MISTAKES else ""
    if not template:
        return f"{name}: differs from the reference"
    if product is None:
        product = "dZ · A_prev" if str(name).startswith("dW") else "W · dZ"
    return f"{name}: " + template.format(
        m=m, shape=shape_text(U) if U is not None else "?",
        expected=shape_text(E) if E is not None else "?", product=product)


def linear_alternatives(dZ, A_prev, W, convention="L"):
    """What each per-output structural mistake of the linear step computes, at the correct
    scale: ``{"dW": [(code, array)], "db": [...], "dA": [...]}`` (convention "L": the 1/m in
    dW and db; "J": none there)."""
    m = A_prev.shape[1]
    s = 1.0 / m if convention == "L" else 1.0
    dW = s * (dZ @ A_prev.T)
    db = s * np.sum(dZ, axis=1, keepdims=True)
    dA = W.T @ dZ
    alt = {"dW": [("transposed_result", dW.T)], "db": [], "dA": [("transposed_result", dA.T)]}
    if dZ.shape[1] == A_prev.shape[0]:
        alt["dW"].append(("missing_transpose", s * (dZ @ A_prev)))
    if dZ.shape == A_prev.T.shape:
        alt["dW"].append(("elementwise_product", s * (dZ * A_prev.T)))
    alt["db"] += [("missing_keepdims", db.reshape(-1)),
                  ("missing_keepdims", np.squeeze(db)),
                  ("sum_wrong_axis", s * np.sum(dZ, axis=0, keepdims=True)),
                  ("sum_wrong_axis", s * np.sum(dZ, axis=0)),
                  ("sum_wrong_axis", np.asarray(s * np.sum(dZ)))]
    if convention == "L":
        # m read from the wrong axis: A_prev.shape[0] (n_prev) or dZ.shape[0] (n)
        for wrong in dict.fromkeys((A_prev.shape[0], dZ.shape[0])):
            if wrong != m:
                alt["dW"].append(("wrong_m", dW * m / wrong))
                alt["db"].append(("wrong_m", db * m / wrong))
    if W.shape[1] == dZ.shape[0]:
        alt["dA"].append(("missing_transpose", W @ dZ))
    if W.T.shape == dZ.shape:
        alt["dA"].append(("elementwise_product", W.T * dZ))
    alt["dA"].append(("dA_dZ_mixup", dZ))
    return dW, db, dA, alt
