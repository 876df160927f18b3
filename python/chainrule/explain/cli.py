"""Command-line subcommands of the explain tools: ``explain``, ``gradcheck``, ``jacobians``,
``expand`` and ``doctor`` (registered in :mod:`chainrule.cli`)."""

from __future__ import annotations

import argparse
import sys

from .._argtypes import int_list as _int_list
from .._argtypes import nonnegative_int, positive_int
from .sandbox import DEFAULT_TIME_LIMIT


def _str_list(text):
    return [x for x in text.replace(" ", "").split(",") if x]


def _names(text):
    """One or more comma-separated names (``","`` or ``""`` is refused, not an empty list)."""
    names = _str_list(text)
    if not names:
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated names like "
                                         f"relu,sigmoid, got {text!r}")
    return names


def _seed(text):
    """A seed: an integer in [0, 2**32)."""
    value = nonnegative_int(text)
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {value}")
    return value


def _small_m(text):
    """The examples of a Jacobian printout: 1 to 100 (each Jacobian is (n m) x (n' m))."""
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected at most 100 examples (the Jacobians have "
                                         f"m^2 blocks), got {value}")
    return value


def _seconds(text):
    """A time limit in seconds: a number in (0, MAX_TIME_LIMIT]."""
    from ..errors import InputError
    from .sandbox import time_limit

    try:
        return time_limit(float(text), "the time limit")
    except ValueError as exc:  # float('x') or InputError
        message = str(exc) if isinstance(exc, InputError) else f"expected a number, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _own_failures(run):
    """In the sandbox's child: a failure of chainrule's own code (not the learner's, which
    runs under call_limited and becomes a finding) is reported as such to the parent."""
    def wrapper(args, *more):
        from .sandbox import INTERNAL, child_done, in_child

        try:
            return run(args, *more)
        except Exception:
            if not in_child():
                raise
            import traceback

            traceback.print_exc()
            child_done(INTERNAL)
            return 1
    wrapper.__name__, wrapper.__doc__ = run.__name__, run.__doc__
    return wrapper


