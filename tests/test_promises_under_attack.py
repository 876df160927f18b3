"""Issue 20 §2: promises broken under attack, each pinned by a test that failed before the fix.

Classes: updates that must not be applied, resume, files, hangs, silent acceptance, raw
tracebacks instead of messages. The probe script (tools/probe_faults.py) tries many more
instances of each class; these are the reproductions of the issue.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from chainrule import ChainruleError, Network
from chainrule.errors import InputError, ModelFileError, NonFiniteError


def _data(n_x=3, m=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    return X, (rng.random((1, m)) > 0.5).astype(float)


def _snapshot(net):
    return {k: v.copy() for k, v in net.parameters.items()}


def _same(net, before):
    return all(np.array_equal(before[k], v) for k, v in net.parameters.items())


# ------------------------------------------------------------------ updates not applied
def test_step_with_an_infinite_cost_is_not_applied(backend, dtype):
    """README: "a step with a non-finite cost is not applied, step too". An identity output
    of 1e160 (float64) or 1e20 (float32) squares to inf; its gradient is finite."""
    X, _ = _data(m=8)
    Y = np.zeros((1, 8))
    net = Network([3, 4, 1], hidden="identity", output="identity", backend=backend,
                  dtype=dtype, seed=0)
    net.parameters["b2"] = np.full((1, 1), 1e160 if dtype == np.float64 else 1e20)
    before = _snapshot(net)
    tiny = 1e-300 if dtype == np.float64 else 1e-30
    with pytest.raises(NonFiniteError, match="cost"):
        net.step(X, Y, tiny)
    assert _same(net, before)


@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
def test_float32_engines_judge_the_cost_in_float32(backend, optimizer):
    """A float32 batch whose cost overflows float32 (but not float64) is refused by every
    engine, as the reference refuses it; the compiled engines used to apply it."""
    X, _ = _data()
    Y = np.zeros((1, 16))
    net = Network([3, 4, 1], hidden="identity", output="identity", backend=backend,
                  dtype="float32", seed=0)
    net.parameters["b2"] = np.full((1, 1), 1.5e19)  # 16 x (1.5e19)**2 / 2 > 3.4e38
    before = _snapshot(net)
    with pytest.raises(NonFiniteError, match="cost"), np.errstate(over="ignore"):
        net.fit(X, Y, epochs=3, learning_rate=1e-30, optimizer=optimizer, progress=False)
    assert _same(net, before)


def test_float32_engines_skip_a_batch_whose_l2_term_overflows(backend):
    X, Y = _data()
    net = Network([3, 4, 1], backend=backend, dtype="float32", seed=0)
    net.parameters["W1"] = np.full((4, 3), 1e19)  # sum of squares 1.2e39 > float32 max
    before = _snapshot(net)
    with np.errstate(over="ignore"):
        net.fit(X, Y, epochs=3, learning_rate=1e-30, progress=False, lambd=1.0,
                on_nonfinite="skip")
    assert net.history_["skipped"][-1] == 3
    assert _same(net, before)


def test_parameters_update_is_all_or_nothing():
    net = Network([3, 4, 1], backend="numpy", seed=0)
    before = _snapshot(net)
    with pytest.raises(InputError):
        net.parameters.update({"W1": np.ones((4, 3)), "b1": np.full((4, 1), np.nan)})
    assert _same(net, before)
    net.parameters.update({"W1": np.ones((4, 3)), "b1": np.zeros((4, 1))})
    assert (net.parameters["W1"] == 1).all()


def test_parameters_in_place_or_is_validated():
    net = Network([3, 4, 1], backend="numpy", seed=0)
    before = _snapshot(net)
    d = net.parameters
    with pytest.raises(ChainruleError):
        d |= {"W1": np.ones((3, 4))}  # transposed
    with pytest.raises(ChainruleError):
        d |= {"W9": np.ones((3, 4))}
    assert _same(net, before)
    d |= {"W1": np.ones((4, 3), dtype=np.int64)}
    W1 = net.parameters["W1"]
    assert W1.dtype == np.float64 and (W1 == 1).all()
    # what is shown is what is computed: the packed buffer holds the new W1
    assert np.shares_memory(W1, net.parameters._flat)
    X, _ = _data()
    np.testing.assert_allclose(net.forward(X)[1][0][0][1], np.ones((4, 3)))


def test_a_failed_warm_start_leaves_the_network_untrained():
    sk = pytest.importorskip("chainrule.sklearn")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    est = sk.NetworkClassifier(hidden_layer_sizes=(4,), max_iter=3, warm_start=True,
                               random_state=0, backend="numpy")
    est.fit(X, y)
    before = _snapshot(est.network_)
    epochs = est.network_.epochs_trained_

    class Stop(Exception):
        pass

    real_fit = Network.fit

    def fit_then_fail(self, *args, **kwargs):  # fails after a partial epoch was applied
        kwargs["epochs"] = 1
        real_fit(self, *args, **kwargs)
        raise Stop

    Network.fit = fit_then_fail
    try:
        with pytest.raises(Stop):
            est.fit(X, y)
    finally:
        Network.fit = real_fit
    assert _same(est.network_, before)
    assert est.network_.epochs_trained_ == epochs


# ------------------------------------------------------------------ silent acceptance
@pytest.mark.parametrize("name", ["shuffle", "early_stopping", "progress", "print_cost",
                                  "restore_best", "full_score", "continue_training"])
@pytest.mark.parametrize("value", ["no", 0, None, "False"])
def test_bool_options_refuse_non_bools(name, value):
    X, Y = _data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    before = _snapshot(net)
    with pytest.raises(InputError, match=f"{name} must be True or False"):
        net.fit(X, Y, epochs=1, **{"progress": False, name: value})
    assert _same(net, before)


@pytest.mark.parametrize("opt", ["rmsprop", "adam"])
def test_eps_inside_sqrt_refuses_a_string(opt):
    from chainrule import optim

    cls = {"rmsprop": optim.RMSprop, "adam": optim.Adam}[opt]
    with pytest.raises(InputError, match="eps_inside_sqrt"):
        cls(eps_inside_sqrt="no")
    assert cls(eps_inside_sqrt=np.True_).eps_inside_sqrt is True


# ------------------------------------------------------------------ resume
class _Bounded:
    """Fails the test instead of looping forever (the bug: a resume that never ends)."""

    def __init__(self, limit=50, stop_at=None):
        self.limit, self.stop_at = limit, stop_at

    def on_epoch_end(self, net, epoch, logs):
        assert epoch <= self.limit, "the resumed fit does not end"
        return self.stop_at is not None and epoch >= self.stop_at


@pytest.mark.parametrize("mini_batch_size", [None, 8])
def test_resume_of_a_continued_fit_ends_where_the_uninterrupted_one_does(tmp_path,
                                                                        mini_batch_size):
    X, Y = _data(m=40)
    ck = tmp_path / "c.npz"
    kw = dict(progress=False, mini_batch_size=mini_batch_size, cost_every=1)
    ref = Network([3, 4, 1], backend="numpy", seed=0)
    ref.fit(X, Y, epochs=3, **kw)
    ref.fit(X, Y, epochs=6, continue_training=True, **kw)
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.fit(X, Y, epochs=3, **kw)
    net.fit(X, Y, epochs=6, continue_training=True, checkpoint=ck, callbacks=[_Bounded(stop_at=5)],
            **kw)
    assert net.epochs_trained_ < 9
    again = Network([3, 4, 1], backend="numpy", seed=0)
    again.fit(X, Y, epochs=6, continue_training=True, checkpoint=ck, resume=ck,
              callbacks=[_Bounded()], **kw)
    assert again.epochs_trained_ == ref.epochs_trained_ == 9
    for k, v in ref.parameters.items():
        np.testing.assert_array_equal(again.parameters[k], v)


def test_relaunching_an_early_stopped_run_trains_nothing_more(tmp_path):
    X, Y = _data(m=40)
    ck = tmp_path / "c.npz"
    kw = dict(epochs=200, progress=False, mini_batch_size=8, early_stopping=True, patience=1,
              min_delta=10.0, validation_fraction=0.25, checkpoint=ck)
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.fit(X, Y, **kw)
    assert net.stop_reason_ == "early_stopping"
    done, params = net.epochs_trained_, _snapshot(net)
    for _ in range(3):
        again = Network([3, 4, 1], backend="numpy", seed=0)
        again.fit(X, Y, resume=ck, **kw)
        assert again.epochs_trained_ == done
        assert again.stop_reason_ == "early_stopping"
        assert _same(again, params)


def test_a_refused_resume_changes_nothing_not_even_the_seed(tmp_path):
    X, Y = _data(m=40)
    ck = tmp_path / "c.npz"
    Network([3, 4, 1], backend="numpy", seed=0).fit(X, Y, epochs=2, progress=False,
                                                     checkpoint=ck)
    net = Network([3, 4, 1], backend="numpy", seed=5)
    net.fit(X, Y, epochs=1, progress=False)
    before, state = _snapshot(net), net.train_state_
    with pytest.raises(InputError, match="other arguments or data"):
        net.fit(X * 2, Y, epochs=2, progress=False, checkpoint=ck, resume=ck)
    assert net.seed == 5 and net.train_state_ is state and _same(net, before)


def test_the_fingerprint_covers_every_label(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 9000))
    Y = (X[:1] > 0).astype(float)
    ck = tmp_path / "c.npz"
    Network([2, 3, 1], backend="numpy", seed=0).fit(X, Y, epochs=1, progress=False,
                                                     checkpoint=ck)
    for column in (1, 4500, 8998):  # not among evenly spaced samples
        Y2 = Y.copy()
        Y2[0, column] = 1 - Y2[0, column]
        with pytest.raises(InputError, match="other arguments or data"):
            Network([2, 3, 1], backend="numpy", seed=0).fit(
                X, Y2, epochs=1, progress=False, checkpoint=ck, resume=ck)
    Network([2, 3, 1], backend="numpy", seed=0).fit(X, Y, epochs=1, progress=False,
                                                     checkpoint=ck, resume=ck)


# ------------------------------------------------------------------ files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_load_refuses_a_fifo_before_opening_it(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: refused by its type, in a
    child process so that the old behaviour fails the test instead of hanging it."""
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    code = ("import sys, chainrule\n"
            "from chainrule.errors import ModelFileError\n"
            "for call in (lambda: chainrule.load(sys.argv[1]),\n"
            "             lambda: chainrule.Network([1, 1]).fit([[0.0, 1.0]], [[0, 1]],\n"
            "                 epochs=1, progress=False, resume=sys.argv[1])):\n"
            "    try:\n"
            "        call()\n"
            "    except ModelFileError as exc:\n"
            "        assert 'FIFO' in str(exc), exc\n"
            "    else:\n"
            "        raise SystemExit('accepted')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_load_refuses_devices(path):
    """In a child whose address space is limited: reading /dev/zero used to fill memory."""
    if not os.path.exists(path):
        pytest.skip(f"no {path} here")
    resource = pytest.importorskip("resource")
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
            "import chainrule\n"
            "from chainrule.errors import ModelFileError\n"
            "try:\n"
            "    chainrule.load(sys.argv[1])\n"
            "except ModelFileError as exc:\n"
            "    assert 'a device' in str(exc), exc\n"
            "else:\n"
            "    raise SystemExit('accepted')\n")
    proc = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CHAINRULE_BACKEND": "numpy"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_load_refuses_a_directory(tmp_path):
    with pytest.raises(ModelFileError, match="a directory"):
        Network.load(tmp_path)


