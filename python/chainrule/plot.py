"""Plots (matplotlib, the ``plot`` extra): the cost curve and a 2-D decision boundary."""

from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'chainrule[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(net, X, Y, path, title=None):
    """Write a PNG with the cost history of ``net`` and, for 2-D inputs, its decision boundary."""
    plt = _pyplot()
    two_d = X.shape[0] == 2
    fig, axes = plt.subplots(1, 2 if two_d else 1, figsize=(11 if two_d else 5.5, 4.5))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    ax.plot(net.history_["epoch"], net.history_["cost"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost J")
    ax.set_title("cost")
    if two_d:
        plot_decision_boundary(net, X, Y, ax=axes[1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_decision_boundary(net, X, Y, ax=None, resolution=300):
    """Shade the plane by ``net.predict`` and scatter ``X`` (shape ``(2, m)``) coloured by ``Y``."""
    plt = _pyplot()
    ax = ax or plt.gca()
    x_min, x_max = X[0].min() - 1, X[0].max() + 1
    y_min, y_max = X[1].min() - 1, X[1].max() + 1
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
    grid = np.vstack([xx.ravel(), yy.ravel()])
    Z = np.asarray(net.predict(grid)).reshape(xx.shape)
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    labels = np.asarray(Y).reshape(-1) if np.asarray(Y).shape[0] == 1 else np.argmax(Y, axis=0)
    ax.scatter(X[0], X[1], c=labels, s=12, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.3)
    ax.set_title("decision boundary")
    return ax
