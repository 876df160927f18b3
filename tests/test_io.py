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