def add_parser(subparsers):
    p = subparsers.add_parser(
        "explain", help="every formula of a network with the shapes, for conventions L and J",
        description="Print every forward and backward formula of a network with the shape of "
                    "every operand and result, for convention L (the lectures) and J, marking "
                    "where the 1/m enters.")
    p.add_argument("--layers", type=_int_list, default=[12288, 20, 7, 5, 1],
                   help="layer sizes n[0],...,n[L] (default: 12288,20,7,5,1, the course's cat "
                        "classifier)")
    p.add_argument("--m", type=positive_int, default=209, help="number of examples (default: 209)")
    p.add_argument("--hidden", default="relu", help="hidden activation (default: relu)")
    p.add_argument("--output", default="sigmoid", help="output activation (default: sigmoid)")
    p.add_argument("--loss", default=None, help="loss (default: from the output activation)")
    p.add_argument("--convention", choices=["L", "J", "both"], default="both",
                   help="which backward pass to show (default: both)")
    p.add_argument("--batch-norm", action="store_true", dest="batch_norm",
                   help="batch norm on every hidden layer (gamma, beta instead of b; the "
                        "coupling of the examples in the backward)")
    p.set_defaults(func=run_explain)

    p = subparsers.add_parser(
        "gradcheck", help="the course's gradient check with a per-parameter report",
        description="Two-sided gradient check (epsilon 1e-7, relative difference, threshold "
                    "2e-7 in float64, 1e-4 in float32) of a network's backward pass, or of your "
                    "own function fn(parameters, X, Y) -> (cost, grads).")
    p.add_argument("--layers", type=_int_list, default=[2, 4, 3, 1],
                   help="layer sizes (default: 2,4,3,1)")
    p.add_argument("--hidden", default="tanh", help="hidden activation (default: tanh)")
    p.add_argument("--output", default="sigmoid", help="output activation (default: sigmoid)")
    p.add_argument("--dataset", default="planar", choices=["planar", "moons", "circles"],
                   help="built-in data set for X, Y (2 features; default: planar)")
    p.add_argument("--m", type=positive_int, default=20, help="number of examples (default: 20)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--backend", default="numpy", help="backend whose gradient is checked "
                                                      "(default: numpy)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the weights (default: 0)")
    p.add_argument("--function", metavar="FILE.py:NAME", default=None,
                   help="check your own fn(parameters, X, Y) -> (cost, grads) at the network's "
                        "initial parameters (float64) instead of the network's backward pass "
                        "(FILE may be a notebook, FILE.ipynb:NAME)")
    p.add_argument("--worst", type=positive_int, default=3, help="worst entries listed per "
                                                                 "failing parameter (default: 3)")
    _add_time_limit(p)
    p.set_defaults(func=run_gradcheck)

    p = subparsers.add_parser(
        "jacobians", help="every Jacobian of a small network, numerator layout, two ways",
        description="The Jacobians of each step (dZ/dW, dZ/db, dZ/dA_prev = W per example, "
                    "dA/dZ diagonal, dloss/dZ[L]) in numerator layout, analytic and by finite "
                    "differences, and the course's gradients as their transposes, reshaped.")
    p.add_argument("--layers", type=_int_list, default=[3, 2, 1], help="layer sizes "
                                                                      "(default: 3,2,1)")
    p.add_argument("--m", type=_small_m, default=2, help="number of examples, 1 to 100 "
                   "(default: 2)")
    p.add_argument("--hidden", default="tanh", help="hidden activation (default: tanh)")
    p.add_argument("--output", default="sigmoid", help="output activation (default: sigmoid)")
    p.add_argument("--seed", type=_seed, default=0)
    p.set_defaults(func=run_jacobians)

    p = subparsers.add_parser(
        "expand", help="Z = W·A_prev + b and the backward formulas, entry by entry",
        description="Expand Z = W·A_prev + b and backward formulas into scalar equations and "
                    "show that the scalar chain rule gives the matrix formula (dimensions at "
                    "most 3).")
    p.add_argument("--n", type=int, default=2, help="units of layer l (default: 2)")
    p.add_argument("--n-prev", type=int, default=3, dest="n_prev",
                   help="units of layer l-1 (default: 3)")
    p.add_argument("--m", type=int, default=2, help="examples (default: 2)")
    p.add_argument("--formulas", type=_names, default=["Z", "dA_prev"],
                   help="comma-separated, from Z, dA_prev, dW, db (default: Z,dA_prev)")
    p.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sympy", dest="use_sympy", action="store_const", const=True,
                       default=None, help="require the SymPy check (the 'explain' extra)")
    group.add_argument("--no-sympy", dest="use_sympy", action="store_const", const=False,
                       help="skip the SymPy check")
    p.set_defaults(func=run_expand)

    p = subparsers.add_parser(
        "doctor", help="run your backward function and name the mistake",
        description="Run your linear_backward(dZ, cache), linear_activation_backward(dA, "
                    "cache, activation) or L_model_backward(AL, Y, caches) on generated inputs, "
                    "compare every output with the reference and name the mistake, with the "
                    "correct formula and the shapes. Exit status 0: clean bill; 1: mistakes "
                    "found; 2: could not check (a file that does not load, a function that is "
                    "not defined).")
    p.add_argument("target", nargs="?", metavar="FILE[:FUNCTION]",
                   help="a .py file or a notebook (.ipynb), and the function (default: every "
                        "function in the file with the name of a course function); only the "
                        "definitions it needs are loaded, nothing else in the file is run")
    p.add_argument("--kind", choices=list(_all_kinds()), default=None, metavar="KIND",
                   help="which course function it is (default: from the name or the "
                        "parameters); chainrule doctor --list shows them")
    p.add_argument("--list", action="store_true", help="list the functions the doctor knows")
    p.add_argument("--convention", choices=["L", "J"], default="L",
                   help="where you put the 1/m (default: L, the course)")
    p.add_argument("--activations", type=_names, default=["relu", "sigmoid"],
                   help="activations tried with linear_activation_backward (default: "
                        "relu,sigmoid)")
    p.add_argument("--demo", action="store_true",
                   help="diagnose the built-in catalogue of wrong implementations")
    _add_time_limit(p)
    p.set_defaults(func=run_doctor)


