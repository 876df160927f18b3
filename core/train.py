r"""The training engine: a chunk of mini-batch steps (possibly crossing epoch ends) in one call.

``fit_epochs`` does what ``chainrule.backends.engine.fit_epochs`` (the NumPy reference, which
documents the semantics) does, without returning to Python between steps: the batch
gather from examples-contiguous ``XT`` (rows copied, or a view when the order is the
identity), forward with inverted dropout (counter-based masks, :mod:`.philox`), the
weighted cost with the L2 term, backward, and the update of gd / momentum / RMSprop / Adam
under the one update-safety rule: the candidates (new parameters and optimiser state) are
computed into the workspace and committed only if they, the cost and the gradients are all
finite; a refused step changes nothing and ends the call.

Layout: the course's, examples as columns: ``Z, A, dZ, mask`` of layer ``l`` are (n[l], mb)
C-contiguous blocks of one flat workspace; the gathered batch ``XbT`` (mb, n[0]) enters the
GEMMs transposed (``W Xbᵀᵀ``, an F-ordered view: BLAS takes the transpose flag); when one
batch covers every example and the order is the identity (a single step, a full-batch fit),
the caller may pass the course's ``X`` (n[0], m) itself instead, read in place. Inside,
the backward pass uses convention "J" with a per-example factor ``c_k = w_k / Σw`` (``1/mb``
without weights) in ``dZ[L]``: ``dW = dZ A_prevᵀ`` then equals the reference's "L"
gradient, and the L2 term is ``(λ/Σw) W``.

Workspace offsets ``offs`` (L + 1, 12) int64 into ``buf`` (the parameters' dtype): layer row
``l``: ``Z, A, dZ, mask`` (n, s), ``dW, W'`` (n, n_prev), ``db, b'`` (n, 1), the candidate
state ``v_W', v_b', s_W', s_b'``; row ``L``: ``XbT`` (s, n[0]), ``YbT`` (s, n[L]) and the update's 8 scalars in the dtype.
``scratch`` (3, s) float64: softmax's column max and sum, and ``c_k``.
"""

from __future__ import annotations

import numpy as np

from . import vmath
from ._config import inline, kernel
from .dense import BINARY_CE, MSE, bias_activation, delta_from_z
from .network import abs_max, delta_from_a, output_delta
from .philox import dropout_fill

GD, MOMENTUM, RMSPROP, ADAM = 0, 1, 2, 3
OPTIMIZER_CODES = {"gd": GD, "momentum": MOMENTUM, "rmsprop": RMSPROP, "adam": ADAM}
# What a refused step found non-finite (out[4]); the driver names it.
OK, BAD_COST, BAD_GRADIENT, BAD_PARAMETER, BAD_STATE = 0, 1, 2, 3, 4
# Workspace slots of a layer row of ``offs``.
Z_, A_, DZ_, MASK_, DW_, NEW_W, DB_, NEW_B, NEW_VW, NEW_VB, NEW_SW, NEW_SB = range(12)
# batch norm's: Z_hat (n, s), dgamma (n, 1), 1/s (n, 1), the batch's mean and variance (n, 2)
ZH_, DG_, SI_, MV_ = range(12, 16)
XBT_, YBT_, HYP_ = 0, 1, 2
N_SLOTS = 16
# The plan's constants (:func:`constants`): ``fconst`` holds blocks of L (keep
# probabilities, their scales, the activations' alphas) then the tail; ``iconst`` the L
# activation codes, the L batch-norm flags, the loss code and the optimiser code.
F_KEEP, F_SCALE, F_ALPHA, F_TAIL = range(4)
T_LAMBD, T_EPS, T_MAX, T_HYPER, T_BN = 0, 1, 2, 3, 7
# A step of a plan with batch norm that the compiled loop hands to the engine's composition
# (a bound it cannot prove, anything not finite, a batch of one): it names the refusal.
HANDOVER = 2
FLOAT64_MAX = float(np.finfo(np.float64).max)


@inline
def _view(buf, start, rows, cols):
    """The ``(rows, cols)`` C-contiguous block of the flat ``buf`` starting at ``start``."""
    return buf[start:start + rows * cols].reshape((rows, cols))


