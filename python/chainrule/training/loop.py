"""The training loop of :meth:`chainrule.Network.fit`: :class:`FitRun`, one call's data,
start (afresh, continued or resumed), epochs, steps, records and checkpoints.

It talks to the network only through the network's training interface (``validate_data``,
``ops_for``, ``layer_arrays``, ``score_from``, ``parameters``, ``train_state_``,
``optimizer_``, ``history_``, ``stop_reason_``); the arguments arrive as a validated
:class:`~chainrule.training.config.FitConfig`.
"""

from __future__ import annotations

import time

import numpy as np

from .. import _validate as check
from .. import reference as ref
from ..backends import engine
from ..backends.plan import FitPlan
from ..backends.compose import cost as _cost
from ..backends.compose import unsafe_update
from ..errors import InputError, NonFiniteError
from .batches import (SPARSE_BLOCK_BYTES, dropout_masks, dropout_off, example_weights,
                      permutation, sparse_column_blocks, weight_sum)
from .interrupts import InterruptGuard
from .optim import inverse_time_decay, scheduled_decay
from .progress import progress_bar, warn_if_diverged
from .state import (TrainState, decode_json, legacy_signature, signature, split_start,
                    with_start)

NO_FINGERPRINT = ""  # the signature of a fit that neither wrote nor read a checkpoint
CHUNK_SECONDS = 0.07  # a fit_epochs call's target duration: Ctrl-C is answered between calls


class Pacer:
    """How many steps the next ``fit_epochs`` call may take to last about ``CHUNK_SECONDS``,
    from the time per step of the previous call: at most 4x the steps of the last call, or
    as many as fill a quarter of ``CHUNK_SECONDS`` at its pace if that is more. The first
    call fills a quarter chunk at a pessimistic guess of the step's time
    (:func:`first_steps`), so it never makes one long call, and short steps make few calls
    (a 220-step digits fit was 4 calls of 8, 32, 128 and 52 steps, each with its Python
    set-up and checks of about 70 us; now one)."""

    def __init__(self, first=8):
        self.n = first

    # The guess: a fixed cost (a compiled step's bookkeeping; the generic engine's Python is
    # more) and the step's multiply-adds at 2e10 a second, about half a core's float64 rate
    # where measured (2-core AMD EPYC, AVX-512: 35e9 on digits' 64x64 products). A first
    # call lasts a quarter chunk or less there, about a chunk on a core 4x slower.
    GUESS_FIXED_SECONDS, GUESS_MACS_PER_SECOND = 30e-6, 2e10

    @classmethod
    def first_steps(cls, layer_dims, batch):
        """The steps of a fit's first call: a quarter of ``CHUNK_SECONDS`` at the guess of
        the time of a step of ``batch`` examples through ``layer_dims`` (forward and
        backward: 3 products a layer)."""
        macs = 3 * batch * sum(a * b for a, b in zip(layer_dims[:-1], layer_dims[1:]))
        guess = cls.GUESS_FIXED_SECONDS + macs / cls.GUESS_MACS_PER_SECOND
        return max(1, int(CHUNK_SECONDS / 4 / guess))

    def steps(self):
        return self.n

    def observe(self, n_steps, seconds):
        if n_steps > 0:
            per_step = max(seconds, 1e-7) / n_steps
            grown = max(4 * max(self.n, n_steps), CHUNK_SECONDS / 4 / per_step)
            self.n = int(max(1, min(grown, CHUNK_SECONDS / per_step)))


def first_nonfinite(J, dWs, dbs):
    """The first non-finite quantity of a step (``"cost"``, ``"gradient dW2"``), or None
    (the update-safety rule, :func:`~chainrule.backends.compose.unsafe_update`, before the
    update's candidates exist)."""
    grads = [(f"d{k}{l}", g) for l, (dW, db) in enumerate(zip(dWs, dbs), 1)
             for k, g in (("W", dW), ("b", db))]
    return unsafe_update(J, grads, ())


