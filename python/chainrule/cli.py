"""The command line: ``chainrule train`` (also ``python -m chainrule train``).

Each subcommand lives in a module that provides ``add_parser(subparsers)``; the parser
sets ``func`` to the function that runs it. Register new ones in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

_SUBCOMMANDS = ["chainrule.cli", "chainrule.explain.cli"]  # modules with an add_parser(subparsers)

# Defaults per data set: the course's planar network, and small ones that fit the others.
_DATASET_DEFAULTS = {
    "planar": dict(layers="2,4,1", hidden="tanh", epochs=10000, learning_rate=1.2),
    "moons": dict(layers="2,8,1", hidden="tanh", epochs=5000, learning_rate=0.5),
    "circles": dict(layers="2,8,1", hidden="tanh", epochs=5000, learning_rate=0.5),
}


def _int_list(text):
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 2,4,1, got {text!r}")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train a network on a built-in data set",
        description="Train a fully-connected network on a built-in 2-D data set (generated, no "
                    "download) and report train and test accuracy.")
    p.add_argument("--dataset", choices=sorted(_DATASET_DEFAULTS), default="planar",
                   help="built-in data set (default: planar, the course's flower)")
    p.add_argument("--layers", type=_int_list, default=None,
                   help="layer sizes n[0],...,n[L] including input and output (default: 2,4,1 "
                        "for planar)")
    p.add_argument("--hidden", default=None,
                   help="hidden activation: relu, tanh, sigmoid, leaky_relu, identity (default: tanh)")
    p.add_argument("--output", default="sigmoid", help="output activation (default: sigmoid)")
    p.add_argument("--epochs", type=int, default=None, help="gradient-descent steps (default: 10000 "
                                                              "for planar)")
    p.add_argument("--learning-rate", "--lr", type=float, default=None, dest="learning_rate",
                   help="learning rate (default: 1.2 for planar)")
    p.add_argument("--init", default="xavier", help="initializer: he, xavier, glorot_uniform, "
                                                    "random, zeros (default: xavier)")
    p.add_argument("--seed", type=int, default=2, help="seed of the model's generator (default: 2)")
    p.add_argument("--data-seed", type=int, default=None, help="seed of the data set")
    p.add_argument("--m", type=int, default=400, help="number of examples generated (default: 400)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="fraction of examples held out for testing (default: 0.2)")
    p.add_argument("--backend", default="auto", help="auto, numpy, numba or c (default: auto)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--convention", default="L", choices=["L", "J"],
                   help="where the 1/m goes in the backward pass: L (lectures) or J (dZ[L] = "
                        "(A-Y)/m); both give the same dW, db and training")
    p.add_argument("--cost-every", type=int, default=100, help="record the cost every N epochs")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="write the cost curve and the decision boundary to this file (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-cost", action="store_true", help="print the cost as it is recorded")
    p.set_defaults(func=run_train)


def run_train(args):
    import numpy as np

    from . import datasets
    from .errors import ChainruleError
    from .model import Network

    defaults = _DATASET_DEFAULTS[args.dataset]
    layers = args.layers or _int_list(defaults["layers"])
    hidden = args.hidden or defaults["hidden"]
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    lr = defaults["learning_rate"] if args.learning_rate is None else args.learning_rate
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("error: --plot needs matplotlib: pip install 'chainrule[plot]'", file=sys.stderr)
            return 2
    X, Y = datasets.load(args.dataset, seed=args.data_seed, m=args.m)
    X_train, Y_train, X_test, Y_test = datasets.train_test_split(X, Y, args.test_fraction, seed=0)
    try:
        net = Network(layers, hidden=hidden, output=args.output, init=args.init, seed=args.seed,
                      dtype=args.dtype, backend=args.backend)
        print(f"{net}\ndata: {args.dataset}, {X_train.shape[1]} train / {X_test.shape[1]} test "
              f"examples; {epochs} epochs, learning rate {lr}, convention {args.convention}")
        start = time.perf_counter()
        net.fit(X_train, Y_train, epochs=epochs, learning_rate=lr, cost_every=args.cost_every,
                progress=not args.no_progress, print_cost=args.print_cost)
        seconds = time.perf_counter() - start
        if args.convention == "J":
            # Training is identical in both conventions; show the check on the trained model.
            AL, caches = net.forward(X_train)
            gL, gJ = net.backward(AL, Y_train, caches, "L"), net.backward(AL, Y_train, caches, "J")
            same = all(np.allclose(gL[k], gJ[k]) for k in gL if k[:2] in ("dW", "db"))
            print(f"convention J: dW, db equal to convention L: {same}; dZ{net.L} ratio L/J = m = "
                  f"{X_train.shape[1]}")
        train_acc = net.score(X_train, Y_train)
        test_acc = net.score(X_test, Y_test) if X_test.shape[1] else float("nan")
    except ChainruleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"final cost {net.history_['cost'][-1]:.6f} after {epochs} epochs in {seconds:.2f} s "
          f"(backend {net.backend})")
    print(f"train accuracy: {100 * train_acc:.1f}%")
    print(f"test accuracy:  {100 * test_acc:.1f}%")
    if args.plot:
        from .plot import plot_training

        plot_training(net, X, Y, args.plot, title=f"{args.dataset}: {layers}, {hidden}")
        print(f"wrote {args.plot}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Fully-connected networks with the Deep Learning Specialization's backward pass.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
