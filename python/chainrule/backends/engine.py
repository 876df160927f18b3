r"""The training op ``fit_epochs``: its result type and its generic composition (the oracle).

``fit_epochs`` runs up to ``n_steps`` steps of mini-batch training (possibly crossing epoch
ends) in one call. The compiled engines (``chainrule.core.train`` for numba, ``csrc/`` for
C) do the same arithmetic in one compiled loop; this one is the oracle they are tested
against, written with the reference formulas (``reference.py``) and the optimisers'
updates (``optim.py``), step by step as ``Network.fit`` did before the engine (``FitRun._step``).

One step, on batch ``k`` of chunk epoch ``e`` (columns ``order[k s:(k+1) s]``, the last one
smaller; ``order = perms[e]`` or the identity):

- forward with inverted dropout on the hidden layers, ``A[l] = g(Z[l]) * D[l] / p[l]``
  (masks from :func:`chainrule.backends.philox.dropout_mask` with ``keys[e]``, or from ``masks``);
- the batch cost ``J_b = (1/Σw) Σ_k w_k L_k + λ/(2Σw) Σ_l ||W[l]||²`` (no weights: ``w = 1``,
  ``Σw = mb``), before the update;
- backward ("L" convention) with ``dZ[L][:, k]`` scaled by ``w_k mb / Σw`` and the L2 term
  ``λ mb / Σw`` (i.e. ``(λ/Σw) W`` in ``dW``);
- the optimiser's update with learning rate ``lrs[e]``, applied only when the cost, every
  gradient, every new parameter and every new optimiser-state entry are finite (the one
  update-safety rule); otherwise nothing changes (parameters, state, ``t``) and the call
  stops, reporting the step.

Per chunk epoch it accumulates ``Σ_b J_b Σw_b`` and ``Σ_b Σw_b`` (the epoch cost is their
ratio, the course's ``cost_avg``) and the number of correct predictions of the batches'
forward passes (with dropout): ``(a > 0.5) == (y > 0.5)`` for one output unit,
``argmax a == argmax y`` for several.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np

from .. import reference as ref
from ..errors import InputError
from .compose import first_nonfinite_name, unsafe_update
from .philox import dropout_mask

__all__ = ["ChunkResult", "fit_epochs", "n_batches", "batch_correct", "running_sums"]


class ChunkResult(NamedTuple):
    """What one :func:`fit_epochs` call did.

    ``steps``: steps applied. ``status``: 0 all ``n_steps`` done (or the chunk's epochs ran
    out, or a compiled call's time limit: the C engine inside a fit session may stop early,
    and the caller continues from ``epoch, batch``), 1 a step was refused (non-finite). ``epoch, batch``: the chunk epoch and batch
    index of the next step to run (the refused one when ``status == 1``). ``what``: on
    refusal, what was non-finite (e.g. ``"gradient dW2"``), else ``""``. ``t``: the
    optimiser's step counter after the call. ``cost_sum, weight_sum`` (E,) float64:
    ``Σ_b J_b Σw_b`` and ``Σ_b Σw_b`` of the steps applied in each chunk epoch;
    ``correct`` (E,) int64: correct predictions of those batches.
    """

    steps: int
    status: int
    epoch: int
    batch: int
    what: str
    t: int
    cost_sum: np.ndarray
    weight_sum: np.ndarray
    correct: np.ndarray


def n_batches(m, mini_batch_size):
    """``ceil(m / s)``: the mini-batches of one epoch."""
    return -(-m // mini_batch_size)


def batch_correct(AL, Y):
    """Correct predictions of a batch: threshold 0.5 for one unit, argmax for several."""
    if AL.shape[0] == 1:
        return int(np.count_nonzero((AL[0] > 0.5) == (Y[0] > 0.5)))
    return int(np.count_nonzero(np.argmax(AL, axis=0) == np.argmax(Y, axis=0)))


class _Ops:
    """The one layer op ``optim.GradientDescent.update`` asks of a backend."""

    @staticmethod
    def sgd_update(Ws, bs, dWs, dbs, learning_rate):
        for W, b, dW, db in zip(Ws, bs, dWs, dbs):
            W -= learning_rate * dW
            b -= learning_rate * db


_DTYPE_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}


def _batch(perms, e, k, s, m):
    """Batch ``k`` of chunk epoch ``e``: its index into the examples and its size. The
    identity order is a slice, so the batch is a view (the course's X of a step is read
    where it lies); a permutation's is its slice of ``perms[e]``."""
    if perms is None:
        start, stop = k * s, min((k + 1) * s, m)
        return slice(start, stop), stop - start
    idx = perms[e][k * s:(k + 1) * s]
    return idx, len(idx)


