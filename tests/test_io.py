"""Saving and loading: round trips, atomic writes (killed mid-save), and every kind of bad file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import chainrule
from chainrule import ModelFileError, Network
from chainrule import io as crio


def make_net(dims=(3, 5, 4, 1), seed=1, dtype="float64", **kwargs):
    kwargs.setdefault("backend", "numpy")
    return Network(list(dims), seed=seed, dtype=dtype, **kwargs)


def assert_same_network(expected, actual):
    assert actual.get_config() == expected.get_config()
    s_exp, s_act = expected.get_state(), actual.get_state()
    assert sorted(s_act) == sorted(s_exp)
    for k in s_exp:
        assert s_act[k].dtype == s_exp[k].dtype, k
        assert s_act[k].shape == s_exp[k].shape, k
        np.testing.assert_array_equal(s_act[k], s_exp[k], err_msg=k)
    assert actual.history_ == expected.history_


def rewrite(path, members):
    """Write an .npz of ``members`` to ``path`` (bypassing chainrule's checks)."""
    with open(path, "wb") as f:
        np.savez(f, **members)


def members_of(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def meta_of(members):
    return json.loads(members["__metadata__"].tobytes().decode())


def with_meta(members, meta, fix_digest):
    """``members`` with new metadata; the digest recomputed when ``fix_digest``."""
    out = dict(members)
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    out["__metadata__"] = np.frombuffer(meta_bytes, np.uint8)
    if fix_digest:
        names = [e["name"] for e in meta["arrays"]]
        arrays = [out[e["member"]] for e in meta["arrays"]]
        out["__sha256__"] = np.frombuffer(crio._digest(meta_bytes, names, arrays).encode(),
                                          np.uint8)
    return out


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("acts", [None, ["tanh", ("leaky_relu", 0.2), "sigmoid"],
                                  ["relu", "relu", "identity"]])
def test_save_load_roundtrip_is_exact(tmp_path, dtype, acts):
    net = make_net(dtype=dtype, activations=acts)
    X = np.random.default_rng(0).standard_normal((3, 17)).astype(dtype)
    Y = (X[:1] > 0).astype(dtype)
    if net.loss == "binary_crossentropy":
        net.fit(X, Y, epochs=7, learning_rate=0.1, cost_every=3, progress=False)
    path = tmp_path / "net.npz"
    assert net.save(path) == str(path)
    loaded = Network.load(path)
    assert_same_network(net, loaded)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert loaded.predict_proba(X).dtype == np.dtype(dtype)


def test_save_load_top_level_functions_and_softmax(tmp_path):
    net = make_net(dims=(2, 6, 3), output="softmax", init="xavier", seed=5)
    path = chainrule.save(net, tmp_path / "soft")  # no suffix appended
    assert os.path.exists(tmp_path / "soft")
    assert_same_network(net, chainrule.load(path))


def test_save_replaces_existing_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "net.npz"
    make_net(seed=1).save(path)
    net2 = make_net(seed=2)
    net2.save(path)
    assert_same_network(net2, Network.load(path))
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def test_save_stores_every_state_entry_generically(tmp_path, monkeypatch):
    """Optimiser state and other numeric entries of get_state() survive by name."""
    net = make_net()
    extra = {"opt/v_dW1": np.arange(15.0).reshape(5, 3), "opt/t": np.int64(7),
             "opt/s_db1": np.full((5, 1), 0.5, np.float32)}
    original = net.get_state
    monkeypatch.setattr(net, "get_state", lambda: {**original(), **extra})
    path = net.save(tmp_path / "net.npz")
    received = {}
    monkeypatch.setattr(Network, "set_state", lambda self, state: received.update(state))
    Network.load(path)
    stored = {e["name"]: e["dtype"] for e in meta_of(members_of(path))["arrays"]}
    for k, v in extra.items():
        np.testing.assert_array_equal(received[k], v)
        assert stored[k] == np.asarray(v).dtype.str  # the file keeps what get_state gave
    # load hands set_state the checked state: moments in the network's dtype.
    assert received["opt/s_db1"].dtype == net.dtype and received["opt/t"].dtype == np.int64
    assert {"W1", "b1", "W3", "b3"} <= set(received)


def test_save_refuses_non_numeric_state_and_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    old = make_net(seed=3)
    old.save(path)
    net = make_net(seed=4)
    monkeypatch.setattr(net, "get_state", lambda: {"W1": np.array([object()], dtype=object)})
    with pytest.raises(chainrule.ChainruleError, match="not numeric"):
        net.save(path)
    assert_same_network(old, Network.load(path))
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def test_save_into_missing_directory_raises_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="cannot write"):
        make_net().save(tmp_path / "no" / "such" / "dir" / "net.npz")


def test_save_interrupted_by_exception_removes_temporary(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    old = make_net(seed=3)
    old.save(path)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(crio.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        make_net(seed=4).save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]
    assert_same_network(old, Network.load(path))


def test_load_falls_back_to_auto_when_saved_backend_missing(tmp_path, monkeypatch):
    net = make_net()
    path = net.save(tmp_path / "net.npz")
    members = members_of(path)
    meta = meta_of(members)
    meta["config"]["backend"] = "c"
    rewrite(path, with_meta(members, meta, fix_digest=True))
    if "c" in chainrule.available_backends():
        assert Network.load(path).get_config()["backend"] == "c"
    else:
        with pytest.warns(RuntimeWarning, match="not available"):
            loaded = Network.load(path)
        np.testing.assert_array_equal(loaded.parameters["W1"], net.parameters["W1"])
    assert Network.load(path, backend="numpy").backend == "numpy"


# --------------------------------------------------------------------------- bad files

def test_load_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        Network.load(tmp_path / "nothing.npz")


def test_load_not_an_npz(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        Network.load(p)
    p.write_bytes(b"")
    with pytest.raises(ModelFileError):
        Network.load(p)


def test_load_foreign_npz(tmp_path):
    p = tmp_path / "other.npz"
    rewrite(p, {"W1": np.zeros((2, 2))})
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        Network.load(p)
    members = members_of(make_net().save(tmp_path / "net.npz"))
    meta = meta_of(members)
    meta["format"] = "something-else"
    rewrite(p, with_meta(members, meta, fix_digest=True))
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        Network.load(p)


def test_load_every_truncation_raises(tmp_path):
    """Cut the file at many lengths: each raises ModelFileError, none half-loads."""
    path = make_net(dims=(4, 8, 1)).save(tmp_path / "net.npz")
    data = open(path, "rb").read()
    cuts = sorted(set(np.linspace(0, len(data) - 1, 60).astype(int)) | {len(data) - 1, 1})
    bad = tmp_path / "cut.npz"
    for n in cuts:
        bad.write_bytes(data[:n])
        with pytest.raises(ModelFileError):
            Network.load(bad)


def test_load_bit_flips_raise_or_load_identical(tmp_path):
    """A flipped bit anywhere either raises ModelFileError or changes nothing that is loaded
    (e.g. a zip timestamp); it never yields a different model."""
    net = make_net(dims=(3, 4, 1))
    path = net.save(tmp_path / "net.npz")
    data = bytearray(open(path, "rb").read())
    rng = np.random.default_rng(0)
    positions = rng.choice(len(data), size=min(300, len(data)), replace=False)
    bad = tmp_path / "flip.npz"
    detected = 0
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        try:
            loaded = Network.load(bad)
        except ModelFileError:
            detected += 1
        else:
            assert_same_network(net, loaded)
    assert detected >= 0.7 * len(positions)  # measured: 236 of 300; the rest hit zip dates etc.


def test_load_wrong_format_version(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    for version, pattern in ((2, "upgrade chainrule"), (0, "reads version 1"),
                             ("1", "version '1'")):
        meta = meta_of(members)
        meta["format_version"] = version
        rewrite(path, with_meta(members, meta, fix_digest=True))
        with pytest.raises(ModelFileError, match=pattern):
            Network.load(path)


def test_load_tampered_metadata_fails_checksum(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    meta = meta_of(members)
    meta["config"]["activations"][0] = ["tanh", 0.0]
    rewrite(path, with_meta(members, meta, fix_digest=False))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        Network.load(path)


def test_load_tampered_array_fails_checksum(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    W = members["a0"].copy()
    W[0, 0] += 1e-12
    rewrite(path, {**members, "a0": W})
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        Network.load(path)


def test_load_tampered_array_shape_or_dtype(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    rewrite(path, {**members, "a0": members["a0"].T.copy()})
    with pytest.raises(ModelFileError, match="metadata says"):
        Network.load(path)
    rewrite(path, {**members, "a0": members["a0"].astype(np.float32)})
    with pytest.raises(ModelFileError, match="metadata says"):
        Network.load(path)


def test_load_missing_or_extra_member(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    rewrite(path, {k: v for k, v in members.items() if k != "a1"})
    with pytest.raises(ModelFileError, match=r"missing \['a1'\]"):
        Network.load(path)
    rewrite(path, {**members, "a99": np.zeros(3)})
    with pytest.raises(ModelFileError, match=r"unexpected \['a99'\]"):
        Network.load(path)
    rewrite(path, {k: v for k, v in members.items() if k != "__sha256__"})
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        Network.load(path)


def test_load_consistent_file_missing_a_parameter(tmp_path):
    """A self-consistent file (valid checksum) whose state lacks W2: a clear error."""
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    meta = meta_of(members)
    dropped = next(e for e in meta["arrays"] if e["name"] == "W2")
    meta["arrays"].remove(dropped)
    members.pop(dropped["member"])
    rewrite(path, with_meta(members, meta, fix_digest=True))
    with pytest.raises(ModelFileError, match=r"do not make a valid network.*missing \['W2'\]"):
        Network.load(path)


def test_load_consistent_file_with_bad_config(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    for key, value in (("layer_dims", [3, 5, 0, 1]), ("activations", "nope"),
                       ("loss", "hinge"), ("dtype", "int8"), ("bogus", 1)):
        meta = meta_of(members)
        meta["config"][key] = value
        rewrite(path, with_meta(members, meta, fix_digest=True))
        with pytest.raises(ModelFileError, match="do not make a valid network"):
            Network.load(path)


def test_load_never_unpickles(tmp_path):
    """An object array (a pickle) in the file is refused and its code never runs."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    with open(path, "wb") as f:
        np.savez(f, **{**members, "a0": evil})
    with pytest.raises(ModelFileError):
        Network.load(path)
    assert not marker.exists()


# --------------------------------------------------------------------------- killed mid-save

_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from chainrule import Network

    path, mode, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
    new = Network([40, 60, 1], seed=2, backend="numpy")

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if mode == "bytes":  # die after writing `arg` bytes of the temporary file
        real_fdopen = os.fdopen

        class Dying:
            def __init__(self, f):
                self.f, self.n = f, 0
            def write(self, b):
                b = bytes(b)
                if self.n + len(b) >= arg:
                    self.f.write(b[:arg - self.n])
                    self.f.flush()
                    die()
                self.n += len(b)
                return self.f.write(b)
            def __getattr__(self, name):
                return getattr(self.f, name)
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return self.f.__exit__(*exc)

        os.fdopen = lambda *a, **k: Dying(real_fdopen(*a, **k))
    elif mode == "before_replace":
        os.replace = lambda *a, **k: die()
    elif mode == "after_replace":
        real_replace = os.replace
        def replace_then_die(*a, **k):
            real_replace(*a, **k)
            die()
        os.replace = replace_then_die
    elif mode == "loop":  # save two models alternately until killed from outside
        other = Network([40, 60, 1], seed=3, backend="numpy")
        big = [Network([400, 500, 1], seed=s, backend="numpy") for s in (4, 5)]
        print("ready", flush=True)
        i = 0
        while True:
            big[i % 2].save(path)
            i += 1
    new.save(path)
    print("finished")
""")


def _run_kill_script(path, mode, arg=0):
    return subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(path), mode, str(arg)],
                          capture_output=True, text=True, timeout=120)


posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")


@posix_only
def test_save_killed_mid_write_keeps_previous_file(tmp_path):
    """SIGKILL at many points of writing the temporary file: the old model loads intact."""
    path = tmp_path / "net.npz"
    old = make_net(dims=(40, 60, 1), seed=1)
    old.save(path)
    new = make_net(dims=(40, 60, 1), seed=2)
    size = os.path.getsize(new.save(tmp_path / "reference.npz"))
    os.unlink(tmp_path / "reference.npz")
    kills = 0
    for n in [1, 30, 100, 1000, size // 3, size // 2, size - 100, size - 1]:
        result = _run_kill_script(path, "bytes", n)
        assert result.returncode == -signal.SIGKILL, result.stderr
        kills += 1
        assert_same_network(old, Network.load(path))
    assert kills == 8
    # Leftover temporaries are never read; the target is untouched.
    assert all(f == "net.npz" or f.startswith(".net.npz.") for f in os.listdir(tmp_path))


@posix_only
def test_save_killed_around_replace(tmp_path):
    path = tmp_path / "net.npz"
    old = make_net(dims=(40, 60, 1), seed=1)
    old.save(path)
    result = _run_kill_script(path, "before_replace")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert_same_network(old, Network.load(path))
    result = _run_kill_script(path, "after_replace")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert_same_network(make_net(dims=(40, 60, 1), seed=2), Network.load(path))
    result = _run_kill_script(path, "bytes", 10**9)  # no fault: completes
    assert result.returncode == 0 and "finished" in result.stdout, result.stderr


@posix_only
def test_save_killed_at_random_times_in_a_loop(tmp_path):
    """A process saving two large models alternately is SIGKILLed at random moments; the
    file always loads as exactly one of the two."""
    path = tmp_path / "net.npz"
    candidates = [Network([400, 500, 1], seed=s, backend="numpy") for s in (4, 5)]
    rng = np.random.default_rng(0)
    seen, mid_write = set(), 0
    for trial in range(6):
        before = set(os.listdir(tmp_path))
        proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(path), "loop", "0"],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 30
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(float(rng.uniform(0.0, 0.3)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        loaded = Network.load(path)
        matches = [i for i, c in enumerate(candidates)
                   if np.array_equal(c.parameters["W1"], loaded.parameters["W1"])]
        assert len(matches) == 1
        assert_same_network(candidates[matches[0]], loaded)
        seen.add(matches[0])
        mid_write += any(f.endswith(".tmp") for f in set(os.listdir(tmp_path)) - before)
    print(f"killed 6 times, {mid_write} while a temporary file was open; models seen {seen}")


# --------------------------------------------------------------------------- issue 15: save

def _trained(dtype="float64", optimizer="adam", **fit):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 20))
    Y = (rng.random((1, 20)) > 0.5).astype(float)
    net = make_net(dtype=dtype)
    net.fit(X, Y, epochs=3, optimizer=optimizer, progress=False, **fit)
    return net


@pytest.mark.parametrize("spoil", ["W1 nan", "b2 inf", "moment nan", "moment negative",
                                   "best params nan", "epoch negative"])
def test_save_refuses_a_model_load_would_refuse_and_keeps_the_old_file(tmp_path, spoil,
                                                                       monkeypatch):
    path = tmp_path / "net.npz"
    old = make_net(seed=7)
    old.save(path)
    net = _trained(early_stopping=True, validation_fraction=0.25)
    state = net.get_state()
    if spoil == "W1 nan":
        state["W1"][1, 2] = np.nan
    elif spoil == "b2 inf":
        state["b2"][0, 0] = -np.inf
    elif spoil == "moment nan":
        state["opt/v_dW2"][0, 0] = np.nan
    elif spoil == "moment negative":
        state["opt/s_db1"][0, 0] = -1.0
    elif spoil == "best params nan":
        state["train/best/W1"][:] = np.nan
    else:
        state["train/epoch"] = np.array(-5)
    # The model's state as a bad update or a bad set_state would leave it (save reads the
    # model through get_state).
    monkeypatch.setattr(net, "get_state", lambda: state)
    with pytest.raises(chainrule.InputError, match="refusing to save .* previous file is intact"):
        net.save(path)
    assert_same_network(old, Network.load(path))
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def test_save_keeps_a_finite_trained_model_with_infinite_best_cost(tmp_path):
    """train/best is inf until the first validation record: that is a valid state."""
    net = _trained()
    assert net.get_state()["train/best"] == np.inf
    assert_same_network(net, Network.load(net.save(tmp_path / "net.npz")))


def test_save_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real" / "model.npz"
    target.parent.mkdir()
    make_net(seed=1).save(target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    chain = tmp_path / "chain.npz"
    chain.symlink_to(link)
    net = make_net(seed=2)
    net.save(chain)
    assert chain.is_symlink() and link.is_symlink()
    assert os.readlink(link) == str(target)
    assert_same_network(net, Network.load(target))
    assert sorted(os.listdir(target.parent)) == ["model.npz"]  # the temporary file went there


def test_save_through_a_dangling_symlink_creates_the_target(tmp_path):
    target = tmp_path / "new.npz"
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    net = make_net()
    net.save(link)
    assert link.is_symlink()
    assert_same_network(net, Network.load(target))
    broken = tmp_path / "broken.npz"
    broken.symlink_to(tmp_path / "no_dir" / "x.npz")
    with pytest.raises(ModelFileError, match="does not exist"):
        net.save(broken)


def test_save_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "net.npz"
    make_net().save(path)
    os.chmod(path, 0o640)
    make_net(seed=3).save(path)
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_save_refuses_a_directory(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        make_net().save(tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_save_refuses_a_fifo_and_leaves_it(tmp_path):
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="FIFO, not a regular file"):
        make_net().save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]


def test_save_refuses_a_device_node(tmp_path):
    import stat

    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (OSError, AttributeError):
        dev = "/dev/null"  # not root: the system's own device, which must stay untouched
    with pytest.raises(ModelFileError, match="device, not a regular file"):
        make_net().save(dev)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


@pytest.mark.parametrize("path", [5, None, ["a.npz"]])
def test_save_and_load_refuse_a_path_that_is_not_a_path(path):
    with pytest.raises(chainrule.InputError, match="must be a file path"):
        make_net().save(path)
    with pytest.raises(chainrule.InputError, match="must be a file path"):
        Network.load(path)


# --------------------------------------------------------------------------- issue 15: load

def _crafted(tmp_path, change_meta=None, entries=None, net=None):
    """A saved trained model with metadata/arrays changed and the checksum made valid."""
    net = net or _trained()
    path = net.save(tmp_path / "net.npz")
    members = members_of(path)
    meta = meta_of(members)
    for name, value in (entries or {}).items():
        e = next(e for e in meta["arrays"] if e["name"] == name)
        a = np.asarray(value)
        members[e["member"]] = a
        e["dtype"], e["shape"] = a.dtype.str, list(a.shape)
    if change_meta:
        change_meta(meta)
    fix = isinstance(meta.get("arrays"), list) and all(
        isinstance(e, dict) and isinstance(e.get("member"), str) and e["member"] in members
        for e in meta["arrays"])
    rewrite(path, with_meta(members, meta, fix_digest=fix))
    return path


def _rng_json(state):
    return np.frombuffer(json.dumps(state).encode(), np.uint8)


_PCG = {"bit_generator": "PCG64", "state": {"state": 1, "inc": 1}, "has_uint32": 0,
        "uinteger": 0}


@pytest.mark.parametrize("name, change, entries, words", [
    ("generator state -1", None,
     {"train/rng": _rng_json({**_PCG, "state": {"state": -1, "inc": 1}})},
     "train/rng' is not a valid PCG64 state"),
    ("generator state 2**200", None,
     {"train/rng": _rng_json({**_PCG, "state": {"state": 2 ** 200, "inc": 1}})},
     "train/rng' is not a valid PCG64 state"),
    ("generator a list", None, {"train/rng": _rng_json([1, 2])}, "must be a generator state"),
    ("another bit generator", None, {"train/rng": _rng_json({**_PCG, "bit_generator": "MT"})},
     "expected 'PCG64'"),
    ("history a list", lambda m: m.update(history=[1, 2]), None, "history must be a dict"),
    ("history a string", lambda m: m.update(history="abc"), None, "history must be a dict"),
    ("history cost a string", lambda m: m.update(history={"epoch": [0], "cost": "x"}), None,
     "'cost' must be a list"),
    ("history with a dict", lambda m: m.update(history={"epoch": [0], "cost": [{}]}), None,
     "expected numbers"),
    ("history longer than its epochs",
     lambda m: m.update(history={"epoch": [0], "cost": [1.0], "lr": [1.0, 2.0]}), None,
     "only 1 epochs"),
    ("history costs and epochs differ",
     lambda m: m.update(history={"epoch": [0, 1], "cost": [1.0]}), None, "2 epochs but 1"),
    ("history epochs negative", lambda m: m.update(history={"epoch": [-1], "cost": [1.0]}),
     None, "integers >= 0"),
    ("table a string", lambda m: m.update(arrays="abc"), None, "array table is malformed"),
    ("table shape a string", lambda m: m["arrays"][0].update(shape="3"), None,
     "array table is malformed"),
    ("table name an int", lambda m: m["arrays"][0].update(name=5), None,
     "array table is malformed"),
    ("table repeats a name", lambda m: m["arrays"].append(dict(m["arrays"][0])), None,
     "repeats a name"),
    ("config a list", lambda m: m.update(config=[1]), None, "no configuration"),
    ("layer_dims [3, 2**40, 1]", lambda m: m["config"].update(layer_dims=[3, 2 ** 40, 1]),
     None, r"keys do not match a 2-layer network"),
    ("layer_dims [3, 2**40, 4, 1]",
     lambda m: m["config"].update(layer_dims=[3, 2 ** 40, 4, 1]), None,
     r"W1 has shape \(5, 3\)"),
    ("layer_dims a string", lambda m: m["config"].update(layer_dims="351"), None,
     "layer_dims must be a list"),
    ("opt/t = -1", None, {"opt/t": np.array(-1)}, "'opt/t' is -1"),
    ("opt/t a float", None, {"opt/t": np.array(2.5)}, "'opt/t' must be an integer"),
    ("train/epoch = -5", None, {"train/epoch": np.array(-5)}, "'train/epoch' is -5"),
    ("train/epoch two numbers", None, {"train/epoch": np.array([1, 2])}, "one integer"),
    ("train/best NaN", None, {"train/best": np.array(np.nan)}, "best validation cost"),
    ("NaN moment", None, {"opt/v_dW1": np.full((5, 3), np.nan)}, "opt/v_dW1 contains NaN"),
    ("negative second moment", None, {"opt/s_dW1": -np.ones((5, 3))},
     "average of squared gradients"),
    ("moment of the wrong shape", None, {"opt/v_dW1": np.zeros((3, 5))}, "shape"),
    ("W1 NaN", None, {"W1": np.full((5, 3), np.nan)}, "W1 contains NaN"),
    ("optimizer config a list", None, {"train/optimizer": _rng_json([1])},
     "optimiser configuration"),
    ("signature a number", None, {"train/signature": _rng_json(5)}, "fingerprint"),
    ("json not utf-8", None, {"train/signature": np.frombuffer(b"\xff\xfe", np.uint8)},
     "not readable JSON"),
    ("format_version true", lambda m: m.update(format_version=True), None,
     "file format version True"),
])
def test_load_crafted_file_with_valid_checksum_raises_model_file_error(tmp_path, name, change,
                                                                       entries, words):
    path = _crafted(tmp_path, change, entries)
    with pytest.raises(ModelFileError, match=words):
        Network.load(path)


def test_load_checks_layer_sizes_against_the_file_before_building_the_network(tmp_path,
                                                                             monkeypatch):
    """A 20000 x 20000 layer declared in a small file: refused before 3.2 GB are reserved."""
    path = _crafted(tmp_path, lambda m: m["config"].update(
        layer_dims=[3, 20000, 20000, 1], activations=[["relu", 0.0]] * 2 + [["sigmoid", 0.0]]))
    monkeypatch.setattr(Network, "from_config",
                        classmethod(lambda cls, c: pytest.fail("the network was built")))
    with pytest.raises(ModelFileError, match=r"W1 has shape \(5, 3\)"):
        Network.load(path)


def _npy(a):
    import io as stdio

    buf = stdio.BytesIO()
    np.lib.format.write_array(buf, a)
    return buf.getvalue()


def test_load_refuses_a_zip_that_inflates_before_reading_it(tmp_path):
    """An 800 KB file whose member inflates to 800 MB: refused from the zip directory."""
    import tracemalloc
    import zipfile

    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in members.items():
            z.writestr(k + ".npy", _npy(v))
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
        header["shape"] = (100_000_000,)
        with z.open("a99.npy", "w", force_zip64=True) as f:
            import io as stdio
            buf = stdio.BytesIO()
            np.lib.format.write_array_header_1_0(buf, header)
            f.write(buf.getvalue())
            for _ in range(800):
                f.write(bytes(1 << 20))
    assert os.path.getsize(path) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="members declare .* bytes but the file has"):
            Network.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6


def test_load_refuses_a_member_whose_header_declares_more_than_it_holds(tmp_path):
    import zipfile

    path = make_net().save(tmp_path / "net.npz")
    members = members_of(path)
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (2 ** 40,)
    import io as stdio
    buf = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as z:
        for k, v in members.items():
            z.writestr(k + ".npy", _npy(v))
        z.writestr("a99.npy", buf.getvalue() + bytes(64))
    with pytest.raises(ModelFileError, match=r"declares shape \(1099511627776,\).* but holds 64"):
        Network.load(path)


def test_load_refuses_duplicate_or_foreign_zip_members(tmp_path):
    import warnings
    import zipfile

    path = make_net().save(tmp_path / "net.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("a0.npy", _npy(np.zeros((5, 3))))
    with pytest.raises(ModelFileError, match="not distinct .npy arrays"):
        Network.load(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", b"hello")
    with pytest.raises(ModelFileError, match="not distinct .npy arrays"):
        Network.load(path)


def test_load_a_directory_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        Network.load(tmp_path)


def test_load_with_an_unknown_backend_blames_the_argument(tmp_path):
    path = make_net().save(tmp_path / "net.npz")
    with pytest.raises(chainrule.InputError, match=r"load\(backend='gpu'\): unknown backend") as e:
        Network.load(path, backend="gpu")
    assert not isinstance(e.value, ModelFileError)
    assert Network.load(path, backend="NumPy").backend == "numpy"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_load_trained_checkpoint_round_trips_every_entry(tmp_path, dtype):
    """The stricter load still takes everything fit writes (early stopping included)."""
    net = _trained(dtype=dtype, early_stopping=True, validation_fraction=0.25)
    assert "train/best/W1" in net.get_state()
    assert_same_network(net, Network.load(net.save(tmp_path / "net.npz")))


def test_check_save_path_is_the_rule_save_applies(tmp_path):
    assert crio.check_save_path(tmp_path / "new.npz") == str(tmp_path / "new.npz")
    with pytest.raises(ModelFileError, match="is a directory"):
        crio.check_save_path(tmp_path)
    with pytest.raises(ModelFileError, match="does not exist"):
        crio.check_save_path(tmp_path / "no" / "x.npz")
    with pytest.raises(chainrule.InputError, match="must be a file path"):
        crio.check_save_path(5)
    assert os.listdir(tmp_path) == []  # checking writes nothing
