"""What fit(progress=True) prints (issue 24): plain lines without ``\\r`` when the output is
not a terminal, print_cost above the bar, the notebook bar only with ipywidgets, a summary
line that stays; and the divergence warning."""

import io
import sys
import types
import warnings

import numpy as np
import pytest

from chainrule import Network
from chainrule.datasets import load_planar_dataset
from chainrule.errors import DivergenceWarning
from chainrule.training import progress


def _planar_fit(**kwargs):
    X, Y = load_planar_dataset()
    net = Network([2, 4, 1], hidden="tanh", seed=2, backend="numpy")
    return net.fit(X, Y, learning_rate=1.2, **kwargs)


def test_not_a_terminal_gets_plain_periodic_lines_and_a_summary(capsys):
    net = _planar_fit(epochs=1000)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert 2 <= len(lines) <= progress.PLAIN_LINES + 1
    assert lines[0].startswith("epoch 100/1000: cost ")
    last = lines[-1]
    assert last.startswith("fit done: 1000 epochs, cost ")
    assert f"cost {net.history_['cost'][-1]:.4g}" in last and "score 0." in last
    assert last.endswith(" s")


def test_mini_batches_lines_show_the_epochs_record(capsys):
    X, Y = load_planar_dataset()
    net = Network([2, 4, 1], hidden="tanh", seed=2, backend="numpy")
    net.fit(X, Y, epochs=20, learning_rate=0.5, mini_batch_size=64)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("epoch 2/20: cost ")  # the record of the epoch just done
    assert lines[-1].startswith("fit done: 20 epochs, cost")


def test_print_cost_goes_to_stdout_and_the_progress_to_stderr(capsys):
    _planar_fit(epochs=300, print_cost=True)
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "Cost after iteration 0: " + out.splitlines()[0].split(": ")[1]
    assert len(out.splitlines()) == 4 and "epoch" not in out
    assert "Cost after" not in err and "\r" not in err


def test_no_progress_prints_nothing(capsys):
    _planar_fit(epochs=50, progress=False)
    assert capsys.readouterr() == ("", "")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_the_bar_then_the_summary_that_stays(capsys):
    tty = _Terminal()
    p = progress.progress_bar(10, True, stream=tty)
    assert p.kind == "bar"
    for e in range(10):
        p.update(1)
        p.record({"epoch": e, "cost": 1.0 / (e + 1), "score": 0.5})
        if e == 4:
            p.write("Cost after epoch 4: 0.2")
    p.close(10, "completed")
    text = tty.getvalue()
    assert "\r" in text  # tqdm's frames
    assert text.rstrip("\n").split("\r")[-1].split("\n")[-1].startswith("fit done: 10 epochs")
    assert capsys.readouterr().out == "Cost after epoch 4: 0.2\n"  # not on the bar's line


