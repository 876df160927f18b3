"""Issues 15 and 20: chainrule used as a hostile or careless user would. Not a test module.

Run ``python tools/probe_faults.py [--json out.json] [--kind KIND ...]``: every probe is one
call (or a short script) that must either do the right thing or be refused with a
``ChainruleError`` (argparse's exit 2 for the CLI) and leave the model and the files as they
were. Each outcome is one of

- ``ok``: refused clearly with the model/file intact, or accepted and right;
- ``raw``: a non-chainrule exception (or a traceback from the CLI) leaked;
- ``silent``: a bad input was accepted, or silently replaced by something else;
- ``corrupt``: a NaN model was applied, saved or reported as good, a good file was lost, or
  the model's objects disagree (counters, history, dtypes);
- ``misleading``: refused, but the message blames the wrong thing;
- ``memory``: more than 100 MB reserved before a small bad file was refused;
- ``hang``: a call that had to end (or be refused) ran past its time limit (the probes that
  could hang run in a child process or under an alarm).

The table prints ``corrupt`` as "lost data". The exit status is 1 when any probe is not
``ok``: CI runs ``python tools/probe_faults.py`` (``.ci/run``).

The table printed at the end counts outcomes by kind (the issue's headings). It is a probe
script, not a test: the tests that pin each fixed behaviour live in tests/test_*.py.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io as _stdio
import json
import os
import subprocess
import sys
import tempfile
import threading
import tracemalloc
import warnings

import numpy as np

import chainrule
from chainrule import ChainruleError, Network
from chainrule import io as crio
from chainrule.errors import InputError, ModelFileError, NonFiniteError

RESULTS = []  # (kind, name, outcome, detail)
TMP = tempfile.mkdtemp(prefix="chainrule-probe-")
BACKENDS = [b for b in ("numpy", "numba", "c") if b in chainrule.available_backends()]
DTYPES = ("float64", "float32")
OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")


def record(kind, name, outcome, detail=""):
    RESULTS.append((kind, name, outcome, str(detail)[:200]))


def finite_params(net):
    return all(np.isfinite(v).all() for v in net.parameters.values())


def data(n_x=3, n_y=1, m=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    Y = (rng.random((n_y, m)) > 0.5).astype(float)
    return X, Y


def path(name):
    return os.path.join(TMP, name)


class _Hang(BaseException):
    """Raised by the alarm in a probe that runs past CALL_SECONDS."""


CALL_SECONDS = 30  # a probed call that must end (or be refused) and has not by then: "hang"


@contextlib.contextmanager
def _time_limit(seconds=CALL_SECONDS):
    import signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(*_):
        raise _Hang()
    previous = signal.signal(signal.SIGALRM, fire)
    try:
        signal.alarm(seconds)
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome_of_call(fn, *, accepted_ok=False, message=None):
    """``ok`` for a ChainruleError (whose message contains ``message``, if given),
    ``raw`` for any other exception, ``silent`` (or ``ok`` if ``accepted_ok``) if it returns,
    ``hang`` past CALL_SECONDS."""
    try:
        with warnings.catch_warnings(), _time_limit():
            warnings.simplefilter("ignore")
            fn()
    except _Hang:
        return "hang", f"still running after {CALL_SECONDS} s"
    except ChainruleError as exc:
        if message is not None and not any(m in str(exc) for m in
                                           ([message] if isinstance(message, str) else message)):
            return "misleading", f"{type(exc).__name__}: {exc}"
        return "ok", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - that is what the probe looks for
        return "raw", f"{type(exc).__name__}: {exc}"
    return ("ok" if accepted_ok else "silent"), "accepted"


# ---------------------------------------------------------------- 1. unsafe updates
def probe_unsafe_updates():
    X, Y = data()
    for backend in BACKENDS:
        for dt in DTYPES:
            lr = 1e308 if dt == "float64" else 1e30
            for opt in OPTIMIZERS:
                for extra in ({}, {"sample_weight": np.full(X.shape[1], 1.0)},
                              {"on_nonfinite": "skip"}):
                    name = f"fit {backend} {dt} {opt} lr={lr:g} {sorted(extra)}"
                    net = Network([3, 4, 1], backend=backend, dtype=dt, seed=0)
                    before = {k: v.copy() for k, v in net.parameters.items()}
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            net.fit(X, Y, epochs=5, learning_rate=lr, optimizer=opt,
                                    progress=False, **extra)
                    except NonFiniteError as exc:
                        record("unsafe updates", name, "ok" if finite_params(net) else "corrupt",
                               exc)
                        continue
                    except Exception as exc:  # noqa: BLE001
                        record("unsafe updates", name, "raw", f"{type(exc).__name__}: {exc}")
                        continue
                    # Accepted: fine only if the model is finite (an update may be harmless).
                    if not finite_params(net):
                        record("unsafe updates", name, "corrupt",
                               f"returned with a non-finite model, stop_reason_="
                               f"{net.stop_reason_!r}")
                    else:
                        changed = any(not np.array_equal(before[k], v)
                                      for k, v in net.parameters.items())
                        record("unsafe updates", name, "ok", f"finite (changed={changed})")
            net = Network([3, 4, 1], backend=backend, dtype=dt, seed=0)
            lr = 1e39 if dt == "float32" else 1e308
            name = f"step {backend} {dt} lr={lr:g}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    net.step(X * 1e3, Y, lr)
            except ChainruleError as exc:
                record("unsafe updates", name, "ok" if finite_params(net) else "corrupt", exc)
            except Exception as exc:  # noqa: BLE001
                record("unsafe updates", name, "raw", f"{type(exc).__name__}: {exc}")
            else:
                record("unsafe updates", name, "ok" if finite_params(net) else "corrupt",
                       "returned")


# ---------------------------------------------------------------- 2. save
def _good_file(name):
    p = path(name)
    good = Network([3, 4, 1], backend="numpy", seed=1)
    good.save(p)
    return p, good


def _still_good(p, good):
    try:
        back = Network.load(p)
    except Exception:  # noqa: BLE001
        return False
    return all(np.array_equal(back.parameters[k], v) for k, v in good.parameters.items())


def probe_save():
    X, Y = data()
    # A non-finite model (parameters or optimiser/training state) saved over a good file.
    for what in ("W1 nan", "b1 inf", "opt moment nan", "train/best/W1 nan"):
        p, good = _good_file(f"good-{what.replace(' ', '_').replace('/', '_')}.npz")
        net = Network([3, 4, 1], backend="numpy", seed=2)
        net.fit(X, Y, epochs=2, optimizer="adam", progress=False, early_stopping=True,
                validation_fraction=0.25)
        state = net.get_state()  # spoiled as a bad update or set_state would leave it
        if what == "W1 nan":
            state["W1"][0, 0] = np.nan
        elif what == "b1 inf":
            state["b1"][0, 0] = np.inf
        elif what == "opt moment nan":
            state["opt/v_dW1"][0, 0] = np.nan
        else:
            state["train/best/W1"][0, 0] = np.nan
        net.get_state = lambda state=state: state
        res, detail = outcome_of_call(lambda: net.save(p))
        if not _still_good(p, good):
            res = "corrupt"
            detail = "the good file was replaced by one that does not load as it was"
        record("save", f"save non-finite model ({what}) over a good file", res, detail)
    # Paths that are not regular files.
    net = Network([3, 4, 1], backend="numpy", seed=3)
    d = path("a_directory")
    os.makedirs(d, exist_ok=True)
    res, detail = outcome_of_call(lambda: net.save(d))
    record("save", "save to a directory", res if os.path.isdir(d) else "corrupt", detail)
    fifo = path("a_fifo")
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        res, detail = outcome_of_call(lambda: net.save(fifo))
        import stat
        kept = stat.S_ISFIFO(os.lstat(fifo).st_mode)
        record("save", "save to a FIFO", res if kept else "corrupt",
               detail if kept else "the FIFO was replaced by a regular file")
    dev = path("a_device")
    try:
        os.mknod(dev, 0o600 | __import__("stat").S_IFCHR, os.makedev(1, 3))  # like /dev/null
    except (OSError, AttributeError):
        dev = None
    if dev:
        import stat
        res, detail = outcome_of_call(lambda: net.save(dev))
        kept = stat.S_ISCHR(os.lstat(dev).st_mode)
        record("save", "save to a device node", res if kept else "corrupt",
               detail if kept else "the device node was replaced by a regular file")
    # A symlink: write the target, keep the link.
    target, good = _good_file("link_target.npz")
    link = path("link.npz")
    os.symlink(target, link)
    res, detail = outcome_of_call(lambda: net.save(link), accepted_ok=True)
    if res == "ok":
        if not os.path.islink(link):
            res, detail = "corrupt", "the symlink became a regular file"
        elif not np.array_equal(Network.load(target).parameters["W1"], net.parameters["W1"]):
            res, detail = "corrupt", "the link's target was not updated"
    record("save", "save through a symlink", res, detail)
    dangling = path("dangling.npz")
    os.symlink(path("no_such_dir/x.npz"), dangling)
    res, detail = outcome_of_call(lambda: net.save(dangling))
    record("save", "save through a dangling symlink into a missing directory", res, detail)
    # Saving normally still works, and a missing directory is refused.
    res, detail = outcome_of_call(lambda: net.save(path("plain.npz")), accepted_ok=True)
    record("save", "save to a new regular path", res, detail)
    res, detail = outcome_of_call(lambda: net.save(path("missing/dir/x.npz")))
    record("save", "save into a missing directory", res, detail)


# ---------------------------------------------------------------- 3. set_state
def _trained(opt="adam", dt="float64"):
    X, Y = data()
    net = Network([3, 4, 1], backend="numpy", seed=0, dtype=dt)
    net.fit(X, Y, epochs=3, optimizer=opt, progress=False)
    return net, X, Y


def probe_set_state():
    X, Y = data()
    cases = []
    net, _, _ = _trained()
    s = net.get_state()
    def mod(key, value):
        st = {k: v.copy() for k, v in s.items()}
        if value is KeyError:
            st.pop(key)
        else:
            st[key] = value
        return st
    cases += [
        ("NaN first moment", mod("opt/v_dW1", np.full_like(s["opt/v_dW1"], np.nan))),
        ("inf second moment", mod("opt/s_db1", np.full_like(s["opt/s_db1"], np.inf))),
        ("negative second moment", mod("opt/s_dW1", -np.ones_like(s["opt/s_dW1"]))),
        ("opt/t = -1", mod("opt/t", np.array(-1))),
        ("opt/t = 2.5", mod("opt/t", np.array(2.5))),
        ("opt/t = 2**70 (float)", mod("opt/t", np.array(2.0 ** 70))),
        ("train/epoch = -5", mod("train/epoch", np.array(-5))),
        ("train/steps = -1", mod("train/steps", np.array(-1))),
        ("train/skipped = -1", mod("train/skipped", np.array(-1))),
        ("train/wait = -1", mod("train/wait", np.array(-1))),
        ("train/best = nan", mod("train/best", np.array(np.nan))),
        ("train/epoch = nan", mod("train/epoch", np.array(np.nan))),
        ("train/epoch a string", mod("train/epoch", "five")),
        ("train/epoch None", mod("train/epoch", None)),
        ("train/rng garbage bytes", mod("train/rng", np.frombuffer(b"\xff\xfe", np.uint8))),
        ("train/rng = json list", mod("train/rng", np.frombuffer(b"[1, 2]", np.uint8))),
        ("train/rng state -1", mod("train/rng", np.frombuffer(json.dumps(
            {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1},
             "has_uint32": 0, "uinteger": 0}).encode(), np.uint8))),
        ("train/signature a float array", mod("train/signature", np.array([1.5, 2.5]))),
        ("train/optimizer not a dict", mod("train/optimizer", np.frombuffer(b"[1]", np.uint8))),
        ("missing train/steps", mod("train/steps", KeyError)),
        ("opt/v_dW1 a string", mod("opt/v_dW1", "x")),
        ("opt/v_dW1 a dict", mod("opt/v_dW1", {"a": 1})),
        ("opt/v_dW9 unknown layer", mod("opt/v_dW9", np.zeros((4, 3)))),
        ("opt/t a list of two", mod("opt/t", np.array([1, 2]))),
        ("train/best/W1 NaN", mod("train/best/W1", np.full((4, 3), np.nan))),
        ("W1 wrong shape", mod("W1", np.zeros((3, 4)))),
        ("state a list", [1, 2]),
        ("state None", None),
        ("state with int keys", {1: np.zeros(1)}),
    ]
    for name, state in cases:
        target, _, _ = _trained()
        before = target.get_state()
        res, detail = outcome_of_call(lambda: target.set_state(state))
        if res in ("silent",):
            # Accepted: does the next fit stay finite and is the state consistent?
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    target.fit(X, Y, epochs=2, optimizer="adam", progress=False,
                               continue_training=True)
                detail = "accepted; the next fit " + ("kept a finite model"
                                                      if finite_params(target) else
                                                      "made the model NaN")
                if not finite_params(target):
                    res = "corrupt"
            except Exception as exc:  # noqa: BLE001
                detail = f"accepted; the next fit raised {type(exc).__name__}: {exc}"
        elif res == "ok":
            after = target.get_state()
            if sorted(after) != sorted(before) or any(
                    not np.array_equal(after[k], before[k], equal_nan=True) for k in before):
                res, detail = "corrupt", "refused but the model changed"
        record("set_state", name, res, detail)


# ---------------------------------------------------------------- 4. crafted files
def _crafted(name, change_meta=None, change_members=None):
    """A saved model whose metadata/members are changed, with the checksum recomputed."""
    net, _, _ = _trained()
    p = path(name)
    net.save(p)
    with np.load(p, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    meta = json.loads(members["__metadata__"].tobytes().decode())
    if change_meta:
        change_meta(meta)
    if change_members:
        change_members(members, meta)
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    members["__metadata__"] = np.frombuffer(meta_bytes, np.uint8)
    entries = meta["arrays"] if isinstance(meta.get("arrays"), list) else []
    try:
        names = [e["name"] for e in entries]
        arrays = [members[e["member"]] for e in entries]
        members["__sha256__"] = np.frombuffer(crio._digest(meta_bytes, names, arrays).encode(),
                                              np.uint8)
    except Exception:  # noqa: BLE001 - a malformed table: leave the digest as it was
        pass
    with open(p, "wb") as f:
        np.savez(f, **members)
    return p


def _set_entry(name, value):
    def change(members, meta):
        for e in meta["arrays"]:
            if e["name"] == name:
                a = np.asarray(value)
                members[e["member"]] = a
                e["dtype"], e["shape"] = a.dtype.str, list(a.shape)
    return change


def _rng(state):
    return np.frombuffer(json.dumps(state).encode(), np.uint8)


def _load_outcome(p, **kwargs):
    tracemalloc.start()
    res, detail = outcome_of_call(lambda: chainrule.load(p, **kwargs))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if peak > 100e6:
        res, detail = "memory", f"peak {peak / 1e6:.0f} MB for a {os.path.getsize(p)} B file; {detail}"
    return res, detail


def probe_crafted_files():
    pcg = {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0,
           "uinteger": 0}
    cases = [
        ("generator state -1", None, _set_entry("train/rng", _rng(pcg))),
        ("generator state 2**200", None, _set_entry("train/rng", _rng(
            {**pcg, "state": {"state": 2 ** 200, "inc": 1}}))),
        ("generator a list", None, _set_entry("train/rng", _rng([1, 2]))),
        ("generator unknown bit generator", None, _set_entry("train/rng", _rng(
            {**pcg, "bit_generator": "Evil"}))),
        ("history a list", lambda m: m.update(history=[1, 2]), None),
        ("history a string", lambda m: m.update(history="abc"), None),
        ("history cost a string", lambda m: m.update(history={"epoch": [0], "cost": "x"}), None),
        ("history cost with a dict", lambda m: m.update(history={"epoch": [0], "cost": [{}]}),
         None),
        ("history lengths differ", lambda m: m.update(history={"epoch": [0, 1], "cost": [1.0]}),
         None),
        ("array table a string", lambda m: m.update(arrays="abc"), None),
        ("array table entry shape a string", lambda m: m["arrays"][0].update(shape="3"), None),
        ("array table entry name an int", lambda m: m["arrays"][0].update(name=5), None),
        ("array table entry dtype a list", lambda m: m["arrays"][0].update(dtype=[1]), None),
        ("array table duplicate name", lambda m: m["arrays"].append(dict(m["arrays"][0])), None),
        ("config a list", lambda m: m.update(config=[1]), None),
        ("config layer_dims [3, 2**40, 1]",
         lambda m: m["config"].update(layer_dims=[3, 2 ** 40, 1]), None),
        ("config layer_dims [3, 20000, 20000, 1]",
         lambda m: m["config"].update(layer_dims=[3, 20000, 20000, 1],
                                      activations=[["relu", 0.0]] * 2 + [["sigmoid", 0.0]]),
         None),
        ("config layer_dims a string", lambda m: m["config"].update(layer_dims="341"), None),
        ("config activations a dict", lambda m: m["config"].update(activations={"a": 1}), None),
        ("config activations [[1, 2]]", lambda m: m["config"].update(activations=[[1, 2]] * 2),
         None),
        ("config unknown key", lambda m: m["config"].update(evil=1), None),
        ("config missing layer_dims", lambda m: m["config"].pop("layer_dims"), None),
        ("config n_threads -1", lambda m: m["config"].update(n_threads=-1), None),
        ("config dtype '<f2'", lambda m: m["config"].update(dtype="<f2"), None),
        ("opt/t = -1", None, _set_entry("opt/t", np.array(-1))),
        ("train/epoch = -5", None, _set_entry("train/epoch", np.array(-5))),
        ("NaN moment", None, _set_entry("opt/v_dW1", np.full((4, 3), np.nan))),
        ("negative second moment", None, _set_entry("opt/s_dW1", -np.ones((4, 3)))),
        ("W1 NaN", None, _set_entry("W1", np.full((4, 3), np.nan))),
        ("train/epoch float array", None, _set_entry("train/epoch", np.array([1.5, 2.5]))),
        ("format_version a string", lambda m: m.update(format_version="1"), None),
        ("format_version true", lambda m: m.update(format_version=True), None),
    ]
    for name, change_meta, change_members in cases:
        p = _crafted(f"crafted-{len(RESULTS)}.npz", change_meta, change_members)
        res, detail = _load_outcome(p)
        if res == "silent":
            try:
                net = chainrule.load(p)
                ok = finite_params(net) and isinstance(net.history_, dict)
                detail = "loaded" + ("" if ok else " a broken model")
            except Exception as exc:  # noqa: BLE001
                detail = f"loaded then {exc}"
        record("crafted files", name, res, detail)
    # A small file whose member inflates: 800 KB of deflated zeros that decompress to 800 MB.
    import zipfile
    p = path("bomb.npz")
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.save(p)
    with np.load(p, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in members.items():
            buf = _stdio.BytesIO()
            np.lib.format.write_array(buf, v)
            z.writestr(k + ".npy", buf.getvalue())
        big = np.lib.format.header_data_from_array_1_0(np.zeros(1))
        big["shape"] = (100_000_000,)
        buf = _stdio.BytesIO()
        np.lib.format.write_array_header_1_0(buf, big)
        with z.open("a9.npy", "w", force_zip64=True) as f:
            f.write(buf.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(800):
                f.write(chunk)
    res, detail = _load_outcome(p)
    record("crafted files", f"{os.path.getsize(p) // 1000} KB zip member inflating to 800 MB",
           res, detail)
    # A .npy header declaring a huge shape in a small member.
    p = path("liar.npz")
    with zipfile.ZipFile(p, "w") as z:
        for k, v in members.items():
            buf = _stdio.BytesIO()
            np.lib.format.write_array(buf, v)
            z.writestr(k + ".npy", buf.getvalue())
        hdr = np.lib.format.header_data_from_array_1_0(np.zeros(1))
        hdr["shape"] = (2 ** 40,)
        buf = _stdio.BytesIO()
        np.lib.format.write_array_header_1_0(buf, hdr)
        z.writestr("a9.npy", buf.getvalue() + bytes(64))
    res, detail = _load_outcome(p)
    record("crafted files", "member header declaring 2**40 elements", res, detail)
    good = path("good-for-backend.npz")
    Network([3, 4, 1], backend="numpy").save(good)
    res, detail = outcome_of_call(lambda: chainrule.load(good, backend="gpu"), message="backend")
    if res == "ok" and isinstance(_exc_of(lambda: chainrule.load(good, backend="gpu")), ModelFileError):
        res = "misleading"
    record("messages", "load(p, backend='gpu')", res, detail)


def _exc_of(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


# ---------------------------------------------------------------- 5. arguments (fit, step)
def probe_arguments():
    X, Y = data()
    cases = [
        ("callbacks=[5]", dict(callbacks=[5])),
        ("checkpoint=5", dict(checkpoint=5)),
        ("checkpoint into a missing dir", dict(checkpoint=path("missing_dir/ck.npz"))),
        ("optimizer=['adam']", dict(optimizer=["adam"])),
        ("resume=True", dict(resume=True)),
        ("shuffle_seed=2**40", dict(shuffle_seed=2 ** 40, mini_batch_size=4)),
        ("mini_batch_size=0", dict(mini_batch_size=0)),
        ("mini_batch_size=2.5", dict(mini_batch_size=2.5)),
        ("epochs=-1", dict(epochs=-1)),
        ("learning_rate=nan", dict(learning_rate=float("nan"))),
        ("keep_prob=0", dict(keep_prob=0.0)),
        ("validation_fraction=1.0", dict(validation_fraction=1.0)),
        ("patience=-1", dict(patience=-1, early_stopping=True, validation_fraction=0.25)),
        ("class_weight={5: 1.0}", dict(class_weight={5: 1.0})),
        ("sample_weight wrong length", dict(sample_weight=np.ones(3))),
        ("sample_weight negative", dict(sample_weight=-np.ones(16))),
        ("sample_weight nan", dict(sample_weight=np.full(16, np.nan))),
    ]
    for name, kwargs in cases:
        net = Network([3, 4, 1], backend="numpy", seed=0)
        before = {k: v.copy() for k, v in net.parameters.items()}
        kwargs = {"epochs": 3, "progress": False, **kwargs}
        res, detail = outcome_of_call(lambda: net.fit(X, Y, **kwargs))
        if res != "silent" and any(not np.array_equal(before[k], v)
                                   for k, v in net.parameters.items()):
            res, detail = "corrupt", f"failed after training changed the model: {detail}"
        record("arguments", f"fit {name}", res, detail)
    net = Network([3, 4, 1], dtype="float32", backend="numpy", seed=0)
    res, detail = outcome_of_call(lambda: net.fit(X, Y, epochs=2, progress=False,
                                                  sample_weight=np.full(16, 1e-46)))
    record("arguments", "fit float32 sample_weight=1e-46", res, detail)


def _cli(argv):
    """(rc, stderr) of ``chainrule`` in-process; a leaked exception is a traceback."""
    from chainrule.cli import main
    err, out = _stdio.StringIO(), _stdio.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except Exception as exc:  # noqa: BLE001
            return "traceback", f"{type(exc).__name__}: {exc}", out.getvalue()
    return rc, err.getvalue(), out.getvalue()


def probe_cli():
    base = ["train", "--dataset", "moons", "--epochs", "3", "--backend", "numpy",
            "--no-progress"]
    cases = [
        ("--mini-batch-size 0", ["--mini-batch-size", "0"]),
        ("--mini-batch-size -3", ["--mini-batch-size", "-3"]),
        ("--test-fraction -0.5", ["--test-fraction", "-0.5"]),
        ("--test-fraction nan", ["--test-fraction", "nan"]),
        ("--test-fraction 1.5", ["--test-fraction", "1.5"]),
        ("--layers ''", ["--layers", ""]),
        ("--layers ','", ["--layers", ","]),
        ("--layers 2,0,1", ["--layers", "2,0,1"]),
        ("--m -5", ["--m", "-5"]),
        ("--m 0", ["--m", "0"]),
        ("--data-seed -1", ["--data-seed", "-1"]),
        ("--seed -1", ["--seed", "-1"]),
        ("--epochs -2", ["--epochs", "-2"]),
        ("--lr nan", ["--lr", "nan"]),
        ("--lr inf", ["--lr", "inf"]),
        ("--plot into a missing dir", ["--plot", path("missing_dir/x.png")]),
        ("--plot a directory", ["--plot", TMP]),
        ("--checkpoint into a missing dir", ["--checkpoint", path("missing_dir/ck.npz")]),
        ("--checkpoint-every 0", ["--checkpoint", path("ck0.npz"), "--checkpoint-every", "0"]),
        ("--resume a missing file", ["--resume", path("nope.npz")]),
        ("--keep-prob 0", ["--keep-prob", "0"]),
        ("--patience -1", ["--early-stopping", "--validation-fraction", "0.2", "--patience",
                           "-1"]),
        ("--cost-every 0", ["--cost-every", "0"]),
        ("--hidden rlu", ["--hidden", "rlu"]),
    ]
    for name, extra in cases:
        rc, err, out = _cli(base + extra)
        if rc == "traceback" or "Traceback" in str(err):
            record("cli", f"train {name}", "raw", err)
        elif rc == 0:
            record("cli", f"train {name}", "silent", out.splitlines()[1] if out else "rc 0")
        elif "wrote" in out or "final cost" in out:
            record("cli", f"train {name}", "corrupt", f"failed after training: {err.strip()}")
        else:
            record("cli", f"train {name}", "ok", err.strip().splitlines()[-1] if err else rc)


# ---------------------------------------------------------------- 6. desync
def probe_desync():
    X, Y = data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    replacement = {k: np.zeros_like(v) for k, v in net.parameters.items()}

    class Assign:
        def on_epoch_end(self, net_, epoch, logs):
            if epoch == 1:
                net_.parameters = replacement

    try:
        net.fit(X, Y, epochs=4, progress=False, callbacks=[Assign()])
    except ChainruleError as exc:
        record("desync", "callback assigns net.parameters", "ok", exc)
    except Exception as exc:  # noqa: BLE001
        record("desync", "callback assigns net.parameters", "raw", exc)
    else:
        applied = not all(np.array_equal(net.parameters[k], replacement[k]) for k in replacement)
        record("desync", "callback assigns net.parameters",
               "ok" if applied and len(net.history_["epoch"]) else "corrupt",
               "the assignment was discarded" if not applied else "applied to the running fit")
    for name, value in (("float32 W1 in a float64 net", lambda W: W.astype(np.float32)),
                        ("Fortran-ordered W1", lambda W: np.asfortranarray(W)),
                        ("read-only W1", lambda W: _readonly(W)),
                        ("wrong-shape W1", lambda W: W.T.copy())):
        for backend in BACKENDS:
            net = Network([3, 4, 1], backend=backend, seed=0)
            try:
                net.parameters["W1"] = value(net.parameters["W1"].copy())
            except ChainruleError as exc:
                record("desync", f"{backend}: parameters['W1'] = {name}", "ok", exc)
                continue
            except Exception as exc:  # noqa: BLE001
                record("desync", f"{backend}: parameters['W1'] = {name}", "raw", exc)
                continue
            res, detail = outcome_of_call(lambda: net.step(X, Y, 0.1), accepted_ok=True)
            W1 = net.parameters["W1"]
            if res == "ok" and "accepted" in detail and (W1.dtype != net.dtype):
                res, detail = "corrupt", f"computes in mixed dtypes ({W1.dtype} W1)"
            if name == "wrong-shape W1" and res == "misleading":
                pass
            if name == "wrong-shape W1" and res == "ok" and "X" in detail.split(":")[1][:4]:
                res = "misleading"
            record("desync", f"{backend}: parameters['W1'] = {name}", res, detail)


def _readonly(W):
    W.setflags(write=False)
    return W


# ---------------------------------------------------------------- 7. sklearn
def probe_sklearn():
    try:
        from chainrule.sklearn import NetworkClassifier, NetworkRegressor
    except ImportError:
        return
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    for change in ({"hidden_layer_sizes": (7, 5)}, {"activation": "tanh"},
                   {"dtype": "float32"}):
        clf = NetworkClassifier(hidden_layer_sizes=(4,), max_iter=3, warm_start=True,
                                random_state=0, backend="numpy").fit(X, y)
        clf.set_params(**change)
        name = f"warm_start with {change}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(X, y)
        except (ChainruleError, ValueError) as exc:
            record("sklearn", name, "ok", f"refused: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001
            record("sklearn", name, "raw", exc)
            continue
        net = clf.network_
        key, want = next(iter(change.items()))
        have = {"hidden_layer_sizes": tuple(net.layer_dims[1:-1]),
                "activation": net.activations[0][0], "dtype": net.dtype.name}[key]
        record("sklearn", name, "ok" if have == want else "silent",
               f"network has {key}={have!r}")
    for cw in ({5: 2.0}, {0: 1.0, "a": 2.0}, {0: -1.0, 1: 1.0}, {0: float("nan"), 1: 1.0},
               "balancd"):
        clf = NetworkClassifier(hidden_layer_sizes=(4,), max_iter=2, class_weight=cw,
                                random_state=0, backend="numpy")
        res, detail = _sk_outcome(lambda: clf.fit(X, y))
        record("sklearn", f"class_weight={cw!r}", res, detail)
    for kwargs in ({"learning_rate": -1}, {"learning_rate": float("nan")},
                   {"mini_batch_size": 0}, {"mini_batch_size": "big"}, {"optimizer": "adamw"},
                   {"activation": "rlu"}, {"keep_prob": 0}, {"lambd": -1},
                   {"validation_fraction": 1.5, "early_stopping": True},
                   {"patience": -1, "early_stopping": True}, {"dtype": "int32"},
                   {"backend": "gpu"}, {"hidden_layer_sizes": (0,)}, {"max_iter": 0},
                   {"beta1": 1.5, "optimizer": "adam"}, {"epsilon": -1.0},
                   {"decay_rate": -1.0}, {"verbose": "loud"}, {"warm_start": "yes"}):
        for cls, yy in ((NetworkClassifier, y), (NetworkRegressor, X[:, 0])):
            est = cls(**{"max_iter": 2, "random_state": 0, "backend": "numpy", **kwargs})
            res, detail = _sk_outcome(lambda: est.fit(X, yy))
            record("sklearn", f"{cls.__name__}({kwargs})", res, detail)


def _sk_outcome(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except (ChainruleError, ValueError, TypeError) as exc:
        # scikit-learn's convention: an invalid estimator parameter is a ValueError/TypeError
        # (InvalidParameterError). A raw error from deep inside is still a leak:
        if isinstance(exc, ChainruleError) or _is_ours(exc):
            return "ok", f"{type(exc).__name__}: {exc}"
        return "raw", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001
        return "raw", f"{type(exc).__name__}: {exc}"
    return "silent", "accepted"


def _is_ours(exc):
    import traceback
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and ("chainrule" in frames[-1].filename
                             or "sklearn/utils/_param_validation" in frames[-1].filename
                             or "sklearn/utils/validation" in frames[-1].filename)


# ---------------------------------------------------------------- 8. messages
def probe_messages():
    for backend in BACKENDS:
        net = Network([3, 4, 1], dtype="float32", backend=backend)
        X = np.ones((3, 5))
        X[0, 1] = np.nan
        exc = _exc_of(lambda: net.predict(X))
        record("messages", f"{backend}: NaN in X for a float32 network",
               "misleading" if exc is not None and "overflow" in str(exc) else
               ("ok" if isinstance(exc, InputError) else "raw"), exc)
    for spec in (">f8", "<f8", "=f8", np.dtype(">f8"), ">f4", "f8", "double", "single"):
        exc = _exc_of(lambda: Network([3, 4, 1], dtype=spec, backend="numpy"))
        if exc is None:
            net = Network([3, 4, 1], dtype=spec, backend="numpy")
            res = "ok" if net.dtype in (np.dtype("float32"), np.dtype("float64")) and \
                net.dtype.isnative else "silent"
            record("messages", f"dtype={spec!r}", res, f"accepted as {net.dtype}")
        else:
            words = str(exc)
            res = "misleading" if "got 'float64'" in words or "got 'float32'" in words else \
                ("ok" if isinstance(exc, ChainruleError) else "raw")
            record("messages", f"dtype={spec!r}", res, exc)
    # A weight overflow (gradient finite, update overflows) should not say "lower the
    # learning rate" when the learning rate is tiny.
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.parameters = {k: (np.full_like(v, 1.7e308) if k == "W1" else v)
                      for k, v in net.parameters.items()}
    X, Y = data()
    exc = _exc_of(lambda: net.step(X, Y, 1e-6))
    record("messages", "overflowing weights, tiny learning rate",
           "misleading" if exc is not None and "lower the learning rate" in str(exc) else
           ("ok" if exc is None or isinstance(exc, ChainruleError) else "raw"), exc)
    # A bad CHAINRULE_C_BLAS value.
    import subprocess
    proc = subprocess.run([sys.executable, "-c", "import chainrule; "
                           "chainrule.Network([2,3,1], backend='c').predict([[1.0],[2.0]])"],
                          env={**os.environ, "CHAINRULE_C_BLAS": "no_such_blas"},
                          capture_output=True, text=True)
    err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "accepted"
    record("messages", "CHAINRULE_C_BLAS=no_such_blas",
           "ok" if "CHAINRULE_C_BLAS" in err and "not built" not in err else
           ("silent" if proc.returncode == 0 else "misleading"), err)


# ================================================================ issue 20 §2: under attack
# The headings: updates applied that must not be, resume, files, hangs, silent
# acceptance, tracebacks instead of messages. Probes that could hang or exhaust memory on a
# regression run in a child process with a time limit ("hang") and an address-space limit.

def _child(code, *args, timeout=60, memory=None):
    """``(returncode, stdout + stderr)`` of ``python -c code args`` (returncode "hang" when
    it ran past ``timeout`` seconds); ``memory`` limits its address space (bytes)."""
    if memory:
        code = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (%d, %d))\n"
                % (memory, memory)) + code
    return _run([sys.executable, "-c", code, *map(str, args)], timeout)


def _run(argv, timeout):
    """``(returncode or "hang", output)``: the output goes to a file, not a pipe, so that a
    process the command forked and left running cannot hold this one; the command's
    process group is killed at the end."""
    import signal
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True,
                                env={**os.environ, "CHAINRULE_BACKEND": "numpy"})
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = "hang"
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out.seek(0)
        text = out.read()
    return rc, (f"still running after {timeout} s; " if rc == "hang" else "") + \
        text.strip()[-300:]


def _same(net, before):
    return all(np.array_equal(before[k], v) for k, v in net.parameters.items())


def _refused_unchanged(kind, name, net, fn, message=None, accepted_ok=False):
    """Record a call that must be refused (or is fine accepted) leaving ``net`` unchanged."""
    before = {k: v.copy() for k, v in net.parameters.items()} if net is not None else None
    res, detail = outcome_of_call(fn, accepted_ok=accepted_ok, message=message)
    if res == "ok" and before is not None and "accepted" not in detail and \
            not _same(net, before):
        res, detail = "corrupt", f"refused but the model changed: {detail}"
    record(kind, name, res, detail)


def probe_attack_updates():
    kind = "updates (20)"
    X, _ = data(m=16)
    Y0 = np.zeros((1, 16))
    for backend in BACKENDS:
        for dt, big, tiny in (("float64", 1e160, 1e-300), ("float32", 1e20, 1e-30)):
            net = Network([3, 4, 1], hidden="identity", output="identity", backend=backend,
                          dtype=dt, seed=0)
            net.parameters["b2"] = np.full((1, 1), big)
            _refused_unchanged(kind, f"step {backend} {dt}: infinite cost", net,
                               lambda: net.step(X[:, :8], Y0[:, :8], tiny), "cost")
        for opt in OPTIMIZERS:
            for skip in (False, True):
                net = Network([3, 4, 1], hidden="identity", output="identity",
                              backend=backend, dtype="float32", seed=0)
                net.parameters["b2"] = np.full((1, 1), 1.5e19)
                before = {k: v.copy() for k, v in net.parameters.items()}
                extra = {"on_nonfinite": "skip"} if skip else {}
                res, detail = outcome_of_call(lambda: net.fit(
                    X, Y0, epochs=2, learning_rate=1e-30, optimizer=opt, progress=False,
                    **extra), accepted_ok=skip)
                if not _same(net, before):
                    res, detail = "corrupt", "a batch whose float32 cost overflowed was applied"
                record(kind, f"fit {backend} float32 {opt} cost overflow skip={skip}", res,
                       detail)
            net = Network([3, 4, 1], backend=backend, dtype="float32", seed=0)
            net.parameters["W1"] = np.full((4, 3), 1e19)
            before = {k: v.copy() for k, v in net.parameters.items()}
            res, detail = outcome_of_call(lambda: net.fit(
                X, data()[1], epochs=2, learning_rate=1e-30, optimizer=opt, lambd=1.0,
                progress=False, on_nonfinite="skip"), accepted_ok=True)
            if not _same(net, before):
                res, detail = "corrupt", "a batch whose float32 L2 term overflowed was applied"
            record(kind, f"fit {backend} float32 {opt} L2 term overflow", res, detail)
    for key, bad in (("b1", np.full((4, 1), np.nan)), ("b1", np.ones((1, 4))),
                     ("b1", np.array(["x"] * 4).reshape(4, 1)), ("W9", np.ones((4, 3))),
                     ("b2", np.full((1, 1), np.inf))):
        net = Network([3, 4, 1], backend="numpy", seed=0)
        _refused_unchanged(kind, f"parameters.update W1 ok + {key} bad", net,
                           lambda: net.parameters.update({"W1": np.ones((4, 3)), key: bad}))
        net = Network([3, 4, 1], backend="numpy", seed=0)

        def ior(net=net, key=key, bad=bad):
            d = net.parameters
            d |= {"W1": np.ones((4, 3)), key: bad}
        _refused_unchanged(kind, f"parameters |= W1 ok + {key} bad", net, ior)
    try:
        from chainrule.sklearn import NetworkClassifier
    except ImportError:
        return
    rng = np.random.default_rng(0)
    Xs = rng.standard_normal((40, 3))
    ys = (Xs[:, 0] > 0).astype(int)
    for method in ("fit", "partial_fit"):
        est = NetworkClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True,
                                random_state=0, backend="numpy").fit(Xs, ys)
        before = {k: v.copy() for k, v in est.network_.parameters.items()}
        real = Network.fit

        def fail_after_one(self, *a, **k):
            k["epochs"] = 1
            real(self, *a, **k)
            raise RuntimeError("planted failure after a partial epoch")
        Network.fit = fail_after_one
        try:
            kwargs = {"classes": np.array([0, 1])} if method == "partial_fit" else {}
            getattr(est, method)(Xs, ys, **kwargs)
        except RuntimeError:
            pass
        finally:
            Network.fit = real
        record(kind, f"estimator warm {method} failing after a partial epoch",
               "ok" if _same(est.network_, before) else "corrupt",
               "network_ restored" if _same(est.network_, before) else
               "network_ kept the partial epoch")


class _Bound:
    def __init__(self, limit):
        self.limit = limit

    def on_epoch_end(self, net, epoch, logs):
        if epoch > self.limit:
            raise TimeoutError(f"still training at epoch {epoch}")


def probe_attack_resume():
    kind = "resume (20)"
    X, Y = data(m=40)
    for backend in BACKENDS:
        for mbs in (None, 8):
            ck = path(f"cont-{backend}-{mbs}.npz")
            kw = dict(progress=False, mini_batch_size=mbs, cost_every=1)
            ref = Network([3, 4, 1], backend=backend, seed=0)
            ref.fit(X, Y, epochs=3, **kw)
            ref.fit(X, Y, epochs=6, continue_training=True, **kw)
            net = Network([3, 4, 1], backend=backend, seed=0)
            net.fit(X, Y, epochs=3, **kw)
            net.fit(X, Y, epochs=6, continue_training=True, checkpoint=ck,
                    callbacks=[lambda n, e, logs: e >= 5], **kw)
            again = Network([3, 4, 1], backend=backend, seed=0)
            name = f"resume a continued fit {backend} mini_batch_size={mbs}"
            try:
                again.fit(X, Y, epochs=6, continue_training=True, checkpoint=ck, resume=ck,
                          callbacks=[_Bound(40)], **kw)
            except TimeoutError as exc:
                record(kind, name, "hang", exc)
                continue
            except Exception as exc:  # noqa: BLE001
                record(kind, name, "raw", f"{type(exc).__name__}: {exc}")
                continue
            same = again.epochs_trained_ == ref.epochs_trained_ and all(
                np.allclose(again.parameters[k], v) for k, v in ref.parameters.items())
            record(kind, name, "ok" if same else "silent",
                   f"epochs {again.epochs_trained_} vs {ref.epochs_trained_}")
        ck = path(f"early-{backend}.npz")
        kw = dict(epochs=200, progress=False, mini_batch_size=8, early_stopping=True,
                  patience=1, min_delta=10.0, validation_fraction=0.25, checkpoint=ck)
        net = Network([3, 4, 1], backend=backend, seed=0).fit(X, Y, **kw)
        done = net.epochs_trained_
        for i in range(2):
            again = Network([3, 4, 1], backend=backend, seed=0)
            res, detail = outcome_of_call(lambda: again.fit(X, Y, resume=ck, **kw),
                                          accepted_ok=True)
            if res == "ok" and again.epochs_trained_ != done:
                res, detail = "silent", f"trained on to epoch {again.epochs_trained_} ({done})"
            record(kind, f"relaunch {i + 1} of an early-stopped run {backend}", res, detail)
    ck = path("seeded.npz")
    Network([3, 4, 1], backend="numpy", seed=0).fit(X, Y, epochs=2, progress=False,
                                                     checkpoint=ck)
    for what, args in (("other data", (X * 2, Y)), ("other labels", (X, 1 - Y)),
                       ("other epochs", (X, Y))):
        net = Network([3, 4, 1], backend="numpy", seed=5)
        epochs = 3 if what == "other epochs" else 2
        res, detail = outcome_of_call(lambda: net.fit(*args, epochs=epochs, progress=False,
                                                      checkpoint=ck, resume=ck))
        if res == "ok" and net.seed != 5:
            res, detail = "corrupt", f"the refused resume changed net.seed to {net.seed}"
        record(kind, f"refused resume ({what}) keeps the seed", res, detail)
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((2, 9000))
    Yb = (Xb[:1] > 0).astype(float)
    ck = path("fingerprint.npz")
    Network([2, 3, 1], backend="numpy", seed=0).fit(Xb, Yb, epochs=1, progress=False,
                                                     checkpoint=ck)
    for column in (1, 3, 2047, 4500, 8997, 8998):
        Y2 = Yb.copy()
        Y2[0, column] = 1 - Y2[0, column]
        net = Network([2, 3, 1], backend="numpy", seed=0)
        res, detail = outcome_of_call(lambda: net.fit(Xb, Y2, epochs=1, progress=False,
                                                      checkpoint=ck, resume=ck),
                                      message="other arguments or data")
        record(kind, f"resume with label {column} of 9000 changed", res, detail)


_LOAD_IN_CHILD = """
import sys, chainrule
from chainrule.errors import ModelFileError
try:
    chainrule.load(sys.argv[1])