def test_save_refuses_a_trailing_slash(tmp_path):
    net = Network([3, 4, 1], backend="numpy")
    with pytest.raises(ModelFileError, match="ends with a slash"):
        net.save(str(tmp_path / "x.npz") + "/")
    assert os.listdir(tmp_path) == []


def test_save_does_not_replace_a_write_protected_file(tmp_path):
    p = tmp_path / "x.npz"
    Network([3, 4, 1], backend="numpy", seed=1).save(p)
    os.chmod(p, 0o444)
    before = p.read_bytes()
    with pytest.raises(ModelFileError, match="write-protected"):
        Network([3, 4, 1], backend="numpy", seed=2).save(p)
    assert p.read_bytes() == before and stat.S_IMODE(os.stat(p).st_mode) == 0o444


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="giving a file to another user needs root")
def test_save_does_not_replace_another_users_file(tmp_path):
    p = tmp_path / "x.npz"
    Network([3, 4, 1], backend="numpy", seed=1).save(p)
    os.chmod(p, 0o644)
    os.chown(p, 65534, 65534)
    before = p.read_bytes()
    with pytest.raises(ModelFileError, match="another user"):
        Network([3, 4, 1], backend="numpy", seed=2).save(p)
    assert p.read_bytes() == before and os.stat(p).st_uid == 65534