def _all_kinds():
    from .doctor import ALL_KINDS

    return ALL_KINDS


def _add_time_limit(p):
    p.add_argument("--time-limit", type=_seconds, default=DEFAULT_TIME_LIMIT,
                   dest="time_limit", metavar="SECONDS",
                   help=f"seconds each call of your code may take (default: "
                        f"{DEFAULT_TIME_LIMIT:g}); your code runs in a separate process, "
                        f"stopped after 3 times this plus 30 s in all")
    p.add_argument("--in-process", action="store_true", dest="in_process",
                   help="run your code in this process (no hard limit; for debugging)")


def run_explain(args):
    from ..errors import ChainruleError
    from .narrative import shape_narrative

    conventions = ("L", "J") if args.convention == "both" else (args.convention,)
    try:
        print(shape_narrative(args.layers, args.m, hidden=args.hidden, output=args.output,
                              loss=args.loss, conventions=conventions,
                              batch_norm=args.batch_norm))
    except ChainruleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _isolated(args, argv):
    """Run this command again in a child process (see :mod:`.sandbox`), unless already in one."""
    from .sandbox import in_child, run_isolated, watch_forks

    if in_child():
        watch_forks()
        return None
    if args.in_process:
        return None
    return run_isolated(argv, args.time_limit)


def _finish(status):
    from .sandbox import child_done

    child_done(status)
    return status


@_own_failures
def run_gradcheck(args, argv=None):
    import numpy as np

    from .. import datasets
    from ..errors import ChainruleError
    from ..model import Network
    from .gradcheck import course_function_redirect, gradient_check
    from .loader import load, split_target

    if args.function:
        status = _isolated(args, _gradcheck_argv(args))
        if status is not None:
            return status
    X, Y = datasets.load(args.dataset, m=args.m)
    try:
        net = Network(args.layers, hidden=args.hidden, output=args.output, dtype=args.dtype,
                      backend=args.backend, seed=args.seed)
        if args.function:
            path, name = split_target(args.function)
            try:
                loaded = load(path, [name] if name else None, timeout=args.time_limit)
            except ChainruleError as exc:
                print(f"error: cannot load {args.function}: {exc}", file=sys.stderr)
                return _finish(2)
            fn = loaded.functions.get(name) if name else None
            if fn is None:
                why = "; ".join(loaded.problems) or "give FILE.py:NAME"
                print(f"error: cannot load {args.function}: {why}", file=sys.stderr)
                return _finish(2)
            for problem in loaded.problems:
                print(f"note: {problem}")
            redirect = course_function_redirect(fn)
            if redirect:  # a course function (L_model_backward...): the doctor checks it
                print(f"error: {redirect.replace('FILE:', path + ':')}", file=sys.stderr)
                return _finish(2)
            params = {k: v.astype(np.float64) for k, v in net.parameters.items()}
            report = gradient_check(fn, X, Y.astype(np.float64), parameters=params,
                                    worst=args.worst, timeout=args.time_limit)
            print(f"function {name} at the initial parameters of {args.layers}; {args.dataset}, "
                  f"m = {X.shape[1]}")
        else:
            report = gradient_check(net, X, Y, worst=args.worst)
            print(f"{net}; {args.dataset}, m = {X.shape[1]}")
    except ChainruleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _finish(1 if args.function else 2)
    print(report)
    return _finish(0 if report.passed else 1)


def _gradcheck_argv(args):
    argv = ["gradcheck", "--layers", ",".join(map(str, args.layers)), "--hidden", args.hidden,
            "--output", args.output, "--dataset", args.dataset, "--m", str(args.m), "--dtype",
            args.dtype, "--backend", args.backend, "--seed", str(args.seed), "--function",
            args.function, "--worst", str(args.worst), "--time-limit", str(args.time_limit)]
    return argv


