"""The training loop of :meth:`chainrule.Network.fit`: :class:`FitRun`, one call's data,
start (afresh, continued or resumed), epochs, steps, records and checkpoints.

It talks to the network only through the network's training interface (``validate_data``,
``ops_for``, ``layer_arrays``, ``score_from``, ``parameters``, ``train_state_``,
``optimizer_``, ``history_``, ``stop_reason_``); the arguments arrive as a validated
:class:`~chainrule.training.config.FitConfig`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import reference as ref
from .. import spec
from ..backends.compose import cost as _cost
from ..backends.compose import unsafe_update, update_is_safe
from ..errors import InputError, NonFiniteError
from .batches import batches, dropout_masks, dropout_off, example_weights, permutation, weight_sum
from .interrupts import InterruptGuard
from .optim import inverse_time_decay, scheduled_decay
from .state import TrainState, decode_json, signature


def first_nonfinite(J, dWs, dbs):
    """The first non-finite quantity of a step (``"cost"``, ``"gradient dW2"``), or None
    (the update-safety rule, :func:`~chainrule.backends.compose.unsafe_update`, before the
    update's candidates exist)."""
    grads = [(f"d{k}{l}", g) for l, (dW, db) in enumerate(zip(dWs, dbs), 1)
             for k, g in (("W", dW), ("b", db))]
    return unsafe_update(J, grads, ())


CALL_SECONDS = 0.05  # the target length of one compiled-loop call (Ctrl-C latency)
_REFUSED = object()  # a fused step's refusal (the backend says only that it refused)


def refused_step(where, bad, lr, parameters, gradients, dtype):
    """The message of a step refused by the update-safety rule (nothing was applied);
    ``gradients`` maps ``"dW1"``... to the step's gradients."""
    kept = ("the step was not applied: the model kept the parameters and optimiser state of "
            "the last good step")
    if bad == "cost after the update":
        kept = "the update (its gradient finite) was applied"
    if not bad.startswith("update of "):
        big = float(np.finfo(dtype).max)
        huge = max(parameters, key=lambda k: float(np.abs(parameters[k]).max(initial=0.0)))
        h_max = float(np.abs(parameters[huge]).max(initial=0.0))
        if h_max > big * 1e-3:  # the forward pass overflowed on the parameters themselves
            advice = (f"{huge} is near the largest {dtype.name} (max |{huge}| = {h_max:.3g}): "
                      f"rescale or reinitialise the parameters, or use float64")
        else:
            advice = (f"lower the learning rate (now {lr}), scale the inputs or use "
                      f"on_nonfinite='skip'")
        return f"{where}: the {bad} is not finite (NaN or inf); {kept} — {advice}"
    name = bad[len("update of "):]
    param = name.split("_d", 1)[-1]  # s_dW1 -> W1
    P, G = parameters.get(param), gradients.get(f"d{param}")
    p_max = float(np.abs(P).max()) if P is not None and P.size else 0.0
    g_max = float(np.abs(G).max()) if G is not None and G.size else 0.0
    if name != param:
        advice = (f"the gradient d{param} (max |d{param}| = {g_max:.3g}) is too large for the "
                  f"optimiser's moving averages in {dtype.name}: scale the inputs, check the "
                  f"parameters or use float64")
    elif lr * g_max >= p_max:
        advice = (f"lower the learning rate (now {lr}; lr * max |d{param}| = "
                  f"{lr * g_max:.3g}), scale the inputs or use on_nonfinite='skip'")
    else:
        advice = (f"{param} itself is near the largest {dtype.name} (max |{param}| = "
                  f"{p_max:.3g}): rescale or reinitialise the parameters, or use float64")
    return (f"{where}: the {bad} would overflow the {dtype.name} range (NaN or inf); {kept} "
            f"— {advice}")


def progress_bar(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but the model must not need it to train
        return None
    return tqdm(total=total, unit="epoch", leave=False, dynamic_ncols=True)


class FitRun:
    """One call of :meth:`chainrule.Network.fit`: its validated arguments, data and loops.

    The constructor validates the arguments (in the order ``fit`` documents), prepares the
    data (validation split, example weights) and decides where to start (afresh, continued
    or resumed from a checkpoint), updating the network's training state; :meth:`execute`
    runs the epochs. Everything learned stays on the network (``parameters``,
    ``optimizer_``, ``history_``, ``train_state_``, ``rng``); this object only lives for the call.
    """

    def __init__(self, net, X, Y, config):
        self.net = net
        # ---- arguments
        c = config.validated(net.L)
        X, Y = net.validate_data(X, Y)
        m = X.shape[1]
        self.learning_rate, self.callbacks = c.learning_rate, c.callbacks
        opt, probs, w = c.optimizer, c.keep_prob, None
        w = example_weights(c.sample_weight, c.class_weight, Y, net.activations[-1][0],
                            net.layer_dims[-1], m, net.dtype)
        resume, validation_data, validation_fraction = c.resume, c.validation_data, \
            c.validation_fraction
        saved = self._load_checkpoint(resume) if resume is not None else None
        if c.shuffle_seed is not None and saved is None and c.continue_training and \
                c.shuffle_seed + net.epochs_trained_ + c.epochs >= 2 ** 32:
            raise InputError(f"shuffle_seed + epochs must be < 2**32 (epoch i seeds NumPy with "
                             f"shuffle_seed + i + 1); continuing from epoch "
                             f"{net.epochs_trained_}, shuffle_seed = {c.shuffle_seed} with "
                             f"epochs = {c.epochs} passes it")

        # ---- validation data
        X_val = Y_val = None
        if validation_data is not None:
            try:
                X_val, Y_val = validation_data
            except (TypeError, ValueError) as exc:
                raise InputError("validation_data must be a pair (X_val, Y_val)") from exc
            X_val, Y_val = net.validate_data(X_val, Y_val)
        elif validation_fraction:
            n_val = int(round(m * validation_fraction))
            if not 1 <= n_val < m:
                raise InputError(f"validation_fraction={validation_fraction} of m = {m} "
                                 f"examples leaves {n_val} for validation and {m - n_val} "
                                 f"for training; each needs at least 1")
            split_seed = None if net.seed is None else [int(net.seed), 0x5EED]
            perm = np.random.default_rng(split_seed).permutation(m)
            val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            X_val, Y_val = np.ascontiguousarray(X[:, val]), np.ascontiguousarray(Y[:, val])
            X, Y = np.ascontiguousarray(X[:, tr]), np.ascontiguousarray(Y[:, tr])
            w = None if w is None else w[tr]

        fingerprint = signature(c.fingerprint(), [X, Y, w, X_val, Y_val])
        epochs = c.epochs

        # ---- where to start
        if saved is not None:
            self._resume_from(saved, resume, fingerprint)
            self.start, self.end = net.train_state_.epoch, epochs
            opt = self._adopt_optimizer(opt, required=True)
        elif c.continue_training and net.train_state_ is not None:
            self.start = net.train_state_.epoch
            self.end = self.start + epochs
            opt = self._adopt_optimizer(opt, required=False)
            net.train_state_.signature = fingerprint
        else:
            self.start, self.end = 0, epochs
            opt.reset(net.parameters)
            net.optimizer_ = opt
            net.history_ = {"epoch": [], "cost": []}
            net.train_state_ = TrainState(signature=fingerprint)
        for key in ("score", "lr", "skipped") + (("val_cost", "val_score")
                                                 if X_val is not None else ()):
            net.history_.setdefault(key, [])
        net.train_state_.optimizer = opt.get_config()

        self.X, self.Y, self.w, self.X_val, self.Y_val = X, Y, w, X_val, Y_val
        self.opt, self.lambd, self.probs, self.on_nonfinite = opt, c.lambd, probs, c.on_nonfinite
        self.mini_batch_size, self.shuffle, self.shuffle_seed = c.mini_batch_size, c.shuffle, \
            c.shuffle_seed
        self.decay_rate, self.decay_interval = c.decay_rate, c.decay_interval
        self.cost_every, self.print_cost, self.progress = c.cost_every, c.print_cost, c.progress
        self.early_stopping, self.patience, self.min_delta, self.restore_best = \
            c.early_stopping, c.patience, c.min_delta, c.restore_best
        self.checkpoint, self.checkpoint_every = c.checkpoint, c.checkpoint_every
        mini_batch_size = c.mini_batch_size
        m = X.shape[1]
        self.ops = net.ops_for(m if mini_batch_size is None else min(mini_batch_size, m))
        self.Ws, self.bs = net.layer_arrays()
        self.guard = InterruptGuard()
        self._steps_per_call = 1  # of the compiled loop (_fast_chunk), grown by measurement
        self.bar = None

    # ---- the run
    def execute(self):
        """Run the epochs; afterwards restore the best parameters, write the last checkpoint
        and call the callbacks' ``on_fit_end``."""
        net, train = self.net, self.net.train_state_
        self.bar = progress_bar(self.end - self.start, self.progress)
        net.stop_reason_ = None
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_begin"):
                cb.on_fit_begin(net)
        self.Ws, self.bs = net.layer_arrays()  # on_fit_begin may have assigned parameters
        loop = self._loop_full_batch if self.mini_batch_size is None else \
            self._loop_mini_batches
        try:
            net._fitting = True  # the parameters cannot be assigned (Network.parameters)
            with self.guard:
                loop()
            net.stop_reason_ = net.stop_reason_ or "completed"
        except KeyboardInterrupt:
            net.stop_reason_ = "interrupted"
            raise
        except NonFiniteError:
            net.stop_reason_ = "nonfinite"
            raise
        finally:
            net._fitting = False
            if self.bar is not None:
                self.bar.close()
        if self.early_stopping and self.restore_best and train.best_params is not None:
            net.parameters = train.best_params  # validated and copied
        if self.checkpoint is not None and self.end > self.start:
            self._save_checkpoint()  # the finished model
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(net)

    @property
    def fast(self):
        """Full-batch steps of an optimiser whose update is the contract's fused step, on a
        backend that declares the compiled loop of it (``"loop:<fused_update>"``)."""
        fused = self.opt.fused_update
        return (fused is not None and self.ops.supports(f"loop:{fused}")
                and self.mini_batch_size is None and dropout_off(self.probs) and self.w is None
                and not self.decay_rate and self.on_nonfinite == "raise"
                and (not self.lambd or self.ops.supports("l2")))

    def _fused_step(self, masks, wb):
        """Whether this step can be the backend's fused step (``"step:<fused_update>"``)."""
        fused = self.opt.fused_update
        return (fused is not None and wb is None and self.ops.supports(f"step:{fused}")
                and spec.LOSSES[self.net.loss].clipped
                and (masks is None or self.ops.supports("dropout"))
                and (not self.lambd or self.ops.supports("l2")))

    def lr_of(self, epoch):
        """The learning rate of epoch ``epoch`` (see ``fit``'s ``learning_rate``)."""
        lr0 = self.learning_rate
        if not self.decay_rate or epoch <= 1:
            return lr0
        if self.decay_interval is None:
            return float(inverse_time_decay(lr0, epoch - 1, self.decay_rate))
        return float(scheduled_decay(lr0, epoch - 1, self.decay_rate, self.decay_interval))

    def _checkpoint_due(self, epoch):
        return self.checkpoint is not None and epoch % self.checkpoint_every == 0

    def _loop_full_batch(self):
        """One step per epoch. Record ``e`` describes the parameters after ``e`` steps (the
        course's "Cost after iteration e"): at ``e = 0, cost_every, ...`` and at ``end``."""
        start, end, cost_every, guard = self.start, self.end, self.cost_every, self.guard
        train, fast = self.net.train_state_, self.fast
        epoch = start
        recorded = self.net.history_["epoch"]
        while True:
            if (epoch % cost_every == 0 or epoch == end) and \
                    (not recorded or recorded[-1] < epoch):
                if self._record_epoch(epoch, None, self.lr_of(epoch), per_epoch=False):
                    return
            if epoch == end:
                return
            if epoch > start and self._checkpoint_due(epoch):
                self._save_checkpoint()
            guard.check()
            nxt = min(end, epoch + cost_every - epoch % cost_every)
            if self.checkpoint is not None:
                nxt = min(nxt, epoch + self.checkpoint_every - epoch % self.checkpoint_every)
            if fast:  # the backend's compiled loop, up to the next record or checkpoint
                self._fast_chunk(self.lr_of(epoch), epoch, nxt - epoch)
            else:
                for e in range(epoch, nxt):
                    with guard.atomic():  # the step and the epoch counter together
                        self._step(self.X, self.Y, self.w, self.lr_of(e), f"epoch {e}")
                        train.epoch = e + 1
                    guard.check()
            if self.bar is not None:
                self.bar.update(nxt - epoch)
            epoch = nxt
            train.epoch = epoch

    def _loop_mini_batches(self):
        """Epochs of mini-batches. Record ``i`` describes epoch ``i``: its mean mini-batch
        cost (the course's ``cost_avg``) and the scores after it; at ``i = 0, cost_every,
        ...`` and at the last epoch."""
        end, cost_every = self.end, self.cost_every
        for epoch in range(self.start, end):
            lr = self.lr_of(epoch)
            J = self._epoch(lr, epoch)
            self.net.train_state_.epoch = epoch + 1
            if self.bar is not None:
                self.bar.update(1)
            stop = False
            if epoch % cost_every == 0 or epoch == end - 1:
                stop = self._record_epoch(epoch, J, lr, per_epoch=True)
            if stop or epoch == end - 1:
                return  # the last checkpoint is written by execute
            if self._checkpoint_due(epoch + 1):
                self._save_checkpoint()
            self.guard.check()

    def _epoch(self, lr, epoch):
        """One epoch in mini-batches; returns the epoch's cost (weighted mean of the batches')."""
        X, Y, w, m = self.X, self.Y, self.w, self.X.shape[1]
        perm = permutation(m, epoch, self.net.rng, self.shuffle, self.shuffle_seed)
        total = weight = 0.0
        for k, idx in enumerate(batches(m, self.mini_batch_size, perm)):
            wb = None if w is None else w[idx]
            J = self._step(X[:, idx], Y[:, idx], wb, lr, f"epoch {epoch}, mini-batch {k}")
            if J is not None:
                share = len(idx) if wb is None else weight_sum(wb)
                total += J * share
                weight += share
            self.guard.check()
        return total / weight if weight else float("nan")

    # ---- one step
    def _step(self, Xb, Yb, wb, lr, where):
        """One step on a batch; returns its cost, or ``None`` if it was skipped."""
        net, ops, Ws, bs = self.net, self.ops, self.Ws, self.bs
        masks = dropout_masks(net.rng, net.layer_dims, self.probs, Xb.shape[1], net.dtype)
        bad = None
        if self._fused_step(masks, wb):
            # The backend's fused step (mask and L2 inside). With a clipped loss (the
            # cross-entropies) the cost is finite whenever A[L] is, and a non-finite A[L] makes
            # the gradient non-finite, which the step refuses: ok covers the cost too.
            with self.guard.atomic(), np.errstate(over="ignore", invalid="ignore"):
                ok, J = ops.train_step(Xb, Yb, Ws, bs, net.activations, net.loss, lr,
                                       self.lambd, masks, True)
                if ok:
                    net.train_state_.steps += 1
            if ok:
                if math.isfinite(J):
                    return J
                bad = "cost after the update"  # not expected (see above)
            else:
                bad = _REFUSED  # what was not finite is found below, if it is reported
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
                J, dWs, dbs = self._cost_and_gradients(Xb, Yb, wb, masks)
            bad = first_nonfinite(J, dWs, dbs)
        if bad is None:  # the optimiser applies the step only if its result is finite
            with self.guard.atomic():
                bad = self.opt.update(ops, Ws, bs, dWs, dbs, lr)
                if bad is None:
                    net.train_state_.steps += 1
                    return J
        if self.on_nonfinite == "skip":
            net.train_state_.skipped += 1
            return None
        if bad is _REFUSED:
            bad, (dWs, dbs) = self._diagnose(Xb, Yb, masks, lr)
        grads = {} if not bad.startswith("update of ") else {
            f"d{k}{l}": g for k, gs in (("W", dWs), ("b", dbs)) for l, g in enumerate(gs, 1)}
        raise NonFiniteError(refused_step(where, bad, lr, net.parameters, grads, net.dtype))

    def _diagnose(self, Xb, Yb, masks, lr):
        """What made the backend's fused gradient-descent step refuse (it says only that it
        did): ``(what, (dWs, dbs))``, from the checked computation of the same step."""
        with np.errstate(over="ignore", invalid="ignore"):
            J, dWs, dbs = self._cost_and_gradients(Xb, Yb, None, masks)
        bad = first_nonfinite(J, dWs, dbs)
        if bad is None:
            bad = next((f"update of {k}{l}" for k, gs in (("W", dWs), ("b", dbs))
                        for l, (P, g) in enumerate(zip(self.Ws if k == "W" else self.bs, gs), 1)
                        if not update_is_safe([P], [g], lr)), "update of the parameters")
        return bad, (dWs, dbs)

    def _cost(self, Y, AL, w):
        """``J`` with the L2 term, weighted by ``w`` when given (the formula in ``fit``)."""
        net, lambd = self.net, self.lambd
        if w is None:
            return _cost(Y, AL, self.Ws, net.loss, lambd)
        J = ref.compute_cost(AL, Y, net.loss, sample_weight=w)
        if lambd:
            J += ref.l2_cost(net.parameters, lambd, weight_sum(w))
        return J

    def _cost_and_gradients(self, Xb, Yb, wb, masks):
        """The batch's cost and ``dWs, dbs`` (weighted by ``wb`` when given)."""
        net, ops, Ws, bs, lambd = self.net, self.ops, self.Ws, self.bs, self.lambd
        Zs, As = ops.forward(Xb, Ws, bs, net.activations, masks)
        J = self._cost(Yb, As[-1], wb)
        if wb is None:
            _, dWs, dbs, _ = ops.backward(Yb, Zs, As, Ws, net.activations, net.loss, "L",
                                          lambd, masks, False)
        else:
            mb, sw = Xb.shape[1], weight_sum(wb)
            dZL = ref.output_delta(As[-1], Yb, Zs[-1], net.activations[-1], net.loss, "L")
            dZL = dZL * (wb * net.dtype.type(mb / sw))
            _, dWs, dbs, _ = ops.backward_delta(dZL, Zs, As, Ws, net.activations, "L",
                                                lambd * mb / sw, masks, False)
        return J, dWs, dbs

    def _fast_chunk(self, lr, epoch, n):
        """``n`` full-batch gradient-descent epochs in the backend's compiled loop, in calls
        sized by the measured step time (about ``CALL_SECONDS`` each: a compiled loop does
        not see Ctrl-C, which is honoured between calls); counters follow every call."""
        done = 0
        while done < n:
            k = min(n - done, self._steps_per_call)
            t0 = time.perf_counter()
            self._fast_call(lr, epoch + done, k)
            seconds = time.perf_counter() - t0
            self._steps_per_call = max(1, min(2 * k, int(k * CALL_SECONDS / seconds))
                                       if seconds > 0 else 2 * k)
            done += k
            if done < n:
                self.guard.check()

    def _fast_call(self, lr, epoch, n):
        """One compiled-loop call of ``n`` epochs.

        The loop stops at a non-finite gradient; a non-finite cost (recorded every step)
        is found afterwards and the chunk replayed up to it, so either way the model
        ends at the last good step."""
        net, ops, Ws, bs = self.net, self.ops, self.Ws, self.bs
        with self.guard.atomic():  # the parameters and their counters change together
            before = [P.copy() for P in Ws + bs]
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
                n_done, costs = ops.train_loop(self.X, self.Y, Ws, bs, net.activations,
                                               net.loss, lr, self.lambd, n, 1)
            n_done, bad_cost = self._replay_to_finite_cost(lr, before, n_done, costs)
            net.train_state_.steps += n_done
            net.train_state_.epoch = epoch + n_done
        if n_done < n:
            if bad_cost.size:
                raise NonFiniteError(
                    f"epoch {epoch + n_done}: the cost is not finite (NaN or inf); training "
                    f"stopped and the parameters of the last good step were kept — lower the "
                    f"learning rate (now {lr}) or scale the inputs")
            bad, (dWs, dbs) = self._diagnose(self.X, self.Y, None, lr)
            grads = {f"d{k}{l}": g for k, gs in (("W", dWs), ("b", dbs))
                     for l, g in enumerate(gs, 1)}
            raise NonFiniteError(refused_step(f"epoch {epoch + n_done}", bad, lr,
                                              net.parameters, grads, net.dtype))

    def _replay_to_finite_cost(self, lr, before, n_done, costs):
        """``(n_done, bad_cost)``: where a cost of the call was not finite, the parameters
        replayed from the call's start up to it (deterministic)."""
        net, Ws, bs = self.net, self.Ws, self.bs
        bad_cost = np.flatnonzero(~np.isfinite(costs[:n_done]))
        if bad_cost.size:
            n_done = int(bad_cost[0])
            for P, saved in zip(Ws + bs, before):
                P[...] = saved
            if n_done:
                with np.errstate(over="ignore", invalid="ignore"):
                    self.ops.train_loop(self.X, self.Y, Ws, bs, net.activations, net.loss, lr,
                                        self.lambd, n_done, 0)
        return n_done, bad_cost

    # ---- records
    def _AL(self, X):
        return self.ops.forward(X, self.Ws, self.bs, self.net.activations)[1][-1]

    def _record_epoch(self, epoch, J, lr, per_epoch):
        """Append one record to ``history_``; run early stopping and callbacks. True = stop.

        ``J=None``: evaluate the cost of the current parameters on the training data
        (with the L2 term and the example weights, without dropout).
        """
        net = self.net
        with np.errstate(over="ignore", invalid="ignore"):
            AL = self._AL(self.X)
        if J is None:
            J = self._cost(self.Y, AL, self.w)
        logs = {"epoch": int(epoch), "cost": float(J), "lr": float(lr),
                "score": net.score_from(self.X, self.Y, AL),
                "skipped": int(net.train_state_.skipped)}
        if self.X_val is not None:
            AL = self._AL(self.X_val)
            logs["val_cost"] = ref.compute_cost(AL, self.Y_val, net.loss)
            logs["val_score"] = net.score_from(self.X_val, self.Y_val, AL)
        for key, value in logs.items():
            net.history_.setdefault(key, []).append(value)
        stop = False
        t = net.train_state_
        if self.early_stopping:
            value = logs.get("val_cost", logs["cost"])
            if value < t.best - self.min_delta:
                t.best, t.best_epoch, t.wait = float(value), int(epoch), 0
                if self.restore_best:
                    t.best_params = {k: v.copy() for k, v in net.parameters.items()}
            else:
                t.wait += 1
                if t.wait >= self.patience:
                    stop = True
                    net.stop_reason_ = "early_stopping"
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                                  if k in ("cost", "val_cost", "val_score")})
        if self.print_cost:
            unit = "epoch" if per_epoch else "iteration"
            print(f"Cost after {unit} {epoch}: {J}")
        for cb in self.callbacks:
            fn = getattr(cb, "on_epoch_end", cb if callable(cb) else None)
            if fn is not None and fn(net, int(epoch), dict(logs)) is True:
                stop = True
                net.stop_reason_ = net.stop_reason_ or "callback"
        return stop

    # ---- checkpoints
    def _load_checkpoint(self, path):
        """The network saved at ``path``, checked to be this one; adopts its seed (which
        decides the validation split)."""
        net = self.net
        saved = type(net).load(path, backend=net.get_config()["backend"])
        mine, theirs = net.get_config(), saved.get_config()
        for key in ("layer_dims", "activations", "loss", "dtype"):
            if mine[key] != theirs[key]:
                raise InputError(f"cannot resume from {path}: its network has {key} = "
                                 f"{theirs[key]!r}, this one {mine[key]!r}")
        if "train/epoch" not in saved.get_state():
            raise InputError(f"cannot resume from {path}: it holds no training state "
                             f"(it was not written by fit(checkpoint=...))")
        net.seed = saved.seed
        return saved

    def _resume_from(self, saved, path, fingerprint):
        state = saved.get_state()
        if decode_json(state["train/signature"], "signature") != fingerprint:
            raise InputError(f"cannot resume from {path}: it was written by a fit with "
                             f"other arguments or data; resume with the same ones")
        self.net.set_state(state)
        self.net.history_ = {k: list(v) for k, v in saved.history_.items()}

    def _save_checkpoint(self):
        self.net.save(self.checkpoint)

    def _adopt_optimizer(self, opt, required):
        """Continue the optimiser of the previous fit (or of a restored state) if it fits."""
        net = self.net
        current = net.optimizer_
        if current is not None and current.get_config() == opt.get_config():
            return current
        state = net.optimizer_state()
        if current is None and state is None and not opt._prefixes:
            state = {}
        if state is not None and (current is None or current.name == opt.name):
            try:
                opt.set_state(state, net.parameters)
            except InputError:
                if required:
                    raise
                opt.reset(net.parameters)
        elif required and opt._prefixes:
            raise InputError("the checkpoint holds no state for the "
                             f"{opt.name} optimiser")
        else:
            opt.reset(net.parameters)
        net.optimizer_ = opt
        return opt