@pytest.mark.parametrize("key, value", [("opt/t", 2 ** 63 - 1), ("opt/t", 2 ** 63),
                                        ("train/epoch", 2 ** 63), ("train/steps", 2 ** 62 + 1),
                                        ("train/skipped", 2 ** 64 - 1)])
def test_counters_beyond_int64_are_refused_clearly(tmp_path, key, value):
    X, Y = _data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.fit(X, Y, epochs=1, optimizer="adam", progress=False)
    before, state = _snapshot(net), net.get_state()
    state[key] = np.array(value, dtype=np.uint64)
    with pytest.raises(InputError, match="2\\*\\*62"):
        net.set_state(state)
    assert _same(net, before)


# ------------------------------------------------------------------ hangs
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_fork_during_a_numba_compilation_does_not_hang_the_child():
    """Another thread holds numba's compiler lock (as during a first numba fit) when this
    one forks: the child must still be able to compile (it used to wait forever)."""
    pytest.importorskip("chainrule.backends.numba")
    import time

    import numba
    from numba.core.compiler_lock import global_compiler_lock

    held = threading.Event()

    def compiling():
        with global_compiler_lock:
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=compiling)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:  # the child: compile something small, then leave at once
        try:
            ok = numba.njit(lambda x: x + 1)(1) == 2
        finally:
            os._exit(0 if ok else 3)
    thread.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on numba's compiler lock")