@kernel
def apply_mask(A, M):
    """``A = A * M`` in place (A, M (n, mb))."""
    n, mb = A.shape
    for i in range(n):
        ar = A[i]
        mr = M[i]
        for k in range(mb):
            ar[k] = ar[k] * mr[k]


@kernel
def weighted_cost(AL, YbT, loss, c, eps):
    """``Σ_k c_k L_k``: BCE ``-Σ_i (y log a + (1-y) log(1-a))``, CCE ``-Σ_i y log a``, MSE
    ``½ Σ_i (a-y)²``; ``a`` clipped to ``[eps, 1-eps]`` inside the logs."""
    n, mb = AL.shape
    total = 0.0
    for i in range(n):
        ar = AL[i]
        for k in range(mb):
            a = ar[k]
            y = YbT[k, i]
            if loss == MSE:
                d = a - y
                total += c[k] * 0.5 * d * d
            else:
                a = eps if a < eps else a
                a = 1.0 - eps if a > 1.0 - eps else a
                if loss == BINARY_CE:
                    total -= c[k] * (y * vmath.log_positive(a)
                                     + (1.0 - y) * vmath.log_positive(1.0 - a))
                else:
                    total -= c[k] * y * vmath.log_positive(a)
    return total


@kernel
def batch_correct(AL, YbT):
    """Correct predictions: ``(a > 0.5) == (y > 0.5)`` for one unit, ``argmax`` for several
    (the first maximum, as ``np.argmax``)."""
    n, mb = AL.shape
    count = 0
    if n == 1:
        for k in range(mb):
            if (AL[0, k] > 0.5) == (YbT[k, 0] > 0.5):
                count += 1
        return count
    for k in range(mb):
        ia = 0
        iy = 0
        for i in range(1, n):
            if AL[i, k] > AL[ia, k]:
                ia = i
            if YbT[k, i] > YbT[k, iy]:
                iy = i
        if ia == iy:
            count += 1
    return count


@kernel
def add_scaled(dW, c, W):
    """``dW = dW + c W`` in place (the L2 term)."""
    n, n_prev = dW.shape
    for i in range(n):
        gr = dW[i]
        wr = W[i]
        for j in range(n_prev):
            gr[j] = gr[j] + c * wr[j]


@kernel
def candidate(P, G, v, s, P_new, v_new, s_new, opt, h, inside, dtype_max):
    """The update's candidates ``P', v', s'`` (the formulas of ``chainrule.optim``) into the
    ``*_new`` arrays; returns whether the new ``P``, ``v`` and ``s`` are finite, judged on the
    stored values
    (an overflow when rounding to float32 counts).

    gd ``P' = P - lr G``; momentum ``v' = β v + (1-β) G; P' = P - lr v'``; RMSprop
    ``s' = β s + (1-β) G²; P' = P - lr G / (√s' + ε)`` (``√(s' + ε)`` inside); Adam
    ``v' = β1 v + (1-β1) G; s' = β2 s + (1-β2) G²; P' = P - lr (v'/bc1) / (√(s'/bc2) + ε)``
    with ``bc = 1 - β^t`` of the step's ``t``. RMSprop's β is ``beta2``, momentum's ``beta1``.
    ``h`` (8,) in the parameters' dtype holds ``lr, β1, 1-β1, β2, 1-β2, ε, bc1, bc2``: the
    arithmetic runs in that dtype, as NumPy's does (and float32 at twice float64's width).
    """
    n, n_prev = P.shape
    lr, beta1, c1, beta2, c2, eps, bc1, bc2 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    p_ok = True
    v_ok = True
    s_ok = True
    for i in range(n):
        pr = P[i]
        gr = G[i]
        pn = P_new[i]
        if opt == GD:
            for j in range(n_prev):
                pn[j] = pr[j] - lr * gr[j]
                p_ok = p_ok & (abs(pn[j]) <= dtype_max)
        elif opt == MOMENTUM:
            vr = v[i]
            vn = v_new[i]
            for j in range(n_prev):
                vn[j] = beta1 * vr[j] + c1 * gr[j]
                pn[j] = pr[j] - lr * vn[j]
                v_ok = v_ok & (abs(vn[j]) <= dtype_max)
                p_ok = p_ok & (abs(pn[j]) <= dtype_max)
        elif opt == RMSPROP:
            sr = s[i]
            sn = s_new[i]
            for j in range(n_prev):
                g = gr[j]
                sn[j] = beta2 * sr[j] + c2 * (g * g)
                sj = sn[j]
                d = np.sqrt(sj + eps) if inside else np.sqrt(sj) + eps
                pn[j] = pr[j] - lr * g / d
                s_ok = s_ok & (abs(sj) <= dtype_max)
                p_ok = p_ok & (abs(pn[j]) <= dtype_max)
        else:
            vr = v[i]
            vn = v_new[i]
            sr = s[i]
            sn = s_new[i]
            for j in range(n_prev):
                g = gr[j]
                vn[j] = beta1 * vr[j] + c1 * g
                sn[j] = beta2 * sr[j] + c2 * (g * g)
                vc = vn[j] / bc1
                sc = sn[j] / bc2
                d = np.sqrt(sc + eps) if inside else np.sqrt(sc) + eps
                pn[j] = pr[j] - lr * vc / d
                v_ok = v_ok & (abs(vn[j]) <= dtype_max)
                s_ok = s_ok & (abs(sn[j]) <= dtype_max)
                p_ok = p_ok & (abs(pn[j]) <= dtype_max)
    return p_ok, v_ok, s_ok