def _philox_masks(key, k, layer_dims, keep_probs, mb, dtype):
    """``{l: D[l] / p[l]}`` of batch ``k`` for the hidden layers that drop."""
    return {l: dropout_mask(key, l, k, layer_dims[l], mb, p, dtype)
            for l, p in enumerate(keep_probs, 1) if p < 1.0}


class _Bounds:
    """Upper bounds of ``max|P|``, ``max|v|``, ``max|s|`` carried from step to step (exact
    at the start of a call and after an exact step): the cheap form of the update-safety
    rule, as in ``chainrule.core.train``, with the optimiser's own :meth:`bound`
    (``chainrule.optim``)."""

    def __init__(self, optimizer, Ws, bs, state, dtype_max):
        self.optimizer = optimizer
        self.limit = 0.5 * float(dtype_max)
        self.refresh(Ws, bs, state)

    def refresh(self, Ws, bs, state):
        self.p = max_abs(Ws + bs)
        self.v = max_abs([a for key, a in state.items() if key.startswith("v_")]) if state \
            else 0.0
        self.s = max_abs([a for key, a in state.items() if key.startswith("s_")]) if state \
            else 0.0

    def safe(self, lr, g_max, t):
        """Whether the step's new values are certainly finite; keeps the bounds for
        :meth:`advance` (inside the engine's ``errstate``: an inf bound is not safe)."""
        self._next = self.optimizer.bound(self.p, self.v, self.s, lr, g_max, t)
        return all(x < self.limit for x in self._next)

    def advance(self):
        self.p, self.v, self.s = self._next


def running_sums(sums, E):
    """The ``(2, E)`` float64 array a :func:`fit_epochs` call adds ``Σ_b J_b Σw_b`` (row 0)
    and ``Σ_b Σw_b`` (row 1) of its steps to: ``sums`` itself (checked), or zeros when it
    is None."""
    if sums is None:
        return np.zeros((2, E))
    if not (isinstance(sums, np.ndarray) and sums.dtype == np.float64 and sums.shape == (2, E)
            and sums.flags.c_contiguous and sums.flags.writeable):
        got = f"{sums.dtype} {sums.shape}" if isinstance(sums, np.ndarray) else \
            type(sums).__name__
        raise InputError(f"sums must be a writable C-contiguous float64 array of shape "
                         f"(2, {E}) (the chunk's epochs), got {got}")
    return sums