def test_a_callback_returning_numpy_true_stops():
    X, Y = _data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    net.fit(X, Y, epochs=50, cost_every=1, progress=False,
            callbacks=[lambda n, e, logs: np.float64(logs["cost"]) > -1])  # np.True_
    assert net.stop_reason_ == "callback" and net.epochs_trained_ == 0


def test_a_callback_returning_something_else_is_refused():
    X, Y = _data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    with pytest.raises(InputError, match="return True to stop"):
        net.fit(X, Y, epochs=5, cost_every=1, progress=False, callbacks=[lambda n, e, l: "stop"])


@pytest.mark.parametrize("where", ["X", "Y", "sample_weight"])
def test_masked_arrays_are_refused_not_unmasked(where):
    X, Y = _data()
    args = dict(X=X, Y=Y, sample_weight=np.ones(16))
    a = np.ma.masked_array(args[where], mask=np.zeros(np.shape(args[where]), bool))
    a.mask.flat[3] = True
    args[where] = a
    net = Network([3, 4, 1], backend="numpy", seed=0)
    with pytest.raises(InputError, match="masked array with 1 masked"):
        net.fit(args["X"], args["Y"], sample_weight=args["sample_weight"], epochs=1,
                progress=False)
    a.mask.flat[3] = False  # nothing masked: the data as they are
    net.fit(X if where != "X" else a, Y if where != "Y" else a, epochs=1, progress=False)


def test_decay_interval_without_decay_rate_is_refused():
    X, Y = _data()
    with pytest.raises(InputError, match="decay_rate"):
        Network([3, 4, 1], backend="numpy").fit(X, Y, epochs=2, progress=False,
                                                decay_interval=3)


@pytest.mark.parametrize("fraction", [5.0, -0.5, float("nan"), 0.3])
def test_validation_fraction_is_checked_with_validation_data(fraction):
    X, Y = _data()
    with pytest.raises(InputError, match="validation_fraction"):
        Network([3, 4, 1], backend="numpy").fit(X, Y, epochs=2, progress=False,
                                                validation_data=(X, Y),
                                                validation_fraction=fraction)


def test_a_nested_fit_from_a_callback_is_refused():
    X, Y = _data()
    net = Network([3, 4, 1], backend="numpy", seed=0)
    seen = []

    def nested(n, epoch, logs):
        for call in (lambda: n.fit(X, Y, epochs=1, progress=False),
                     lambda: n.step(X, Y, 0.1)):
            try:
                call()
            except InputError as exc:
                seen.append(str(exc))
        return True

    net.fit(X, Y, epochs=3, cost_every=1, progress=False, callbacks=[nested])
    assert len(seen) == 2 and "inside its own fit" in seen[0] and "while fit runs" in seen[1]
    net.fit(X, Y, epochs=1, progress=False)  # and fit works again afterwards


def test_two_threads_fitting_one_network_one_is_refused():
    X, Y = _data(m=64)
    net = Network([3, 4, 1], backend="numpy", seed=0)
    inside, release, errors = threading.Event(), threading.Event(), []

    def wait_inside(n, epoch, logs):
        inside.set()
        release.wait(30)

    def first():
        net.fit(X, Y, epochs=2, cost_every=1, progress=False, callbacks=[wait_inside])

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(30)
    try:
        net.fit(X, Y, epochs=1, progress=False)
    except InputError as exc:
        errors.append(str(exc))
    finally:
        release.set()
        thread.join()
    assert errors and "another thread" in errors[0]