@kernel
def update_in_place(P, G, v, s, opt, h, inside):
    """:func:`candidate`'s formulas applied in place (the caller has shown that the results
    are finite): ``P, v, s`` are read and written at the same index, so only ``G`` needs
    LLVM's runtime alias check and the loops vectorise."""
    n, n_prev = P.shape
    lr, beta1, c1, beta2, c2, eps, bc1, bc2 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    for i in range(n):
        pr = P[i]
        gr = G[i]
        if opt == GD:
            for j in range(n_prev):
                pr[j] = pr[j] - lr * gr[j]
        elif opt == MOMENTUM:
            vr = v[i]
            for j in range(n_prev):
                vj = beta1 * vr[j] + c1 * gr[j]
                vr[j] = vj
                pr[j] = pr[j] - lr * vj
        elif opt == RMSPROP:
            sr = s[i]
            if inside:
                for j in range(n_prev):
                    g = gr[j]
                    sj = beta2 * sr[j] + c2 * (g * g)
                    sr[j] = sj
                    pr[j] = pr[j] - lr * g / np.sqrt(sj + eps)
            else:
                for j in range(n_prev):
                    g = gr[j]
                    sj = beta2 * sr[j] + c2 * (g * g)
                    sr[j] = sj
                    pr[j] = pr[j] - lr * g / (np.sqrt(sj) + eps)
        else:
            vr = v[i]
            sr = s[i]
            if inside:
                for j in range(n_prev):
                    g = gr[j]
                    vj = beta1 * vr[j] + c1 * g
                    sj = beta2 * sr[j] + c2 * (g * g)
                    vr[j] = vj
                    sr[j] = sj
                    pr[j] = pr[j] - lr * (vj / bc1) / np.sqrt(sj / bc2 + eps)
            else:
                for j in range(n_prev):
                    g = gr[j]
                    vj = beta1 * vr[j] + c1 * g
                    sj = beta2 * sr[j] + c2 * (g * g)
                    vr[j] = vj
                    sr[j] = sj
                    pr[j] = pr[j] - lr * (vj / bc1) / (np.sqrt(sj / bc2) + eps)


@inline
def _max_abs(arrays_W, arrays_b):
    """``max |x|`` over the layers' arrays (float64; inf if any entry is not finite)."""
    best = 0.0
    for l in range(len(arrays_W)):
        finite, a = abs_max(arrays_W[l])
        finite_b, b = abs_max(arrays_b[l])
        if not (finite and finite_b):
            return np.inf
        best = max(best, np.float64(a), np.float64(b))
    return best


@kernel
def copy_into(dst, src):
    n, n_prev = dst.shape
    for i in range(n):
        dr = dst[i]
        sr = src[i]
        for j in range(n_prev):
            dr[j] = sr[j]