def nonfinite_cause(dtype, lambd=0.0, m=1, Y=None, w=None, parameters=None, steps=None,
                    lr=None):
    """The advice of a refused step whose cost or gradient was not finite, naming what made
    it so when one of the fit's inputs is extreme for the dtype (else None: the learning rate
    or the inputs' scale). Checked in this order: the L2 term (``lambd``), the labels, the
    example weights, the first step (the data, not the learning rate)."""
    big = float(np.finfo(dtype).max)
    if lambd and parameters is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            squares = sum(float(np.sum(np.square(v, dtype=np.float64)))
                          for k, v in parameters.items() if k.startswith("W"))
            term = lambd / (2 * m) * squares
        if not term < big * 1e-6:
            return (f"the L2 term lambd/(2m) * sum ||W||^2 = {term:.3g} overflows (lambd = "
                    f"{lambd}): lower lambd")
    if Y is not None and Y.size:
        y_max = float(np.max(np.abs(Y)))
        if y_max > np.sqrt(big) * 1e-3:
            return (f"the labels reach |Y| = {y_max:.3g}, whose squared errors overflow "
                    f"{np.dtype(dtype).name}: scale the labels"
                    + (" (or use float64)" if np.dtype(dtype) == np.float32 else ""))
    if w is not None and w.size:
        w_max, w_sum = float(np.max(w)), float(np.sum(w, dtype=np.float64))
        if w_max > 1e30 or (w_sum > 0 and w_max / w_sum * w.size > 1e12):
            return (f"the example weights reach {w_max:.3g} (sum {w_sum:.3g}): scale "
                    f"sample_weight/class_weight to about 1")
    if steps == 0:
        return (f"the very first step failed, so the learning rate (now {lr}) is not the "
                f"cause: scale the inputs, check the labels or reinitialise the parameters")
    return None


def refused_step(where, bad, lr, parameters, gradients, dtype, advice=None):
    """The message of a step refused by the update-safety rule (nothing was applied);
    ``gradients`` maps ``"dW1"``... to the step's gradients (``{}`` where the step ran in
    ``fit_epochs``, which reports only what was not finite: the advice then follows from
    the parameter alone — near the dtype's largest value it is the cause, else ``lr g``)."""
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
        elif advice is not None:  # what nonfinite_cause found
            pass
        else:
            advice = (f"lower the learning rate (now {lr}), scale the inputs or use "
                      f"on_nonfinite='skip'")
        return f"{where}: the {bad} is not finite (NaN or inf); {kept} — {advice}"
    name = bad[len("update of "):]
    param = name.split("_d", 1)[-1]  # s_dW1 -> W1
    P, G = parameters.get(param), gradients.get(f"d{param}")
    p_max = float(np.abs(P).max()) if P is not None and P.size else 0.0
    g_max = float(np.abs(G).max()) if G is not None and G.size else 0.0
    big = float(np.finfo(dtype).max)
    cause = advice if advice is not None and not advice.startswith("the very first") else None
    if name != param:
        size = f" (max |d{param}| = {g_max:.3g})" if G is not None else ""
        advice = (f"the gradient d{param}{size} is too large for the "
                  f"optimiser's moving averages in {dtype.name}: scale the inputs, check the "
                  f"parameters or use float64")
    elif G is None and p_max <= big * 1e-3 and cause is not None:  # lambd, Y or w
        advice = cause
    elif G is None and p_max <= big * 1e-3:  # p is far from the largest: lr g overflowed
        advice = (f"lower the learning rate (now {lr}), scale the inputs or use "
                  f"on_nonfinite='skip'")
    elif G is not None and lr * g_max >= p_max:
        advice = (f"lower the learning rate (now {lr}; lr * max |d{param}| = "
                  f"{lr * g_max:.3g}), scale the inputs or use on_nonfinite='skip'")
    else:
        advice = (f"{param} itself is near the largest {dtype.name} (max |{param}| = "
                  f"{p_max:.3g}): rescale or reinitialise the parameters, or use float64")
    return (f"{where}: the {bad} would overflow the {dtype.name} range (NaN or inf); {kept} "
            f"— {advice}")


def early_stopping_step(net, value, epoch, min_delta, patience, restore_best):
    """Early stopping's bookkeeping for one record (``value``: the validation cost, else the
    cost): a better value keeps the epoch (and, with ``restore_best``, its parameters and
    batch norm's running statistics); ``patience`` records without one stop. True = stop."""
    t = net.train_state_
    if value < t.best - min_delta:
        t.best, t.best_epoch, t.wait = float(value), int(epoch), 0
        if restore_best:
            t.best_params = {k: v.copy() for k, v in net.parameters.items()}
            t.best_running = {k: v.copy() for k, v in net.running_statistics.items()} or None
        return False
    t.wait += 1
    if t.wait >= patience:
        net.stop_reason_ = "early_stopping"
        return True
    return False