def fit_epochs(plan, XT, YT, w, *, perms, lrs, keys, k0, n_steps, t, state, Ws, bs,
               masks=None, ops=None, norm=None, sums=None):
    """Run up to ``n_steps`` mini-batch steps of ``plan`` from batch ``k0`` of the chunk's
    first epoch.

    Parameters
    ----------
    plan : FitPlan
        The fit's plan (:class:`chainrule.backends.plan.FitPlan`): layers (units,
        activation, keep probability), loss, ``lambd``, the mini-batch size ``s`` (the last
        batch of an epoch has ``m - floor(m/s) s`` examples if that is > 0) and the
        optimiser, whose ``update`` is applied to candidate copies (its own ``state`` and
        ``t`` are not touched: they are arguments, so a compiled engine takes them as
        arrays).
    XT : (m, n[0]) array, YT : (m, n[L]) array
        The examples as rows (``X.T``, ``Y.T``), in the network dtype.
    w : (m,) array or None
        Example weights (sample times class weight), in the network dtype.
    perms : (E, m) int array or None
        Each chunk epoch's example order (``None``: the identity for every epoch).
    lrs : (E,) float array
        Each chunk epoch's learning rate (the decay is computed by the caller).
    keys : (E,) int64/uint64 array or None
        Each chunk epoch's 64-bit dropout key (read only when the plan drops units).
    k0 : int
        The first step's batch index within chunk epoch 0.
    n_steps : int
        The step budget; the call stops earlier when the chunk's epochs run out.
    t : int
        The optimiser's step counter (Adam's bias correction).
    state : dict
        The optimiser state (``Optimizer.state``: ``v_dW1``, ``s_db2`` ...), updated in place.
    Ws, bs : lists of arrays
        ``W[l]`` (n[l], n[l-1]) and ``b[l]`` (n[l], 1), updated in place.
    masks : callable, optional
        ``masks(e, k, mb) -> {l: D[l] / p[l]}`` replaces the counter-based masks (the
        course-exact mode draws them from a generator).
    ops : backend ops, optional
        Compose the steps from this backend's ``forward``, ``backward_delta`` and
        ``sgd_update`` (the generic composition of the op); by default the reference
        formulas themselves.
    norm : tuple of lists, optional
        ``(gammas, running_means, running_vars)`` per layer (``None`` for a layer without
        batch norm), updated in place: required when the plan has batch-norm layers (whose
        ``bs`` entries are their ``beta``). Such a plan runs :func:`_fit_epochs_bn`.
    sums : (2, E) float64 array, optional
        The running ``Σ_b J_b Σw_b`` and ``Σ_b Σw_b`` of the chunk's epochs, which the call
        adds its steps to in place, one step after the other (the result's ``cost_sum`` and
        ``weight_sum`` are its rows): a fit passes the sums of the epochs so far, so that an
        epoch's cost is the same sum in the same order wherever the calls split the epoch
        (they split it by time). Zeros when omitted.

    Returns
    -------
    ChunkResult
    """
    if plan.batch_norm:
        return _fit_epochs_bn(plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys, k0=k0,
                              n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs, masks=masks,
                              norm=norm, sums=sums)
    activations, loss, lambd, keep_probs = plan.activations, plan.loss, plan.lambd, \
        plan.keep_probs
    optimizer, mini_batch_size = plan.optimizer, plan.mini_batch_size
    m, E, s = XT.shape[0], len(lrs), int(mini_batch_size)
    L = len(Ws)
    dtype = Ws[0].dtype
    layer_dims = plan.layer_dims
    drop = plan.drops
    nb = n_batches(m, s)
    opt = copy.copy(optimizer)  # the update's formulas; state and t are set per step
    # The exact rule always for the reference formulas (the oracle); the cheap bounds for a
    # backend's composition when the optimiser has them (Optimizer.bound).
    bounds = None
    # the bounds of the optimisers the compiled engines know (a code) are the engines' own,
    # tested: a step they prove finite is applied without checks; another's are trusted
    # only as far as its update's own check
    trusted = optimizer.code is not None
    if ops is not None and optimizer.bound(0.0, 0.0, 0.0, 0.0, 0.0, 0) is not None:
        bounds = _Bounds(optimizer, Ws, bs, state,
                         _DTYPE_MAX.get(dtype) or float(np.finfo(dtype).max))
    sums = running_sums(sums, E)
    cost_sum, weight_sum = sums
    correct = np.zeros(E, dtype=np.int64)
    e, k, done = 0, int(k0), 0
    # NaN and inf are the update-safety rule's to judge: no warnings on the way
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while done < n_steps and e < E:
            idx, mb = _batch(perms, e, k, s, m)
            Xb, Yb = XT[idx].T, YT[idx].T
            wb = None if w is None else w[idx]
            if masks is not None:
                D = masks(e, k, mb)
            elif drop:
                D = _philox_masks(keys[e], k, layer_dims, keep_probs, mb, dtype)
            else:
                D = None
            params = {}
            if ops is None or lambd:
                for l in range(1, L + 1):
                    params[f"W{l}"], params[f"b{l}"] = Ws[l - 1], bs[l - 1]
            share = float(mb) if wb is None else float(np.sum(wb, dtype=np.float64))
            if ops is None:
                AL, caches = ref.model_forward(Xb, params, activations, D)
            else:
                D_list = None if D is None else [D.get(l) for l in range(L + 1)]
                Zs, As = ops.forward(Xb, Ws, bs, activations, D_list)
                AL = As[-1]
            J = ref.compute_cost(AL, Yb, loss, sample_weight=wb)
            if lambd:
                J += ref.l2_cost(params, lambd, share)
            if ops is None:
                dWs, dbs = _gradients(AL, Yb, caches, activations, loss, lambd, D, wb, share)
            else:
                dZL = ref.output_delta(AL, Yb, Zs[-1], activations[-1], loss, "L")
                if wb is not None:
                    dZL = dZL * (wb * AL.dtype.type(mb / share))
                _, dWs, dbs, _ = ops.backward_delta(dZL, Zs, As, Ws, activations, "L",
                                                    lambd * mb / share, D_list, False)
            # the update-safety rule before the candidates exist: "cost", "gradient dW2"
            fast, g_max = False, None
            if bounds is not None:
                # one pass per gradient: its largest |g| (NaN when it holds a NaN), which also
                # says whether all are finite; the names only when one is not
                g_max = max_abs(dWs + dbs)
            bad = None if g_max is not None and math.isfinite(g_max) and math.isfinite(J) else \
                unsafe_update(J, [(f"{p}{l}", g) for l in range(1, L + 1)
                                  for p, g in (("dW", dWs[l - 1]), ("db", dbs[l - 1]))], ())
            if bad is None and bounds is not None:
                # The composition's shortcut (the compiled engines' too): when bounds of the new
                # values, with the rate as the dtype holds it, are far below the dtype's max the
                # update is certainly finite: it is applied in place, without candidates.
                lr_dtype = float(dtype.type(lrs[e]))  # inf past float32's max: not fast
                fast = bounds.safe(lr_dtype, g_max, int(t))
                if fast:
                    opt.state, opt.t = state, int(t)
                    if trusted:
                        opt.apply(ops, Ws, bs, dWs, dbs, float(lrs[e]))
                    else:  # a bound of the user's: the optimiser's own rule still checks
                        bad = opt.update(ops, Ws, bs, dWs, dbs, float(lrs[e]))
            if bad is None and not fast:
                # Candidates: the optimiser's update on copies; committed only if all finite.
                new_W = [W.copy() for W in Ws]
                new_b = [b.copy() for b in bs]
                opt.state = {key: v.copy() for key, v in state.items()}
                opt.t = int(t)
                # The optimiser commits only finite candidates (the one rule): a refusal
                # leaves the copies as they were and says what overflowed.
                bad = opt.update(_Ops if ops is None else ops, new_W, new_b, dWs, dbs,
                                 float(lrs[e]))
                if bad is None:  # the optimiser's result checked as well (a custom one's too)
                    # the rule's check of the candidates (the state is the cause when both
                    # are not finite), in its words
                    name = first_nonfinite_name(sorted(opt.state.items()))
                    if name is not None:
                        bad = f"update of {name}"
                    else:
                        name = first_nonfinite_name([(f"{p}{l}", P) for l in range(1, L + 1)
                                                     for p, P in (("W", new_W[l - 1]),
                                                                  ("b", new_b[l - 1]))])
                        bad = None if name is None else f"update of {name}"
            if bad is not None:
                return ChunkResult(done, 1, e, k, bad, int(t), cost_sum, weight_sum, correct)
            if fast:
                bounds.advance()
            else:
                for P, new in zip(Ws + bs, new_W + new_b):
                    P[...] = new
                for key, v in state.items():
                    v[...] = opt.state[key]
                if bounds is not None:
                    bounds.refresh(Ws, bs, state)
            t = opt.t
            e, k = _applied(cost_sum, weight_sum, correct, e, k, nb, J, share, AL, Yb)
            done += 1
    return ChunkResult(done, 0, e, k, "", int(t), cost_sum, weight_sum, correct)