@kernel
def _exact_update(Ws, bs, vWs, vbs, sWs, sbs, buf, offs, opt, h, inside, dtype_max):
    """The update-safety rule exactly: every candidate into the workspace, then commit only
    if all are finite. Returns ``(status, what, layer, is_b, is_s)`` of the first
    non-finite one (the state before the parameter: a non-finite ``s`` makes ``P'``
    non-finite too, and under fastmath ``√inf`` may come out NaN; the state is the cause)."""
    L = len(Ws)
    for l in range(L):
        n, n_prev = Ws[l].shape
        for is_b in range(2):
            cols = 1 if is_b else n_prev
            slot = 1 if is_b else 0
            p_ok, v_ok, s_ok = candidate(
                bs[l] if is_b else Ws[l], _view(buf, offs[l, DW_ + 2 * slot], n, cols),
                vbs[l] if is_b else vWs[l], sbs[l] if is_b else sWs[l],
                _view(buf, offs[l, NEW_W + 2 * slot], n, cols),
                _view(buf, offs[l, NEW_VW + slot], n, cols),
                _view(buf, offs[l, NEW_SW + slot], n, cols),
                opt, h, inside, dtype_max)
            if not v_ok:
                return 1, BAD_STATE, l, is_b, 0
            if not s_ok:
                return 1, BAD_STATE, l, is_b, 1
            if not p_ok:
                return 1, BAD_PARAMETER, l, is_b, 0
    for l in range(L):
        n, n_prev = Ws[l].shape
        copy_into(Ws[l], _view(buf, offs[l, NEW_W], n, n_prev))
        copy_into(bs[l], _view(buf, offs[l, NEW_B], n, 1))
        if opt == MOMENTUM or opt == ADAM:
            copy_into(vWs[l], _view(buf, offs[l, NEW_VW], n, n_prev))
            copy_into(vbs[l], _view(buf, offs[l, NEW_VB], n, 1))
        if opt == RMSPROP or opt == ADAM:
            copy_into(sWs[l], _view(buf, offs[l, NEW_SW], n, n_prev))
            copy_into(sbs[l], _view(buf, offs[l, NEW_SB], n, 1))
    return OK, OK, 0, 0, 0


@kernel
def gather_rows(XT, order, start, mb, out):
    """``out[j] = XT[order[start + j]]`` for ``j < mb`` (out (≥ mb, n) C)."""
    n = XT.shape[1]
    for j in range(mb):
        src = XT[order[start + j]]
        dst = out[j]
        for i in range(n):
            dst[i] = src[i]


@kernel
def batchnorm_forward_rows(Z, ZH, gamma, si, mv, eps):
    """Batch norm of ``Z`` (n, mb) over its columns, in place: ``Z_hat`` into ``ZH``, ``Z =
    gamma * Z_hat`` (``bias_activation`` then adds ``beta``), ``1/s`` into ``si``, the mean and
    the biased variance into ``mv`` (n, 2); float64 sums."""
    n, mb = Z.shape
    for i in range(n):
        zr = Z[i]
        acc = 0.0
        for k in range(mb):
            acc += zr[k]
        mu = acc / mb
        acc = 0.0
        for k in range(mb):
            d = zr[k] - mu
            acc += d * d
        var = acc / mb
        inv = 1.0 / np.sqrt(var + eps)
        g = gamma[i, 0]
        hr = ZH[i]
        for k in range(mb):
            zh = (zr[k] - mu) * inv
            hr[k] = zh
            zr[k] = g * zh
        si[i, 0] = inv
        mv[i, 0] = mu
        mv[i, 1] = var


@kernel
def batchnorm_backward_rows(D, ZH, gamma, si, db, dg):
    """The compact backward in place: ``D`` holds ``dZ_tilde`` (convention "J" with the
    factors c_k) and ``db`` its row sums (``dbeta``); ``dg = sum_k D Z_hat`` and ``D = (gamma
    / s) (D - (dbeta + Z_hat dgamma) / mb)``."""
    n, mb = D.shape
    for i in range(n):
        dr = D[i]
        hr = ZH[i]
        acc = 0.0
        for k in range(mb):
            acc += dr[k] * hr[k]
        dg[i, 0] = acc
        dbeta = np.float64(db[i, 0])
        scale = gamma[i, 0] * si[i, 0]
        for k in range(mb):
            dr[k] = scale * (dr[k] - (dbeta + hr[k] * acc) / mb)


