"""Issue 15's probes: chainrule used as a hostile or careless user would. Not a test module.

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
- ``memory``: more than 100 MB reserved before a small bad file was refused.

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
import sys
import tempfile
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


def outcome_of_call(fn, *, accepted_ok=False, message=None):
    """``ok`` for a ChainruleError (whose message contains ``message``, if given),
    ``raw`` for any other exception, ``silent`` (or ``ok`` if ``accepted_ok``) if it returns."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
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
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", action="append", choices=sorted(PROBES))
    p.add_argument("--json", help="write every probe's outcome to this file")
    p.add_argument("--verbose", "-v", action="store_true", help="list every probe that failed")
    args = p.parse_args(argv)
    for kind in args.kind or PROBES:
        try:
            PROBES[kind]()
        except Exception as exc:  # noqa: BLE001 - a probe that crashes is itself a finding
            record(kind, "the probe itself", "raw", f"{type(exc).__name__}: {exc}")
    table = collections.defaultdict(collections.Counter)
    for kind, _, outcome, _ in RESULTS:
        table[kind][outcome] += 1
    outcomes = ["ok", "raw", "silent", "corrupt", "misleading", "memory"]
    print(f"{'kind':<16}{'probes':>7}" + "".join(f"{o:>11}" for o in outcomes))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
