"""Pictures: PNGs written and non-empty, and what they draw is the structure they claim."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt  # noqa: E402

from chainrule import Network  # noqa: E402
from chainrule.explain import jacobians  # noqa: E402
from chainrule.explain.pictures import plot_jacobians, plot_layouts, plot_network_flow  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(0)
    net = Network([3, 2, 1], hidden="tanh", backend="numpy", seed=2)
    return jacobians(net, rng.standard_normal((3, 3)), np.array([[0.0, 1.0, 1.0]]))


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return len(data), width, height


def test_plot_jacobians_png_and_structure(report, tmp_path):
    path = tmp_path / "jacobians.png"
    fig = report.plot(path)
    size, width, height = _png_size(path)
    assert size > 20_000 and width > 800 and height > 400
    assert fig.number not in plt.get_fignums()  # closed: a notebook shows it once
    drawn = {}
    for ax in fig.axes:
        if ax.images:
            title = ax.get_title()
            drawn[title.split("   ")[0]] = np.asarray(ax.images[0].get_array())
    assert len(drawn) == len(report.jacobians)
    # ∂A/∂Z is diagonal, ∂ℓ/∂Z[L] is the m × m diagonal, ∂Z/∂W is block diagonal
    dAdZ = next(v for k, v in drawn.items() if "A^{[1]}" in k and "Z^{[1]}" in k)
    assert np.count_nonzero(dAdZ - np.diag(np.diag(dAdZ))) == 0 and dAdZ.shape == (6, 6)
    dldZ = next(v for k, v in drawn.items() if r"\ell" in k)
    assert dldZ.shape == (3, 3) and np.count_nonzero(dldZ - np.diag(np.diag(dldZ))) == 0
    dZdW = next(v for k, v in drawn.items() if "Z^{[1]}" in k and "W^{[1]}" in k)
    assert np.count_nonzero(dZdW[:3, 3:]) == 0 and np.count_nonzero(dZdW[3:, :3]) == 0
    np.testing.assert_allclose(dZdW[:3, :3], dZdW[3:, 3:])


def test_plot_jacobians_one_layer(report):
    fig = plot_jacobians(report, layers=[1])
    assert sum(1 for ax in fig.axes if ax.images) == 4


def test_plot_layouts_png_row_and_reshape(report, tmp_path):
    path = tmp_path / "layouts.png"
    fig = plot_layouts(report, path, names=["dW1", "dA1"])
    size, *_ = _png_size(path)
    assert size > 10_000
    images = [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]
    assert [im.shape for im in images] == [(1, 6), (2, 3), (1, 6), (2, 3)]
    # the row, transposed and reshaped in C order, is the course's gradient
    np.testing.assert_allclose(images[0].reshape(2, 3), images[1], atol=1e-7)
    np.testing.assert_allclose(images[1], report["dW1"].course)


def test_plot_network_flow_every_shape(tmp_path):
    path = tmp_path / "flow.png"
    net = Network([12288, 20, 7, 5, 1], backend="numpy")
    fig = plot_network_flow(net, m=209, path=path)
    size, width, _ = _png_size(path)
    assert size > 20_000 and width > 1000
    texts = {t.get_text() for t in fig.axes[0].texts}
    for shape in ("(12288, 209)", "(20, 12288)", "(20, 1)", "(20, 209)", "(7, 20)", "(1, 5)",
                  "(1, 209)", "scalar"):
        assert shape in texts
    assert "W[2]ᵀ · dZ[2]\n(20, 7)·(7, 209)" in texts  # the dimension analysis of dA1
    symbolic = plot_network_flow([4, 3, 1])
    assert "(3, m)" in {t.get_text() for t in symbolic.axes[0].texts}


def test_pictures_without_matplotlib(monkeypatch, report):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"chainrule\[plot\]"):
        report.plot()