@kernel
def fit_epochs(XT, X, YT, w, has_w, perms, has_perm, lrs, keys, k0, n_steps, s, fconst,
               iconst, t, Ws, bs, vWs, vbs, sWs, sbs, buf, offs, scratch, sums, correct, out,
               Gs, vGs, sGs, RMs, RVs):
    """Up to ``n_steps`` steps from batch ``k0`` of chunk epoch 0; see the module docstring.

    The examples come one of two ways, both the parameters' dtype: XT (m, n[0]) C-contiguous,
    the rows (``X`` then (0, 0)); or, when there is no ``perms`` and one batch covers all m
    examples, the course's X (n[0], m) C-contiguous itself (``XT`` then (0, 0)): layer 1
    reads it in place (``W X``, ``dZ Xᵀ``), so a single step or a full-batch fit never copies
    it. YT (m, n[L]) C-contiguous; w (m,) read when ``has_w``; perms (E, m) int64 read when
    ``has_perm`` (else the identity order); lrs (E,) float64; keys (E,) uint64 dropout keys
    (read only when a layer drops units). ``fconst`` float64 and ``iconst`` int64 hold the
    plan's constants (see :func:`constants`). t the Adam step count; Ws, bs, vWs, vbs, sWs,
    sbs tuples of the L layers' arrays (the state ones are read only by the optimisers that
    have them: pass Ws, bs otherwise); buf, offs, scratch the workspace; ``sums`` (2, E)
    float64 (``Σ J Σw``, ``Σw``) and correct (E,) int64 accumulate per chunk epoch. ``out``
    (8,) int64 receives ``steps, status, epoch, batch, what, layer, is_b, is_s``. Returns
    the new ``t``.

    Batch norm (``iconst``'s flags): ``Gs, vGs, sGs`` the layers' gamma and its state,
    ``RMs, RVs`` the running mean and variance (any (n, 1) arrays for a layer without).
    Such a plan's step that the loop cannot apply by the bounds (or finds anything not
    finite in, or a batch of one) stops the call with status ``HANDOVER`` at that step
    (nothing changed): the caller runs it composed.
    """
    L = len(Ws)
    keep_probs = fconst[F_KEEP * L:(F_KEEP + 1) * L]
    scales = fconst[F_SCALE * L:(F_SCALE + 1) * L]
    alphas = fconst[F_ALPHA * L:(F_ALPHA + 1) * L]
    tail = fconst[F_TAIL * L:]
    acts = iconst[:L]
    bn = iconst[L:2 * L]
    loss, opt = iconst[2 * L], iconst[2 * L + 1]
    lambd, eps, dtype_max = tail[T_LAMBD], tail[T_EPS], tail[T_MAX]
    hyper = tail[T_HYPER:T_HYPER + 4]
    bn_h = tail[T_BN:T_BN + 3]
    cost_sum = sums[0]
    weight_sum = sums[1]
    any_bn = False
    for l in range(L):
        if bn[l] != 0:
            any_bn = True
    cols = X.shape[1] != 0
    if cols:
        n0, m = X.shape
    else:
        m, n0 = XT.shape
    nL = YT.shape[1]
    E = lrs.shape[0]
    nb = (m + s - 1) // s
    beta1, beta2, eps_opt = hyper[0], hyper[1], hyper[2]
    inside = hyper[3] != 0.0
    XT_flat = XT.reshape(XT.shape[0] * XT.shape[1])
    YT_flat = YT.reshape(m * nL)
    h = _view(buf, offs[L, HYP_], 1, 8)[0]
    colmax = scratch[0]
    colsum = scratch[1]
    c = scratch[2]
    # Upper bounds of max|P|, max|v|, max|s|: exact at the start of the call, then
    # advanced by each step's bound (see the update below).
    p_max = max(_max_abs(Ws, bs), 0.0)
    if any_bn:
        p_max = max(p_max, _max_abs(Gs, Gs))
    v_max = _max_abs(vWs, vbs) if opt == MOMENTUM or opt == ADAM else 0.0
    s_max = _max_abs(sWs, sbs) if opt == RMSPROP or opt == ADAM else 0.0
    if any_bn and (opt == MOMENTUM or opt == ADAM):
        v_max = max(v_max, _max_abs(vGs, vGs))
    if any_bn and (opt == RMSPROP or opt == ADAM):
        s_max = max(s_max, _max_abs(sGs, sGs))
    limit = 0.5 * dtype_max
    cost_max = dtype_max  # the cost and its sums are judged in the parameters' dtype
    e = 0
    k = k0
    done = 0
    status = OK
    what = 0
    bad_layer = 0
    bad_b = 0
    bad_s = 0
    while done < n_steps and e < E:
        start = k * s
        mb = min(s, m - start)
        if any_bn and mb < 2:
            status = HANDOVER
            break
        # ---- the batch: rows of XT, YT (a view when the order is the identity)
        if has_perm:
            order = perms[e]
            XbT = _view(buf, offs[L, XBT_], mb, n0)
            YbT = _view(buf, offs[L, YBT_], mb, nL)
            gather_rows(XT, order, start, mb, XbT)
            gather_rows(YT, order, start, mb, YbT)
        elif cols:  # the one batch of all m examples: layer 1 reads X itself
            XbT = XT
            YbT = YT
        else:
            XbT = _view(XT_flat, start * n0, mb, n0)
            YbT = _view(YT_flat, start * nL, mb, nL)
        share = 0.0
        if has_w:
            for j in range(mb):
                wj = np.float64(w[perms[e, start + j]] if has_perm else w[start + j])
                c[j] = wj
                share += wj
            for j in range(mb):
                c[j] = c[j] / share
        else:
            share = np.float64(mb)
            for j in range(mb):
                c[j] = 1.0 / mb
        # ---- forward
        for l in range(L):
            n, n_prev = Ws[l].shape
            Z = _view(buf, offs[l, Z_], n, mb)
            A = _view(buf, offs[l, A_], n, mb)
            if l == 0 and cols:
                np.dot(Ws[0], X, Z)
            elif l == 0:
                np.dot(Ws[0], XbT.T, Z)
            else:
                np.dot(Ws[l], _view(buf, offs[l - 1, A_], n_prev, mb), Z)
            if bn[l] != 0:
                batchnorm_forward_rows(Z, _view(buf, offs[l, ZH_], n, mb), Gs[l],
                                       _view(buf, offs[l, SI_], n, 1),
                                       _view(buf, offs[l, MV_], n, 2), bn_h[1])
            bias_activation(Z, bs[l], A, acts[l], alphas[l], colmax, colsum)
            if l < L - 1 and keep_probs[l] < 1.0:
                M = _view(buf, offs[l, MASK_], n, mb)
                dropout_fill(M, keys[e], l + 1, k, keep_probs[l], scales[l])
                apply_mask(A, M)
        AL = _view(buf, offs[L - 1, A_], nL, mb)
        J = weighted_cost(AL, YbT, loss, c, eps)
        # The cost is judged in the network's dtype, as the reference computes it: its sums
        # (the weighted losses, the squares of the L2 term) and J must fit (NaN fails too).
        cost_ok = abs(J) * share <= cost_max
        if lambd != 0.0:
            squares = 0.0
            for l in range(L):
                n, n_prev = Ws[l].shape
                W = Ws[l]
                for i in range(n):
                    for j in range(n_prev):
                        squares += np.float64(W[i, j]) * W[i, j]
            J += lambd / (2.0 * share) * squares
            cost_ok = cost_ok and squares <= cost_max
        if not (cost_ok and abs(J) <= cost_max):
            status, what = (HANDOVER if any_bn else 1), BAD_COST
            break
        # ---- backward (convention "J" with the factors c_k)
        output_delta(AL, YbT, _view(buf, offs[L - 1, Z_], nL, mb), acts[L - 1],
                              alphas[L - 1], loss, c, _view(buf, offs[L - 1, DZ_], nL, mb),
                              _view(buf, offs[L - 1, DB_], nL, 1))
        for l in range(L - 1, -1, -1):
            n, n_prev = Ws[l].shape
            dZ = _view(buf, offs[l, DZ_], n, mb)
            dW = _view(buf, offs[l, DW_], n, n_prev)
            if l == 0 and cols:
                np.dot(dZ, X.T, dW)
            elif l == 0:
                np.dot(dZ, XbT, dW)
            else:
                A_prev = _view(buf, offs[l - 1, A_], n_prev, mb)
                np.dot(dZ, A_prev.T, dW)
                dZ_prev = _view(buf, offs[l - 1, DZ_], n_prev, mb)
                np.dot(Ws[l].T, dZ, dZ_prev)
                Z_prev = _view(buf, offs[l - 1, Z_], n_prev, mb)
                db_prev = _view(buf, offs[l - 1, DB_], n_prev, 1)
                if keep_probs[l - 1] < 1.0:
                    delta_from_z(dZ_prev, Z_prev, acts[l - 1], alphas[l - 1],
                                 _view(buf, offs[l - 1, MASK_], n_prev, mb), True, dZ_prev,
                                 False, db_prev, 1.0, True)
                else:
                    delta_from_a(dZ_prev, A_prev, Z_prev, acts[l - 1], alphas[l - 1],
                                 db_prev)
                if bn[l - 1] != 0:
                    batchnorm_backward_rows(dZ_prev, _view(buf, offs[l - 1, ZH_], n_prev, mb),
                                            Gs[l - 1], _view(buf, offs[l - 1, SI_], n_prev, 1),
                                            db_prev, _view(buf, offs[l - 1, DG_], n_prev, 1))
            if lambd != 0.0:
                add_scaled(dW, lambd / share, Ws[l])
        g_max = 0.0
        for l in range(L):
            n, n_prev = Ws[l].shape
            finite, g = abs_max(_view(buf, offs[l, DW_], n, n_prev))
            if not finite:
                status, what, bad_layer, bad_b = 1, BAD_GRADIENT, l, 0
                break
            g_max = max(g_max, np.float64(g))
            finite, g = abs_max(_view(buf, offs[l, DB_], n, 1))
            if not finite:
                status, what, bad_layer, bad_b = 1, BAD_GRADIENT, l, 1
                break
            g_max = max(g_max, np.float64(g))
            if bn[l] != 0:
                finite, g = abs_max(_view(buf, offs[l, DG_], n, 1))
                if not finite:
                    status = HANDOVER
                    break
                g_max = max(g_max, np.float64(g))
        if status != OK:
            if any_bn:
                status = HANDOVER
            break
        t_new = t + 1 if opt == ADAM else t
        bc1 = 1.0 - beta1 ** t_new
        bc2 = 1.0 - beta2 ** t_new
        lr = lrs[e]
        h[0], h[1], h[2], h[3] = lr, beta1, 1.0 - beta1, beta2
        h[4], h[5], h[6], h[7] = 1.0 - beta2, eps_opt, bc1, bc2
        # ---- the update. Bounds of the new values (|v̂| / (√ŝ + ε) <= |v̂| / ε, or / √ε
        # with ε inside): when they are far below the dtype's max the update is certainly
        # finite and is applied in place; otherwise the exact rule decides on candidates.
        # The bounds use the rates as the update sees them, in the dtype (an lr past float32's
        # max is inf there, and the exact rule refuses it); the square G² is an intermediate
        # in the dtype, so it is bounded too (it overflows float32 before (1-β)G² would).
        lr = np.float64(h[0])
        v_bound = beta1 * v_max + (1.0 - beta1) * g_max if opt == MOMENTUM or opt == ADAM \
            else 0.0
        s_bound = max(beta2 * s_max + (1.0 - beta2) * (g_max * g_max), g_max * g_max) \
            if opt == RMSPROP or opt == ADAM else 0.0
        floor = np.sqrt(eps_opt) if inside else eps_opt
        if opt == GD:
            p_bound = p_max + lr * g_max
        elif opt == MOMENTUM:
            p_bound = p_max + lr * v_bound
        elif opt == RMSPROP:
            p_bound = p_max + lr * g_max / floor
        else:
            p_bound = p_max + lr * (v_bound / bc1) / floor
        if p_bound < limit and v_bound < limit and s_bound < limit:
            for l in range(L):
                n, n_prev = Ws[l].shape
                update_in_place(Ws[l], _view(buf, offs[l, DW_], n, n_prev), vWs[l], sWs[l],
                                opt, h, inside)
                update_in_place(bs[l], _view(buf, offs[l, DB_], n, 1), vbs[l], sbs[l],
                                opt, h, inside)
                if bn[l] != 0:
                    update_in_place(Gs[l], _view(buf, offs[l, DG_], n, 1), vGs[l], sGs[l],
                                    opt, h, inside)
                    # the running averages, once per applied step
                    mv = _view(buf, offs[l, MV_], n, 2)
                    beta_r = bn_h[0]
                    unbias = mb / (mb - 1.0) if bn_h[2] != 0.0 else 1.0
                    rm, rv = RMs[l], RVs[l]
                    for i in range(n):
                        rm[i, 0] = beta_r * rm[i, 0] + (1.0 - beta_r) * mv[i, 0]
                        rv[i, 0] = beta_r * rv[i, 0] + (1.0 - beta_r) * (mv[i, 1] * unbias)
            p_max, v_max, s_max = p_bound, v_bound, s_bound
        elif any_bn:
            status = HANDOVER
            break
        else:
            status, what, bad_layer, bad_b, bad_s = _exact_update(
                Ws, bs, vWs, vbs, sWs, sbs, buf, offs, opt, h, inside, dtype_max)
            if status != OK:
                break
            p_max = _max_abs(Ws, bs)
            if opt == MOMENTUM or opt == ADAM:
                v_max = _max_abs(vWs, vbs)
            if opt == RMSPROP or opt == ADAM:
                s_max = _max_abs(sWs, sbs)
        t = t_new
        cost_sum[e] += J * share
        weight_sum[e] += share
        correct[e] += batch_correct(AL, YbT)
        done += 1
        k += 1
        if k == nb:
            e += 1
            k = 0
    out[0] = done
    out[1] = status
    out[2] = e
    out[3] = k
    out[4] = what
    out[5] = bad_layer
    out[6] = bad_b
    out[7] = bad_s
    return t


