"""``chainrule bench``: the command line of the harness (also ``python -m chainrule.bench``)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from .. import _wisdom
from .._argtypes import positive_int
from ..backends import registry as _dispatch
from .calibrate import (CALIBRATION_GRID, QUICK_CALIBRATION_GRID, calibrate, first_use_seconds,
                        rule_summary, write_table)
from .comparison import compare, implementation_names, markdown
from .train import (compare_train, fit_implementation_names, markdown_train, rows_from_json,
                    rows_to_json)
from .workloads import QUICK_WORKLOADS, TRAIN_WORKLOADS, WORKLOADS


def _threads(text):
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts like 1 or 1,0, got {text!r}")
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"thread counts must be >= 0 (0: the libraries' "
                                         f"defaults), got {text!r}")
    return values


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench", help="time training against NumPy, PyTorch, JAX and scikit-learn",
        description="Time one full-batch training step of each workload (default) or whole "
                    "mini-batch Adam fits (--train) for every chainrule backend and the peers "
                    "that are installed, interleaved in one process, and print a markdown "
                    "table. With --calibrate, measure the rule behind backend='auto' on this "
                    "machine and store it in the user's cache directory.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="small workloads, few repeats: seconds (default for steps)")
    mode.add_argument("--full", action="store_true",
                      help="all workloads, more repeats: minutes")
    p.add_argument("--train", action="store_true",
                   help="whole fits (digits, mnist-like 60000x784, tabular 100000x20) against "
                        "scikit-learn, PyTorch, JAX and a GEMM-only floor, 1 and default "
                        "threads; with --quick, smaller data")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated subset of {', '.join(WORKLOADS)} "
                        f"(--train: {', '.join(TRAIN_WORKLOADS)})")
    p.add_argument("--impls", default=None,
                   help="comma-separated subset of " + ", ".join(implementation_names())
                        + " (--train: " + ", ".join(fit_implementation_names()) + ")")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="interleaved rounds (default 15 quick, 41 full; --train 5, quick 3)")
    p.add_argument("--threads", type=_threads, default=None,
                   help="threads for BLAS/torch/XLA/numba, 0 for the libraries' defaults; "
                        "--train takes a list (default 1,0: both, each in its own process); "
                        "otherwise one number (default 1: repeatable numbers)")
    p.add_argument("--output", "-o", type=output_file, default=None,
                   help="markdown file to write (default chainrule-bench.md, --train "
                        "chainrule-bench-train.md; '-' for none)")
    # --train's child processes
    p.add_argument("--json", type=output_file, default=None, help=argparse.SUPPRESS)
    p.add_argument("--calibrate", action="store_true",
                   help="time the backends' training loop on a grid of (width, m, dtype), print "
                        "the rule behind backend='auto' and store it as this machine's "
                        f"calibration ({_wisdom.path() or 'off: CHAINRULE_WISDOM=0'})")
    p.add_argument("--c-threshold", action="store_true",
                   help="time the C backend's own loops against a BLAS call per layer shape "
                        "(the cut-off it uses)")
    p.add_argument("--measure", choices=("fit", "step"), default="fit",
                   help="with --calibrate: time Network.fit's mini-batch steps (default) or "
                        "the single step alone")
    p.add_argument("--note", default="", help="with --calibrate: a note stored in the table "
                                               "(e.g. which commits were measured)")
    p.add_argument("--write", nargs="?", const="", default=None, metavar="PATH", type=output_file,
                   help="with --calibrate: write the shipped table instead (default: "
                        "chainrule/backends/_auto_table.py of this installation)")
    p.set_defaults(func=run_bench)


def output_file(text):
    """A path to write a report or table to, checked before any work by
    :func:`chainrule.io.check_save_path`'s rule (a regular file or a new name in an existing,
    writable directory); ``"-"`` (none) and ``""`` (the default path) pass as they are."""
    if text in ("", "-"):
        return text
    from ..errors import ChainruleError
    from ..io import check_save_path

    try:
        check_save_path(text)
    except ChainruleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _error(text):
    print(f"error: {text}", file=sys.stderr)
    return 2


def _names(text, known, default):
    names = [n for n in (text or "").split(",") if n] or list(default)
    unknown = [n for n in names if n not in known]
    return names, unknown


def _write(text, path):
    print(text)
    if path and path != "-":
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path}", file=sys.stderr)


def run_calibrate(args):
    grid = CALIBRATION_GRID if args.full else QUICK_CALIBRATION_GRID
    threads = (args.threads or [1])[0]
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    c_blas, restore = None, None
    if args.write is None:  # this machine's wisdom: which BLAS the C backend calls, first
        from .calibrate import c_blas_choice

        log("timing the C backend's Network.step with each BLAS that loads here")
        c_blas = c_blas_choice(rounds=args.repeats or 5, log=log)
        if c_blas is not None:
            from ..backends.c import blas as cblas

            restore = cblas.current["source"]
            cblas.use_blas(c_blas["source"])  # the table below is measured with it
            print(f"C backend BLAS: {c_blas['source']} — {c_blas['reason']}")
    try:
        table = calibrate(grid, repeats=args.repeats or (9 if args.full else 5),
                          threads=threads, note=args.note, measure=args.measure, log=log)
    finally:
        if restore is not None:
            cblas.use_blas(restore)
    print(rule_summary(table))
    if args.write is not None:
        from ..backends import auto

        path = args.write or auto.TABLE_PATH
        write_table(table, path)
        print(f"wrote {path}")
        return 0
    log("timing numba's first use with a cold and a warm cache (fresh interpreters)")
    compiled = first_use_seconds()
    print("first-use seconds: " + (", ".join(
        f"{b} {c['cold']:.1f} s with a cold cache, {c['warm']:.1f} s warm"
        for b, c in compiled.items()) or "none (no numba)"))
    if _wisdom.path() is None:
        print("CHAINRULE_WISDOM=0: not stored")
        return 0
    path = _wisdom.save(_wisdom.make(table, compiled, note=args.note, c_blas=c_blas))
    print(f"wrote this machine's calibration to {path}")
    return 0


def _default_output_writable(args, default):
    """The default report path, checked before the run (as -o is, by its type)."""
    if args.output is None:
        try:
            output_file(default)
        except argparse.ArgumentTypeError as exc:
            return _error(f"{exc} (give -o PATH, or -o - for none)")
    return None


def run_train(args):
    refused = _default_output_writable(args, "chainrule-bench-train.md")
    if refused:
        return refused
    names, unknown = _names(args.workloads, TRAIN_WORKLOADS, TRAIN_WORKLOADS)
    if unknown:
        return _error(f"unknown workload(s) {unknown}; known: {list(TRAIN_WORKLOADS)}")
    include = [n for n in (args.impls or "").split(",") if n] or None
    try:
        fit_implementation_names(include)
    except ValueError as exc:
        return _error(str(exc))
    repeats = args.repeats or (3 if args.quick else 5)
    settings = args.threads if args.threads is not None else [1, 0]
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    if len(settings) == 1:
        runs = [compare_train(names, include, repeats, settings[0], args.quick, log)]
    else:  # each setting in a fresh process: XLA and numba read theirs once, at import
        runs = []
        for threads in settings:
            with tempfile.TemporaryDirectory(prefix="chainrule-bench-") as tmp:
                out = os.path.join(tmp, "rows.json")
                cmd = [sys.executable, "-m", "chainrule.bench", "--train", "--threads",
                       str(threads), "--repeats", str(repeats), "--workloads", ",".join(names),
                       "-o", "-", "--json", out] + (["--quick"] if args.quick else []) + (
                    ["--impls", ",".join(include)] if include else [])
                rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
                if rc:
                    return _error(f"the {threads}-thread run failed (exit status {rc})")
                with open(out) as f:
                    saved = json.load(f)
            runs.append((rows_from_json(saved["rows"]), saved["info"]))
    if args.json:
        rows, info = runs[0]
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows_to_json(rows), info=info), f)
    _write(markdown_train(runs), args.output or "chainrule-bench-train.md")
    return 0


def run_bench(args):
    if args.c_threshold:
        from .calibrate import c_blas_threshold

        if "c" not in _dispatch.available_backends():
            return _error(f"the c backend is not available: {_dispatch.import_error('c')}")
        c_blas_threshold(rounds=args.repeats or 5)
        return 0
    if args.calibrate:
        return run_calibrate(args)
    if args.train:
        return run_train(args)
    refused = _default_output_writable(args, "chainrule-bench.md")
    if refused:
        return refused
    threads = args.threads or [1]
    if len(threads) > 1:
        return _error("--threads takes one number without --train")
    names, unknown = _names(args.workloads, WORKLOADS,
                            WORKLOADS if args.full else QUICK_WORKLOADS)
    if unknown:
        return _error(f"unknown workload(s) {unknown}; known: {list(WORKLOADS)}")
    include = [n for n in (args.impls or "").split(",") if n] or None
    try:
        implementation_names(include)
    except ValueError as exc:
        return _error(str(exc))
    repeats = args.repeats or (41 if args.full else 15)
    target = 0.02 if args.full else 0.002
    rows, info = compare(names, include, repeats, target, threads[0],
                         log=lambda s: print(s, file=sys.stderr))
    _write(markdown(rows, info), args.output or "chainrule-bench.md")
    wrong = [r for r in rows if r.status.startswith("wrong")]
    return 1 if wrong else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chainrule.bench")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["bench"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)
