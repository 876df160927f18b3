"""Gradient check with a report a learner can read: which parameter, which entries, by how much.

The formulas (the two-sided difference and the relative difference) are the reference's
:func:`chainrule.reference.central_difference` and :func:`chainrule.reference.relative_difference`;
this module only chooses what to perturb, runs them and writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import reference as ref
from ..errors import InputError
from . import display
from .sandbox import time_limit

EPSILON = 1e-7
# Relative-difference thresholds keyed by the dtype of the analytic gradient. float64 is the
# course's (2e-7 for a two-sided difference with eps = 1e-7). A correct float32 gradient
# differs from the float64 numeric one by its own rounding: measured up to 2.2e-7 overall
# and 1.1e-6 for a single parameter on 54 correct networks (see docs/explain.md), so 2e-7
# would fail correct code; 1e-4 keeps a margin of two orders of magnitude and still
# catches formula mistakes (a wrong factor, transpose or derivative gives >= 1e-2).
THRESHOLDS = {np.dtype(np.float64): 2e-7, np.dtype(np.float32): 1e-4}


@dataclass
class ParameterCheck:
    """The check of one parameter (``W1``, ``b1``, ...)."""

    name: str
    shape: tuple
    difference: float
    passed: bool
    #: the entries with the largest ``|analytic - numeric|``: ``(index, analytic, numeric)``
    worst: list = field(default_factory=list)
    #: ``c`` when ``analytic ~= c * numeric`` for every checked entry (a constant factor), else None
    factor: float | None = None
    n_checked: int = 0


@dataclass
class GradientCheckReport:
    """What :func:`gradient_check` found; ``str(report)`` is the readable report."""

    difference: float
    threshold: float
    passed: bool
    epsilon: float
    dtype: np.dtype
    m: int
    parameters: list
    #: when ``difference`` failed: the difference with the step ``10 epsilon`` (else None)
    retry_difference: float | None = None

    def __bool__(self):
        return self.passed

    def __getitem__(self, name):
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def failed(self):
        """The parameters whose own relative difference is above the threshold."""
        return [p for p in self.parameters if not p.passed]

    def __str__(self):
        return format_report(self)

    def _repr_html_(self):
        """A table in a notebook, the failing parameters highlighted."""
        hints = {p.name: _factor_hint(p.factor, self.m) for p in self.failed()
                 if p.factor is not None}
        return display.gradcheck_html(self, hints)


def _is_network(obj):
    from ..model import Network

    return isinstance(obj, Network)


def _network_problem(net, X, Y):
    """Parameters, the analytic gradient in the network's dtype and backend, and J in float64.

    A network with batch norm is checked in training mode (the batch's statistics: the
    function the backward differentiates), with its ``batch_norm_epsilon``."""
    X, Y = net._check_XY(X, Y)
    AL, caches = net.forward(X, training=True)
    grads = net.backward(AL, Y, caches)
    parameters = net.parameters
    activations, loss = net.activations, net.loss
    eps = getattr(net, "batch_norm_epsilon", ref.BATCHNORM_EPSILON)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)

    def J64(params64):
        AL64, _ = ref.model_forward(X64, params64, activations, epsilon=eps)
        return ref.compute_cost(AL64, Y64, loss)

    return parameters, grads, J64, X.shape[1]


def _limited(fn, timeout):
    """``fn`` run under the time limit; its exceptions and exits become an :class:`InputError`."""
    from .sandbox import call_limited

    def run(*args):
        result, error = call_limited(fn, args, timeout)
        if error is not None:
            raise InputError(f"your function {getattr(fn, '__name__', fn)}: {error[1]} — the "
                             f"gradient check calls fn(parameters, X, Y) and expects (cost, "
                             f"grads)")
        return result

    return run


def course_function_redirect(fn):
    """The message for a course function given where ``fn(parameters, X, Y) -> (cost,
    grads)`` belongs (``L_model_backward(AL, Y, caches)``...), or None: such a function is
    checked by the doctor, or through a wrapper that runs the forward and backward pass."""
    import inspect

    from .doctor import _WRAPPER, detect_kind

    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    if params[:1] and params[0] in ("parameters", "params", "theta", "p"):
        return None
    try:
        kind = detect_kind(fn)
    except InputError:
        return None
    name = getattr(fn, "__name__", "the function")
    return (f"{name}({', '.join(params)}) is the course's {kind}, not a function "
            f"fn(parameters, X, Y) -> (cost, grads): the gradient check calls it with the "
            f"parameters, X and Y. Check it with the doctor (chainrule doctor FILE:{name}; "
            f"diagnose({name}) in Python), or\n{_WRAPPER}")


def _function_problem(fn, X, Y, parameters, timeout=None):
    redirect = course_function_redirect(fn)
    if redirect:
        raise InputError(redirect)
    if parameters is None:
        raise InputError("gradient_check(fn, X, Y) needs parameters=: the dict the function "
                         "takes, e.g. {'W1': ..., 'b1': ...}")
    if not isinstance(parameters, dict) or not parameters:
        raise InputError("parameters must be a non-empty dict of arrays")
    parameters = {k: np.asarray(v) for k, v in parameters.items()}
    fn = _limited(fn, timeout)
    out = fn(parameters, X, Y)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        raise InputError("the function must return (cost, grads) with grads a dict keyed "
                         "'d' + parameter name ('dW1', 'db1', ...)")
    _, grads = out
    missing = [f"d{k}" for k in parameters if f"d{k}" not in grads]
    if missing:
        raise InputError(f"grads has no {', '.join(missing)}: give one gradient per parameter")
    X64 = np.asarray(X, dtype=np.float64)
    Y64 = np.asarray(Y, dtype=np.float64)

    def J64(params64):
        return float(fn(params64, X64, Y64)[0])

    m = X64.shape[1] if X64.ndim == 2 else 1
    return parameters, grads, J64, m


def _arguments(epsilon, threshold, worst, max_entries, timeout):
    """gradient_check's numbers, checked: a zero, negative or NaN step or threshold would
    report a correct gradient as failed (or a wrong one as passed)."""
    def number(value, what, low, high):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)) \
                or not low < value < high:  # NaN fails too
            raise InputError(f"{what} must be a number in ({low:g}, {high:g}), got {value!r}")
        return float(value)

    def integer(value, what, low):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{what} must be an integer >= {low}, got {value!r}")
        return int(value)

    epsilon = number(epsilon, "epsilon", 0, 1)
    threshold = None if threshold is None else number(threshold, "threshold", 0, 1)
    worst = integer(worst, "worst", 0)
    max_entries = None if max_entries is None else integer(max_entries, "max_entries", 1)
    return epsilon, threshold, worst, max_entries, time_limit(timeout)


def gradient_check(model, X, Y, parameters=None, epsilon=EPSILON, threshold=None, worst=3,
                   max_entries=None, seed=0, timeout=10.0):
    """The course's two-sided gradient check, with a report per parameter.

    ``gradapprox[i] = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)`` and
    ``difference = ||grad - gradapprox|| / (||grad|| + ||gradapprox||)``, over all
    parameters together and over each one on its own.

    Parameters
    ----------
    model : chainrule.Network or callable
        A network: its own backend computes the analytic gradient (``forward`` then
        ``backward``). A function: ``fn(parameters, X, Y) -> (cost, grads)``, where
        ``parameters`` is a dict of arrays, ``cost`` a float (the cost J, the mean over
        the examples) and ``grads`` a dict with a key ``"d" + name`` for every parameter,
        each with that parameter's shape. The function must compute in the dtype of the
        arrays it receives (it is also called with float64 copies). Batch-norm layers are
        checked in training mode, like any other parameter: ``gamma1`` needs ``dgamma1``
        (the reference's ``model_forward`` / ``model_backward`` give them).
    X : array, shape (n[0], m)
    Y : array, shape (n[L], m)
    parameters : dict, optional
        Required with a function: the point where the gradient is checked.
    epsilon : float
        The step of the two-sided difference (the course's ``1e-7``).
    threshold : float, optional
        The relative difference above which the check fails. Default by the dtype of
        the analytic gradient: ``2e-7`` for float64 (the course), ``1e-4`` for float32.
    worst : int
        How many of the worst entries each parameter's report lists.
    max_entries : int, optional
        Check at most this many entries of each parameter (drawn with ``seed``); the
        default checks every entry (two cost evaluations each).
    seed : int
    timeout : float or None
        With a function: seconds each call of it may take (default 10); past it, or when the
        function raises or calls ``sys.exit``, an :class:`~chainrule.errors.InputError` says
        so. ``None`` for no limit.

    Returns
    -------
    GradientCheckReport
        ``bool(report)`` says whether it passed; ``print(report)`` shows the table.

    Notes
    -----
    Float32 policy: central differences with ``eps = 1e-7`` are meaningless in float32
    (its resolution is about ``1.2e-7`` relative), so the numeric gradient is always
    computed in float64, on an upcast copy of the same parameters and data. The analytic
    gradient is the one under test, in its own dtype, and is compared against that
    float64 estimate with the float32 threshold above.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule import Network
    >>> from chainrule.explain import gradient_check
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5).astype(float)
    >>> report = gradient_check(Network([3, 4, 1], hidden="tanh", backend="numpy"), X, Y)
    >>> report.passed
    True
    """
    epsilon, threshold, worst, max_entries, timeout = _arguments(epsilon, threshold, worst,
                                                                  max_entries, timeout)
    if _is_network(model):
        parameters, grads, J64, m = _network_problem(model, X, Y)
    elif callable(model):
        parameters, grads, J64, m = _function_problem(model, X, Y, parameters, timeout)
    else:
        raise InputError("gradient_check takes a chainrule.Network or a function "
                         "fn(parameters, X, Y) -> (cost, grads)")
    grad_dtype = np.result_type(*[np.asarray(grads[f"d{k}"]).dtype for k in parameters])
    if threshold is None:
        threshold = THRESHOLDS.get(np.dtype(grad_dtype), THRESHOLDS[np.dtype(np.float64)])
    params64 = {k: np.array(v, dtype=np.float64) for k, v in parameters.items()}
    rng = np.random.default_rng(seed)

    grads64 = {k: np.asarray(grads[f"d{k}"], dtype=np.float64) for k in params64}
    # What a correct gradient may still miss by: the rounding of the analytic gradient in
    # its dtype, and of the two-sided difference (eps64 |J| / epsilon). A parameter whose
    # worst entry is within 100 times this is not flagged even if its own relative
    # difference is large (a tiny db can have one), as long as the whole check passes.
    G = max((float(np.max(np.abs(g))) for g in grads64.values() if g.size), default=0.0)
    noise = 100 * (np.finfo(grad_dtype).eps * G
                   + np.finfo(np.float64).eps * max(abs(J64(params64)), 1.0) / epsilon)

    entries = {}
    for name, value in params64.items():
        if grads64[name].shape != value.shape:
            raise InputError(f"d{name} has shape {grads64[name].shape} but {name} has shape "
                             f"{value.shape}: a gradient has the shape of what it differentiates")
        flat = np.arange(value.size)
        if max_entries is not None and value.size > max_entries:
            flat = np.sort(rng.choice(value.size, size=max_entries, replace=False))
        entries[name] = flat

    def numeric(eps):
        out = {}
        for name, flat in entries.items():
            def J_of_entries(theta, name=name, flat=flat):
                params = dict(params64)
                p = params64[name].copy()
                p.reshape(-1)[flat] = theta
                params[name] = p
                return J64(params)

            out[name] = ref.central_difference(J_of_entries, params64[name].reshape(-1)[flat],
                                               eps).reshape(-1)
        return out

    g = {name: grads64[name].reshape(-1)[flat] for name, flat in entries.items()}
    ga = numeric(epsilon)
    difference = ref.relative_difference(np.concatenate(list(g.values())),
                                         np.concatenate(list(ga.values())))
    retry = None
    if not difference < threshold:
        # Near a saturated output the cost itself carries rounding error (1 - A cancels), and
        # dividing by 2 eps magnifies it: repeat with 10 eps, where that error is 10 times
        # smaller and the truncation error (~eps^2) still negligible. A wrong formula fails both.
        ga10 = numeric(10 * epsilon)
        retry = ref.relative_difference(np.concatenate(list(g.values())),
                                        np.concatenate(list(ga10.values())))
    checks = []
    for name, flat in entries.items():
        check = _parameter_check(name, params64[name].shape, flat, g[name], ga[name], threshold,
                                 worst, noise)
        if not check.passed and retry is not None and retry < threshold:
            # Passes with 10 eps, or misses the 10-eps estimate by less than the two
            # estimates differ from each other (the measured rounding noise at eps).
            miss = float(np.max(np.abs(g[name] - ga10[name]), initial=0.0))
            spread = float(np.max(np.abs(ga[name] - ga10[name]), initial=0.0))
            check.passed = (ref.relative_difference(g[name], ga10[name]) < threshold
                            or miss <= spread)
        checks.append(check)
    passed = (difference < threshold or (retry is not None and retry < threshold)) \
        and all(c.passed for c in checks)
    return GradientCheckReport(difference=difference, threshold=float(threshold), passed=passed,
                               epsilon=epsilon, dtype=np.dtype(grad_dtype), m=m,
                               parameters=checks, retry_difference=retry)


def constant_factor(actual, expected, rtol=1e-3):
    """``c`` if ``actual ~= c * expected`` entry by entry (within ``rtol``), else ``None``."""
    actual, expected = np.ravel(actual), np.ravel(expected)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    if not scale or not np.all(np.isfinite(actual)):
        return None
    big = np.abs(expected) > 1e-3 * scale
    c = float(np.median(actual[big] / expected[big]))
    if c and np.allclose(actual, c * expected, rtol=rtol, atol=rtol * abs(c) * scale):
        return c
    return None


def _parameter_check(name, shape, flat, g, ga, threshold, worst, noise):
    difference = ref.relative_difference(g, ga)
    order = np.argsort(-np.abs(g - ga), kind="stable")[:worst]
    entries = [(tuple(int(i) for i in np.unravel_index(flat[j], shape)), float(g[j]), float(ga[j]))
               for j in order]
    passed = difference < threshold or float(np.max(np.abs(g - ga), initial=0.0)) <= noise
    factor = None if passed else constant_factor(g, ga)
    if factor is not None and np.isclose(factor, 1.0, rtol=1e-3):
        factor = None  # "1 x numeric" says nothing
    return ParameterCheck(name=name, shape=tuple(shape), difference=difference, passed=passed,
                          worst=entries, factor=factor, n_checked=len(flat))


def _factor_hint(c, m):
    for value, text in ((m, "= m: the 1/m is missing"),
                        (1 / m, "= 1/m: an extra 1/m (applied twice?)"),
                        (-1, "= -1: the sign is flipped"), (m * m, "= m^2"),
                        (1 / (m * m), "= 1/m^2")):
        if np.isclose(c, value, rtol=1e-3):
            return f"analytic = {c:.6g} x numeric {text}"
    return f"analytic = {c:.6g} x numeric (a constant factor)"


def format_report(report):
    """The text of a :class:`GradientCheckReport`."""
    verdict = "PASSED" if report.passed else "FAILED"
    op = "<" if report.difference < report.threshold else ">="
    lines = [
        f"Gradient check: two-sided differences, epsilon = {report.epsilon:g}; analytic gradient "
        f"in {report.dtype.name}, numeric in float64",
        f"difference = ||grad - gradapprox|| / (||grad|| + ||gradapprox||) = "
        f"{report.difference:.3e} {op} {report.threshold:g}"
        + (f": {verdict}" if report.retry_difference is None else ""),
    ]
    if report.retry_difference is not None:
        rop = "<" if report.retry_difference < report.threshold else ">="
        lines.append(f"  repeated with epsilon = {10 * report.epsilon:g}: difference = "
                     f"{report.retry_difference:.3e} {rop} {report.threshold:g}: {verdict}")
        if report.passed:
            lines.append("  (the cost's own rounding error, divided by 2 epsilon, dominated at "
                         f"epsilon = {report.epsilon:g}: e.g. 1 - A cancels when A is near 1; "
                         "the analytic gradient is right)")
    lines += [
        "",
        f"{'param':<7}{'shape':<12}{'difference':>12}  {'':<6}{'worst entry':<12}"
        f"{'analytic':>15}{'numeric':>15}",
    ]
    for p in report.parameters:
        index, g, ga = p.worst[0] if p.worst else ((), float("nan"), float("nan"))
        status = "ok" if p.passed else "WRONG"
        sampled = ("" if p.n_checked == int(np.prod(p.shape))
                   else f"  ({p.n_checked} entries sampled)")
        lines.append(f"{p.name:<7}{str(p.shape):<12}{p.difference:>12.3e}  {status:<6}"
                     f"{str(list(index)):<12}{g:>15.8g}{ga:>15.8g}{sampled}")
    hints = {}
    for p in report.failed():
        if p.factor is not None:
            hints.setdefault(_factor_hint(p.factor, report.m), []).append(p.name)
    for p in report.failed():
        lines.append("")
        lines.append(f"{p.name}: relative difference {p.difference:.3e} >= {report.threshold:g}; "
                     f"worst entries:")
        for index, g, ga in p.worst:
            lines.append(f"  d{p.name}{list(index)}: analytic {g: .10g}  numeric {ga: .10g}  "
                         f"|diff| {abs(g - ga):.3e}")
        hint = _factor_hint(p.factor, report.m) if p.factor is not None else None
        if hint is not None and len(hints[hint]) == 1:
            lines.append(f"  {hint}")
    shared = {h: names for h, names in hints.items() if len(names) > 1}
    if shared:
        lines.append("")
    for hint, names in shared.items():  # the same factor on several parameters: said once
        lines.append(f"{', '.join(names)}: {hint}")
    return "\n".join(lines)