def workspace_layout(layer_dims, s):
    """``(size, offs)``: the flat workspace's length and the (L + 1, 16) offsets for
    :func:`fit_epochs` with mini-batches of at most ``s`` (plain Python; the caller
    allocates ``buf`` of that size in the parameters' dtype and ``scratch`` (3, s) float64)."""
    L = len(layer_dims) - 1
    offs = np.zeros((L + 1, N_SLOTS), dtype=np.int64)
    at = 0
    for l in range(L):
        n, n_prev = layer_dims[l + 1], layer_dims[l]
        sizes = [0] * N_SLOTS
        sizes[Z_] = sizes[A_] = sizes[DZ_] = sizes[MASK_] = n * s
        sizes[DW_] = sizes[NEW_W] = sizes[NEW_VW] = sizes[NEW_SW] = n * n_prev
        sizes[DB_] = sizes[NEW_B] = sizes[NEW_VB] = sizes[NEW_SB] = n
        sizes[ZH_] = n * s
        sizes[DG_] = sizes[SI_] = n
        sizes[MV_] = 2 * n
        for slot in range(N_SLOTS):
            offs[l, slot] = at
            at += sizes[slot]
    offs[L, XBT_] = at
    at += s * layer_dims[0]
    offs[L, YBT_] = at
    at += s * layer_dims[-1]
    offs[L, HYP_] = at
    at += 8
    return at, offs