except ModelFileError as exc:
    print("REFUSED", exc)
else:
    print("LOADED")
"""


def probe_attack_files():
    kind = "files (20)"
    import stat as _stat
    fifo = path("pipe.npz")
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        for what in ("load", "resume"):
            code = _LOAD_IN_CHILD if what == "load" else _LOAD_IN_CHILD.replace(
                "chainrule.load(sys.argv[1])",
                "chainrule.Network([1, 1]).fit([[0.0, 1.0]], [[0, 1]], epochs=1, "
                "progress=False, resume=sys.argv[1])")
            rc, out = _child(code, fifo, timeout=30)
            record(kind, f"{what} a FIFO", "hang" if rc == "hang" else
                   ("ok" if "REFUSED" in out and "FIFO" in out else "raw"), out)
    for dev in ("/dev/zero", "/dev/null", "/dev/urandom"):
        if os.path.exists(dev):
            rc, out = _child(_LOAD_IN_CHILD, dev, timeout=60, memory=4 << 30)
            record(kind, f"load {dev}", "hang" if rc == "hang" else
                   ("ok" if "REFUSED" in out and "device" in out else
                    "misleading" if "REFUSED" in out else
                    ("memory" if "MemoryError" in out else "raw")), out)
    for name, p in (("a directory", TMP), ("a trailing slash", path("good.npz") + "/"),
                    ("a missing file", path("missing.npz"))):
        res, detail = outcome_of_call(lambda: Network.load(p))
        record(kind, f"load {name}", res, detail)
    good = Network([3, 4, 1], backend="numpy", seed=1)
    other = Network([3, 4, 1], backend="numpy", seed=2)
    p = path("x.npz")
    res, detail = outcome_of_call(lambda: other.save(p + "/"))
    record(kind, "save x.npz/", res if not os.path.exists(p) else "silent",
           detail if not os.path.exists(p) else "wrote x.npz")
    for mode in (0o444, 0o400, 0o555):
        q = path(f"protected-{mode:o}.npz")
        good.save(q)
        os.chmod(q, mode)
        with open(q, "rb") as f:
            before = f.read()
        res, detail = outcome_of_call(lambda: other.save(q))
        with open(q, "rb") as f:
            after = f.read()
        record(kind, f"save over a {mode:o} file", res if before == after else "corrupt",
               detail if before == after else "the write-protected file was replaced")
        os.chmod(q, 0o644)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        q = path("someone-else.npz")
        good.save(q)
        os.chown(q, 65534, 65534)
        res, detail = outcome_of_call(lambda: other.save(q))
        record(kind, "save over another user's file",
               res if os.stat(q).st_uid == 65534 else "corrupt", detail)
    X, Y = data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.fit(X, Y, epochs=1, optimizer="adam", progress=False, early_stopping=True,
            validation_fraction=0.25)
    for key in ("opt/t", "train/epoch", "train/steps", "train/skipped", "train/wait",
                "train/best_epoch"):
        for value in (2 ** 62 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1):
            state = net.get_state()
            state[key] = np.array(value, dtype=np.uint64)
            _refused_unchanged(kind, f"set_state {key} = {value}", net,
                               lambda: net.set_state(state), "2**62")


_FORK_DURING_COMPILE = """
import os, threading, time
import chainrule.backends.numba
import numba
from numba.core.compiler_lock import global_compiler_lock
held = threading.Event()
def compiling():
    with global_compiler_lock:
        held.set()
        time.sleep(1.0)