def _applied(cost_sum, weight_sum, correct, e, k, nb, J, share, AL, Yb):
    """An applied step of batch ``k`` of chunk epoch ``e``: its ``J Σw`` and ``Σw`` added to the
    epoch's running sums and its correct predictions counted; returns the next step's
    ``(e, k)`` (both engine loops)."""
    cost_sum[e] += J * share
    weight_sum[e] += share
    correct[e] += batch_correct(AL, Yb)
    k += 1
    return (e + 1, 0) if k == nb else (e, k)


def max_abs(arrays):
    """The largest ``|a|`` over ``arrays`` (0 when all are empty), NaN when one holds a NaN:
    one pass per array, for the update-safety rule's bounds and finiteness at once."""
    best = 0.0
    for a in arrays:
        if a.size:
            x = float(np.abs(a).max())
            if not x <= best:  # larger, or NaN (which then stays)
                best = x
                if best != best:
                    return best
    return best


def _gradients(AL, Yb, caches, activations, loss, lambd, D, wb, share):
    """``dWs, dbs`` of the batch (convention "L"): ``dZ[L][:, k]`` scaled by
    ``w_k mb / Σw``, the L2 term ``(λ/Σw) W``, the masks applied to every ``dA[l]``."""
    L = len(caches)
    mb = AL.shape[1]
    dZ = ref.output_delta(AL, Yb, caches[-1][1], activations[-1], loss, "L")
    if wb is not None:
        dZ = dZ * (wb * AL.dtype.type(mb / share))
    l2 = lambd * mb / share
    dWs, dbs = [None] * L, [None] * L
    for l in range(L, 0, -1):
        linear_cache, Z = caches[l - 1]
        if l < L:
            if D is not None and D.get(l) is not None:
                dA = dA * D[l]
            dZ = ref.activation_backward(dA, Z, activations[l - 1])
        dA, dWs[l - 1], dbs[l - 1] = ref.linear_backward(dZ, linear_cache, "L", l2,
                                                         compute_dA_prev=l > 1)
    return dWs, dbs