@pytest.mark.parametrize("loader", ["load_planar_dataset", "make_moons", "make_circles"])
def test_datasets_honour_m_or_refuse(loader):
    from chainrule import datasets

    fn = getattr(datasets, loader)
    for m in (3, 7, 2):
        X, Y = fn(m=m)
        assert X.shape == (2, m) and Y.shape == (1, m) and set(np.unique(Y)) == {0, 1}
    for m in (1, 0, -4, 2.5, "400"):
        with pytest.raises(InputError, match="m must be"):
            fn(m=m)


def _doctor(tmp_path, source, *argv, timeout=120):
    path = tmp_path / "learner.py"
    path.write_text(source)
    return subprocess.run([sys.executable, "-m", "chainrule", "doctor", str(path), *argv],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CHAINRULE_BACKEND": "numpy"})


_FORKS = '''
import os, time
import numpy as np
def linear_backward(dZ, cache):
    if os.fork() == 0:
        {setsid}
        while True:
            time.sleep(0.1)
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return W.T @ dZ, dZ @ A_prev.T / m, np.sum(dZ, axis=1, keepdims=True) / m
'''


@pytest.mark.skipif(not hasattr(os, "fork") or not os.path.isdir("/proc"),
                    reason="needs fork and /proc")
@pytest.mark.parametrize("setsid", ["pass", "os.setsid()"])
def test_learner_code_that_forks_does_not_defeat_the_doctors_time_limit(tmp_path, setsid):
    """The forked copies kept the output pipes open (the doctor waited for ever), and
    ran the rest of the diagnosis a second time; now they are stopped and killed."""
    proc = _doctor(tmp_path, _FORKS.replace("{setsid}", setsid), "--time-limit", "2",
                   timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("clean bill") == 1
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "learner.py")],
                          capture_output=True, text=True)
    assert not left.stdout.strip(), "forked processes of the learner's code are still running"


def test_a_failure_of_the_doctors_own_code_is_not_blamed_on_the_learner(tmp_path):
    source = '''
import numpy as np
def linear_backward(dZ, cache):
    import chainrule.explain.doctor as d
    d._add_source_hints = None  # breaks the doctor after this call
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return W.T @ dZ, dZ @ A_prev.T / m, np.sum(dZ, axis=1, keepdims=True) / m
'''
    proc = _doctor(tmp_path, source)
    assert proc.returncode == 1
    assert "your code ended the process" not in proc.stdout
    assert "a bug in chainrule, not in your code" in proc.stdout


@pytest.mark.parametrize("argv, words", [
    (["--activations", ","], "--activations"),
    (["--time-limit", "1e300"], "--time-limit"),
    (["--time-limit", "inf"], "--time-limit"),
    (["--time-limit", "nan"], "--time-limit"),
])
def test_doctor_refuses_bad_options_with_a_message(tmp_path, argv, words):
    proc = _doctor(tmp_path, "def linear_backward(dZ, cache):\n    return None\n", *argv)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def _returns_none(dA, cache, activation):
    return None


@pytest.mark.parametrize("kwargs, words", [
    (dict(activations=()), "activations is empty"),
    (dict(activations="relu"), "list of activation names"),
    (dict(activations=["relux"]), "unknown activation"),
    (dict(timeout=float("inf")), "timeout"),
    (dict(timeout=float("nan")), "timeout"),
    (dict(timeout=0), "timeout"),
    (dict(timeout=True), "timeout"),
])
def test_diagnose_refuses_what_would_check_nothing_or_wrongly(kwargs, words):
    import signal

    from chainrule.explain import diagnose

    handler = signal.getsignal(signal.SIGALRM)
    with pytest.raises(InputError, match=words):
        diagnose(_returns_none, kind="linear_activation_backward", **kwargs)
    assert signal.getsignal(signal.SIGALRM) is handler


def test_the_alarm_handler_is_restored_even_when_the_timer_fails():
    import signal

    from chainrule.explain.sandbox import _alarm

    handler = signal.getsignal(signal.SIGALRM)
    with pytest.raises((OverflowError, ValueError, OSError)):
        with _alarm(1e300):
            pass
    assert signal.getsignal(signal.SIGALRM) is handler