def run_jacobians(args):
    import numpy as np

    from ..errors import ChainruleError
    from ..model import Network
    from .jacobian import jacobians

    rng = np.random.default_rng(args.seed)
    try:
        net = Network(args.layers, hidden=args.hidden, output=args.output, backend="numpy",
                      seed=args.seed)
        X = rng.standard_normal((args.layers[0], args.m))
        if net.loss == "categorical_crossentropy":
            Y = np.eye(args.layers[-1])[:, rng.integers(0, args.layers[-1], args.m)]
        elif net.loss == "binary_crossentropy":
            Y = (rng.random((args.layers[-1], args.m)) > 0.5).astype(float)
        else:
            Y = rng.standard_normal((args.layers[-1], args.m))
        print(jacobians(net, X, Y))
    except ChainruleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run_expand(args):
    from ..errors import ChainruleError
    from .scalar import scalar_expansion

    try:
        print(scalar_expansion(args.n, args.n_prev, args.m, tuple(args.formulas), args.latex,
                               args.use_sympy))
    except ChainruleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


@_own_failures
def run_doctor(args):
    from ..errors import ChainruleError
    from .doctor import ALL_KINDS, diagnose, known_signatures
    from .loader import load, split_target

    if args.list:
        print("the doctor knows:\n  " + "\n  ".join(known_signatures()))
        return 0
    if args.demo:
        return _doctor_demo()
    if not args.target:
        print("error: give FILE.py[:FUNCTION] or FILE.ipynb[:FUNCTION], or --demo",
              file=sys.stderr)
        return 2
    status = _isolated(args, _doctor_argv(args))
    if status is not None:
        return status
    path, name = split_target(args.target)
    try:
        loaded = load(path, [name] if name else None, timeout=args.time_limit)
    except ChainruleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _finish(2)
    for note in loaded.notes:
        print(f"loaded: {note}")
    for problem in loaded.problems:
        print(f"not loaded: {problem}")
    if name:
        if name not in loaded.functions:
            print(f"error: {args.target}: no function {name!r} could be loaded", file=sys.stderr)
            return _finish(2)
        names = [name]
    else:
        from .doctor import _course_name

        course_names = {_course_name(k) for k in ALL_KINDS}
        names = [k for k in loaded.functions if k in course_names]
        if not names and loaded.problems:
            print(f"error: {args.target}: nothing could be checked: "
                  f"{'; '.join(loaded.problems)}", file=sys.stderr)
            return _finish(2)
        if not names:
            print(f"error: {args.target} defines no function named like a course function; "
                  f"name the function with FILE:FUNCTION (chainrule doctor --list shows the "
                  f"known ones)", file=sys.stderr)
            return _finish(2)
    status = 0
    for i, fn_name in enumerate(names):
        try:
            report = diagnose(loaded.functions[fn_name], kind=args.kind,
                              activations=args.activations, convention=args.convention,
                              timeout=args.time_limit)
        except ChainruleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return _finish(2)
        if i or loaded.notes or loaded.problems:
            print()
        print(report)
        status = status or (0 if report.ok else 1)
    # 0 clean, 1 mistakes, 2 could not check (something the functions need was not loaded)
    return _finish(status or (2 if loaded.missing else 0))


def _doctor_argv(args):
    argv = ["doctor", args.target, "--convention", args.convention, "--activations",
            ",".join(args.activations), "--time-limit", str(args.time_limit)]
    if args.kind:
        argv += ["--kind", args.kind]
    return argv


def _doctor_demo():
    from .doctor import diagnose
    from .examples import CATALOGUE

    named = 0
    print(f"{'implementation':<50} {'expected':<34} named by the doctor")
    for name, (fn, kind, expected) in CATALOGUE.items():
        found = diagnose(fn, kind=kind).codes
        ok = found == expected
        named += ok
        print(f"{name:<50} {','.join(sorted(expected)) or 'clean':<34} "
              f"{','.join(sorted(found)) or 'clean':<34} {'ok' if ok else 'MISSED'}")
    print(f"\n{named} of {len(CATALOGUE)} named correctly")
    return 0 if named == len(CATALOGUE) else 1

