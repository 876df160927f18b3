"""Pictures of the backward pass (matplotlib, the ``plot`` extra).

* :func:`plot_jacobians`: every Jacobian of a :class:`~chainrule.explain.JacobianReport` as a
  heatmap whose structure is the point: ``∂A/∂Z`` diagonal (``g`` acts entry by entry),
  ``∂ℓ/∂Z[L]`` the ``m × m`` diagonal of the per-example losses, ``∂Z/∂W = I_n ⊗ A_prevᵀ``
  block diagonal, ``∂Z/∂A_prev = W ⊗ I_m`` (one example at a time: ``W`` itself).
* :func:`plot_layouts`: a gradient as the numerator-layout row ``∂J/∂x``, that row
  transposed, and reshaped to ``x``'s shape: the course's ``dx`` (denominator layout). The
  colours follow each entry, so "my result is off by a transpose" can be seen.
* :func:`plot_batchnorm_jacobians`: a batch-norm layer's ``∂Z̃/∂Z``, block diagonal with one
  dense ``m × m`` block per unit (the batch's statistics couple the examples), beside the
  diagonal ``∂A/∂Z̃`` of its activation.
* :func:`plot_network_flow`: a network's forward and backward pass with the shape of every
  operand, the dimension analysis a learner does by hand.

Each returns a matplotlib ``Figure`` and writes a PNG when ``path`` is given. The figure is
closed in pyplot before it is returned: a notebook shows it once, a script saves it, and
none accumulate.
"""

from __future__ import annotations

import textwrap

import numpy as np

from .display import tex

_CMAP = "RdBu_r"
_FORWARD, _BACKWARD, _PARAM, _GRAD = "#dbe9f6", "#fde3c8", "#e3f1dc", "#f6dcdc"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('pictures need matplotlib: pip install ".[plot]"') from exc
    return plt


def _finish(plt, fig, path, dpi=110):
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return fig


def _math(text):
    """Matplotlib mathtext for one of the library's formulas (the text itself if unreadable)."""
    t = tex(text, mark_one_over_m=False, partial_frac=False)
    return f"${t}$" if t is not None else text


def _entry_labels(name, shape):
    """``W[0,0], W[0,1], ...`` in C order (the order of the Jacobians' rows and columns)."""
    rows, cols = shape
    return [f"{name}[{i},{j}]" for i in range(rows) for j in range(cols)]


def _heatmap(ax, M, row_labels=None, col_labels=None, row_block=None, col_block=None,
             annotate=True, vmax=None):
    """``M`` with zero white, blocks outlined, small matrices annotated."""
    M = np.asarray(M, dtype=float) + 0.0
    vmax = vmax or float(np.max(np.abs(M), initial=0.0)) or 1.0
    image = ax.imshow(M, cmap=_CMAP, vmin=-vmax, vmax=vmax, aspect="equal",
                      interpolation="nearest")
    r, c = M.shape
    # cell edges drawn over the data only (the axes may be padded beyond it)
    ax.vlines(np.arange(1, c) - 0.5, -0.5, r - 0.5, color="#d0d0d0", linewidth=0.5)
    ax.hlines(np.arange(1, r) - 0.5, -0.5, c - 0.5, color="#d0d0d0", linewidth=0.5)
    if row_block and row_block < r:
        ax.hlines(np.arange(row_block, r, row_block) - 0.5, -0.5, c - 0.5, color="#444444",
                  linewidth=1.2)
    if col_block and col_block < c:
        ax.vlines(np.arange(col_block, c, col_block) - 0.5, -0.5, r - 0.5, color="#444444",
                  linewidth=1.2)
    small = max(r, c) <= 12
    ax.set_xticks(np.arange(c))
    ax.set_yticks(np.arange(r))
    ax.set_xticklabels(col_labels if (small and col_labels) else
                       [str(k) if small else "" for k in range(c)], rotation=90, fontsize=7)
    ax.set_yticklabels(row_labels if (small and row_labels) else
                       [str(k) if small else "" for k in range(r)], fontsize=7)
    if annotate and r * c <= 120 and max(r, c) <= 12:
        for (i, j), v in np.ndenumerate(M):
            if v != 0:
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v) > 0.6 * vmax else "black")
    return image


