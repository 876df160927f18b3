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
    # the dimension analysis of dA1: the formula above the arrow, the shapes below
    assert "W[2]ᵀ·dZ[2]" in texts and "(20, 7)·\n(7, 209)" in texts
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
    with pytest.raises(ImportError, match=r'pip install "\.\[plot\]"'):
        report.plot()


def _draw(fig):
    """Lay out a (closed) figure on an Agg canvas, as savefig does."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()


def _boxes(fig, artists):
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists if a.get_text()]


def test_plot_jacobians_titles_clear_the_tick_labels_and_every_panel_has_its_scale(report):
    fig = report.plot()
    _draw(fig)
    panels = [ax for ax in fig.axes if ax.images]
    # a colour bar per panel, with the panel's own limits (±its largest entry)
    bars = [ax for ax in fig.axes if not ax.images and ax.get_label() == "<colorbar>"]
    assert len(bars) == len(panels) == len(report.jacobians)
    for ax in panels:
        vmin, vmax = ax.images[0].get_clim()
        M = np.asarray(ax.images[0].get_array())
        assert vmax == -vmin == pytest.approx(float(np.max(np.abs(M))) or 1.0)
    # no title or closed form overlaps another panel's tick labels
    for ax in panels:
        mine = _boxes(fig, [ax.title, ax.xaxis.label])
        for other in panels:
            if other is ax:
                continue
            ticks = _boxes(fig, other.get_xticklabels() + other.get_yticklabels())
            for a in mine:
                assert not any(a.overlaps(t) for t in ticks), ax.get_title()


def test_plot_network_flow_wide_network_stays_readable(tmp_path):
    dims = [784, 512, 256, 128, 64, 32, 10]
    fig = plot_network_flow(dims, m=60000, path=tmp_path / "wide.png")
    _, width, _ = _png_size(tmp_path / "wide.png")
    # one row of six layers was 2675 px wide (7-pt labels, 3 px once a page scaled it);
    # rows of at most three layers keep it within a page's width at 8 pt or more
    assert width < 1700
    texts = fig.axes[0].texts
    assert min(t.get_fontsize() for t in texts) >= 8
    names = {t.get_text() for t in texts}
    assert "(60000, 784)" in " ".join(names) and "$dW^{[6]}$" in names
    assert "from the row above" in names and "to the row above" in names
    # every label lies inside the figure
    _draw(fig)
    frame = fig.bbox
    for box in _boxes(fig, texts):
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1


def test_flower_plot_tells_train_from_test_and_marks_early_stopping(tmp_path):
    from chainrule.datasets import load_planar_dataset, train_test_split
    from chainrule.plot import plot_training

    X, Y = load_planar_dataset()
    Xtr, Ytr, Xte, Yte = train_test_split(X, Y, 0.2, seed=0)
    net = Network([2, 4, 1], hidden="tanh", seed=2, backend="numpy")
    net.fit(Xtr, Ytr, epochs=6000, learning_rate=1.2, progress=False, cost_every=100,
            validation_fraction=0.2, early_stopping=True, patience=5)
    assert net.stop_reason_ == "early_stopping"
    fig = plot_training(net, Xtr, Ytr, tmp_path / "flower.png", X_test=Xte, Y_test=Yte)
    assert _png_size(tmp_path / "flower.png")[0] > 10_000
    cost, score, boundary = fig.axes
    best = net.train_state_.best_epoch
    for ax in (cost, score):
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
        assert len(lines) == 1 and list(lines[0].get_xdata()) == [best, best]
        assert f"best epoch {best}" in lines[0].get_label()
    train, test = boundary.collections[-2:]
    assert len(train.get_offsets()) == Xtr.shape[1] and len(test.get_offsets()) == Xte.shape[1]
    # different shapes, dark edges (a point stands out from a region of its colour)
    circle, triangle = train.get_paths()[0].vertices, test.get_paths()[0].vertices
    assert circle.shape != triangle.shape or not np.allclose(circle, triangle)
    for points in (train, test):
        assert np.all(points.get_edgecolors()[:, :3] < 0.2)
    region = boundary.collections[0]
    assert region.get_alpha() <= 0.5
    labels = [t.get_text() for t in boundary.get_legend().get_texts()]
    assert labels == [f"train ({Xtr.shape[1]})", f"test ({Xte.shape[1]})"]
