"""The training machinery of :meth:`chainrule.Network.fit`: :class:`FitRun` (one call's
state and loops) and its pieces: mini-batches, dropout masks, example weights, the interrupt
guard and the encoding of training state as arrays (for checkpoints)."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import signal
import threading

import numpy as np

from . import _validate as check
from . import reference as ref
from .backends.compose import cost as _cost
from .errors import InputError, NonFiniteError, ShapeError
from .optim import inverse_time_decay, make_optimizer, scheduled_decay


# --------------------------------------------------------------------------- mini-batches

def permutation(m, epoch, rng, shuffle, shuffle_seed):
    """The column order of epoch ``epoch`` (0-based), or ``None`` to keep the given order.

    With ``shuffle_seed`` the course's ``random_mini_batches``: the seed is incremented
    before every epoch (``seed = seed + 1``) and the permutation is
    ``np.random.seed(seed); np.random.permutation(m)`` — drawn here from a private
    ``RandomState(shuffle_seed + epoch + 1)``, which gives the same numbers without
    touching NumPy's global generator. Otherwise the model's generator draws it.
    """
    if not shuffle:
        return None
    if shuffle_seed is not None:
        return np.random.RandomState(shuffle_seed + epoch + 1).permutation(m)
    return rng.permutation(m)


def batches(m, mini_batch_size, perm):
    """Index arrays of the mini-batches: ``perm[k s:(k+1) s]`` for the complete batches of
    size ``s = mini_batch_size``, then the smaller rest ``perm[floor(m/s) s:]`` if any."""
    order = np.arange(m) if perm is None else perm
    return [order[k:k + mini_batch_size] for k in range(0, m, mini_batch_size)]


# --------------------------------------------------------------------------- dropout

def keep_probs(keep_prob, L):
    """One keep probability per hidden layer ``1..L-1`` from a number or a sequence."""
    if isinstance(keep_prob, numbers.Real) and not isinstance(keep_prob, bool):
        probs = [keep_prob] * (L - 1)
    else:
        try:
            probs = list(keep_prob)
        except TypeError as exc:
            raise InputError(f"keep_prob must be a number in (0, 1] or one per hidden layer, "
                             f"got {keep_prob!r}") from exc
        if len(probs) != L - 1:
            raise InputError(f"keep_prob has {len(probs)} entries but the network has L - 1 = "
                             f"{L - 1} hidden layers: give one per hidden layer")
    out = []
    for l, p in enumerate(probs, 1):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p <= 1:
            raise InputError(f"keep_prob of hidden layer {l} must be in (0, 1], got {p!r}")
        out.append(float(p))
    return out


def dropout_off(probs):
    return all(p == 1.0 for p in probs)


def dropout_masks(rng, layer_dims, probs, m, dtype):
    """Scaled inverted-dropout masks ``D[l] / keep_prob[l]`` for the hidden layers.

    ``D[l] = (rand(n[l], m) < keep_prob[l])`` as in the course, drawn from ``rng`` layer
    by layer (``rng.random``). Returns the list indexed like ``As`` (``masks[0]`` and
    ``masks[L]`` are ``None``, as is any layer with ``keep_prob = 1``), or ``None`` when
    no layer drops.
    """
    if dropout_off(probs):
        return None
    masks = [None]
    for l, p in enumerate(probs, 1):
        if p == 1.0:
            masks.append(None)
            continue
        D = rng.random((layer_dims[l], m)) < p
        masks.append(D.astype(dtype) / dtype.type(p))
    masks.append(None)
    return masks


# --------------------------------------------------------------------------- weights

def example_weights(sample_weight, class_weight, Y, output, n_out, m, dtype):
    """``w_k = sample_weight[k] * class_weight[class of k]`` (shape ``(m,)``), or ``None``."""
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        if w.dtype == object or w.dtype.kind not in "fiub":
            raise InputError(f"sample_weight must be numeric, got dtype {w.dtype}")
        w = w.astype(np.float64).reshape(-1) if w.ndim == 2 and 1 in w.shape else \
            w.astype(np.float64)
        if w.shape != (m,):
            raise ShapeError(f"sample_weight has shape {np.shape(sample_weight)} but X has m = "
                             f"{m} examples: expected ({m},)")
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputError("sample_weight must be finite and >= 0")
    if class_weight is not None:
        if output == "sigmoid" and n_out == 1:
            labels = Y[0].astype(np.intp)
            n_classes = 2
        elif output == "softmax":
            labels = np.argmax(Y, axis=0)
            n_classes = n_out
        else:
            raise InputError("class_weight needs a classifier: a 1-unit sigmoid or a softmax "
                             "output")
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise InputError(f"class_weight must be a dict or 'balanced', got "
                                 f"{class_weight!r}")
            counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
            table = np.where(counts > 0, m / (n_classes * np.maximum(counts, 1)), 0.0)
        elif isinstance(class_weight, dict):
            table = np.ones(n_classes)
            for c, cw in class_weight.items():
                if isinstance(c, bool) or not isinstance(c, numbers.Integral) or \
                        not 0 <= c < n_classes:
                    raise InputError(f"class_weight key {c!r} is not a class index in "
                                     f"[0, {n_classes - 1}]")
                if isinstance(cw, bool) or not isinstance(cw, numbers.Real) or \
                        not math.isfinite(cw) or cw < 0:
                    raise InputError(f"class_weight[{c}] must be a finite number >= 0, got {cw!r}")
                table[int(c)] = float(cw)
        else:
            raise InputError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
        cw = table[labels]
        w = cw if w is None else w * cw
    if w is not None and not w.sum() > 0:
        raise InputError("the example weights (sample_weight times class_weight) sum to 0: "
                         "nothing to learn from")
    return None if w is None else w.astype(dtype)


# --------------------------------------------------------------------------- interrupts

class InterruptGuard:
    """Turn the first Ctrl-C during ``fit`` into a request honoured at the next step boundary.

    The first SIGINT sets a flag; :meth:`check` (called between steps) raises
    ``KeyboardInterrupt`` there, so parameters and optimiser state are never left
    half-updated. A second SIGINT raises at once. Only active in the main thread with
    Python's default handler installed; elsewhere it changes nothing.
    """

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):  # not supported here (e.g. an embedded interpreter)
                self._old = None
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self):
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False


# --------------------------------------------------------------------------- state as arrays

def encode_json(value):
    """A JSON-compatible value as a ``uint8`` array (training state must be numeric arrays)."""
    return np.frombuffer(json.dumps(value, sort_keys=True).encode("utf-8"), dtype=np.uint8).copy()


def decode_json(array, what):
    try:
        return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InputError(f"training state {what} is not readable: {exc}") from exc


def signature(args, arrays):
    """SHA-256 (hex) of the fit arguments and data: a resumed fit must match its checkpoint."""
    h = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode())
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- the fit

def weight_sum(w):
    """``Σw`` in float64: the denominator of a weighted cost."""
    return float(np.sum(w, dtype=np.float64))


def first_nonfinite(J, dWs, dbs):
    """The first non-finite quantity of a step (``"cost"``, ``"gradient dW2"``), or None."""
    if not math.isfinite(J):
        return "cost"
    for l, (dW, db) in enumerate(zip(dWs, dbs), 1):
        if not np.isfinite(dW).all():
            return f"gradient dW{l}"
        if not np.isfinite(db).all():
            return f"gradient db{l}"
    return None


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
    ``optimizer_``, ``history_``, ``_train``, ``rng``); this object only lives for the call.
    """

    def __init__(self, net, X, Y, *, epochs, learning_rate, cost_every, progress, print_cost,
                 optimizer, mini_batch_size, shuffle, shuffle_seed, decay_rate, decay_interval,
                 lambd, keep_prob, sample_weight, class_weight, validation_data,
                 validation_fraction, early_stopping, patience, min_delta, restore_best,
                 callbacks, on_nonfinite, checkpoint, checkpoint_every, resume,
                 continue_training):
        self.net = net
        # ---- arguments
        self.learning_rate = learning_rate = check.positive_finite(learning_rate,
                                                                   "learning_rate")
        epochs = check.nonneg_int(epochs, "epochs")
        X, Y = net._check_XY(X, Y)
        m = X.shape[1]
        if mini_batch_size is not None:
            mini_batch_size = check.positive_int(
                mini_batch_size, "mini_batch_size",
                "mini_batch_size must be >= 1 (or None for full batch)")
        if cost_every is None:
            cost_every = 1 if mini_batch_size is not None else 100
        cost_every = check.positive_int(cost_every, "cost_every")
        if shuffle_seed is not None:
            shuffle_seed = check.nonneg_int(shuffle_seed, "shuffle_seed")
        decay_rate = check.nonneg_float(decay_rate, "decay_rate")
        if decay_interval is not None:
            decay_interval = check.positive_int(decay_interval, "decay_interval")
        lambd = check.nonneg_float(lambd, "lambd")
        probs = keep_probs(keep_prob, net.L)
        opt = make_optimizer(optimizer)
        if on_nonfinite not in ("raise", "skip"):
            raise InputError(f"on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
        patience = check.nonneg_int(patience, "patience")
        min_delta = check.nonneg_float(min_delta, "min_delta")
        checkpoint_every = check.nonneg_int(checkpoint_every, "checkpoint_every")
        if checkpoint is not None and checkpoint_every == 0:
            raise InputError("checkpoint_every must be an integer > 0")
        self.callbacks = list(callbacks or [])
        w = example_weights(sample_weight, class_weight, Y, net.activations[-1][0],
                            net.layer_dims[-1], m, net.dtype)

        saved = self._load_checkpoint(resume) if resume is not None else None

        # ---- validation data
        X_val = Y_val = None
        if validation_data is not None:
            try:
                X_val, Y_val = validation_data
            except (TypeError, ValueError) as exc:
                raise InputError("validation_data must be a pair (X_val, Y_val)") from exc
            X_val, Y_val = net._check_XY(X_val, Y_val)
        elif validation_fraction:
            if isinstance(validation_fraction, bool) or \
                    not isinstance(validation_fraction, numbers.Real) or \
                    not 0 < validation_fraction < 1:
                raise InputError(f"validation_fraction must be in (0, 1), got "
                                 f"{validation_fraction!r}")
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

        args = {"epochs": epochs, "learning_rate": learning_rate, "cost_every": cost_every,
                "optimizer": opt.get_config(), "mini_batch_size": mini_batch_size,
                "shuffle": bool(shuffle), "shuffle_seed": shuffle_seed,
                "decay_rate": decay_rate, "decay_interval": decay_interval, "lambd": lambd,
                "keep_prob": probs, "validation_fraction": float(validation_fraction or 0),
                "early_stopping": bool(early_stopping), "patience": patience,
                "min_delta": min_delta, "restore_best": bool(restore_best),
                "on_nonfinite": on_nonfinite, "class_weight": repr(class_weight)}
        fingerprint = signature(args, [X, Y, w, X_val, Y_val])

        # ---- where to start
        if saved is not None:
            self._resume_from(saved, resume, fingerprint)
            self.start, self.end = net._train["epoch"], epochs
            opt = self._adopt_optimizer(opt, required=True)
        elif continue_training and net._train is not None:
            self.start = net._train["epoch"]
            self.end = self.start + epochs
            opt = self._adopt_optimizer(opt, required=False)
            net._train["signature"] = fingerprint
        else:
            self.start, self.end = 0, epochs
            opt.reset(net._parameters)
            net.optimizer_, net._opt_pending = opt, None
            net.history_ = {"epoch": [], "cost": []}
            net._train = {"epoch": 0, "steps": 0, "skipped": 0, "best": float("inf"),
                          "best_epoch": -1, "wait": 0, "best_params": None,
                          "signature": fingerprint}
        for key in ("score", "lr", "skipped") + (("val_cost", "val_score")
                                                 if X_val is not None else ()):
            net.history_.setdefault(key, [])
        net._train["optimizer"] = opt.get_config()

        self.X, self.Y, self.w, self.X_val, self.Y_val = X, Y, w, X_val, Y_val
        self.opt, self.lambd, self.probs, self.on_nonfinite = opt, lambd, probs, on_nonfinite
        self.mini_batch_size, self.shuffle, self.shuffle_seed = mini_batch_size, shuffle, \
            shuffle_seed
        self.decay_rate, self.decay_interval = decay_rate, decay_interval
        self.cost_every, self.print_cost, self.progress = cost_every, print_cost, progress
        self.early_stopping, self.patience, self.min_delta, self.restore_best = \
            early_stopping, patience, min_delta, restore_best
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        m = X.shape[1]
        self.ops = net._use_backend_for(m if mini_batch_size is None else min(mini_batch_size, m))
        self.Ws, self.bs = net._Ws_bs()
        self.guard = InterruptGuard()
        self.bar = None

    # ---- the run
    def execute(self):
        """Run the epochs; afterwards restore the best parameters, write the last checkpoint
        and call the callbacks' ``on_fit_end``."""
        net, train = self.net, self.net._train
        self.bar = progress_bar(self.end - self.start, self.progress)
        net.stop_reason_ = None
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_begin"):
                cb.on_fit_begin(net)
        loop = self._loop_full_batch if self.mini_batch_size is None else \
            self._loop_mini_batches
        try:
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
            if self.bar is not None:
                self.bar.close()
        if self.early_stopping and self.restore_best and train["best_params"] is not None:
            net._parameters = {k: v.copy() for k, v in train["best_params"].items()}
        if self.checkpoint is not None and self.end > self.start:
            self._save_checkpoint()  # the finished model
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(net)

    @property
    def fast(self):
        """Full-batch plain gradient descent: the backend's compiled loop can run it."""
        return (self.opt.name == "gd" and self.mini_batch_size is None
                and dropout_off(self.probs) and self.w is None and not self.decay_rate
                and self.on_nonfinite == "raise")

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
        train, fast = self.net._train, self.fast
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
                    self._step(self.X, self.Y, self.w, self.lr_of(e), f"epoch {e}")
                    train["epoch"] = e + 1
                    guard.check()
            if self.bar is not None:
                self.bar.update(nxt - epoch)
            epoch = nxt
            train["epoch"] = epoch

    def _loop_mini_batches(self):
        """Epochs of mini-batches. Record ``i`` describes epoch ``i``: its mean mini-batch
        cost (the course's ``cost_avg``) and the scores after it; at ``i = 0, cost_every,
        ...`` and at the last epoch."""
        end, cost_every = self.end, self.cost_every
        for epoch in range(self.start, end):
            lr = self.lr_of(epoch)
            J = self._epoch(lr, epoch)
            self.net._train["epoch"] = epoch + 1
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
        if self.opt.name == "gd" and net.loss != "mean_squared_error" and wb is None:
            # The backend's fused step (mask and L2 inside). With a cross-entropy loss the
            # clipped cost is finite whenever A[L] is, and a non-finite A[L] makes the
            # gradient non-finite, which the step refuses: ok covers the cost too.
            with np.errstate(over="ignore", invalid="ignore"):
                ok, J = ops.train_step(Xb, Yb, Ws, bs, net.activations, net.loss, lr,
                                       self.lambd, masks, True)
            bad = None if ok and math.isfinite(J) else "gradient or cost"
            if bad is None:
                net._train["steps"] += 1
                return J
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
                J, dWs, dbs = self._cost_and_gradients(Xb, Yb, wb, masks)
            bad = first_nonfinite(J, dWs, dbs)
        if bad is not None:
            if self.on_nonfinite == "skip":
                net._train["skipped"] += 1
                return None
            raise NonFiniteError(
                f"{where}: the {bad} is not finite (NaN or inf); training stopped and the model "
                f"kept the parameters and optimiser state of the last good step — lower the "
                f"learning rate (now {lr}), scale the inputs or use on_nonfinite='skip'")
        self.opt.update(ops, Ws, bs, dWs, dbs, lr)
        net._train["steps"] += 1
        return J

    def _cost(self, Y, AL, w):
        """``J`` with the L2 term, weighted by ``w`` when given (the formula in ``fit``)."""
        net, lambd = self.net, self.lambd
        if w is None:
            return _cost(Y, AL, self.Ws, net.loss, lambd)
        J = ref.compute_cost(AL, Y, net.loss, sample_weight=w)
        if lambd:
            J += ref.l2_cost(net._parameters, lambd, weight_sum(w))
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
        """``n`` full-batch gradient-descent epochs in the backend's compiled loop.

        The loop stops at a non-finite gradient; a non-finite cost (recorded every step)
        is found afterwards and the chunk replayed up to it, so either way the model
        ends at the last good step."""
        net, ops, Ws, bs = self.net, self.ops, self.Ws, self.bs
        before = [P.copy() for P in Ws + bs]
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
            n_done, costs = ops.train_loop(self.X, self.Y, Ws, bs, net.activations, net.loss,
                                           lr, self.lambd, n, 1)
        bad_cost = np.flatnonzero(~np.isfinite(costs[:n_done]))
        if bad_cost.size:
            # Replay up to the first non-finite cost from the chunk's start (deterministic).
            n_done = int(bad_cost[0])
            for P, saved in zip(Ws + bs, before):
                P[...] = saved
            if n_done:
                with np.errstate(over="ignore", invalid="ignore"):
                    ops.train_loop(self.X, self.Y, Ws, bs, net.activations, net.loss, lr,
                                   self.lambd, n_done, 0)
        net._train["steps"] += n_done
        if n_done < n:
            net._train["epoch"] = epoch + n_done
            what = "cost" if bad_cost.size else "gradient"
            raise NonFiniteError(
                f"epoch {epoch + n_done}: the {what} is not finite (NaN or inf); training "
                f"stopped and the parameters of the last good step were kept — lower the "
                f"learning rate (now {lr}) or scale the inputs")

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
                "score": net._score_checked(self.X, self.Y, AL),
                "skipped": int(net._train["skipped"])}
        if self.X_val is not None:
            AL = self._AL(self.X_val)
            logs["val_cost"] = ref.compute_cost(AL, self.Y_val, net.loss)
            logs["val_score"] = net._score_checked(self.X_val, self.Y_val, AL)
        for key, value in logs.items():
            net.history_.setdefault(key, []).append(value)
        stop = False
        t = net._train
        if self.early_stopping:
            value = logs.get("val_cost", logs["cost"])
            if value < t["best"] - self.min_delta:
                t["best"], t["best_epoch"], t["wait"] = float(value), int(epoch), 0
                if self.restore_best:
                    t["best_params"] = {k: v.copy() for k, v in net._parameters.items()}
            else:
                t["wait"] += 1
                if t["wait"] >= self.patience:
                    stop = True
                    net.stop_reason_ = "early_stopping"
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                                  if k in ("cost", "val_cost", "val_score")})
        if self.print_cost:
            unit = "epoch" if per_epoch else "iteration"
            print(f"Cost after {unit} {epoch}: {J}")
        for cb in self.callbacks:
            fn = getattr(cb, "on_epoch_end", cb)
            if fn(net, int(epoch), dict(logs)) is True:
                stop = True
                net.stop_reason_ = net.stop_reason_ or "callback"
        return stop

    # ---- checkpoints
    def _load_checkpoint(self, path):
        """The network saved at ``path``, checked to be this one; adopts its seed (which
        decides the validation split)."""
        from .io import load

        net = self.net
        saved = load(path, backend=net._backend_request)
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
        from .io import save

        save(self.net, self.checkpoint)

    def _adopt_optimizer(self, opt, required):
        """Continue the optimiser of the previous fit (or of a restored state) if it fits."""
        net = self.net
        current = net.optimizer_
        if current is not None and current.get_config() == opt.get_config():
            return current
        state = current.get_state() if current is not None else net._opt_pending
        if current is None and state is None and not opt._prefixes:
            state = {}
        if state is not None and (current is None or current.name == opt.name):
            try:
                opt.set_state(state, net._parameters)
            except InputError:
                if required:
                    raise
                opt.reset(net._parameters)
        elif required and opt._prefixes:
            raise InputError("the checkpoint holds no state for the "
                             f"{opt.name} optimiser")
        else:
            opt.reset(net._parameters)
        net.optimizer_, net._opt_pending = opt, None
        return opt
