"""Plots (matplotlib, the ``plot`` extra): the cost curve and a 2-D decision boundary."""

from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError('plotting needs matplotlib: pip install ".[plot]"') from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mark_early_stop(ax, net):
    """A dotted line at the best epoch of an early-stopped fit (its parameters were kept)."""
    state = getattr(net, "train_state_", None)
    if getattr(net, "stop_reason_", None) != "early_stopping" or state is None or \
            state.best_epoch < 0:
        return
    ax.axvline(state.best_epoch, color="#444444", linestyle=":", linewidth=1.2,
               label=f"early stopping: best epoch {state.best_epoch}")


def plot_training(net, X, Y, path, title=None, X_test=None, Y_test=None):
    """Write a PNG: the cost curves (train, and validation when ``fit`` had it), the accuracy
    (or R²) curves, the best epoch of an early-stopped fit marked on both, and, for 2-D
    inputs, the decision boundary of ``net`` with the training points (circles) and the test
    points ``X_test, Y_test`` (triangles) when given.

    ``X`` has shape ``(n[0], m)``; ``Y`` holds 0/1 labels ``(1, m)``, class indices or
    one-hot columns. Returns the (closed) figure.
    """
    plt = _pyplot()
    history = net.history_
    two_d = X.shape[0] == 2
    has_score = bool(history.get("score"))
    n = 1 + has_score + two_d
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.0))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    ax.plot(history["epoch"], history["cost"], label="train")
    if history.get("val_cost"):
        ax.plot(history["epoch"], history["val_cost"], label="validation")
    _mark_early_stop(ax, net)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost J")
    ax.set_title("cost")
    ax.legend(fontsize=8)
    if has_score:
        ax = axes[1]
        ax.plot(history["epoch"], history["score"], label="train")
        if history.get("val_score"):
            ax.plot(history["epoch"], history["val_score"], label="validation")
        _mark_early_stop(ax, net)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if net.activations[-1][0] in ("sigmoid", "softmax") else "R²")
        ax.set_title("score")
        ax.legend(fontsize=8)
    if two_d:
        plot_decision_boundary(net, X, Y, ax=axes[-1], X_test=X_test, Y_test=Y_test)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return fig


def _labels(Y):
    Y = np.asarray(Y)
    return Y.reshape(-1) if Y.ndim == 1 or Y.shape[0] == 1 else np.argmax(Y, axis=0)


def plot_decision_boundary(net, X, Y, ax=None, resolution=200, X_test=None, Y_test=None):
    """Shade the plane by ``net.predict`` (light) and scatter ``X`` (shape ``(2, m)``)
    coloured by ``Y`` as circles, and ``X_test, Y_test`` as triangles; every point has a dark
    edge, so it stands out from a region of its own colour."""
    plt = _pyplot()
    from matplotlib.colors import Normalize

    ax = ax or plt.gca()
    points = X if X_test is None else np.hstack([X, X_test])
    x_min, x_max = points[0].min() - 1, points[0].max() + 1
    y_min, y_max = points[1].min() - 1, points[1].max() + 1
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
    grid = np.vstack([xx.ravel(), yy.ravel()])
    Z = np.asarray(net.predict(grid)).reshape(xx.shape)
    labels = _labels(Y)
    classes = [labels] + ([_labels(Y_test)] if X_test is not None else [])
    top = max(float(np.max(Z)), max(float(np.max(c)) for c in classes), 1.0)
    norm = Normalize(0, top)  # regions and points share one colour per class
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, norm=norm, alpha=0.35)
    ax.scatter(X[0], X[1], c=labels, s=16, cmap=plt.cm.Spectral, norm=norm, marker="o",
               edgecolors="#222222", linewidths=0.7, label=f"train ({X.shape[1]})")
    if X_test is not None and X_test.shape[1]:
        ax.scatter(X_test[0], X_test[1], c=classes[1], s=34, cmap=plt.cm.Spectral, norm=norm,
                   marker="^", edgecolors="black", linewidths=1.0,
                   label=f"test ({X_test.shape[1]})")
    if X_test is not None:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], linestyle="", marker=mk, markersize=sz, color="#bbbbbb",
                          markeredgecolor="black", label=label)
                   for mk, sz, label in (("o", 5, f"train ({X.shape[1]})"),
                                         ("^", 7, f"test ({X_test.shape[1]})"))]
        ax.legend(handles=handles, fontsize=8, loc="upper right", framealpha=0.85)
    ax.set_title("decision boundary")
    return ax