@pytest.fixture
def jupyter_kernel(monkeypatch):
    """A stand-in for IPython inside a Jupyter kernel (what tqdm.autonotebook looks for)."""
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_jupyter_without_ipywidgets_gets_the_text_bar_without_a_warning(jupyter_kernel,
                                                                        monkeypatch):
    monkeypatch.setattr(progress, "_has_widgets", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a TqdmWarning would raise
        p = progress.progress_bar(5, True, stream=io.StringIO())
        p.update(5)
        p.close(5, "completed")
    assert p.kind == "bar"


def test_jupyter_with_ipywidgets_gets_the_notebook_bar(jupyter_kernel, monkeypatch):
    monkeypatch.setattr(progress, "_has_widgets", lambda: True)
    monkeypatch.setattr(progress, "Progress", lambda total, kind, stream: kind)
    assert progress.progress_bar(5, True) == "notebook"


def test_a_terminal_ipython_is_not_a_kernel(monkeypatch):
    shell = types.SimpleNamespace(config={"TerminalInteractiveShell": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert not progress._in_jupyter_kernel()
    assert progress.progress_bar(5, True, stream=io.StringIO()).kind == "plain"


def test_the_summary_names_an_early_stop(capsys):
    X, Y = load_planar_dataset()
    net = Network([2, 4, 1], hidden="tanh", seed=2, backend="numpy")
    net.fit(X, Y, epochs=3000, learning_rate=1.2, cost_every=10, validation_fraction=0.2,
            early_stopping=True, patience=2, min_delta=0.01)
    assert net.stop_reason_ == "early_stopping"
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("fit done, stopped early: ") and "val_cost" in last


# ---- divergence

def _digits():
    load_digits = pytest.importorskip("sklearn.datasets").load_digits
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_a_huge_learning_rate_on_digits_warns_that_the_cost_diverged():
    from chainrule.sklearn import NetworkClassifier

    X, y = _digits()
    with pytest.warns(DivergenceWarning, match=r"diverged.*learning rate \(now 1000.0\)") as rec:
        clf = NetworkClassifier(learning_rate=1e3, max_iter=10, random_state=0).fit(X, y)
    assert clf.score(X, y) < 0.3
    assert rec[0].filename == __file__  # points at the user's line
    assert issubclass(DivergenceWarning, RuntimeWarning)


def test_a_good_fit_does_not_warn():
    from chainrule.sklearn import NetworkClassifier

    X, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        NetworkClassifier(learning_rate=1e-3, max_iter=10, random_state=0).fit(X, y)
        NetworkClassifier(learning_rate=1e-3, max_iter=3, random_state=0).fit(X * 16, y)
        _planar_fit(epochs=200, progress=False)


def test_full_batch_gradient_descent_that_blows_up_warns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 200))
    Y = X.sum(axis=0, keepdims=True)
    net = Network([3, 8, 1], hidden="tanh", output="identity", seed=0, backend="numpy")
    with pytest.warns(DivergenceWarning, match="went from|rose to"):  # NaN or far above
        net.fit(X, Y, epochs=30, learning_rate=3.0, progress=False, cost_every=1,
                on_nonfinite="skip")


def test_warn_if_diverged_rules():
    flat = lambda: 1.0  # noqa: E731  (the constant prediction's cost)
    h = {"epoch": [0, 1, 2], "cost": [5.0, 2.0, 0.5]}
    assert not progress.warn_if_diverged(h, 0, 0.1, flat)  # fell: unscaled inputs, fine
    h = {"epoch": [0, 1], "cost": [0.5, 6.0]}
    with pytest.warns(DivergenceWarning):
        assert progress.warn_if_diverged(h, 0, 0.1, flat)  # grew 12x, above the constant
    h = {"epoch": [0, 1], "cost": [0.5, float("nan")]}
    with pytest.warns(DivergenceWarning):
        assert progress.warn_if_diverged(h, 0, 0.1, flat)
    h = {"epoch": [0, 1, 2], "cost": [9.0, 9.0, 0.5]}  # only this fit's records count
    assert not progress.warn_if_diverged(h, 1, 0.1, flat)


def test_falling_costs_above_the_constant_do_not_warn():
    flat = lambda: 1.0  # noqa: E731
    for costs in ([7.0, 6.8], [30.0, 29.0, 20.0], [5.0, 0.3, 2.9]):
        h = {"epoch": list(range(len(costs))), "cost": costs}
        assert not progress.warn_if_diverged(h, 0, 0.1, flat), costs
    h = {"epoch": [0, 1, 2], "cost": [5.0, 0.2, 4.0]}  # fell, then rose 20x above its best
    with pytest.warns(DivergenceWarning):
        assert progress.warn_if_diverged(h, 0, 0.1, flat)
    # parameters assigned before a continued fit put the cost high; this fit kept it there
    h = {"epoch": [0, 1, 2, 3], "cost": [0.5, 7.9, 7.9, 7.9]}
    assert not progress.warn_if_diverged(h, 1, 1e-30, flat)
    h = {"epoch": [0, 1], "cost": [0.5, 9.0]}  # one record of this fit: nothing to compare
    assert not progress.warn_if_diverged(h, 1, 0.1, flat)


def test_widgets_tqdm_cannot_use_fall_back_to_the_text_bar(jupyter_kernel, monkeypatch):
    monkeypatch.setattr(progress, "_has_widgets", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm.notebook", None)  # its import fails
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = progress.progress_bar(3, True, stream=io.StringIO())
        p.update(3)
        p.close(3, "completed")
    assert p.kind == "bar"


def test_a_lowest_or_constant_cost_of_zero_is_worded_not_divided_by():
    """One example of a regression: the constant prediction's cost is 0 and the fit may
    touch 0 (the fuzz found ZeroDivisionError here)."""
    zero = lambda: 0.0  # noqa: E731
    for costs in ([0.3, 0.0, 0.6], [0.0, 0.1]):
        h = {"epoch": list(range(len(costs))), "cost": costs}
        with pytest.warns(DivergenceWarning, match="far above"):
            assert progress.warn_if_diverged(h, 0, 0.1, zero)
    from chainrule import Network
    net = Network([1, 1, 1], activations=["relu", "identity"], backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        net.fit(np.array([[0.27392337]]), np.array([[-0.46042657]]), epochs=1,
                learning_rate=1.0, progress=False)  # the fuzz's case: no exception


def test_the_constant_cost_is_computed_only_for_a_cost_that_rose():
    calls = []

    def flat():
        calls.append(1)
        return 1.0

    for costs in ([5.0, 2.0, 0.5], [7.0, 6.8], [0.5, 0.52]):  # fell, or held within 10 %
        assert not progress.warn_if_diverged({"epoch": list(range(len(costs))), "cost": costs},
                                             0, 0.1, flat)
    assert calls == []
    # rose 12x: the constant decides (the cost ends below it: no warning; above: a warning)
    assert not progress.warn_if_diverged({"epoch": [0, 1], "cost": [0.05, 0.6]}, 0, 0.1, flat)
    assert calls == [1]
    with pytest.warns(DivergenceWarning):
        assert progress.warn_if_diverged({"epoch": [0, 1], "cost": [0.5, 6.0]}, 0, 0.1, flat)
    assert calls == [1, 1]
