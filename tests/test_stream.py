"""Streaming fits (chainrule.training.stream): chunks, generators, callables and arrays cut
into chunks train through one engine run per shuffle-buffer block.

The oracle: a stream of one chunk whose buffer holds it all trains exactly as ``fit`` on
that array (same draws from the model's generator, same batches); a seeded stream trains
the same on every backend; the shuffle buffer sees every example once per epoch and mixes
chunks; resumes are exact; memory stays bounded (a subprocess's peak RSS and address-space
limit, far below the data)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from chainrule import Network
from chainrule.errors import InputError, ShapeError
from chainrule.training.stream import Stream, blocks, is_stream

from conftest import TOLERANCES, assert_close

FIT = dict(mini_batch_size=32, optimizer="adam", learning_rate=0.01, progress=False)


def _data(m=1000, n=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m)).astype(dtype)
    Y = (X[0:1] - X[1:2] > 0).astype(dtype)
    return X, Y


def _chunks(X, Y, size):
    return [(X[:, a:a + size], Y[:, a:a + size]) for a in range(0, X.shape[1], size)]


def _same(a, b, dtype=np.float64):
    for k in a.parameters:
        assert_close(a.parameters[k], b.parameters[k], dtype, k)


def test_one_chunk_with_a_whole_buffer_is_fit_on_the_array(backend, dtype):
    X, Y = _data(dtype=dtype)
    kw = dict(FIT, keep_prob=0.8, lambd=0.1)
    a = Network([5, 7, 1], seed=3, backend=backend, dtype=dtype).fit(X, Y, epochs=3, **kw)
    b = Network([5, 7, 1], seed=3, backend=backend, dtype=dtype).fit([(X, Y)], None, epochs=3,
                                                                     **kw)
    _same(a, b, dtype)
    for key in ("epoch", "cost", "score", "lr"):
        np.testing.assert_allclose(b.history_[key], a.history_[key], **TOLERANCES[dtype])
    assert (b.epochs_trained_, b.steps_trained_) == (a.epochs_trained_, a.steps_trained_)
    assert b.stop_reason_ == "completed"


def test_a_seeded_stream_trains_the_same_on_every_backend(backend):
    X, Y = _data(m=900)
    chunks = _chunks(X, Y, 200)
    ref = Network([5, 6, 1], seed=2, backend="numpy").fit(
        Stream(chunks, shuffle_buffer=150), None, epochs=3, keep_prob=0.9, **FIT)
    net = Network([5, 6, 1], seed=2, backend=backend).fit(
        Stream(chunks, shuffle_buffer=150), None, epochs=3, keep_prob=0.9, **FIT)
    _same(net, ref)
    np.testing.assert_allclose(net.history_["cost"], ref.history_["cost"], rtol=1e-9)


def test_the_sources_agree_list_array_dask_like_callable_and_generator():
    X, Y = _data(m=700)
    chunks = _chunks(X, Y, 128)
    a = Network([5, 4, 1], seed=1).fit(chunks, None, epochs=2, **FIT)
    b = Network([5, 4, 1], seed=1).fit(Stream(X, Y, chunk_size=128), None, epochs=2, **FIT)
    _same(a, b)
    # Not addressable: the chunks come in their order (no permutation of the chunks).
    c = Network([5, 4, 1], seed=1).fit(lambda: iter(chunks), None, epochs=1, **FIT)
    d = Network([5, 4, 1], seed=1).fit(iter(chunks), None, epochs=1, **FIT)
    e = Network([5, 4, 1], seed=1).fit((ch for ch in chunks), None, epochs=1, **FIT)
    _same(c, d)
    _same(c, e)
    assert not np.allclose(a.parameters["W1"], Network([5, 4, 1], seed=1).parameters["W1"])


def test_the_shuffle_buffer_sees_every_example_once_and_mixes_chunks():
    m, size = 1000, 100
    ids = np.arange(m, dtype=np.float64).reshape(1, m)
    chunks = [(ids[:, a:a + size], np.zeros((1, size))) for a in range(0, m, size)]
    net = Network([1, 2, 1], seed=0)
    stream = Stream(chunks)
    out = list(blocks(net, stream, stream.raw_chunks(range(10)), 250, shuffle=True))
    assert [b[0].shape[0] for b in out] == [250, 250, 250, 250]
    # the buffer holds 300 (three chunks) at its 1st and 3rd cut (gathered here), exactly
    # 250 at the 2nd and 4th: those whole buffers are permuted by the engine run
    assert [b[3] for b in out] == [False, True, False, True]
    seen = np.concatenate([b[0][:, 0] for b in out])
    np.testing.assert_array_equal(np.sort(seen), np.arange(m))
    first_chunks = np.unique(out[0][0][:, 0] // size)
    assert len(first_chunks) >= 3  # the first block mixes the first three chunks
    # without shuffling, the blocks are the examples in order
    net = Network([1, 2, 1], seed=0)
    out = list(blocks(net, stream, stream.raw_chunks(range(10)), 300, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([b[0][:, 0] for b in out]), np.arange(m))
    assert [b[0].shape[0] for b in out] == [300, 300, 300, 100]


def test_chunk_order_is_permuted_per_epoch_and_seeded():
    X, Y = _data(m=600)
    chunks = _chunks(X, Y, 100)

    def fit_reading(seed):
        order = []
        stream = Stream(chunks, shuffle_buffer=100)
        original = stream._read
        stream._read = lambda i: order.append(i) or original(i)
        Network([5, 3, 1], seed=seed).fit(stream, None, epochs=3, **FIT)
        return [order[:6], order[6:12], order[12:]]

    epochs = fit_reading(4)
    assert all(sorted(e) == list(range(6)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # permuted per epoch
    assert fit_reading(4) == epochs  # seeded by the model's seed
    assert fit_reading(5) != epochs


def test_weights_in_the_chunks():
    X, Y = _data(m=400)
    plain = Network([5, 3, 1], seed=0).fit(_chunks(X, Y, 100), None, epochs=2, **FIT)
    ones = [(x, y, np.ones(x.shape[1])) for x, y in _chunks(X, Y, 100)]
    weighted = Network([5, 3, 1], seed=0).fit(ones, None, epochs=2, **FIT)
    _same(plain, weighted)
    np.testing.assert_allclose(weighted.history_["cost"], plain.history_["cost"], rtol=1e-12)
    mixed = ones[:2] + _chunks(X, Y, 100)[2:]
    with pytest.raises(InputError, match="chunk 2 of the stream lacks example weights"):
        Network([5, 3, 1], seed=0).fit(Stream(mixed, shuffle_buffer=50), None, epochs=1,
                                       **dict(FIT, shuffle=False))


def test_what_a_stream_refuses():
    X, Y = _data(m=300)
    chunks = _chunks(X, Y, 100)
    net = Network([5, 3, 1], seed=0)
    W1 = net.parameters["W1"].copy()
    gen = (c for c in chunks)
    with pytest.raises(InputError, match="generator.*can be read once.*callable"):
        net.fit(gen, None, epochs=2, **FIT)
    net.fit(gen, None, epochs=1, **FIT)
    with pytest.raises(InputError, match="empty.*earlier fit.*callable"):
        net.fit(gen, None, epochs=1, continue_training=True, **FIT)
    with pytest.raises(InputError, match="checkpoints need a stream"):
        Network([5, 3, 1]).fit(iter(chunks), None, epochs=1, checkpoint="/tmp/x.npz", **FIT)
    for kw, msg in [({"validation_fraction": 0.2}, "validation_data"),
                    ({"shuffle_seed": 1}, "model's generator"),
                    ({"sample_weight": np.ones(300)}, "third entry"),
                    ({"class_weight": "balanced"}, "dict")]:
        fresh = Network([5, 3, 1], seed=0)
        before = fresh.parameters["W1"].copy()
        with pytest.raises(InputError, match=msg):
            fresh.fit(chunks, None, epochs=1, **FIT, **kw)
        np.testing.assert_array_equal(fresh.parameters["W1"], before)
    with pytest.raises(ShapeError, match="chunk 1 of the stream: X has shape"):
        Network([5, 3, 1]).fit([chunks[0], (X[:4, :100], Y[:, :100])], None, epochs=1, **FIT)
    with pytest.raises(InputError, match="chunk_size"):
        Stream(X, Y)
    with pytest.raises(InputError, match="X has 300 examples but Y has 299"):
        Stream(X, Y[:, :299], chunk_size=10)
    assert not np.array_equal(W1, net.parameters["W1"])


def test_is_stream_leaves_arrays_to_the_array_path():
    X, Y = _data(m=10)
    assert not is_stream(X) and not is_stream(X.tolist()) and not is_stream(np.memmap)
    assert is_stream([(X, Y)]) and is_stream(iter([(X, Y)])) and is_stream(lambda: iter([]))


def test_validation_early_stopping_callbacks_and_records_per_epoch():
    X, Y = _data(m=800)
    Xv, Yv = _data(m=200, seed=1)
    seen = []

    def cb(net, epoch, logs):
        seen.append((epoch, net.epochs_trained_, sorted(logs)))
        return epoch == 3

    net = Network([5, 6, 1], seed=0).fit(_chunks(X, Y, 200), None, epochs=10,
                                         validation_data=(Xv, Yv), callbacks=[cb], **FIT)
    assert net.history_["epoch"] == [0, 1, 2, 3] and net.stop_reason_ == "callback"
    assert [s[:2] for s in seen] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert "val_cost" in seen[0][2] and len(net.history_["val_score"]) == 4
    assert net.history_["val_score"][-1] > 0.8
    # early stopping on val_cost with a learning rate that overshoots: the best is restored
    net = Network([5, 6, 1], seed=0)
    net.fit(_chunks(X, Y, 200), None, epochs=30, validation_data=(Xv, Yv),
            early_stopping=True, patience=2, **dict(FIT, learning_rate=0.5))
    assert net.stop_reason_ in ("early_stopping", "completed")
    if net.stop_reason_ == "early_stopping":
        best = net.train_state_.best
        from chainrule import reference as ref
        assert ref.compute_cost(net.predict_proba(Xv), Yv, net.loss) == pytest.approx(best)


def test_continue_training_continues_the_epochs_and_history():
    X, Y = _data(m=400)
    chunks = _chunks(X, Y, 100)
    once = Network([5, 3, 1], seed=0).fit(chunks, None, epochs=4, **FIT)
    twice = Network([5, 3, 1], seed=0).fit(chunks, None, epochs=2, **FIT)
    twice.fit(chunks, None, epochs=2, continue_training=True, **FIT)
    _same(once, twice)
    assert twice.history_["epoch"] == [0, 1, 2, 3] and twice.epochs_trained_ == 4


def test_checkpoint_and_exact_resume(tmp_path):
    X, Y = _data(m=600)
    chunks = _chunks(X, Y, 150)
    path = tmp_path / "ck.npz"
    kw = dict(FIT, keep_prob=0.9)
    whole = Network([5, 4, 1], seed=5).fit(chunks, None, epochs=5, **kw)

    def interrupt(net, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    net = Network([5, 4, 1], seed=5)
    with pytest.raises(KeyboardInterrupt):
        net.fit(chunks, None, epochs=5, checkpoint=path, callbacks=[interrupt], **kw)
    assert net.stop_reason_ == "interrupted"
    resumed = Network([5, 4, 1], seed=99).fit(chunks, None, epochs=5, checkpoint=path,
                                              resume=path, **kw)
    _same(whole, resumed)
    np.testing.assert_allclose(resumed.history_["cost"], whole.history_["cost"], rtol=1e-12)
    other = [(x + 1, y) for x, y in chunks]
    with pytest.raises(InputError, match="another stream"):
        Network([5, 4, 1]).fit(other, None, epochs=5, checkpoint=path, resume=path, **kw)


def _run(code, timeout=300, **env_vars):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               **env_vars)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc")
def test_a_generator_stream_keeps_peak_rss_far_below_the_data():
    out = _run("""
        import numpy as np
        from chainrule import Network
        n, chunk, n_chunks = 25, 40000, 80          # 80 x 8 MB = 640 MB of float64
        net = Network([n, 4, 1], seed=0, backend="numpy")
        x0 = np.random.default_rng(0).standard_normal((n, 1000))
        net.fit(x0, (x0[0:1] > 0).astype(float), epochs=1, mini_batch_size=256,
                optimizer="adam", progress=False)    # imports, first-use costs
        def status(key):  # kB
            return int([l for l in open("/proc/self/status") if l.startswith(key)][0]
                       .split()[1])
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        base = status("VmRSS")
        def read():
            for i in range(n_chunks):
                X = np.random.default_rng(i).standard_normal((n, chunk))
                yield X, (X[0:1] > X[1:2]).astype(np.float64)
        net.fit(read(), None, epochs=1, mini_batch_size=4096, learning_rate=0.01,
                optimizer="adam", progress=False)
        peak = status("VmHWM")
        print(n * chunk * n_chunks * 8 / 2**20, peak / 1024, (peak - base) / 1024,
              net.history_["score"][-1])
    """)
    data_mb, peak_mb, growth_mb, score = map(float, out.split())
    # the whole process's peak during the fit, imports included, and what the fit added:
    # the buffer (one chunk), the chunk read ahead, the one being made, their copies
    assert peak_mb < data_mb / 2 and growth_mb < data_mb / 8, (data_mb, peak_mb, growth_mb)
    assert score > 0.9


def _write_memmap(path, m, n, seed=0):
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(m, n))
    step = 250_000
    for a in range(0, m, step):
        X[a:a + step] = np.random.default_rng(a).standard_normal((min(step, m - a), n))
    X.flush()
    return X


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS on Linux")
def test_memmap_and_file_streams_under_an_address_space_limit(tmp_path):
    """A 320 MB float32 data set trains (1) as a memmap through the array path, (2) as a
    Stream over the memmap and (3) from a callable reading chunks from the file (nothing
    mapped), each in a process allowed 100 MB more address space than it had after
    start-up, the mapping included: the file stream's data are over 3 times what its limit
    allows. Each equals the fit on the same data in memory, same chunking and seed.

    glibc reserves 64 MB of address space for the malloc arena of each new thread (the
    read-ahead thread), which RLIMIT_AS counts though it is not memory used:
    MALLOC_ARENA_MAX=1 keeps one arena."""
    m, n, chunk = 4_000_000, 20, 50_000
    path = str(tmp_path / "X.npy")
    _write_memmap(path, m, n)
    labels = str(tmp_path / "y.npy")
    X = np.load(path, mmap_mode="r")
    np.save(labels, (X[:, 0] > X[:, 1]).astype(np.float32).reshape(1, m))
    del X
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        header = f.tell()
    kw = dict(mini_batch_size=2048, learning_rate=0.01, optimizer="adam", progress=False)
    code = f"""
        import resource, numpy as np
        from chainrule import Network
        from chainrule.training.stream import Stream
        Y = np.load({labels!r})
        kw = {kw!r}
        def net():
            return Network([{n}, 4, 1], seed=0, dtype="float32", backend="numpy")
        x0 = np.random.default_rng(0).standard_normal(({n}, 1000)).astype(np.float32)
        net().fit(Stream(x0, Y[:, :1000], chunk_size=500), None, epochs=1, **kw)  # warm up
        if MODE != "file":
            X = np.load({path!r}, mmap_mode="r")
        def vm():
            return int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0]
                       .split()[1]) * 1024
        limit = vm() + 100 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        def read():
            with open({path!r}, "rb") as f:
                for a in range(0, {m}, {chunk}):
                    k = min({chunk}, {m} - a)
                    f.seek({header} + a * {n} * 4)
                    x = np.fromfile(f, np.float32, k * {n}).reshape(k, {n})
                    yield x.T, Y[:, a:a + k]
        if MODE == "memmap":
            fitted = net().fit(X.T, Y, epochs=1, **kw)
        elif MODE == "stream":
            fitted = net().fit(Stream(X.T, Y, chunk_size={chunk}, shuffle_buffer={chunk}),
                               None, epochs=2, **kw)
        else:
            fitted = net().fit(Stream(read, shuffle_buffer={chunk}), None, epochs=2, **kw)
        np.savez(OUT, **fitted.parameters)
    """
    results = {}
    for mode in ("memmap", "stream", "file"):
        out = str(tmp_path / f"{mode}.npz")
        _run(f"MODE, OUT = {mode!r}, {out!r}\n" + textwrap.dedent(code), timeout=600,
             MALLOC_ARENA_MAX="1")
        results[mode] = dict(np.load(out))
    # the same fits in memory (this process), same chunking and seed
    Xm = np.ascontiguousarray(np.load(path))
    Y = np.load(labels)
    nets = {
        "memmap": Network([n, 4, 1], seed=0, dtype="float32", backend="numpy").fit(
            Xm.T, Y, epochs=1, **kw),
        "stream": Network([n, 4, 1], seed=0, dtype="float32", backend="numpy").fit(
            Stream(Xm.T, Y, chunk_size=chunk, shuffle_buffer=chunk), None, epochs=2, **kw),
        "file": Network([n, 4, 1], seed=0, dtype="float32", backend="numpy").fit(
            Stream(lambda: iter([(Xm[a:a + chunk].T, Y[:, a:a + chunk])
                                 for a in range(0, m, chunk)]), shuffle_buffer=chunk),
            None, epochs=2, **kw),
    }
    for mode, net in nets.items():
        for k, v in net.parameters.items():
            assert_close(results[mode][k], v, np.float32, f"{mode} {k}")
    assert Xm.nbytes > 3 * 100 * 2**20  # the file stream's data: over 3 times its headroom


def test_unaligned_data_is_copied_once_aligned(backend):
    """Dask's workers unpickle arrays into buffers that may be unaligned; the compiled
    kernels need aligned data: fit copies such an X once and trains as on the aligned X."""
    X, Y = _data(m=300)
    raw = np.zeros(X.size * 8 + 1, np.uint8)
    unaligned = np.frombuffer(raw[1:].data, np.float64).reshape(X.T.shape)
    unaligned[...] = X.T
    assert not unaligned.flags.aligned
    a = Network([5, 3, 1], seed=0, backend=backend).fit(X, Y, epochs=2, **FIT)
    b = Network([5, 3, 1], seed=0, backend=backend).fit(unaligned.T, Y, epochs=2, **FIT)
    _same(a, b)


@pytest.mark.parametrize("kind", ["list", "callable"])
def test_a_checkpoint_within_an_epoch_resumes_exactly(tmp_path, kind):
    """Checkpoints every 2 chunks (the buffer is one chunk: empty after each block); a read
    interrupted in the second epoch resumes from the last one, as the uninterrupted fit."""
    X, Y = _data(m=800)
    chunks = _chunks(X, Y, 100)
    path = tmp_path / "ck.npz"
    kw = dict(FIT, keep_prob=0.9)

    def source(stop_at=None):
        if kind == "list":
            s = Stream(chunks, checkpoint_chunks=2)
            original, calls = s._read, []

            def read(i):
                calls.append(i)
                if len(calls) == stop_at:
                    raise KeyboardInterrupt
                return original(i)

            s._read = read
            return s
        calls = []

        def gen():
            for c in chunks:
                calls.append(1)
                if len(calls) == stop_at:
                    raise KeyboardInterrupt
                yield c
        return Stream(gen, checkpoint_chunks=2, shuffle_buffer=100)

    whole = Network([5, 4, 1], seed=5).fit(source(), None, epochs=3, **kw)
    net = Network([5, 4, 1], seed=5)
    with pytest.raises(KeyboardInterrupt):
        net.fit(source(stop_at=8 + 5), None, epochs=3, checkpoint=path, **kw)
    saved = Network.load(path)
    from chainrule.training.state import decode_json
    import json
    position = json.loads(decode_json(saved.get_state()["train/signature"],
                                      "signature").split("@", 1)[1])
    assert position["epoch"] == 1 and position["chunks"] in (2, 4)
    resumed = Network([5, 4, 1], seed=1).fit(source(), None, epochs=3, checkpoint=path,
                                             resume=path, **kw)
    _same(whole, resumed)
    np.testing.assert_allclose(resumed.history_["cost"], whole.history_["cost"], rtol=1e-12)
    assert resumed.history_["epoch"] == [0, 1, 2]