t = threading.Thread(target=compiling)
t.start()
held.wait()
pid = os.fork()
if pid == 0:
    os._exit(0 if numba.njit(lambda x: x + 1)(1) == 2 else 3)
t.join()
for _ in range(300):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("CHILD", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    print("HUNG")
"""

_FORKING_LEARNER = """
import os, time
import numpy as np
def linear_backward(dZ, cache):
    if os.fork() == 0:
        %s
        while True:
            time.sleep(0.1)
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return W.T @ dZ, dZ @ A_prev.T / m, np.sum(dZ, axis=1, keepdims=True) / m
"""


def probe_attack_hangs():
    kind = "hangs (20)"
    if hasattr(os, "fork") and "numba" in BACKENDS:
        rc, out = _child(_FORK_DURING_COMPILE, timeout=60)
        record(kind, "fork while another thread compiles with numba",
               "hang" if rc == "hang" or "HUNG" in out else
               ("ok" if "CHILD 0" in out else "raw"), out)
    if hasattr(os, "fork") and os.path.isdir("/proc"):
        for setsid in ("pass", "os.setsid()"):
            learner = path(f"learner_{len(setsid)}.py")
            with open(learner, "w") as f:
                f.write(_FORKING_LEARNER % setsid)
            rc, out = _run([sys.executable, "-m", "chainrule", "doctor", learner,
                            "--time-limit", "2"], timeout=60)
            left = subprocess.run(["pgrep", "-f", learner], capture_output=True,
                                  text=True).stdout.split()
            for pid in left:  # what the regression left running (ours: started by this probe)
                with contextlib.suppress(OSError):
                    os.kill(int(pid), 9)
            ok = rc == 0 and out.count("clean bill") == 1 and not left
            record(kind, f"doctor on code that forks ({setsid})",
                   "hang" if rc == "hang" else ("ok" if ok else "silent"),
                   f"rc {rc}, {len(left)} processes left")
    import signal
    from chainrule.explain import diagnose
    from chainrule.explain.sandbox import _alarm
    handler = signal.getsignal(signal.SIGALRM)
    for timeout in (float("inf"), 1e300):
        res, detail = outcome_of_call(lambda: diagnose(
            lambda dZ, cache: None, kind="linear_backward", timeout=timeout))
        if signal.getsignal(signal.SIGALRM) is not handler:
            res, detail = "corrupt", "the SIGALRM handler was left installed"
            signal.signal(signal.SIGALRM, handler)
        record(kind, f"diagnose(timeout={timeout:g})", res, detail)
    try:
        with _alarm(1e300):
            pass
    except Exception:  # noqa: BLE001 - the timer refuses it; the handler must come back
        pass
    record(kind, "the alarm handler after a failed timer",
           "ok" if signal.getsignal(signal.SIGALRM) is handler else "corrupt", "")
    signal.signal(signal.SIGALRM, handler)


def probe_attack_silent():
    kind = "silent (20)"
    X, Y = data()
    for name in ("shuffle", "early_stopping", "progress", "print_cost", "restore_best",
                 "full_score", "continue_training"):
        for value in ("no", "False", 0, 1, None):
            net = Network([3, 4, 1], backend="numpy", seed=0)
            _refused_unchanged(kind, f"fit {name}={value!r}", net, lambda: net.fit(
                X, Y, epochs=1, **{"progress": False, name: value}), "True or False")
    from chainrule import optim
    for cls in (optim.RMSprop, optim.Adam):
        for value in ("no", 0, None):
            res, detail = outcome_of_call(lambda: cls(eps_inside_sqrt=value), message="eps")
            record(kind, f"{cls.__name__}(eps_inside_sqrt={value!r})", res, detail)
    for value, stops in ((np.True_, True), (True, True), (np.False_, False), (None, False)):
        net = Network([3, 4, 1], backend="numpy", seed=0)
        net.fit(X, Y, epochs=20, cost_every=1, progress=False,
                callbacks=[lambda n, e, logs, v=value: v])
        right = (net.epochs_trained_ == 0) if stops else (net.epochs_trained_ == 20)
        record(kind, f"callback returning {value!r}", "ok" if right else "silent",
               f"trained {net.epochs_trained_} epochs")
    for value in ("stop", 1, [True]):
        net = Network([3, 4, 1], backend="numpy", seed=0)
        res, detail = outcome_of_call(lambda: net.fit(
            X, Y, epochs=5, cost_every=1, progress=False, callbacks=[lambda n, e, l: value]),
            message="return True to stop")
        record(kind, f"callback returning {value!r}", res, detail)
    for where in ("X", "Y", "sample_weight"):
        args = dict(X=X, Y=Y, sample_weight=np.ones(16))
        a = np.ma.masked_array(args[where], mask=np.zeros(np.shape(args[where]), bool))
        a.mask.flat[2] = True
        args[where] = a
        net = Network([3, 4, 1], backend="numpy", seed=0)
        _refused_unchanged(kind, f"masked {where}", net, lambda: net.fit(
            args["X"], args["Y"], sample_weight=args["sample_weight"], epochs=1,
            progress=False), "masked")
    cases = [("decay_interval without decay_rate", dict(decay_interval=3)),
             ("validation_fraction=5 with validation_data",
              dict(validation_fraction=5.0, validation_data=(X, Y))),
             ("validation_fraction=0.3 with validation_data",
              dict(validation_fraction=0.3, validation_data=(X, Y))),
             ("validation_fraction=nan", dict(validation_fraction=float("nan"))),
             ("validation_fraction=-0.5", dict(validation_fraction=-0.5)),
             ("validation_fraction='0.2'", dict(validation_fraction="0.2")),
             ("epochs=2**63", dict(epochs=2 ** 63)),
             ("keep_prob=1e-45 float32", dict(keep_prob=1e-45))]
    for name, kwargs in cases:
        net = Network([3, 4, 4, 1], backend="numpy", seed=0,
                      dtype="float32" if "float32" in name else "float64")
        _refused_unchanged(kind, f"fit {name}", net, lambda: net.fit(
            X, Y, **{"epochs": 2, "progress": False, **kwargs}))
    from chainrule.explain import diagnose, gradient_check
    gnet = Network([3, 4, 1], hidden="tanh", backend="numpy", seed=0)
    for kwargs in (dict(epsilon=0), dict(epsilon=float("nan")), dict(epsilon=-1e-7),
                   dict(epsilon=2.0), dict(threshold=float("nan")), dict(threshold=-1),
                   dict(threshold=0), dict(worst=-1), dict(max_entries=0),
                   dict(timeout=float("inf")), dict(timeout=-1)):
        res, detail = outcome_of_call(lambda: gradient_check(gnet, X, Y, **kwargs))
        record(kind, f"gradient_check({kwargs})", res, detail)

    def returns_none(dA, cache, activation):
        return None
    for kwargs in (dict(activations=()), dict(activations=[]), dict(activations="relu"),
                   dict(activations=["relux"]), dict(timeout=0), dict(timeout=float("nan")),
                   dict(timeout=True)):
        res, detail = outcome_of_call(lambda: diagnose(
            returns_none, kind="linear_activation_backward", **kwargs))
        record(kind, f"diagnose({kwargs})", res, detail)
    net = Network([3, 4, 1], backend="numpy", seed=0)
    seen = []

    def nested(n, epoch, logs):
        for call in (lambda: n.fit(X, Y, epochs=1, progress=False), lambda: n.step(X, Y, 0.1)):
            seen.append(outcome_of_call(call))
        return True
    net.fit(X, Y, epochs=3, cost_every=1, progress=False, callbacks=[nested])
    for (res, detail), what in zip(seen, ("fit", "step")):
        record(kind, f"{what} from a callback of the network's own fit", res, detail)
    net = Network([3, 4, 1], backend="numpy", seed=0)
    inside, release, out = threading.Event(), threading.Event(), []

    def first():
        net.fit(X, Y, epochs=2, cost_every=1, progress=False,
                callbacks=[lambda n, e, l: (inside.set(), release.wait(30)) and None])
    t = threading.Thread(target=first)
    t.start()
    inside.wait(30)
    out.append(outcome_of_call(lambda: net.fit(X, Y, epochs=1, progress=False)))
    release.set()
    t.join()
    record(kind, "a second thread fitting the same network", *out[0])
    from chainrule import datasets
    for loader in ("load_planar_dataset", "make_moons", "make_circles"):
        fn = getattr(datasets, loader)
        for m in (3, 5, 2):
            Xd, Yd = fn(m=m)
            record(kind, f"{loader}(m={m})", "ok" if Xd.shape == (2, m) and Yd.shape == (1, m)
                   else "silent", f"returned {Xd.shape[1]} examples")
        for m in (1, 0, -4, 2.5, "400", True):
            res, detail = outcome_of_call(lambda: fn(m=m), message="m must be")
            record(kind, f"{loader}(m={m!r})", res, detail)


_CLI_REFUSED = [
    "train --dataset moons --m 1e20", "train --dataset moons --epochs 99999999999999999999999",
    "train --lr nan --epochs 1", "train --beta 2 --epochs 1 --optimizer momentum",
    "train --beta1 nan --epochs 1 --optimizer adam",
    "train --epsilon -1 --epochs 1 --optimizer adam",
    "train --decay-rate -1 --epochs 1", "train --decay-interval 0 --epochs 1 --decay-rate 1",
    "train --decay-interval 3 --epochs 1", "train --lambd -1 --epochs 1",
    "train --lambd nan --epochs 1", "train --keep-prob 2 --epochs 1",
    "train --keep-prob nan --epochs 1", "train --class-weight xx --epochs 1",
    "train --validation-fraction 5 --epochs 1", "train --validation-fraction nan --epochs 1",
    "train --on-nonfinite maybe --epochs 1", "train --checkpoint-every -1 --epochs 1",
    "train --resume /dev/zero --epochs 1", "train --resume / --epochs 1",
    "train --output softmax --epochs 1", "train --init bad --epochs 1",
    "train --backend gpu --epochs 1", "train --dtype float16 --epochs 1",
    "train --convention X --epochs 1", "train --optimizer sgdx --epochs 1",
    "train --layers 3,4,1 --epochs 1", "train --shuffle-seed -1 --epochs 1",
    "train --test-fraction 0.99 --m 4 --epochs 1", "train --data-seed 99999999999 --epochs 1",
    "bench --repeats -1", "bench --repeats 0", "bench -o /missing-dir/x.md --quick",
    "bench --json /missing-dir/x.json --quick", "bench --write /missing-dir/x.py --calibrate",
    "bench --threads -2", "bench --threads x", "bench --workloads nosuch",
    "bench --impls nosuch", "bench --measure nosuch",
    "jacobians --m -1", "jacobians --m 0", "jacobians --layers 3,-2,1", "jacobians --layers 3",
    "jacobians --seed -1", "jacobians --hidden foo", "jacobians --m 100000000000",
    "explain --m -1", "explain --m 0", "explain --layers 3", "explain --hidden foo",
    "explain --loss foo", "expand --n -1", "expand --n 0", "expand --m 0",
    "expand --n-prev -1", "expand --formulas nosuch", "expand --n 1000000", "expand --formulas ,",
    "gradcheck --m 0", "gradcheck --layers 2", "gradcheck --layers 3,4,1", "gradcheck --hidden foo",
    "gradcheck --dataset nosuch", "gradcheck --dtype float16", "gradcheck --backend gpu",
    "gradcheck --seed 99999999999", "gradcheck --worst 0", "gradcheck --output softmax",
    "gradcheck --function /nonexistent.py:f --in-process",
    "gradcheck --function x.py:f --time-limit 1e300",
    "doctor /nonexistent.py --in-process", "doctor --kind nosuch /x.py",
    "doctor /dev/zero --in-process", "doctor / --in-process", "doctor",
    "doctor --time-limit -1 x.py", "doctor --time-limit 1e300 x.py",
    "doctor --time-limit inf x.py", "doctor --time-limit nan x.py",
    "doctor --activations , x.py", "doctor --activations foo x.py --in-process",
]
_CLI_ACCEPTED = ["train --dataset digits --epochs 0", "train --m 2 --epochs 1",
                 "train --m 3 --epochs 1", "train --dataset moons --m 2 --epochs 1"]


def probe_attack_messages():
    kind = "messages (20)"
    import signal
    prev = os.environ.get("CHAINRULE_BACKEND")
    os.environ["CHAINRULE_BACKEND"] = "numpy"

    class Slow(BaseException):
        pass

    def slow(*_):
        raise Slow()
    handler = signal.signal(signal.SIGALRM, slow)
    try:
        for line in _CLI_REFUSED + _CLI_ACCEPTED:
            argv = line.split()
            if argv[0] == "train":
                argv.append("--no-progress")
            signal.alarm(60)
            try:
                rc, err, out = _cli(argv)
            except Slow:
                record(kind, f"chainrule {line}", "hang", "ran past 60 s")
                continue
            finally:
                signal.alarm(0)
            if rc == "traceback" or "Traceback" in str(err):
                record(kind, f"chainrule {line}", "raw", err)
            elif line in _CLI_ACCEPTED:
                bad = rc != 0 or "nan%" in out
                record(kind, f"chainrule {line}", "silent" if bad else "ok",
                       out.strip().splitlines()[-1] if out.strip() else rc)
            elif rc == 0:
                record(kind, f"chainrule {line}", "silent", "exit status 0")
            else:
                record(kind, f"chainrule {line}", "ok",
                       err.strip().splitlines()[-1][:150] if err.strip() else rc)
    finally:
        signal.signal(signal.SIGALRM, handler)
        if prev is None:
            os.environ.pop("CHAINRULE_BACKEND", None)
        else:
            os.environ["CHAINRULE_BACKEND"] = prev
    try:
        import scipy.sparse as sparse
    except ImportError:
        sparse = None
    X, Y = data()
    if sparse is not None:
        # A sparse X is taken by fit with mini-batches, predict and score (issue 24); a
        # sparse X in a full-batch fit, sparse labels, forward and step get a message.
        net = Network([3, 4, 1], backend="numpy")
        for name, call, words in (
                ("fit(csr X) full batch", lambda: net.fit(sparse.csr_matrix(X), Y, epochs=1,
                                                          progress=False), "mini_batch_size"),
                ("fit(csr Y)", lambda: net.fit(X, sparse.csr_matrix(Y), epochs=1,
                                               progress=False), "toarray"),
                ("forward(csr X)", lambda: net.forward(sparse.csr_matrix(X)), "toarray"),
                ("step(csc X)", lambda: net.step(sparse.csc_matrix(X), Y, 0.1), "toarray")):
            res, detail = outcome_of_call(call, message=words)
            record(kind, name, res, detail)
        dense = net.predict_proba(X)
        got = net.predict_proba(sparse.csc_matrix(X))
        record(kind, "predict_proba(csc X) equals the dense result",
               "ok" if np.allclose(got, dense, rtol=1e-12, atol=1e-12) else "silent",
               f"max difference {np.abs(got - dense).max():.3g}")
    Yh = np.full((1, 16), 1e10)
    for backend in BACKENDS:
        for name, net_kw, fit_kw, cause in (
                ("lambd=1e306", {}, dict(lambd=1e306), "lambd"),
                ("labels 1e200", dict(output="identity"), dict(Y=np.full((1, 16), 1e200)),
                 "labels"),
                ("weights 1e300", dict(output="identity"),
                 dict(Y=Yh, sample_weight=np.r_[np.full(15, 1e-300), 1e300]), "weights")):
            fit_kw = dict(fit_kw)
            Yc = fit_kw.pop("Y", Y)
            net = Network([3, 4, 4, 1], backend=backend, seed=0, **net_kw)
            exc = _exc_of(lambda: net.fit(X, Yc, epochs=3, learning_rate=1e-3, progress=False,
                                          **fit_kw))
            res = ("ok" if isinstance(exc, NonFiniteError) and cause in str(exc) and
                   "lower the learning rate" not in str(exc) else
                   "misleading" if isinstance(exc, ChainruleError) else
                   "silent" if exc is None else "raw")
            record(kind, f"NonFiniteError advice {backend}: {name}", res, exc)


PROBES = {
    "unsafe updates": probe_unsafe_updates,
    "save": probe_save,
    "set_state": probe_set_state,
    "crafted files": probe_crafted_files,
    "arguments": probe_arguments,
    "cli": probe_cli,
    "desync": probe_desync,
    "sklearn": probe_sklearn,
    "messages": probe_messages,
    "updates (20)": probe_attack_updates,
    "resume (20)": probe_attack_resume,
    "files (20)": probe_attack_files,
    "hangs (20)": probe_attack_hangs,
    "silent (20)": probe_attack_silent,
    "messages (20)": probe_attack_messages,
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", action="append", choices=sorted(PROBES))
    p.add_argument("--json", help="write every probe's outcome to this file")
    p.add_argument("--verbose", "-v", action="store_true", help="list every probe that failed")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")  # the probes provoke overflows on purpose
    try:  # a regression that allocates without bound fails here, not on the whole machine
        import resource
        limit = 6 << 30
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass
    for kind in args.kind or PROBES:
        try:
            PROBES[kind]()
        except Exception as exc:  # noqa: BLE001 - a probe that crashes is itself a finding
            record(kind, "the probe itself", "raw", f"{type(exc).__name__}: {exc}")
    table = collections.defaultdict(collections.Counter)
    for kind, _, outcome, _ in RESULTS:
        table[kind][outcome] += 1
    outcomes = ["ok", "raw", "silent", "corrupt", "misleading", "memory", "hang"]
    labels = {"corrupt": "lost data"}  # a corrupt model or a lost file
    print(f"{'kind':<16}{'probes':>7}" + "".join(f"{labels.get(o, o):>11}" for o in outcomes))
    for kind, counts in table.items():
        print(f"{kind:<16}{sum(counts.values()):>7}" + "".join(f"{counts[o]:>11}" for o in outcomes))
    total = collections.Counter(o for _, _, o, _ in RESULTS)
    print(f"{'total':<16}{len(RESULTS):>7}" + "".join(f"{total[o]:>11}" for o in outcomes))
    if args.verbose:
        for kind, name, outcome, detail in RESULTS:
            if outcome != "ok":
                print(f"  [{outcome}] {kind}: {name} -- {detail}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(kind=k, name=n, outcome=o, detail=d) for k, n, o, d in RESULTS], f,
                      indent=1)
    return 0 if total["ok"] == len(RESULTS) else 1  # CI fails on any other outcome


if __name__ == "__main__":
    sys.exit(main())