def _fit_epochs_bn(plan, XT, YT, w, *, perms, lrs, keys, k0, n_steps, t, state, Ws, bs,
                   masks, norm, sums):
    """:func:`fit_epochs` of a plan with batch-norm layers, in the reference formulas on every
    backend: per step the training forward (batch statistics; linear, batch norm, activation,
    dropout), the cost, the backward (the compact batch-norm backward, convention "L", the
    output delta weighted as in :func:`fit_epochs`, L2 on ``W`` only), the optimiser's
    update of ``W``, ``gamma``, ``beta`` (and ``b`` of the other layers) with their own
    state entries (``v_dgamma1``...), and, once the step is applied, the running averages
    (``mu_hat <- beta mu_hat + (1 - beta) mu``; the variance unbiased or not, as the plan
    says). A refused step changes none of them."""
    if norm is None:
        raise InputError("a plan with batch-norm layers needs norm=(gammas, running_means, "
                         "running_vars)")
    gammas, means, varis = norm
    activations, loss, lambd = plan.activations, plan.loss, plan.lambd
    m, E, s = XT.shape[0], len(lrs), int(plan.mini_batch_size)
    L = len(Ws)
    dtype = Ws[0].dtype
    layer_dims, drop = plan.layer_dims, plan.drops
    bn = [layer.batch_norm for layer in plan.layers]
    nb = n_batches(m, s)
    opt = copy.copy(plan.optimizer)
    eps, beta, unbiased = plan.bn_epsilon, plan.bn_momentum, plan.bn_unbiased
    sums = running_sums(sums, E)
    cost_sum, weight_sum = sums
    correct = np.zeros(E, dtype=np.int64)
    e, k, done = 0, int(k0), 0
    while done < n_steps and e < E:
        idx, mb = _batch(perms, e, k, s, m)
        if mb < 2:
            raise InputError(f"batch norm: mini-batch {k} of epoch {e} has {mb} example; the "
                             f"batch statistics need at least 2 (choose a mini_batch_size "
                             f"that leaves no batch of one)")
        Xb, Yb = XT[idx].T, YT[idx].T
        wb = None if w is None else w[idx]
        if masks is not None:
            D = masks(e, k, mb)
        elif drop:
            D = _philox_masks(keys[e], k, layer_dims, plan.keep_probs, mb, dtype)
        else:
            D = None
        params, running = {}, {}
        for l in range(1, L + 1):
            params[f"W{l}"] = Ws[l - 1]
            if bn[l - 1]:
                params[f"gamma{l}"], params[f"beta{l}"] = gammas[l - 1], bs[l - 1]
                running[f"running_mean{l}"] = means[l - 1]
                running[f"running_var{l}"] = varis[l - 1]
            else:
                params[f"b{l}"] = bs[l - 1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            share = float(mb) if wb is None else float(np.sum(wb, dtype=np.float64))
            AL, caches = ref.model_forward(Xb, params, activations, D, epsilon=eps)
            J = ref.compute_cost(AL, Yb, loss, sample_weight=wb)
            if lambd:
                J += ref.l2_cost(params, lambd, share)
            grads = gradients_bn(AL, Yb, caches, activations, loss, lambd, D, wb, share)
        names = [(f"d{key}", grads[f"d{key}"]) for key in params]
        bad = unsafe_update(J, names, ())
        if bad is None:
            # update_named computes candidates and commits them (into these very arrays:
            # the parameters and ``state``) only when every one is finite
            opt.state, opt.t = state, int(t)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                bad = opt.update_named([(key, P, grads[f"d{key}"]) for key, P in params.items()],
                                       float(lrs[e]))
        if bad is not None:
            return ChunkResult(done, 1, e, k, bad, int(t), cost_sum, weight_sum, correct)
        new = ref.update_running_statistics(running, caches, beta, unbiased)
        for key, v in running.items():
            v[...] = new[key]
        t = opt.t
        e, k = _applied(cost_sum, weight_sum, correct, e, k, nb, J, share, AL, Yb)
        done += 1
    return ChunkResult(done, 0, e, k, "", int(t), cost_sum, weight_sum, correct)


def gradients_bn(AL, Yb, caches, activations, loss, lambd, D, wb, share):
    """``{dW1, dgamma1, dbeta1, ..., dbL}`` of the batch (convention "L") through batch-norm
    layers: :func:`_gradients` with the compact batch-norm backward where a layer has it."""
    L = len(caches)
    mb = AL.shape[1]
    dZ = ref.output_delta(AL, Yb, caches[-1][1], activations[-1], loss, "L")
    if wb is not None:
        dZ = dZ * (wb * AL.dtype.type(mb / share))
    l2 = lambd * mb / share
    grads = {}
    for l in range(L, 0, -1):
        linear_cache, Z = caches[l - 1][:2]
        if l < L:
            if D is not None and D.get(l) is not None:
                dA = dA * D[l]
            dZ = ref.activation_backward(dA, Z, activations[l - 1])
        if len(caches[l - 1]) == 3:
            dZ, grads[f"dgamma{l}"], grads[f"dbeta{l}"] = ref.batchnorm_backward(
                dZ, caches[l - 1][2], "L")
            dA, grads[f"dW{l}"], _ = ref.linear_backward(dZ, linear_cache, "L", l2,
                                                         compute_dA_prev=l > 1)
        else:
            dA, grads[f"dW{l}"], grads[f"db{l}"] = ref.linear_backward(
                dZ, linear_cache, "L", l2, compute_dA_prev=l > 1)
    return grads


def with_handover(compiled, plan, XT, YT, w, *, perms, lrs, keys, k0, n_steps, t, state, Ws,
                  bs, norm, ops, sums=None):
    """A compiled engine's ``fit_epochs`` of a plan with batch norm: ``compiled(perms, lrs,
    keys, k0, n_steps, t, sums)`` runs steps until it hands one over (returns
    ``(ChunkResult, handed_over)``); that step runs here, composed (:func:`fit_epochs`
    applies or refuses it, in the rule's words), and the compiled loop goes on from the next
    one. Every part adds to the same running ``sums`` (the rows of its epochs), in step
    order. Returns the chunk's :class:`ChunkResult`."""
    E = len(lrs)
    sums = running_sums(sums, E)
    cost_sum, weight_sum = sums
    correct = np.zeros(E, dtype=np.int64)
    e0, k, done = 0, int(k0), 0

    def rest(e0):
        return dict(perms=None if perms is None else perms[e0:], lrs=lrs[e0:],
                    keys=None if keys is None else keys[e0:])

    def part(e0):  # the running sums of epochs e0.. (a copy: the part adds to it)
        return np.ascontiguousarray(sums[:, e0:])

    def add(res, e0, part_sums):
        sums[:, e0:] = part_sums
        correct[e0:e0 + len(res.correct)] += res.correct

    while True:
        sub, part_sums = rest(e0), part(e0)
        res, handed_over = compiled(sub["perms"], sub["lrs"], sub["keys"], k, n_steps - done, t,
                                    part_sums)
        if handed_over:
            done, t = done + res.steps, res.t
            add(res, e0, part_sums)
            e0, k = e0 + res.epoch, res.batch
            part_sums = part(e0)
            res = fit_epochs(plan, XT, YT, w, **rest(e0), k0=k, n_steps=1, t=t, state=state,
                             Ws=Ws, bs=bs, ops=ops, norm=norm, sums=part_sums)
            handed_over = res.status == 0 and done + res.steps < n_steps
        done, t = done + res.steps, res.t
        add(res, e0, part_sums)
        e0, k = e0 + res.epoch, res.batch
        if not handed_over or e0 >= E:
            return ChunkResult(done, res.status, e0, k, res.what, int(t), cost_sum,
                               weight_sum, correct)


def generic(ops, *args, **kwargs):
    """The registry's generic ``fit_epochs`` for a backend without a compiled engine: the
    steps composed from that backend's ``forward``, ``backward_delta`` and ``sgd_update``."""
    return fit_epochs(*args, ops=ops, **kwargs)
