"""Streaming fits: :meth:`chainrule.Network.fit` on data that does not fit in memory.

``fit`` comes here (one dispatch in :meth:`Trainable.fit`) when ``X`` is a
:class:`Stream`, a ``dask.array.Array``, a list of ``(X_block, Y_block)`` chunks, an
iterator (a generator) of them, or a callable returning a fresh such iterator per epoch.
The chunks are in the network's layout: ``X_block`` of shape ``(n[0], m_c)``, ``Y_block``
of shape ``(n[L], m_c)`` (or labels ``(m_c,)`` for softmax), optionally a third entry, the
chunk's example weights ``(m_c,)``.

How it trains. Each epoch reads the chunks once, in order or (``shuffle=True``, the
default, where chunks are addressable: a list, a dask array, an array with
``chunk_size``) in an order permuted per epoch. The examples go through a *shuffle
buffer*: chunks are appended until it holds ``shuffle_buffer`` examples, its examples are
permuted, the first ``shuffle_buffer`` of them form a block and the rest stay to be mixed
with the next chunks; at the stream's end the rest is permuted and forms the last block.
Each block is trained by one compiled engine run, ``net.fit(X_block, Y_block, epochs=1,
continue_training=True, shuffle=False, ...)``: Python acts once per block, never per
mini-batch. Every permutation comes from the model's generator (``net.rng``, seeded by the
model's ``seed``), in NumPy, so a seeded stream trains the same on every backend; one
chunk with a buffer that holds it whole trains exactly as ``fit`` on that array.

What stays per epoch: ``history_`` (``cost`` is the mean of the blocks' costs weighted by
their examples — the epoch's mean mini-batch cost, as an in-memory fit records it —,
``score`` the blocks' scores weighted likewise: the running accuracy for classifiers),
``validation_data`` (held in memory, scored after every epoch), early stopping (on
``val_cost``, else ``cost``), callbacks, the progress bar, the learning-rate decay and
checkpoints (every ``checkpoint_every`` epochs, at an epoch boundary, where the buffer is
empty; with ``Stream(..., checkpoint_chunks=k)`` also within an epoch, at the first block
boundary where the buffer is empty after every ``k`` chunks, with the epoch's chunk order,
the chunks trained and the epoch's sums): ``resume=path`` continues exactly as the
uninterrupted fit would have. A fit interrupted elsewhere resumes from its last checkpoint.

Refused with a message: ``validation_fraction`` (hold data out yourself:
``validation_data``), ``shuffle_seed`` (the course's per-epoch seeding permutes one array),
``sample_weight`` (give weights as the chunks' third entry), ``class_weight="balanced"``
(it needs every label first: give a dict), a one-shot iterator with ``epochs > 1`` (a
generator can be consumed once: pass a callable that returns a fresh one) and checkpoints
of one.

Memory: at most the shuffle buffer, one chunk being read (computed, for dask) and one
chunk read ahead in a thread while the engine trains (the C engine releases the GIL).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import numbers

import numpy as np

from .. import _validate as check
from .. import reference as ref
from ..errors import InputError, ShapeError
from .config import FitConfig
from .loop import callbacks_stop, early_stopping_step, restore_best
from .optim import inverse_time_decay, scheduled_decay
from .state import decode_json
from .state import signature as _signature

__all__ = ["Stream", "is_dask", "is_stream", "fit_stream"]


def is_dask(x):
    """Whether ``x`` is a ``dask.array.Array`` (checked without importing dask)."""
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks") and \
        hasattr(x, "map_blocks")


def _is_chunk(c):
    return isinstance(c, tuple) and len(c) in (2, 3) and hasattr(c[0], "shape")


def is_stream(X):
    """Whether ``fit`` must stream ``X`` (see the module's docstring) rather than take it as
    one array."""
    if isinstance(X, Stream) or is_dask(X):
        return True
    if isinstance(X, np.ndarray) or hasattr(X, "__array__") or isinstance(X, (str, bytes)):
        return False
    if callable(X) or hasattr(X, "__next__"):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(_is_chunk(c) for c in X)


class Stream:
    """A source of chunks for a streaming fit, and how to shuffle it.

    Parameters
    ----------
    source : dask array, array (a memmap too), list of chunks, callable or iterator
        A dask array or an array ``X`` (with ``Y``) is cut along its examples axis: at its
        dask chunks, or every ``chunk_size`` examples. A list holds ``(X_block, Y_block)``
        (or ``(X_block, Y_block, w_block)``) chunks; a callable returns a fresh iterator of
        them at every call (one per epoch); an iterator (a generator) is read once.
    Y : dask array or array, optional
        The targets of an array/dask ``source`` (cut the same way).
    chunk_size : int, optional
        Examples per chunk of an array ``source`` (a dask ``source`` is rechunked).
    shuffle_buffer : int, optional
        Examples the shuffle buffer holds, so the examples of one block; each block is one
        engine run. Default: the first chunk's examples, at least ``mini_batch_size``.
    layout : {"columns", "rows"}
        ``"columns"``: the network's (``X`` of shape ``(n[0], m)``, ``Y`` ``(n[L], m)``);
        ``"rows"``: scikit-learn's (``X`` ``(m, n[0])``, ``y`` ``(m,)`` or ``(m, n[L])``),
        turned into the network's by ``transform``.
    transform : callable, optional
        ``transform(X_block, Y_block, w_block) -> (X, Y, w)`` in the network's layout,
        applied to every chunk as it is read (the estimators encode labels with it).
    checkpoint_chunks : int, optional
        With ``fit(checkpoint=...)``, also write the checkpoint within an epoch, at the
        first block boundary where the buffer is empty after every this many chunks: a
        resumed fit continues from that chunk exactly (a callable's skipped chunks are
        read again, not trained).
    """

    def __init__(self, source, Y=None, *, chunk_size=None, shuffle_buffer=None,
                 layout="columns", transform=None, checkpoint_chunks=None):
        if layout not in ("columns", "rows"):
            raise InputError(f"layout must be 'columns' or 'rows', got {layout!r}")
        if shuffle_buffer is not None and (isinstance(shuffle_buffer, bool) or not isinstance(
                shuffle_buffer, numbers.Integral) or shuffle_buffer < 1):
            raise InputError(f"shuffle_buffer must be a positive number of examples, got "
                             f"{shuffle_buffer!r}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(
                chunk_size, numbers.Integral) or chunk_size < 1):
            raise InputError(f"chunk_size must be a positive number of examples, got "
                             f"{chunk_size!r}")
        if checkpoint_chunks is not None and (isinstance(checkpoint_chunks, bool) or not
                                              isinstance(checkpoint_chunks, numbers.Integral)
                                              or checkpoint_chunks < 1):
            raise InputError(f"checkpoint_chunks must be a positive number of chunks, got "
                             f"{checkpoint_chunks!r}")
        self.checkpoint_chunks = checkpoint_chunks
        self.layout, self.transform = layout, transform
        self.shuffle_buffer = None if shuffle_buffer is None else int(shuffle_buffer)
        self.axis = 1 if layout == "columns" else 0  # the examples axis of X
        self._peeked = None
        self._consumed = False
        if isinstance(source, Stream):
            raise InputError("source is already a Stream")
        if is_dask(source) or (Y is not None and hasattr(source, "shape") and
                               not callable(source)):
            self.kind = "dask" if is_dask(source) else "array"
            self._init_arrays(source, Y, chunk_size)
            return
        if Y is not None:
            raise InputError("Y is given only with an array or dask X; chunks carry their "
                             "own Y_block")
        if chunk_size is not None:
            raise InputError("chunk_size cuts an array or dask X; these chunks come as given")
        if hasattr(source, "shape"):
            raise InputError("an array X needs its Y (Stream(X, Y, chunk_size=...))")
        if isinstance(source, (list, tuple)):
            bad = [i for i, c in enumerate(source) if not _is_chunk(c)]
            if not source or bad:
                raise InputError(f"a list of chunks holds (X_block, Y_block) or (X_block, "
                                 f"Y_block, w_block) tuples of arrays; entry "
                                 f"{bad[0] if bad else 0} is not one")
            self.kind, self.chunks = "list", list(source)
        elif callable(source):
            self.kind, self.source = "callable", source
        elif hasattr(source, "__next__"):
            self.kind, self.source = "iterator", source
        else:
            raise InputError(f"cannot stream a {type(source).__name__}: give a dask array, an "
                             f"array with chunk_size, a list of (X_block, Y_block) chunks, an "
                             f"iterator of them or a callable returning one")

    def _init_arrays(self, X, Y, chunk_size):
        if Y is None:
            raise InputError("streaming an array or dask X needs its Y")
        ax = self.axis
        if len(X.shape) != 2:
            raise InputError(f"X must be 2-D, got shape {tuple(X.shape)}")
        m = int(X.shape[ax])
        ym = int(Y.shape[-1] if self.layout == "columns" and len(Y.shape) == 2 else Y.shape[0])
        if ym != m:
            raise InputError(f"X has {m} examples but Y has {ym} (Y shape {tuple(Y.shape)})")
        if chunk_size is None:
            if self.kind != "dask":
                raise InputError("an array X is streamed in chunks of chunk_size examples: "
                                 "give Stream(X, Y, chunk_size=...) (or fit it whole)")
            sizes = X.chunks[ax]
        else:
            sizes = [chunk_size] * (m // chunk_size) + ([m % chunk_size] if m % chunk_size else [])
        edges = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.X, self.Y, self.m = X, Y, m
        self.bounds = list(zip(edges[:-1].tolist(), edges[1:].tolist()))

    # ---- what the driver asks
    @property
    def addressable(self):
        """Whether the chunks can be read in any order (their order is then shuffled)."""
        return self.kind in ("dask", "array", "list")

    @property
    def one_shot(self):
        return self.kind == "iterator"

    def n_chunks(self):
        return len(self.bounds) if self.kind in ("dask", "array") else \
            len(self.chunks) if self.kind == "list" else None

    def _slice(self, a, b):
        ax, X, Y = self.axis, self.X, self.Y
        Xc = X[:, a:b] if ax == 1 else X[a:b]
        if self.layout == "columns" and len(Y.shape) == 2:
            Yc = Y[:, a:b]
        else:
            Yc = Y[a:b]
        if self.kind == "dask":
            import dask  # a dask array is given, so dask is installed
            Xc, Yc = dask.compute(Xc, Yc) if is_dask(Yc) else (Xc.compute(), Yc)
        return np.asarray(Xc), np.asarray(Yc), None

    def _read(self, i):
        if self.kind == "list":
            c = self.chunks[i]
            return c[0], c[1], c[2] if len(c) == 3 else None
        return self._slice(*self.bounds[i])

    def _fresh_iterator(self):
        if self.kind == "callable":
            it = self.source()
            if not hasattr(it, "__next__"):
                try:
                    it = iter(it)
                except TypeError as exc:
                    raise InputError(f"the stream's callable must return an iterator of "
                                     f"chunks, it returned a {type(it).__name__}") from exc
            return it
        if self._consumed:
            raise InputError("this iterator of chunks was consumed by an earlier epoch or fit: "
                             "a generator can be read once; pass a callable that returns a "
                             "fresh iterator per epoch (e.g. lambda: read_chunks(path))")
        self._consumed = True
        return self.source

    def raw_chunks(self, order):
        """The chunks as ``(i, X, Y, w)`` (``transform`` applied; ``i`` the chunk's index in
        the source), in ``order`` (addressable) or as they come."""
        if self.addressable:
            for i in order:
                yield (i, *self._convert(self._read(i), i))
            return
        it = self._fresh_iterator()
        if self._peeked is not None:
            it, self._peeked = itertools.chain([self._peeked], it), None
        for i, c in enumerate(it):
            if not _is_chunk(c):
                raise InputError(f"chunk {i} of the stream is a {type(c).__name__}; each chunk "
                                 f"is (X_block, Y_block) or (X_block, Y_block, w_block)")
            yield (i, *self._convert((c[0], c[1], c[2] if len(c) == 3 else None), i))

    def first_chunk(self):
        """The first chunk as read (``transform`` not applied; a one-shot iterator keeps it
        for its epoch)."""
        if self.addressable:
            return self._read(0)
        if self.kind == "iterator":
            if self._peeked is None:
                if self._consumed:
                    self._fresh_iterator()  # raises
                self._peeked = next(self.source, None)
                if self._peeked is None:
                    raise InputError("the iterator of chunks is empty (a generator read by an "
                                     "earlier fit is: pass a callable that returns a fresh "
                                     "iterator per fit and epoch)")
            c = self._peeked
        else:
            c = next(iter(self._fresh_iterator()), None)
            if c is None:
                raise InputError("the stream of chunks is empty")
        return c[0], c[1], c[2] if len(c) == 3 else None

    def _convert(self, c, i):
        if self.transform is not None:
            return self.transform(*c)
        return c

    def digest(self):
        """A description of the data for a checkpoint's fingerprint: the dask graphs' names,
        or sampled digests of the arrays (a callable: of its first chunk)."""
        if self.kind == "dask":
            return [self.X.name, getattr(self.Y, "name", None) or
                    _signature([], [np.asarray(self.Y)]), self.bounds]
        if self.kind == "array":
            return [_signature([], [self.X, self.Y]), self.bounds]
        if self.kind == "list":
            return [_signature([], [a for c in self.chunks for a in c])]
        return [_signature([], [a for a in self.first_chunk() if a is not None])]


# --------------------------------------------------------------------------- the buffer

def _as_rows(net, X, Y, w, where):
    """A chunk validated by the network (shapes, dtype, finiteness) as example rows."""
    X, Y = _validated(net, X, Y, where)
    if w is not None:
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        if w.shape[0] != X.shape[1]:
            raise InputError(f"{where}: w_block has {w.shape[0]} weights for {X.shape[1]} "
                             f"examples")
    return np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), w


def _validated(net, X, Y, where):
    """``net.validate_data`` keeping an F-ordered X (rows read as ``X_rows.T``) uncopied."""
    try:
        X = check.X(X, net.layer_dims[0], net.dtype, order="K")
        return X, check.Y(Y, net.layer_dims[-1], X.shape[1], net.loss, net.dtype)
    except (InputError, ShapeError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc


def blocks(net, stream, epoch_chunks, size, shuffle):
    """The epoch's blocks ``(XT, YT, w, permute, chunks, empty)`` (examples as rows) through a
    shuffle buffer of ``size`` examples (the module's docstring); permutations from
    ``net.rng``; ``chunks`` read so far, ``empty``: whether the buffer is empty after it.

    A buffer that forms one whole block is not gathered here: ``permute`` tells the engine
    run to draw its permutation (the same ``net.rng.permutation(n)``, at the same point of
    the generator's sequence) and gather the batches itself, as an in-memory fit does."""
    Xs, Ys, ws, n = [], [], [], 0

    def cut(take_all):
        nonlocal Xs, Ys, ws, n
        X = Xs[0] if len(Xs) == 1 else np.concatenate(Xs)
        Y = Ys[0] if len(Ys) == 1 else np.concatenate(Ys)
        w = None if ws[0] is None else np.concatenate(ws)
        k = n if take_all else size
        if k == n:  # the whole buffer: the engine run permutes it
            Xs, Ys, ws, n = [], [], [], 0
            return X, Y, w, shuffle
        perm = net.rng.permutation(n) if shuffle else None
        take = slice(0, k) if perm is None else perm[:k]
        out = (X[take], Y[take], None if w is None else w[take], False)
        rest = slice(k, n) if perm is None else perm[k:]
        Xs, Ys, ws = [X[rest]], [Y[rest]], [None if w is None else w[rest]]
        n -= k
        return out

    weighted = None  # whether the chunks carry weights (all or none)
    consumed = 0
    for i, X, Y, w in epoch_chunks:
        XT, YT, w = _as_rows(net, X, Y, w, f"chunk {i} of the stream")
        if not XT.flags.c_contiguous:  # the buffer keeps rows contiguous
            XT = np.ascontiguousarray(XT)
        weighted = (w is not None) if weighted is None else weighted
        if weighted != (w is not None):
            raise InputError(f"chunk {i} of the stream {'has' if w is not None else 'lacks'} "
                             f"example weights, the chunks before it "
                             f"{'do not' if w is not None else 'do'}: give w_block for all "
                             f"or none")
        if XT.shape[0] == 0:
            consumed += 1
            continue
        consumed += 1
        Xs.append(XT)
        Ys.append(YT)
        ws.append(w)
        n += XT.shape[0]
        while n >= size:
            yield (*cut(take_all=False), consumed, n == 0)
    if n:
        yield (*cut(take_all=True), consumed, True)


def _prefetched(iterator):
    """``iterator``'s items, each read in a worker thread while the previous one is used."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="chainrule-stream") as ex:
        done = object()
        future = ex.submit(next, iterator, done)
        while True:
            item = future.result()
            if item is done:
                return
            future = ex.submit(next, iterator, done)
            yield item


# --------------------------------------------------------------------------- the driver

_REFUSED = {
    "validation_fraction": (lambda v: bool(v), "a stream cannot hold examples out: pass "
                            "validation_data=(X_val, Y_val) (held in memory)"),
    "shuffle_seed": (lambda v: v is not None, "the course's shuffle_seed permutes one array; a "
                     "stream shuffles with the model's generator (seed it with Network(seed=...))"),
    "sample_weight": (lambda v: v is not None, "give a stream's weights as the chunks' third "
                      "entry, (X_block, Y_block, w_block)"),
    "class_weight": (lambda v: isinstance(v, str), "class_weight='balanced' needs every label "
                     "before training; give a stream a dict {class index: weight}"),
}


def _lr_of(c, epoch):
    """The learning rate of epoch ``epoch`` (``fit``'s ``learning_rate`` and decay)."""
    if not c.decay_rate or epoch <= 1:
        return c.learning_rate
    if c.decay_interval is None:
        return float(inverse_time_decay(c.learning_rate, epoch - 1, c.decay_rate))
    return float(scheduled_decay(c.learning_rate, epoch - 1, c.decay_rate, c.decay_interval))


def fit_stream(net, X, Y, args, kwargs):
    """``net.fit(X, Y, *args, **kwargs)`` with ``X`` a stream (:func:`is_stream`)."""
    c = FitConfig.from_call(args, kwargs).validated(net.L)
    stream = X if isinstance(X, Stream) else Stream(X, Y)
    if isinstance(X, Stream) and Y is not None:
        raise InputError("a Stream carries its Y: call fit(stream) (Y=None)")
    for name, (given, why) in _REFUSED.items():
        if given(getattr(c, name)):
            raise InputError(f"{name}={getattr(c, name)!r} is not supported with a streamed X: "
                             f"{why}")
    return _StreamRun(net, stream, c).execute()


class _StreamRun:
    def __init__(self, net, stream, c):
        self.net, self.stream, self.c = net, stream, c
        if stream.one_shot and c.epochs > 1:
            raise InputError(f"epochs={c.epochs} needs the stream once per epoch, but an "
                             f"iterator (a generator) can be read once: pass a callable that "
                             f"returns a fresh iterator per epoch (e.g. lambda: "
                             f"read_chunks(path)), a list of chunks or a dask array")
        if stream.one_shot and (c.checkpoint is not None or c.resume is not None):
            raise InputError("checkpoints need a stream that can be read again from its "
                             "start: pass a callable returning a fresh iterator, a list of "
                             "chunks or a dask array instead of a one-shot iterator")
        self.X_val = self.Y_val = None
        if c.validation_data is not None:
            try:
                X_val, Y_val = c.validation_data
            except (TypeError, ValueError) as exc:
                raise InputError("validation_data must be a pair (X_val, Y_val)") from exc
            if is_dask(X_val):
                X_val = X_val.compute()
            if is_dask(Y_val):
                Y_val = Y_val.compute()
            self.X_val, self.Y_val = net.validate_data(X_val, Y_val)
        self.fingerprint = None
        self.position = None  # where a checkpoint written within an epoch resumes
        if c.checkpoint is not None or c.resume is not None:
            fp = dict(c.fingerprint())
            fp["stream"] = [stream.kind, stream.shuffle_buffer, stream.digest()]
            self.fingerprint = hashlib.sha256(json.dumps(fp, sort_keys=True, default=str)
                                              .encode()).hexdigest()

    # ---- one block
    def _block_kwargs(self, first_block):
        c = self.c
        return dict(learning_rate=self.lr, optimizer=c.optimizer, lambd=c.lambd,
                    keep_prob=c.keep_prob, dropout_rng=c.dropout_rng,
                    on_nonfinite=c.on_nonfinite, class_weight=c.class_weight,
                    full_score=c.full_score, progress=False, cost_every=1,
                    continue_training=not first_block)

    def _train_block(self, XT, YT, w, permute, first_block):
        """One engine run over a block; returns (J, score, examples, weight)."""
        net, c = self.net, self.c
        m = XT.shape[0]
        s = m if c.mini_batch_size is None else min(c.mini_batch_size, m)
        if not first_block:
            net.train_state_.epoch = self.epoch  # the block continues this epoch
        net.history_ = {"epoch": [], "cost": []}  # the block's own record, read below
        try:
            net.fit(XT.T, YT.T, epochs=1, mini_batch_size=s, sample_weight=w, shuffle=permute,
                    **self._block_kwargs(first_block))
        finally:
            if net.train_state_ is not None:
                net.train_state_.epoch = self.epoch
            rec = {k: v[-1] for k, v in net.history_.items() if v}
            net.history_ = self.history
            net.stop_reason_ = None  # the block's; the stream's is set by execute
        weight = float(m if w is None else w.sum())
        return rec["cost"], rec["score"], m, weight

    # ---- the run
    def _start(self):
        """Afresh, continued or resumed: sets epoch, end, history; True if the first block
        starts the training state afresh."""
        net, c = self.net, self.c
        if c.resume is not None:
            saved = type(net).load(c.resume, backend=net.get_config()["backend"])
            mine, theirs = net.get_config(), saved.get_config()
            for key in ("layer_dims", "activations", "loss", "dtype"):
                if mine[key] != theirs[key]:
                    raise InputError(f"cannot resume from {c.resume}: its network has {key} = "
                                     f"{theirs[key]!r}, this one {mine[key]!r}")
            state = saved.get_state()
            if "train/signature" not in state:
                raise InputError(f"cannot resume from {c.resume}: it holds no training state "
                                 f"(it was not written by fit(checkpoint=...))")
            recorded = decode_json(state["train/signature"], "signature")
            if isinstance(recorded, str) and "@" in recorded:  # written within an epoch
                recorded, position = recorded.split("@", 1)
                self.position = json.loads(position)
            if recorded != self.fingerprint:
                raise InputError(f"cannot resume from {c.resume}: it was written by a fit with "
                                 f"other arguments or another stream; resume with the same "
                                 f"ones")
            net.seed = saved.seed
            net.set_state(state)
            self.history = {k: list(v) for k, v in saved.history_.items()}
            self.epoch, self.end = net.train_state_.epoch, c.epochs
            return False
        if c.continue_training and net.train_state_ is not None:
            self.history = {k: list(v) for k, v in net.history_.items()}
            self.epoch = net.train_state_.epoch
            self.end = self.epoch + c.epochs
            return False
        self.history = {"epoch": [], "cost": []}
        self.epoch, self.end = 0, c.epochs
        return True

    def execute(self):
        net, c, stream = self.net, self.c, self.stream
        afresh = self._start()
        for key in ("score", "lr", "skipped") + (("val_cost", "val_score")
                                                 if self.X_val is not None else ()):
            self.history.setdefault(key, [])
        size = stream.shuffle_buffer
        if size is None:
            size = max(stream.first_chunk()[0].shape[stream.axis], c.mini_batch_size or 1)
        bar = None
        if c.progress and self.end > self.epoch:
            try:
                from tqdm.auto import tqdm
                bar = tqdm(total=self.end - self.epoch, unit="epoch", leave=False,
                           dynamic_ncols=True)
            except ImportError:
                bar = None
        net.stop_reason_ = None
        for cb in c.callbacks:
            if hasattr(cb, "on_fit_begin"):
                cb.on_fit_begin(net)
        try:
            while self.epoch < self.end:
                self.lr = _lr_of(c, self.epoch)
                pos, self.position = self.position, None
                if pos is not None:  # resumed within this epoch: its order, sums, chunks
                    order, skip, sums = pos["order"], pos["chunks"], pos["sums"]
                else:
                    order, skip = None, 0
                    if stream.addressable:
                        n = stream.n_chunks()
                        order = [int(i) for i in (net.rng.permutation(n) if c.shuffle and n > 1
                                                  else range(n))]
                    sums = [0.0, 0.0, 0.0, 0]  # Σ J Σw, Σw, Σ score m, m
                if stream.addressable:
                    chunks = stream.raw_chunks(order[skip:])
                else:
                    chunks = itertools.islice(stream.raw_chunks(None), skip, None)
                saved_at = skip
                # Chunks are read ahead in a thread; every draw from net.rng (the buffer's
                # permutations, the engine's dropout keys) stays in this one, in order.
                for XT, YT, w, permute, read, empty in blocks(net, stream, _prefetched(chunks),
                                                              size, c.shuffle):
                    J, score, m, weight = self._train_block(XT, YT, w, permute, afresh)
                    afresh = False
                    sums[0] += J * weight
                    sums[1] += weight
                    sums[2] += score * m
                    sums[3] += m
                    every = stream.checkpoint_chunks
                    if c.checkpoint is not None and every and empty and \
                            skip + read - saved_at >= every:
                        saved_at = skip + read
                        self._save({"epoch": self.epoch, "chunks": saved_at, "order": order,
                                    "sums": sums})
                if not sums[3]:
                    raise InputError("the stream yielded no examples in an epoch")
                self.epoch += 1
                net.train_state_.epoch = self.epoch
                if bar is not None:
                    bar.update(1)
                stop = self._record(self.epoch - 1, sums[0] / sums[1], sums[2] / sums[3], bar)
                if stop or self.epoch == self.end:
                    break
                if c.checkpoint is not None and self.epoch % c.checkpoint_every == 0:
                    self._save()
            net.stop_reason_ = net.stop_reason_ or "completed"
        except KeyboardInterrupt:
            net.stop_reason_ = "interrupted"
            raise
        except BaseException as exc:
            if type(exc).__name__ == "NonFiniteError":
                net.stop_reason_ = "nonfinite"
            raise
        finally:
            net.history_ = self.history
            if bar is not None:
                bar.close()
        if c.early_stopping and c.restore_best:
            restore_best(net)
        if c.checkpoint is not None:
            self._save()
        for cb in c.callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(net)
        return net

    def _save(self, position=None):
        """The checkpoint: at an epoch boundary, or ``position`` within an epoch (the chunk
        order, the chunks trained, the epoch's sums so far), kept with the fingerprint in
        the training state's signature (as ``"<fingerprint>@<position as JSON>"``)."""
        self.net.train_state_.signature = self.fingerprint if position is None else \
            f"{self.fingerprint}@{json.dumps(position)}"
        self.net.save(self.c.checkpoint)

    def _record(self, epoch, J, score, bar):
        """The epoch's record, early stopping and callbacks, as ``fit`` does. True = stop."""
        net, c = self.net, self.c
        logs = {"epoch": int(epoch), "cost": float(J), "lr": float(self.lr),
                "score": float(score), "skipped": int(net.train_state_.skipped)}
        if self.X_val is not None:
            AL = net.predict_proba(self.X_val)
            logs["val_cost"] = ref.compute_cost(AL, self.Y_val, net.loss)
            logs["val_score"] = net.score_from(self.X_val, self.Y_val, AL)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        net.history_ = self.history
        stop = c.early_stopping and early_stopping_step(
            net, logs.get("val_cost", logs["cost"]), epoch, c.min_delta, c.patience,
            c.restore_best)
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                             if k in ("cost", "val_cost", "val_score")})
        if c.print_cost:
            print(f"Cost after epoch {epoch}: {J}")
        return callbacks_stop(c.callbacks, net, epoch, logs) or stop


# --------------------------------------------------------------------------- prediction

def blockwise(fn, X, out_width, dtype):
    """``fn`` over the row blocks of a dask array ``X`` (examples as rows), as a dask array
    (dask-ml's ``ParallelPostFit``): ``out_width`` columns, or 1-D where it is None."""
    if len(X.chunks) != 2:
        raise InputError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    meta = np.empty((0,) if out_width is None else (0, out_width), dtype=dtype)
    if out_width is None:
        return X.map_blocks(fn, drop_axis=1, dtype=dtype, meta=meta)
    return X.map_blocks(fn, chunks=(X.chunks[0], (out_width,)), dtype=dtype, meta=meta)
