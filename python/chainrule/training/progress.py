"""What ``fit(progress=True)`` shows, and the divergence warning.

Three displays, chosen when the fit starts (:func:`progress_bar`):

* a terminal: tqdm's text bar (``\\r`` frames), erased at the end;
* a Jupyter kernel: tqdm's notebook bar where ipywidgets is importable, else tqdm's text bar
  (tqdm.auto would warn with ``TqdmWarning: IProgress not found``);
* anything else (a log file, a pipe, a captured stream): plain lines, at most about
  ``PLAIN_LINES`` of them, each at a tenth of the epochs — no ``\\r``.

Each ends with one summary line that stays (epochs, cost, score, time, why it stopped). Lines
printed during the fit (``print_cost``) go through :meth:`Progress.write`, above the bar.
"""

from __future__ import annotations

import math
import sys
import time
import warnings

from ..errors import DivergenceWarning

PLAIN_LINES = 10  # progress lines of a fit whose output is not a terminal
DIVERGED_FACTOR = 10.0  # the last recorded cost above this multiple of the first: diverged


def _in_jupyter_kernel():
    """True inside an IPython kernel (Jupyter, VS Code's notebooks), not a terminal IPython."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _has_widgets():
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False


def _fmt(logs):
    parts = [f"cost {logs['cost']:.4g}"]
    if "score" in logs and not math.isnan(logs["score"]):
        parts.append(f"score {logs['score']:.4g}")
    for key in ("val_cost", "val_score"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4g}")
    return ", ".join(parts)


class Progress:
    """One fit's progress display (see the module's docstring). ``kind`` is ``"bar"``
    (tqdm text bar), ``"notebook"`` (tqdm's widget) or ``"plain"`` (periodic lines)."""

    def __init__(self, total, kind, stream):
        self.total, self.kind, self.stream = int(total), kind, stream
        self.done, self.logs, self.start = 0, None, time.perf_counter()
        self.bar, self._next_line, self._due = None, 1, None
        if kind == "notebook":
            try:
                from tqdm.notebook import tqdm as bar

                self.bar = bar(total=self.total, unit="epoch", leave=False)
            except ImportError:  # widgets that tqdm cannot use: its text bar
                self.kind = kind = "bar"
        if kind == "bar":
            from tqdm.std import tqdm as bar

            self.bar = bar(total=self.total, unit="epoch", leave=False, dynamic_ncols=True,
                           file=stream)

    def update(self, n):
        """``n`` more epochs done."""
        self.done += int(n)
        if self.bar is not None:
            self.bar.update(n)
            return
        step = max(1, -(-self.total // PLAIN_LINES))
        if self.done >= self._next_line * step and self.done < self.total:
            if self._due is not None:  # no record came since the last line was due
                self._line(self._due)
            self._next_line = self.done // step + 1
            self._due = f"epoch {self.done}/{self.total}"

    def record(self, logs):
        """The latest record of ``history_`` (shown beside the bar, and in the lines)."""
        self.logs = dict(logs)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                                  if k in ("cost", "val_cost", "val_score")})
        elif self._due is not None:
            self._line(self._due)

    def write(self, text):
        """A line printed during the fit (``print_cost``), above the bar, on stdout."""
        if self.bar is not None and self.kind == "bar":
            self.bar.write(text, file=sys.stdout)
            sys.stdout.flush()  # before the bar's next frame (Jupyter buffers stdout)
        else:
            print(text, file=sys.stdout, flush=True)

    def _line(self, text):
        """A plain line: ``text``, the latest record's values, the time so far."""
        self._due = None
        if self.logs:
            text += f": {_fmt(self.logs)}"
        print(f"{text} ({time.perf_counter() - self.start:.1f} s)", file=self.stream, flush=True)

    def close(self, epochs_trained, stop_reason):
        """Remove the bar and print the summary line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        why = {"early_stopping": ", stopped early", "interrupted": ", interrupted",
               "nonfinite": ", stopped: a step was not finite",
               "callback": ", stopped by a callback"}.get(stop_reason, "")
        more = "" if epochs_trained == self.done else f" ({epochs_trained} in all)"
        text = f"fit done{why}: {self.done} epochs{more}"
        if self.logs:
            text += f", {_fmt(self.logs)}"
        print(f"{text}, {time.perf_counter() - self.start:.2f} s", file=self.stream,
              flush=True)


def progress_bar(total, enabled, stream=None):
    """The display of a fit over ``total`` epochs, or None (``enabled`` false, or no tqdm
    where a bar is due: the model must not need tqdm to train)."""
    if not enabled:
        return None
    stream = sys.stderr if stream is None else stream
    if _in_jupyter_kernel():
        kind = "notebook" if _has_widgets() else "bar"
    else:
        kind = "bar" if _isatty(stream) else "plain"
    if kind != "plain":
        try:
            import tqdm  # noqa: F401
        except ImportError:
            kind = "plain"
    return Progress(total, kind, stream)


def _outside_stacklevel():
    """The ``stacklevel`` of the first caller outside the chainrule package (the user's line,
    whether the fit came from ``Network.fit``, an estimator or the CLI)."""
    import os

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _times(a, b):
    """``a / b`` as "12x" (a lowest cost or a constant's cost of 0, e.g. one example, is
    "far above" rather than a division by zero)."""
    return f"{a / b:.0f}x" if b > 0 else "far above"


def warn_if_diverged(history, first_record, learning_rate, constant_cost):
    """Warn (:class:`~chainrule.errors.DivergenceWarning`) when this fit diverged; True if so.

    This fit's costs are the records of ``history["cost"]`` from index ``first_record`` (at
    least two are needed). It diverged when the last one is not finite, or when it ends above
    the cost of the best constant prediction (``constant_cost()``: the label frequencies, the
    targets' mean) and either ``DIVERGED_FACTOR`` times the lowest record, or 3 times that
    constant cost and higher than where it began. A cost that starts high and falls
    (unscaled inputs, a short fit), or stays where parameters set before the fit put it, is
    not a divergence.
    """
    costs = [float(J) for J in history.get("cost", [])[first_record:]]
    if len(costs) < 2:
        return False
    J0, J = costs[0], costs[-1]
    epoch = history["epoch"][-1] if history.get("epoch") else len(costs) - 1
    if math.isfinite(J):
        best = min(c for c in costs if math.isfinite(c)) if math.isfinite(J0) else J
        grew = J > 1.1 * J0 if math.isfinite(J0) else False
        rose = J > DIVERGED_FACTOR * max(best, 1e-12)
        if not (rose or grew):
            return False  # fell or held: no need for the constant's cost (a pass over Y)
        base = float(constant_cost())
        if not (math.isfinite(base) and J > base and (rose or (J > 3 * base and grew))):
            return False
        constant = (f"the {base:.4g} of a constant prediction (the label frequencies or the "
                    f"targets' mean)")
        if rose:
            what = (f"the cost rose to {J:.4g} (epoch {epoch}), {_times(J, best)} its lowest "
                    f"{best:.4g}, and ends above {constant}")
        else:
            what = (f"the cost went from {J0:.4g} to {J:.4g} (epoch {epoch}), "
                    f"{_times(J, base)} {constant}")
    else:
        what = f"the cost went from {J0:.4g} to {J} (epoch {epoch})"
    warnings.warn(
        f"the training diverged: {what}; lower the learning rate (now {learning_rate}), e.g. "
        f"10x, and scale the inputs (optimizer='adam' works with learning_rate=0.001)",
        DivergenceWarning, stacklevel=_outside_stacklevel())
    return True