def _layer_jacobians(report, l):
    """The Jacobians of layer ``l`` with what labels their rows and columns."""
    dims, m = report.layer_dims, report.m
    n, n_prev = dims[l], dims[l - 1]
    Z, A, Ap, W, b = (f"Z{l}", f"A{l}", f"A{l - 1}", f"W{l}", f"b{l}")
    L = len(dims) - 1
    out = [(f"∂A{l}/∂Z{l}", _entry_labels(A, (n, m)), _entry_labels(Z, (n, m)), m, m),
           (f"∂Z{l}/∂W{l}", _entry_labels(Z, (n, m)), _entry_labels(W, (n, n_prev)), m, n_prev),
           (f"∂Z{l}/∂b{l}", _entry_labels(Z, (n, m)), _entry_labels(b, (n, 1)), m, 1),
           (f"∂Z{l}/∂A{l - 1}", _entry_labels(Z, (n, m)), _entry_labels(Ap, (n_prev, m)), m, m)]
    if l == L:
        out.append((f"∂ℓ/∂Z{L}", [f"ℓ[{k}]" for k in range(m)], _entry_labels(Z, (n, m)), None, m))
    return out


def plot_jacobians(report, path=None, layers=None):
    """Heatmaps of every Jacobian of ``report`` (a :class:`~chainrule.explain.JacobianReport`),
    one row per layer, blocks outlined, zero white.

    Parameters
    ----------
    report : JacobianReport
        From :func:`chainrule.explain.jacobians`.
    path : str or path, optional
        Write a PNG there.
    layers : sequence of int, optional
        The layers to draw (default: all, output layer first).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule import Network
    >>> from chainrule.explain import jacobians
    >>> rng = np.random.default_rng(0)
    >>> report = jacobians(Network([3, 2, 1], hidden="tanh", backend="numpy"),
    ...                    rng.standard_normal((3, 3)), np.array([[0.0, 1.0, 1.0]]))
    >>> fig = report.plot()
    >>> len(fig.axes) >= 9
    True
    """
    plt = _pyplot()
    L = len(report.layer_dims) - 1
    layers = list(layers) if layers is not None else list(range(L, 0, -1))
    rows = [_layer_jacobians(report, l) for l in layers]
    ncols = max(len(r) for r in rows)
    widths = np.ones(ncols)
    for r in rows:
        for k, (name, *_rest) in enumerate(r):
            widths[k] = max(widths[k], report[name].analytic.shape[1] / 2.5, 1.3)
    heights = [max(2.2, max(report[name].analytic.shape[0] for name, *_ in r) / 2.2 + 1.4)
               for r in rows]
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.35 * widths.sum() + 1.6,
                                                        sum(heights) + 0.8),
                             gridspec_kw={"width_ratios": widths, "height_ratios": heights},
                             squeeze=False, layout="constrained")
    for axrow, specs in zip(axes, rows):
        for ax, (name, row_labels, col_labels, row_block, col_block) in zip(axrow, specs):
            jac = report[name]
            image = _heatmap(ax, jac.analytic, row_labels, col_labels, row_block, col_block)
            r, c = jac.analytic.shape
            closed = _math(jac.closed_form) if len(jac.closed_form) < 30 else \
                "\n".join(textwrap.wrap(jac.closed_form, 30))
            note = "\n" + "\n".join(textwrap.wrap(jac.note, 34)) if jac.note else ""
            # the name on top; the closed form under the tick labels (a title of several
            # lines climbed into the tick labels of the panel above)
            ax.set_title(f"{_math(name)}   {r} × {c}", fontsize=9)
            ax.set_xlabel(f"= {closed}{note}", fontsize=8)
            # each panel has its own scale (±its largest entry): say it
            bar = fig.colorbar(image, ax=ax, shrink=0.8, aspect=25, pad=0.02)
            bar.ax.tick_params(labelsize=6)
        for ax in axrow[len(specs):]:
            ax.axis("off")
    fig.suptitle(f"Jacobians of {' → '.join(map(str, report.layer_dims))}, m = {report.m}, "
                 "numerator layout (rows: entries of the result, columns: entries of the "
                 "variable, C order); blue < 0 < red, white = 0, each panel on its own scale "
                 "(its colour bar)", fontsize=9)
    return _finish(plt, fig, path)


