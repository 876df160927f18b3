"""The summary of a :class:`chainrule.Network` (:meth:`~chainrule.Network.summary` and its
notebook display): layers, shapes and parameter counts as text and as an HTML table, and
:class:`Rich`, the object that prints one and shows the other. The learner tools'
displays (:mod:`chainrule.explain.display`) build on the same table helpers."""

from __future__ import annotations

import html

from ._plaintex import _STYLE, _with_fallbacks

_CELL = "padding: 2px 8px; text-align: left; vertical-align: middle;"
_NUM = ("padding: 2px 8px; text-align: right; vertical-align: middle; "
        "font-variant-numeric: tabular-nums; white-space: nowrap;")


def _wrap(kind, body):
    """A display's HTML: each formula typeset by MathJax where it runs, else plain text."""
    return (f'<div class="chainrule-{kind} mathjax_process tex2jax_process" '
            f'style="line-height: 1.45; overflow-x: auto; position: relative;">{_STYLE}'
            f'{_with_fallbacks(body)}</div>')


def _table(head, rows, widths=None):
    th = "".join(f'<th style="{_CELL} border-bottom: 1px solid currentColor;">{h}</th>'
                 for h in head)
    return (f'<table style="border-collapse: collapse; margin: 4px 0;"><thead><tr>{th}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>')


def _row(cells, style="", numeric=()):
    tds = "".join(f'<td style="{_NUM if i in numeric else _CELL}">{c}</td>'
                  for i, c in enumerate(cells))
    return f'<tr style="{style}">{tds}</tr>'


class Rich:
    """Text for ``print`` and the terminal, HTML (and optionally LaTeX) for a notebook."""

    def __init__(self, text, html_text, latex=None):
        self.text, self.html, self.latex = text, html_text, latex

    def __str__(self):
        return self.text

    def __repr__(self):
        return self.text

    def _repr_html_(self):
        return self.html

    def _repr_latex_(self):
        return self.latex


# --------------------------------------------------------------------------- Network

def _activation_name(activation):
    name, alpha = activation
    return f"{name}({alpha:g})" if name == "leaky_relu" else name


def network_rows(layer_dims, activations, m=None, batch_norm=None):
    """Per layer: ``(l, n, activation, W shape, b shape, Z/A shape, parameter count)``; a
    batch-norm layer (``batch_norm[l-1]``) shows ``BN → activation`` and counts ``gamma``
    and ``beta`` (its ``b`` column holds their shape)."""
    cols = "m" if m is None else m
    rows = []
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        bn = bool(batch_norm and batch_norm[l - 1])
        act = _activation_name(activations[l - 1])
        rows.append((l, n, f"BN → {act}" if bn else act, (n, n_prev), (n, 1), (n, cols),
                     n * n_prev + (2 * n if bn else n)))
    return rows


def _bias_name(net):
    return "b | γ, β" if any(getattr(net, "batch_norm", ())) else "b"


def _tuple_text(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def network_text(net, m=None):
    """A plain-text summary of a :class:`chainrule.Network` (layers, shapes, parameters)."""
    rows = network_rows(net.layer_dims, net.activations, m, getattr(net, "batch_norm", None))
    total = sum(r[-1] for r in rows)
    cols = "m" if m is None else str(m)
    lines = [f"Network {' -> '.join(map(str, net.layer_dims))}: loss {net.loss}, dtype "
             f"{net.dtype.name}, backend {net.backend}; X {_tuple_text((net.layer_dims[0], cols))}",
             f"{'layer':<7}{'units':>6}  {'activation':<12}{'W':<14}{_bias_name(net):<10}{'Z, A':<14}"
             f"{'parameters':>11}"]
    for l, n, act, W, b, Z, count in rows:
        lines.append(f"{l:<7}{n:>6}  {act:<12}{_tuple_text(W):<14}{_tuple_text(b):<10}"
                     f"{_tuple_text(Z):<14}{count:>11,}")
    lines.append(f"{'total':<65}{total:>11,}")
    if any(getattr(net, "batch_norm", ())):
        lines.append(f"batch norm (BN): gamma, beta instead of b; running averages with beta "
                     f"{net.batch_norm_momentum:g}, eps {net.batch_norm_epsilon:g}")
    epochs = len(net.history_.get("epoch", []))
    if epochs:
        lines.append(f"trained: {epochs} recorded epochs, last cost "
                     f"{net.history_['cost'][-1]:.6g}")
    return "\n".join(lines)


def network_html(net, m=None):
    """The summary of a :class:`chainrule.Network` as an HTML table."""
    rows = network_rows(net.layer_dims, net.activations, m, getattr(net, "batch_norm", None))
    total = sum(r[-1] for r in rows)
    cols = "m" if m is None else str(m)
    head = (f"<p><b>Network</b> {' → '.join(map(str, net.layer_dims))}: loss "
            f"<code>{html.escape(net.loss)}</code>, dtype {html.escape(net.dtype.name)}, "
            f"backend <code>{html.escape(str(net.backend))}</code>; \\(X\\) "
            f"{html.escape(_tuple_text((net.layer_dims[0], cols)))}</p>")
    body = [_row([str(l), str(n), html.escape(act), _tuple_text(W), _tuple_text(b),
                  _tuple_text(Z), f"{count:,}"], numeric=(0, 1, 6))
            for l, n, act, W, b, Z, count in rows]
    body.append(_row(["<b>total</b>", "", "", "", "", "", f"<b>{total:,}</b>"], numeric=(6,)))
    table = _table([r"layer \(l\)", r"units \(n^{[l]}\)", r"\(g^{[l]}\)", r"\(W^{[l]}\)",
                    r"\(b^{[l]}\) or \(\gamma^{[l]}, \beta^{[l]}\)" if any(
                        getattr(net, "batch_norm", ())) else r"\(b^{[l]}\)",
                    r"\(Z^{[l]}, A^{[l]}\)", "parameters"], body)
    epochs = len(net.history_.get("epoch", []))
    foot = (f"<p>trained: {epochs} recorded epochs, last cost {net.history_['cost'][-1]:.6g}</p>"
            if epochs else "")
    return _wrap("network", head + table + foot)


class Summarised:
    """:meth:`summary` and the notebook display of :class:`chainrule.Network` (a mixin)."""

    def summary(self, m=None):
        """The layers with the shapes of ``W``, ``b``, ``Z`` and ``A`` for ``m`` examples
        (``"m"`` when None), parameter counts, activations and backend: text for ``print``,
        a table in a notebook. See :func:`chainrule.explain.display.network_text`."""
        return Rich(network_text(self, m), network_html(self, m))

    def _repr_html_(self):
        return network_html(self)