@pytest.mark.parametrize("kwargs, words", [
    (dict(epsilon=0), "epsilon"), (dict(epsilon=float("nan")), "epsilon"),
    (dict(epsilon=-1e-7), "epsilon"), (dict(threshold=float("nan")), "threshold"),
    (dict(threshold=-1), "threshold"), (dict(threshold=0), "threshold"),
    (dict(worst=-1), "worst"), (dict(max_entries=0), "max_entries"),
    (dict(timeout=float("inf")), "timeout"),
])
def test_gradient_check_validates_its_arguments(kwargs, words):
    from chainrule.explain import gradient_check

    X, Y = _data(m=5)
    with pytest.raises(InputError, match=words):
        gradient_check(Network([3, 4, 1], hidden="tanh", backend="numpy"), X, Y, **kwargs)


# ------------------------------------------------------------------ messages, not tracebacks
_Y16 = np.full((1, 16), 1e10)


@pytest.mark.parametrize("net_kw, fit_kw, cause", [
    ({}, dict(lambd=1e306), "lower lambd"),
    (dict(output="identity"), dict(Y=np.full((1, 16), 1e200)), "scale the labels"),
    (dict(output="identity"), dict(Y=_Y16, sample_weight=np.r_[np.full(15, 1e-300), 1e300]),
     "example weights"),
])
def test_nonfinite_advice_names_the_cause(backend, net_kw, fit_kw, cause):
    X, Y = _data()
    fit_kw = dict(fit_kw)
    Y = fit_kw.pop("Y", Y)
    net = Network([3, 4, 4, 1], backend=backend, seed=0, **net_kw)
    with pytest.raises(NonFiniteError) as info, np.errstate(all="ignore"):
        net.fit(X, Y, epochs=3, learning_rate=1e-3, progress=False, **fit_kw)
    assert cause in str(info.value) and "lower the learning rate" not in str(info.value)


def test_keep_prob_whose_inverse_overflows_is_refused(backend):
    X, Y = _data()
    with pytest.raises(InputError, match="1/keep_prob"):
        Network([3, 4, 4, 1], backend=backend, dtype="float32").fit(
            X, Y, epochs=2, keep_prob=1e-45, progress=False)


def test_scipy_sparse_input_gets_a_message_naming_toarray():
    """Where a sparse matrix is not taken (labels, forward, step: fit with mini-batches,
    predict and score take a sparse X, tests/test_sparse.py), the message says what to do."""
    sparse = pytest.importorskip("scipy.sparse")
    X, Y = _data()
    net = Network([3, 4, 1], backend="numpy")
    for call in (lambda: net.forward(sparse.csr_matrix(X)),
                 lambda: net.step(sparse.csc_matrix(X), Y, 0.1),
                 lambda: net.fit(X, sparse.csr_matrix(Y), epochs=1, progress=False)):
        with pytest.raises(InputError, match=r"scipy.sparse .*toarray\(\).*fit .*predict"):
            call()


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "chainrule", *argv], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CHAINRULE_BACKEND": "numpy",
                                                       "MPLBACKEND": "Agg"})


@pytest.mark.parametrize("argv, words", [
    (["bench", "--repeats", "-1"], "--repeats"),
    (["bench", "--repeats", "0"], "--repeats"),
    (["bench", "-o", "/missing-dir/x.md", "--quick"], "does not exist"),
    (["jacobians", "--m", "-1"], "--m"),
    (["jacobians", "--m", "100000000000"], "--m"),
    (["jacobians", "--seed", "-1"], "--seed"),
    (["doctor", "x.py", "--time-limit", "1e300"], "--time-limit"),
    (["train", "--m", "1e20"], "--m"),
    (["train", "--epochs", str(2 ** 70), "--no-progress"], "epochs"),
    (["expand", "--formulas", ","], "--formulas"),
])
def test_cli_refuses_with_a_message_not_a_traceback(argv, words):
    proc = _cli(*argv)
    assert proc.returncode == 2, proc.stdout[-500:] + proc.stderr[-2000:]
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_train_with_no_epoch_or_no_test_example_reports_it():
    proc = _cli("train", "--dataset", "digits", "--epochs", "0", "--no-progress")
    if "needs scikit-learn" in proc.stderr:
        pytest.skip("scikit-learn is not installed")
    assert proc.returncode == 0 and "no epoch trained" in proc.stdout, proc.stderr[-2000:]
    proc = _cli("train", "--m", "2", "--epochs", "1", "--no-progress")
    assert proc.returncode == 0 and "no test example" in proc.stdout and "nan" not in proc.stdout