def plot_layouts(report, path=None, names=None):
    """Each gradient three ways: the numerator-layout row ``∂J/∂x`` (1 × size), its
    transpose (a column), and that column reshaped to ``x``'s shape, the course's ``dx``.

    The row is built from the finite-difference Jacobians by the chain rule; the last panel
    is the course's gradient (the reference, convention J); the title gives their largest
    difference.

    Parameters
    ----------
    report : JacobianReport
    path : str or path, optional
        Write a PNG there.
    names : sequence of str, optional
        Which gradients (default: ``dW`` and ``dA_prev`` of every layer).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    L = len(report.layer_dims) - 1
    if names is None:
        names = [f"{p}{l}" for l in range(L, 0, -1) for p in ("dW",)] + \
                [f"dA{l - 1}" for l in range(L, 1, -1)]
    items = [t for name in names for t in report.transpositions if t.name == name]
    size = max(t.course.size for t in items)
    rows = max(t.course.shape[0] for t in items)
    cols = max(max(t.course.shape[1] for t in items), 3)
    cell = 0.5  # inches: every panel draws its entries at the same size
    fig, axes = plt.subplots(len(items), 3, squeeze=False, layout="constrained",
                             figsize=(cell * (size + cols + 5) + 1.0,
                                      len(items) * (cell * rows + 1.7) + 0.5),
                             gridspec_kw={"width_ratios": [size, 5, cols]})
    for (ax_row, ax_mid, ax_mat), t in zip(axes, items):
        x = t.name[1:]  # dW1 -> W1
        shape = t.course.shape
        row = t.from_jacobians.reshape(1, -1)
        vmax = float(np.max(np.abs(row), initial=0.0)) or 1.0
        _heatmap(ax_row, row, [""], _entry_labels(x, shape), annotate=True, vmax=vmax)
        ax_row.set_title(f"numerator layout: {_math('∂J/∂' + x)}, 1 × {row.size} (a row)",
                         fontsize=9, loc="left")
        _heatmap(ax_mat, t.course, [f"{i}" for i in range(shape[0])],
                 [f"{j}" for j in range(shape[1])], annotate=True, vmax=vmax)
        ax_mat.set_title(f"the course's {_math(t.name)} {shape}\n(denominator layout; "
                         f"max |diff| {t.max_difference:.0e})", fontsize=9, loc="left")
        ax_mid.axis("off")
        ax_mid.annotate("", xy=(0.95, 0.5), xytext=(0.05, 0.5), xycoords="axes fraction",
                        arrowprops=dict(arrowstyle="-|>", color="#333333", linewidth=1.4))
        ax_mid.text(0.5, 0.56, f"transpose: {row.size} × 1", ha="center", va="bottom",
                    fontsize=9, transform=ax_mid.transAxes)
        ax_mid.text(0.5, 0.44, f"reshape to {shape}\n(row i of {_math(t.name)} = entries\n"
                    f"{x}[i, 0..{shape[1] - 1}] of the row)", ha="center", va="top", fontsize=8,
                    transform=ax_mid.transAxes)
        # the same cell size in every row: pad the axes beyond the data
        ax_row.set_xlim(-0.5, size - 0.5)
        ax_row.set_ylim(rows / 2, -rows / 2)
        ax_mat.set_xlim(-0.5, cols - 0.5)
        ax_mat.set_ylim(rows - 0.5, -0.5)
        for ax, (r, c) in ((ax_row, row.shape), (ax_mat, shape)):
            for side in ax.spines.values():
                side.set_visible(False)
            ax.add_patch(Rectangle((-0.5, -0.5), c, r, fill=False, edgecolor="black",
                                   linewidth=1.0))
    fig.suptitle("The course's gradient is the numerator-layout row ∂J/∂x, transposed and "
                 "reshaped to x's shape (C order)", fontsize=10)
    return _finish(plt, fig, path)


def plot_batchnorm_jacobians(report, path=None):
    """A batch-norm layer's ``∂Z̃/∂Z`` (one dense ``m × m`` block per unit: the examples are
    coupled) beside its activation's diagonal ``∂A/∂Z̃`` and their product ``∂A/∂Z``.

    Parameters
    ----------
    report : BatchNormJacobians
        From :func:`chainrule.explain.batchnorm_jacobians`.
    path : str or path, optional
        Write a PNG there.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.explain import batchnorm_jacobians
    >>> report = batchnorm_jacobians(np.random.default_rng(0).standard_normal((2, 4)))
    >>> len(report.plot().axes) >= 3
    True
    """
    plt = _pyplot()
    n, m = report.n, report.m
    labels = _entry_labels("Z", (n, m))
    tilde = [f"Z\u0303[{i},{k}]" for i in range(n) for k in range(m)]
    out = _entry_labels("A", (n, m))
    panels = [("∂Z̃/∂Z", tilde, labels), ("∂A/∂Z̃", out, tilde), ("∂A/∂Z", out, labels)]
    side = max(2.6, 0.42 * n * m)
    fig, axes = plt.subplots(1, 3, figsize=(3 * side + 1.2, side + 1.6), squeeze=False,
                             layout="constrained")
    for ax, (name, rows, cols) in zip(axes[0], panels):
        jac = report[name]
        image = _heatmap(ax, jac.analytic, rows, cols, m, m)
        closed = "\n".join(textwrap.wrap(jac.closed_form, 34))
        note = "\n".join(textwrap.wrap(jac.note, 38))
        # the name on top, the closed form under the tick labels (as plot_jacobians does)
        ax.set_title(f"{name}   {n * m} × {n * m}", fontsize=9)
        ax.set_xlabel(f"= {closed}\n{note}", fontsize=8)
        # each panel has its own scale (±its largest entry): say it
        bar = fig.colorbar(image, ax=ax, shrink=0.8, aspect=25, pad=0.02)
        bar.ax.tick_params(labelsize=6)
    fig.suptitle(f"Batch norm over m = {m} examples, then {report.activation}: numerator "
                 f"layout, C order (unit by unit, {m} examples each); blue < 0 < red, "
                 "white = 0, each panel on its own scale (its colour bar)", fontsize=9)
    return _finish(plt, fig, path)


def _network_spec(net_or_dims, activations):
    if hasattr(net_or_dims, "layer_dims"):
        dims = list(net_or_dims.layer_dims)
        acts = [a[0] if isinstance(a, tuple) else a for a in net_or_dims.activations]
    else:
        dims = [int(d) for d in net_or_dims]
        L = len(dims) - 1
        acts = list(activations) if activations is not None else ["relu"] * (L - 1) + ["sigmoid"]
    return dims, acts


def plot_network_flow(net_or_dims, m=None, activations=None, path=None, layers_per_row=None):
    """The forward pass (top) and the backward pass (bottom) of a network, every operand with
    its shape: parameters above, gradients below, where the 1/m enters (convention L) marked.

    A deep network is drawn in several rows of at most ``layers_per_row`` layers (default:
    at most 3, balanced), each row starting from the last activation of the row above (and its
    gradient, dashed), so the figure stays narrow enough for its labels to be read when a
    notebook or a README scales it to its width.

    Parameters
    ----------
    net_or_dims : chainrule.Network or sequence of int
        A network, or ``layer_dims`` ``[n[0], ..., n[L]]``.
    m : int, optional
        The number of examples; ``"m"`` is written when omitted.
    activations : sequence of str, optional
        With ``layer_dims``: one per layer (default relu hidden, sigmoid output).
    path : str or path, optional
        Write a PNG there.
    layers_per_row : int, optional
        Layers drawn side by side before the next row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from chainrule.explain.pictures import plot_network_flow
    >>> fig = plot_network_flow([12288, 20, 7, 5, 1], m=209)
    >>> fig.axes[0].get_title(loc="left").startswith("Forward")
    True
    """
    plt = _pyplot()
    from matplotlib.patches import FancyBboxPatch

    dims, acts = _network_spec(net_or_dims, activations)
    L = len(dims) - 1
    M = "m" if m is None else str(m)
    if layers_per_row is None:
        n_rows = -(-L // 3)
        layers_per_row = -(-L // n_rows)
    per_row = max(1, int(layers_per_row))
    n_rows = -(-L // per_row)
    dx, width, height = 3.0, 1.6, 0.8
    band = 7.2  # the height of one row of layers, in data units
    cols = min(per_row, L)
    fig, ax = plt.subplots(figsize=(dx * (2 * cols + 2) * 0.62 + 0.6, 6.6 * n_rows),
                           layout="constrained")
    ax.set_xlim(-1.2, dx * (2 * cols + 1) + 1.2)
    ax.set_ylim(-3.9 - band * (n_rows - 1), 2.8)
    ax.axis("off")

    def box(x, y, name, shape, colour, edge="#555555", dashed=False):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.04,rounding_size=0.12",
                                    facecolor=colour, edgecolor=edge, linewidth=1.0,
                                    linestyle="--" if dashed else "-"))
        ax.text(x, y + 0.16, _math(name), ha="center", va="center", fontsize=13)
        ax.text(x, y - 0.21, shape, ha="center", va="center", fontsize=9.5, family="monospace")

    def arrow(x0, y0, x1, y1, label="", colour="#333333", above=True, size=9.5, style="-|>"):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle=style, color=colour, linewidth=1.1,
                                    shrinkA=0, shrinkB=0))
        if label:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + (0.13 if above else -0.13), label,
                    ha="center", va="bottom" if above else "top", fontsize=size, color=colour)

    def shape(*s):
        return "(" + ", ".join(map(str, s)) + ")"

    half = width / 2
    small = 9  # the annotations' font size: readable once the figure is scaled to a page
    for row in range(n_rows):
        first, last = row * per_row + 1, min(L, (row + 1) * per_row)
        y0 = -band * row
        yf, yb, yp, yg = y0 + 1.0, y0 - 1.2, y0 + 2.2, y0 - 2.85
        if row == 0:
            box(0, yf, "X", shape(dims[0], M), _FORWARD)
            ax.text(0, yf - 0.55, "= A[0]", ha="center", va="top", fontsize=small)
        else:  # the row continues the one above: its last activation, and that one's gradient
            box(0, yf, f"A{first - 1}", shape(dims[first - 1], M), _FORWARD, dashed=True)
            box(0, yb, f"dA{first - 1}", shape(dims[first - 1], M), _BACKWARD, dashed=True)
            ax.text(0, yf + 0.55, "from the row above", ha="center", va="bottom",
                    fontsize=small - 1, color="#555555")
            ax.text(0, yb - 0.55, "to the row above", ha="center", va="top",
                    fontsize=small - 1, color="#555555")
        for l in range(first, last + 1):
            n, n_prev = dims[l], dims[l - 1]
            k = l - first + 1
            xz, xa = dx * (2 * k - 1), dx * 2 * k
            box(xz, yf, f"Z{l}", shape(n, M), _FORWARD)
            box(xa, yf, f"A{l}", shape(n, M), _FORWARD)
            arrow(xz - dx + half, yf, xz - half, yf, "W·A + b", size=small)
            arrow(xz + half, yf, xa - half, yf, f"{acts[l - 1]}", size=small)
            # the parameters feed Z
            box(xz - 0.95, yp, f"W{l}", shape(n, n_prev), _PARAM)
            box(xz + 0.95, yp, f"b{l}", shape(n, 1), _PARAM)
            arrow(xz - 0.65, yp - height / 2, xz - 0.15, yf + height / 2, colour="#4a7a3a")
            arrow(xz + 0.65, yp - height / 2, xz + 0.15, yf + height / 2, colour="#4a7a3a")
            # backward: dA[l] -> dZ[l] -> dA[l-1], dW[l], db[l]
            box(xa, yb, f"dA{l}", shape(n, M), _BACKWARD)
            box(xz, yb, f"dZ{l}", shape(n, M), _BACKWARD)
            arrow(xa - half, yb, xz + half, yb, f"∗ {acts[l - 1]}'(Z)", colour="#a0522d",
                  size=small)
            if l > 1:  # dA[l-1] = W[l]ᵀ dZ[l]: the formula above the arrow, shapes below
                arrow(xz - half, yb, xz - dx + half, yb, f"W[{l}]ᵀ·dZ[{l}]",
                      colour="#a0522d", size=small - 1)
                ax.text(xz - dx / 2, yb - 0.13, f"{shape(n_prev, n)}·\n{shape(n, M)}",
                        ha="center", va="top", fontsize=small - 1, color="#a0522d")
            box(xz - 0.95, yg, f"dW{l}", shape(n, n_prev), _GRAD, edge="#c06000")
            box(xz + 0.95, yg, f"db{l}", shape(n, 1), _GRAD, edge="#c06000")
            arrow(xz - 0.15, yb - height / 2, xz - 0.65, yg + height / 2, colour="#c06000")
            arrow(xz + 0.15, yb - height / 2, xz + 0.65, yg + height / 2, colour="#c06000")
            ax.text(xz - 0.95, yg - 0.52, f"(1/m) dZ·A[{l - 1}]ᵀ\n{shape(n, M)}·\n"
                    f"{shape(M, n_prev)}", ha="center", va="top", fontsize=small - 1,
                    color="#c06000")
            ax.text(xz + 0.95, yg - 0.52, "(1/m) Σ over\nthe m columns", ha="center",
                    va="top", fontsize=small - 1, color="#c06000")
        if last == L:
            k = last - first + 1
            xj = dx * (2 * k + 1)
            box(xj, yf, "J", "scalar", _FORWARD)
            arrow(xj - dx + half, yf, xj - half, yf, "cost", size=small)
            ax.text(xj, yf + 0.5, f"mean over\nm = {M}", ha="center", va="bottom",
                    fontsize=small, color="#c06000")
            arrow(xj, yf - height / 2, dx * 2 * k + half, yb, f"dA[{L}] from Y",
                  colour="#a0522d", above=False, size=small)
        elif n_rows > 1:
            k = last - first + 1
            ax.text(dx * 2 * k + half + 0.15, yf, "→ next row", ha="left", va="center",
                    fontsize=small - 1, color="#555555")
    ax.set_title(f"Forward (top) and backward (bottom) of {' → '.join(map(str, dims))}, "
                 f"m = {M}: the shape of every operand\n(convention L: the 1/m enters in dW "
                 "and db, orange)", fontsize=11, loc="left")
    return _finish(plt, fig, path, dpi=100)