def restore_best(net):
    """The best record's parameters and running statistics back into ``net`` (the end of an
    early-stopped fit with ``restore_best``); nothing when none was kept."""
    t = net.train_state_
    if t.best_params is not None:
        net.parameters = t.best_params  # validated and copied
        if t.best_running:  # batch norm: that epoch's running statistics
            net.running_statistics = t.best_running


def callbacks_stop(callbacks, net, epoch, logs):
    """Each callback's ``on_epoch_end`` (or the callable itself) with the record; True if
    one returned ``True`` (or ``numpy.True_``). Anything but a bool or None is refused."""
    stop = False
    for i, cb in enumerate(callbacks):
        fn = getattr(cb, "on_epoch_end", cb if callable(cb) else None)
        answer = None if fn is None else fn(net, int(epoch), dict(logs))
        if answer is None or isinstance(answer, (bool, np.bool_)) and not answer:
            continue
        if not isinstance(answer, (bool, np.bool_)):
            raise InputError(f"callbacks[{i}] ({getattr(fn, '__qualname__', fn)!r:.60}) "
                             f"returned {type(answer).__name__} {answer!r:.40}; return "
                             f"True to stop training, False or None to go on (the model "
                             f"is kept as it is after epoch {epoch})")
        stop = True
        net.stop_reason_ = net.stop_reason_ or "callback"
    return stop


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
        # X keeps an F-contiguous layout (examples as rows: sklearn's X_rows.T), so the
        # engine's XT = X.T needs no copy; validated once here for the whole fit.
        # A scipy.sparse X stays sparse (CSC columns, CSR rows): each chunk of mini-batches
        # densifies only its own rows (_run_chunk), a record its column blocks (_AL).
        self.sparse = check.is_sparse(X)
        if self.sparse:
            if c.mini_batch_size is None:
                raise InputError("a sparse X trains in mini-batches (each chunk of batches is "
                                 "densified in turn, never the whole matrix): give "
                                 "mini_batch_size")
            X = check.sparse_X(X, net.layer_dims[0], net.dtype).T
        else:
            X = check.X(X, net.layer_dims[0], net.dtype, order="K")
        Y = check.Y(Y, net.layer_dims[-1], X.shape[1], net.loss, net.dtype)
        m = X.shape[1]
        self.learning_rate, self.callbacks = c.learning_rate, c.callbacks
        opt, probs, w = c.optimizer, c.keep_prob, None
        if min(probs, default=1.0) * float(np.finfo(net.dtype).max) < 1.0:
            raise InputError(f"keep_prob = {min(probs):g}: its inverse 1/keep_prob, which scales "
                             f"the kept activations, overflows {net.dtype.name}; use a "
                             f"keep_prob nearer 1")
        w = example_weights(c.sample_weight, c.class_weight, Y, net.activations[-1][0],
                            net.layer_dims[-1], m, net.dtype)
        resume, validation_data, validation_fraction = c.resume, c.validation_data, \
            c.validation_fraction
        saved = self._load_checkpoint(resume) if resume is not None else None
        # a resumed fit holds out the checkpoint's validation split (its seed decides it);
        # net.seed is adopted only once the resume is accepted
        seed = net.seed if saved is None else saved.seed
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
            if check.is_sparse(X_val):
                X_val = check.sparse_X(X_val, net.layer_dims[0], net.dtype).T
                Y_val = check.Y(Y_val, net.layer_dims[-1], X_val.shape[1], net.loss, net.dtype)
            else:
                X_val, Y_val = net.validate_data(X_val, Y_val)
        elif validation_fraction:
            n_val = int(round(m * validation_fraction))
            if not 1 <= n_val < m:
                raise InputError(f"validation_fraction={validation_fraction} of m = {m} "
                                 f"examples leaves {n_val} for validation and {m - n_val} "
                                 f"for training; each needs at least 1")
            split_seed = None if seed is None else [int(seed), 0x5EED]
            perm = np.random.default_rng(split_seed).permutation(m)
            val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            X_val = X[:, val] if self.sparse else np.ascontiguousarray(X[:, val])
            Y_val = np.ascontiguousarray(Y[:, val])
            X = X.T[tr].T  # one gather of rows: X stays F-contiguous (XT = X.T C-contiguous)
            Y = np.ascontiguousarray(Y[:, tr])
            w = None if w is None else w[tr]

        # ---- the engine's view of the data: examples as rows (a view of an F-ordered X;
        # a sparse X as CSR rows of examples, densified a chunk of mini-batches at a time)
        if self.sparse:
            XT = X.T.tocsr()
        else:
            XT = X.T if X.T.flags.c_contiguous else np.ascontiguousarray(X.T)
        YT = np.ascontiguousarray(Y.T)
        # The data enter the fingerprint only where a checkpoint is written or read; a fit
        # without one records NO_FINGERPRINT. Every entry counts (state.signature).
        fingerprint = NO_FINGERPRINT
        if c.checkpoint is not None or resume is not None:
            # a sparse matrix enters by its stored values, indices and shape
            fingerprint = signature(c.fingerprint(), [
                part for a in (XT, YT, w, X_val, Y_val) for part in (
                    (a.data, a.indices, a.indptr, np.array(a.shape)) if check.is_sparse(a)
                    else (a,))])
        # A checkpoint written before every entry counted records a sampled digest of the
        # data in the course's layout (state.legacy_signature), computed only to resume one.
        legacy_arrays = [X, Y, w, X_val, Y_val]
        self._legacy = None if self.sparse else \
            (lambda: legacy_signature(c.fingerprint(), legacy_arrays))
        epochs = c.epochs
        self.already_stopped = False
        if any(net.batch_norm):  # refused before anything changes
            m_fit, size = X.shape[1], c.mini_batch_size
            size = m_fit if size is None else min(size, m_fit)
            if size < 2 or m_fit % size == 1:
                raise InputError(
                    f"batch norm needs at least 2 examples in every training batch: m = "
                    f"{m_fit} with mini_batch_size = {c.mini_batch_size} leaves a batch of one "
                    f"(its variance is 0 and says nothing); choose another mini_batch_size")

        # ---- where to start
        if saved is not None:
            start = self._resume_from(saved, resume, fingerprint, c, opt)
            self.start = net.train_state_.epoch
            # epochs counts from the epoch the interrupted call started at; an early-stopped
            # call had ended: relaunching it trains nothing more
            self.end = max(self.start, start + epochs)
            if c.early_stopping and net.train_state_.wait >= c.patience:
                self.end, self.already_stopped = self.start, True
            opt = net.optimizer_
        elif c.continue_training and net.train_state_ is not None:
            self.start = net.train_state_.epoch
            self.end = self.start + epochs
            opt = self._adopt_optimizer(opt, required=False)
            net.train_state_.signature = fingerprint and with_start(fingerprint, self.start)
        else:
            self.start, self.end = 0, epochs
            opt.reset(net.parameters)
            net.optimizer_ = opt
            net.history_ = {"epoch": [], "cost": []}
            net.train_state_ = TrainState(signature=fingerprint and with_start(fingerprint, 0))
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
        batches = 1 if mini_batch_size is None else -(-m // mini_batch_size)
        s = m if mini_batch_size is None else min(mini_batch_size, m)
        self.ops = net.ops_for(s, steps=c.epochs * batches)  # auto weighs a first use by it
        # What every fit_epochs call of this fit shares, fixed once (the engines' plan).
        self.plan = FitPlan.build(net.layer_dims, net.activations, net.loss, opt,
                                  mini_batch_size=s, lambd=c.lambd, keep_probs=probs,
                                  batch_norm=net.batch_norm,
                                  bn_momentum=net.batch_norm_momentum,
                                  bn_epsilon=net.batch_norm_epsilon,
                                  bn_unbiased=net.batch_norm_unbiased)
        self.Ws, self.bs = net.layer_arrays()
        self.guard = InterruptGuard()
        self.bar = None
        if self.sparse:
            # the steps of one chunk: its dense rows stay under SPARSE_BLOCK_BYTES
            row_bytes = X.shape[0] * net.dtype.itemsize
            self.sparse_steps = max(1, SPARSE_BLOCK_BYTES // (row_bytes * min(mini_batch_size,
                                                                             m)))
        self.XT, self.YT = XT, YT
        self.dropout_rng, self.full_score = c.dropout_rng, c.full_score
        self.pacer = Pacer(Pacer.first_steps(net.layer_dims, min(mini_batch_size or m, m)))
        out = net.activations[-1][0]
        # The running accuracy of the batches is the model's score for these outputs.
        self.running_score = (out == "softmax" or (out == "sigmoid" and net.layer_dims[-1] == 1))
        # Whether a record must see the parameters at its epoch's end (a forward for the
        # score, validation, early stopping, callbacks); else it is made of the engine's
        # sums alone, and a chunk may run past it (the records follow, in order)
        self.records_need_state = bool(self.callbacks) or self.X_val is not None or \
            bool(self.early_stopping) or not (self.running_score and not self.full_score)

    # ---- the run
    def execute(self):
        """Run the epochs; afterwards restore the best parameters, write the last checkpoint
        and call the callbacks' ``on_fit_end``."""
        net, train = self.net, self.net.train_state_
        self.bar = progress_bar(self.end - self.start, self.progress)
        first_record = len(net.history_["cost"])
        net.stop_reason_ = "early_stopping" if self.already_stopped else None
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_begin"):
                cb.on_fit_begin(net)
        self.Ws, self.bs = net.layer_arrays()  # on_fit_begin may have assigned parameters
        loop = self._loop_full_batch if self.mini_batch_size is None else \
            self._loop_mini_batches
        try:
            net._fitting = True  # the parameters cannot be assigned (Network.parameters)
            with self.guard, self.ops.fit_session():
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
                self.bar.close(net.epochs_trained_, net.stop_reason_)
        warn_if_diverged(net.history_, first_record, self.learning_rate, self._constant_cost)
        if self.early_stopping and self.restore_best:
            restore_best(net)
        if self.checkpoint is not None and self.end > self.start:
            self._save_checkpoint()  # the finished model
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(net)

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

    # ---- the engine
    def _draw(self, epoch):
        """Epoch ``epoch``'s permutation and dropout key, drawn in this order from the model's
        generator (the key only for counter-based masks with some ``keep_prob < 1``)."""
        m = self.XT.shape[0]
        perm = None
        if self.mini_batch_size is not None:
            perm = permutation(m, epoch, self.net.rng, self.shuffle, self.shuffle_seed)
        key = 0
        if self.dropout_rng == "counter" and not dropout_off(self.probs):
            key = int(self.net.rng.integers(0, 2 ** 63, dtype=np.int64))
        return perm, key

    def _run_chunk(self, first, epochs, k0, n_steps, sums=None):
        """One ``fit_epochs`` call over ``epochs`` = [(epoch, perm, key), ...] from batch
        ``k0`` (``sums``: the epochs' running cost sums, which the engine continues); updates
        the step counters and the optimiser's ``t``; returns the result."""
        net, opt = self.net, self.opt
        perms = None if epochs[0][1] is None else np.stack([p for _, p, _ in epochs])
        keys = np.array([key for _, _, key in epochs], dtype=np.int64)
        lrs = np.array([self.lr_of(e) for e, _, _ in epochs])
        XT, YT, w = self.XT, self.YT, self.w
        s = self.plan.mini_batch_size
        if self.sparse:
            # One epoch's batches k0 .. k0+n_steps-1 (the loop keeps a sparse chunk within an
            # epoch): their rows, densified in batch order, are the engine's whole data set,
            # in the given order, from its batch 0. Only the counter-based dropout masks
            # differ from a dense fit's (they are keyed by the batch index within the block).
            m = XT.shape[0]
            order = perms[0] if perms is not None else np.arange(m)
            rows = order[k0 * s:min(m, (k0 + n_steps) * s)]
            XT = XT[rows].toarray(order="C")
            YT = np.ascontiguousarray(YT[rows])
            w = None if w is None else np.ascontiguousarray(w[rows])
            perms, k0_block = None, 0
        else:
            k0_block = k0
        args = (self.plan, XT, YT, w)
        chunk = dict(perms=perms, lrs=lrs, keys=keys, k0=k0_block, n_steps=n_steps, t=opt.t,
                     state=opt.state, Ws=self.Ws, bs=self.bs, sums=sums)
        if self.plan.batch_norm:
            chunk["norm"] = net.batch_norm_arrays()
        start = time.perf_counter()
        # The parameters, the optimiser's t and the step counter change together.
        with self.guard.atomic(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.dropout_rng == "generator" and not dropout_off(self.probs):
                rng, dims, probs, dtype = net.rng, net.layer_dims, self.probs, net.dtype

                def masks(e, k, mb):  # the course's masks, drawn step by step
                    return dict(enumerate(dropout_masks(rng, dims, probs, mb, dtype)))

                res = engine.generic(self.ops, *args, **chunk, masks=masks)
            else:
                res = self.ops.fit_epochs(*args, **chunk)
            if self.sparse:  # the block's (epoch, batch) as the real epoch's
                nb = engine.n_batches(self.XT.shape[0], s)
                k = k0 + res.epoch * engine.n_batches(XT.shape[0], s) + res.batch
                res = res._replace(epoch=int(k == nb), batch=0 if k == nb else k)
            opt.t = res.t
            net.train_state_.steps += res.steps
            # The epochs this call completed, counted with its steps (a second Ctrl-C raises
            # at the block's end: the counters must already match the parameters).
            net.train_state_.epoch = first + res.epoch
        self.pacer.observe(res.steps + res.status, time.perf_counter() - start)
        return res

    def _refused(self, res, epoch, batch, lr):
        """A refused step: skipped (counted) or NonFiniteError."""
        if self.on_nonfinite == "skip":
            self.net.train_state_.skipped += 1
            return
        where = f"epoch {epoch}" if self.mini_batch_size is None else \
            f"epoch {epoch}, mini-batch {batch}"
        net = self.net
        advice = nonfinite_cause(net.dtype, self.lambd, self.XT.shape[0], self.YT, self.w,
                                 net.parameters, net.train_state_.steps, lr)
        raise NonFiniteError(refused_step(where, res.what, lr, net.parameters, {},
                                          net.dtype, advice))

    def _loop_full_batch(self):
        """One step per epoch. Record ``e`` describes the parameters after ``e`` steps (the
        course's "Cost after iteration e"): at ``e = 0, cost_every, ...`` and at ``end``."""
        start, end, cost_every, guard = self.start, self.end, self.cost_every, self.guard
        train = self.net.train_state_
        epoch = start
        recorded = self.net.history_["epoch"]
        # Each epoch's draws (permutation, mask key) are made once: a call that stops early
        # (the C engine's time limit, a refused step) leaves epochs to the next call, which
        # must train them with the same draws, as one call would have.
        drawn = {}
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
            while epoch < nxt:  # chunks of about CHUNK_SECONDS up to the next event
                n = min(self.pacer.steps(), nxt - epoch)
                for e in range(epoch, epoch + n):
                    if e not in drawn:
                        drawn[e] = self._draw(e)
                res = self._run_chunk(epoch, [(e, *drawn[e]) for e in range(epoch, epoch + n)],
                                      0, n)
                done = epoch + res.epoch
                if res.status:
                    train.epoch = done
                    self._refused(res, done, 0, self.lr_of(done))
                    done += 1  # skipped: the epoch's one step applied nothing
                for e in range(epoch, done):
                    drawn.pop(e, None)
                if self.bar is not None:
                    self.bar.update(done - epoch)
                epoch = done
                train.epoch = epoch
                guard.check()

    def _next_event(self, epoch):
        """The first epoch boundary after ``epoch`` at which Python must act: after a
        recorded epoch (``cost_every``) whose record needs the parameters
        (``records_need_state``), at a checkpoint, at the end."""
        end, cost_every = self.end, self.cost_every
        record = epoch + (-epoch % cost_every)  # the first recorded epoch >= epoch
        boundary = min(end, record + 1) if self.records_need_state else end
        if self.checkpoint is not None:
            boundary = min(boundary, epoch + self.checkpoint_every - epoch % self.checkpoint_every)
        return boundary

    def _loop_mini_batches(self):
        """Epochs of mini-batches. Record ``i`` describes epoch ``i``: its mean mini-batch
        cost (the course's ``cost_avg``) and the scores after it; at ``i = 0, cost_every,
        ...`` and at the last epoch.

        The steps run in ``fit_epochs`` chunks that never cross an event's epoch boundary
        (a record, a checkpoint): a checkpoint's generator state is that of the epoch
        boundary. Counter-based masks let a chunk span epochs; the course's generator masks
        keep a chunk within one epoch (its permutation is drawn before its masks)."""
        end, cost_every, train = self.end, self.cost_every, self.net.train_state_
        m = self.XT.shape[0]
        s = min(self.mini_batch_size, m)
        nb = engine.n_batches(m, s)
        one_epoch = self.sparse or (self.dropout_rng == "generator" and
                                    not dropout_off(self.probs))
        drawn, sums = {}, {}

        def completed(first, stop):
            """Epochs ``first .. stop - 1`` are complete: count, record, checkpoint them;
            True when the fit ends (a record asked to stop, or the last epoch)."""
            for e in range(first, stop):
                train.epoch = e + 1
                drawn.pop(e)
                total, weight, correct, examples = sums.pop(e)
                if self.bar is not None:
                    self.bar.update(1)
                if e % cost_every == 0 or e == end - 1:
                    J = total / weight if weight else float("nan")
                    score = correct / examples if examples else float("nan")
                    if self._record_epoch(e, J, self.lr_of(e), per_epoch=True,
                                          running_score=score) or e == end - 1:
                        return True  # the last checkpoint is written by execute
                if self._checkpoint_due(e + 1):
                    self._save_checkpoint()
            return False

        epoch, k = self.start, 0
        while epoch < end:
            boundary = self._next_event(epoch)
            n = min(self.pacer.steps(), (boundary - epoch) * nb - k)
            if one_epoch:
                n = min(n, nb - k)
            if self.sparse:
                n = min(n, self.sparse_steps)
            last = epoch + (k + n - 1) // nb
            for e in range(epoch, last + 1):
                if e not in drawn:
                    drawn[e] = self._draw(e)
                    sums[e] = [0.0, 0.0, 0, m]  # Σ J_b Σw_b, Σ Σw_b, correct, examples
            # The engine continues each epoch's running sums, step after step: an epoch's cost
            # is the same sum whichever calls (sized by time) ran its steps.
            running = np.array([[sums[e][j] for e in range(epoch, last + 1)] for j in (0, 1)])
            res = self._run_chunk(epoch, [(e, *drawn[e]) for e in range(epoch, last + 1)], k,
                                  n, running)
            for i in range(last + 1 - epoch):
                acc = sums[epoch + i]
                acc[0] = float(res.cost_sum[i])
                acc[1] = float(res.weight_sum[i])
                acc[2] += int(res.correct[i])
            e_next, k_next = epoch + res.epoch, res.batch
            # The epochs the chunk completed are recorded before a refused step is handled: a
            # refusal that raises leaves the history of the steps that were applied (a chunk
            # runs past records made of its sums alone).
            if completed(epoch, e_next):
                return
            if res.status:
                self._refused(res, e_next, k_next, self.lr_of(e_next))
                sums[e_next][3] -= min(s, m - k_next * s)  # its examples were not scored
                k_next += 1
                if k_next == nb:  # the skipped step was its epoch's last
                    if completed(e_next, e_next + 1):
                        return
                    e_next, k_next = e_next + 1, 0
            epoch, k = e_next, k_next
            self.guard.check()

    # ---- one step
    def _cost(self, Y, AL, w):
        """``J`` with the L2 term, weighted by ``w`` when given (the formula in ``fit``)."""
        net, lambd = self.net, self.lambd
        if w is None:
            return _cost(Y, AL, self.Ws, net.loss, lambd)
        J = ref.compute_cost(AL, Y, net.loss, sample_weight=w)
        if lambd:
            J += ref.l2_cost(net.parameters, lambd, weight_sum(w))
        return J

    def _constant_cost(self):
        """The cost of the best constant prediction (the label frequencies, the targets'
        mean): what a fit that learned nothing reaches (the divergence warning's yardstick)."""
        Y, w = self.Y, self.w
        AL = np.broadcast_to(np.average(Y, axis=1, weights=w, keepdims=True), Y.shape)
        return ref.compute_cost(AL, Y, self.net.loss, sample_weight=w)

    # ---- records
    def _X_columns(self):
        """The training X as the ops take it (C-contiguous): a copy made once, when a record
        needs a forward pass over the training set and X came as examples-as-rows."""
        if not check.is_sparse(self.X) and not self.X.flags.c_contiguous:
            self.X = np.ascontiguousarray(self.X)
        return self.X

    def _AL(self, X):
        net = self.net
        # eval mode: with batch norm, the layers folded with the running statistics
        Ws, bs = net.eval_arrays() if self.plan.batch_norm else (self.Ws, self.bs)
        if not check.is_sparse(X):
            return self.ops.forward(X, Ws, bs, net.activations)[1][-1]
        out = None
        for a, b, block in sparse_column_blocks(X, net.dtype):
            AL = self.ops.forward(block, Ws, bs, net.activations)[1][-1]
            if out is None:
                out = np.empty((AL.shape[0], X.shape[1]), dtype=AL.dtype)
            out[:, a:b] = AL
        return out

    def _record_epoch(self, epoch, J, lr, per_epoch, running_score=None):
        """Append one record to ``history_``; run early stopping and callbacks. True = stop.

        ``J=None``: evaluate the cost of the current parameters on the training data
        (with the L2 term and the example weights, without dropout). ``running_score``: the
        epoch's batches' accuracy, the score unless ``full_score`` or the output has none
        (then a forward pass over the training data scores it).
        """
        net = self.net
        score = running_score if self.running_score and not self.full_score else None
        if J is None or score is None:
            with np.errstate(over="ignore", invalid="ignore"):
                AL = self._AL(self._X_columns())
            if J is None:
                J = self._cost(self.Y, AL, self.w)
            if score is None:
                score = net.score_from(self.X, self.Y, AL)
        logs = {"epoch": int(epoch), "cost": float(J), "lr": float(lr), "score": float(score),
                "skipped": int(net.train_state_.skipped)}
        if self.X_val is not None:
            AL = self._AL(self.X_val)
            logs["val_cost"] = ref.compute_cost(AL, self.Y_val, net.loss)
            logs["val_score"] = net.score_from(self.X_val, self.Y_val, AL)
        for key, value in logs.items():
            net.history_.setdefault(key, []).append(value)
        stop = self.early_stopping and early_stopping_step(
            net, logs.get("val_cost", logs["cost"]), epoch, self.min_delta, self.patience,
            self.restore_best)
        if self.bar is not None:
            self.bar.record(logs)
        if self.print_cost:
            unit = "epoch" if per_epoch else "iteration"
            line = f"Cost after {unit} {epoch}: {J}"
            if self.bar is None:
                print(line)
            else:
                self.bar.write(line)
        return callbacks_stop(self.callbacks, net, epoch, logs) or stop

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
        return saved

    def _resume_from(self, saved, path, fingerprint, config, opt):
        """Take the checkpoint's state, history, optimiser and seed, all or nothing (a
        refused resume leaves the network as it was); returns the epoch the interrupted
        call started from."""
        net = self.net
        state = saved.get_state()
        recorded = decode_json(state["train/signature"], "signature")
        if recorded == NO_FINGERPRINT:
            raise InputError(f"cannot resume from {path}: it was saved after a fit that wrote "
                             f"no checkpoint, so it records no fingerprint of that fit's "
                             f"arguments and data; fit with checkpoint=... to write a file "
                             f"that resume can continue")
        legacy = "@" not in str(recorded)  # written before the start was recorded
        recorded, start = split_start(recorded)
        if recorded != fingerprint and not (legacy and self._legacy is not None and
                                            recorded == self._legacy()):
            raise InputError(f"cannot resume from {path}: it was written by a fit with "
                             f"other arguments or data; resume with the same ones")
        kept = {k: net.__dict__.get(k) for k in ("_parameters", "_optimizer", "_opt_pending",
                                                  "train_state_", "rng", "history_", "seed")}
        try:
            net.set_state(state)
            net.history_ = {k: list(v) for k, v in saved.history_.items()}
            self._adopt_optimizer(opt, required=True)
        except BaseException:
            net.__dict__.update(kept)
            raise
        net.seed = saved.seed
        return start

    def _save_checkpoint(self):
        self.net.save(self.checkpoint)

    def _adopt_optimizer(self, opt, required):
        """Continue the optimiser of the previous fit (or of a restored state) if it fits."""
        net = self.net
        current = net.optimizer_
        if current is not None and current.get_config() == opt.get_config():
            return current
        state = net.optimizer_state()
        if current is None and state is None and not opt.state_prefixes:
            state = {}
        if state is not None and (current is None or current.name == opt.name):
            try:
                opt.set_state(state, net.parameters)
            except InputError:
                if required:
                    raise
                opt.reset(net.parameters)
        elif required and opt.state_prefixes:
            raise InputError("the checkpoint holds no state for the "
                             f"{opt.name} optimiser")
        else:
            opt.reset(net.parameters)
        net.optimizer_ = opt
        return opt