def constants(keep_probs, scales, alphas, acts, bn, loss, opt, lambd, eps, dtype_max, hyper,
              bn_h):
    """``(fconst, iconst)`` of :func:`fit_epochs` (plain Python, built once per plan and
    dtype): ``keep_probs, scales, alphas, acts, bn`` one entry per layer (the output
    layer's keep probability and scale 1); ``hyper`` (β1, β2, ε, eps_inside_sqrt); ``bn_h``
    (batch norm's beta, epsilon, unbiased); ``eps`` and ``dtype_max`` the parameters'
    dtype's."""
    L = len(acts)
    fconst = np.zeros(F_TAIL * L + T_BN + 3)
    fconst[F_KEEP * L:(F_KEEP + 1) * L] = keep_probs
    fconst[F_SCALE * L:(F_SCALE + 1) * L] = scales
    fconst[F_ALPHA * L:(F_ALPHA + 1) * L] = alphas
    tail = fconst[F_TAIL * L:]
    tail[T_LAMBD], tail[T_EPS], tail[T_MAX] = lambd, eps, dtype_max
    tail[T_HYPER:T_HYPER + 4] = hyper
    tail[T_BN:T_BN + 3] = bn_h
    iconst = np.zeros(2 * L + 2, dtype=np.int64)
    iconst[:L] = acts
    iconst[L:2 * L] = bn
    iconst[2 * L], iconst[2 * L + 1] = loss, opt
    return fconst, iconst
