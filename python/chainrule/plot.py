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


def plot_training(net, X, Y, path, title=None):
    """Write a PNG: the cost curves (train, and validation when ``fit`` had it), the accuracy
    (or R²) curves and, for 2-D inputs, the decision boundary of ``net``.

    ``X`` has shape ``(n[0], m)``; ``Y`` holds 0/1 labels ``(1, m)``, class indices or
    one-hot columns.
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
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost J")
    ax.set_title("cost")
    ax.legend()
    if has_score:
        ax = axes[1]
        ax.plot(history["epoch"], history["score"], label="train")
        if history.get("val_score"):
            ax.plot(history["epoch"], history["val_score"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if net.activations[-1][0] in ("sigmoid", "softmax") else "R²")
        ax.set_title("score")
        ax.legend()
    if two_d:
        plot_decision_boundary(net, X, Y, ax=axes[-1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_decision_boundary(net, X, Y, ax=None, resolution=200):
    """Shade the plane by ``net.predict`` and scatter ``X`` (shape ``(2, m)``) coloured by ``Y``."""
    plt = _pyplot()
    ax = ax or plt.gca()
    x_min, x_max = X[0].min() - 1, X[0].max() + 1
    y_min, y_max = X[1].min() - 1, X[1].max() + 1
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
    grid = np.vstack([xx.ravel(), yy.ravel()])
    Z = np.asarray(net.predict(grid)).reshape(xx.shape)
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    Y = np.asarray(Y)
    labels = Y.reshape(-1) if Y.ndim == 1 or Y.shape[0] == 1 else np.argmax(Y, axis=0)
    ax.scatter(X[0], X[1], c=labels, s=12, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.3)
    ax.set_title("decision boundary")
    return ax
