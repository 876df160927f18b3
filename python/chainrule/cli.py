"""The command line: ``chainrule train`` (also ``python -m chainrule train``).

Each subcommand lives in a module that provides ``add_parser(subparsers)``; the parser
sets ``func`` to the function that runs it. Register new ones in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from . import optim, spec
from ._argtypes import int_list as _int_list

_SUBCOMMANDS = ["chainrule.cli", "chainrule.explain.cli"]  # modules with an add_parser(subparsers)
_SUBCOMMANDS.append("chainrule.bench")

# Defaults per data set: the course's planar network, and small ones that fit the others.
_DATASET_DEFAULTS = {
    "planar": dict(layers="2,4,1", hidden="tanh", epochs=10000, learning_rate=1.2),
    "moons": dict(layers="2,8,1", hidden="tanh", epochs=5000, learning_rate=0.5),
    "circles": dict(layers="2,8,1", hidden="tanh", epochs=5000, learning_rate=0.5),
    # scikit-learn's bundled 8x8 digits (no download): a softmax network with Adam.
    "digits": dict(layers="64,64,10", hidden="relu", epochs=30, learning_rate=0.01,
                   output="softmax", optimizer="adam", mini_batch_size=64),
}




def _layer_sizes(text):
    """``"2,4,1"`` -> ``[2, 4, 1]``: at least two sizes, each a positive integer."""
    sizes = _int_list(text)
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two positive layer sizes like 2,4,1 "
                                         f"(input, hidden..., output), got {text!r}")
    return sizes


def _int_at_least(low, high=None):
    """An argparse type: an integer in ``[low, high)``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or high is not None and value >= high:
            bound = f">= {low}" if high is None else f"in [{low}, {high:_})".replace("_", ",")
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {value}")
        return value
    return parse


def _fraction(text):
    """An argparse type: a number in ``[0, 1)`` (NaN and inf refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:  # also False for NaN
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _output_file(text):
    """An argparse type: a path :func:`chainrule.io.save`'s rule lets us write (a regular file
    or a new name in an existing, writable directory), checked before any work."""
    from .errors import ChainruleError
    from .io import check_save_path

    try:
        check_save_path(text)
    except ChainruleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _plot_file(text):
    """:func:`_output_file` whose extension matplotlib can write (checked before training)."""
    import os

    text = _output_file(text)
    ext = os.path.splitext(text)[1].lstrip(".").lower()
    if ext:
        try:
            from matplotlib.backend_bases import FigureCanvasBase
        except ImportError:
            return text  # run_train reports the missing extra
        formats = FigureCanvasBase.get_supported_filetypes()
        if ext not in formats:
            raise argparse.ArgumentTypeError(f"cannot write a .{ext} figure; matplotlib writes "
                                             f"{', '.join(sorted(formats))}")
    return text


_SEED = _int_at_least(0, 2 ** 32)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train a network on a built-in data set",
        description="Train a fully-connected network on a built-in 2-D data set (generated, no "
                    "download) and report train and test accuracy.")
    p.add_argument("--dataset", choices=sorted(_DATASET_DEFAULTS), default="planar",
                   help="built-in data set (default: planar, the course's flower)")
    p.add_argument("--layers", type=_layer_sizes, default=None,
                   help="layer sizes n[0],...,n[L] including input and output (default: 2,4,1 "
                        "for planar)")
    p.add_argument("--hidden", default=None,
                   help=f"hidden activation: {spec.activation_help(hidden_only=True)} "
                        f"(default: tanh)")
    p.add_argument("--output", default=None,
                   help=f"output activation: {spec.activation_help()} (default: sigmoid; "
                        f"softmax for digits)")
    p.add_argument("--epochs", type=_int_at_least(0), default=None,
                   help="epochs (default: 10000 for planar)")
    p.add_argument("--learning-rate", "--lr", type=float, default=None, dest="learning_rate",
                   help="learning rate lr0 (default: 1.2 for planar)")
    p.add_argument("--init", default="xavier", help="initializer: he, xavier, glorot_uniform, "
                                                    "random, zeros (default: xavier)")
    p.add_argument("--seed", type=_SEED, default=2,
                   help="seed of the model's generator, in [0, 2**32) (default: 2)")
    p.add_argument("--data-seed", type=_SEED, default=None,
                   help="seed of the data set, in [0, 2**32)")
    p.add_argument("--m", type=_int_at_least(2), default=400,
                   help="number of examples generated, >= 2 (default: 400)")
    p.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="fraction of examples held out for testing, in [0, 1) (default: 0.2)")
    p.add_argument("--backend", default="auto", help="auto, numpy, numba or c (default: auto)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--convention", default="L", choices=["L", "J"],
                   help="where the 1/m goes in the backward pass: L (lectures) or J (dZ[L] = "
                        "(A-Y)/m); both give the same dW, db and training")
    p.add_argument("--cost-every", type=int, default=None,
                   help="record the cost every N epochs (default: 1 with mini-batches, else 100)")
    p.add_argument("--plot", metavar="PNG", type=_plot_file, default=None,
                   help="write the cost and validation curves and, for 2-D data, the decision "
                        "boundary to this file (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-cost", action="store_true", help="print the cost as it is recorded")
    g = p.add_argument_group("optimisation (the course's formulas; see chainrule.optim)")
    g.add_argument("--optimizer", choices=list(optim.OPTIMIZERS), default=None,
                   help="default: gd (adam for digits)")
    g.add_argument("--beta", type=float, default=0.9, help="momentum / RMSprop beta (0.9)")
    g.add_argument("--beta1", type=float, default=0.9, help="Adam beta1 (0.9)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (0.999)")
    g.add_argument("--epsilon", type=float, default=1e-8, help="RMSprop/Adam epsilon (1e-8)")
    g.add_argument("--eps-inside-sqrt", action="store_true",
                   help="epsilon inside the square root, as some course versions")
    g.add_argument("--mini-batch-size", type=_int_at_least(1), default=None,
                   help="mini-batch size (default: full batch; 64 for digits)")
    g.add_argument("--shuffle-seed", type=_SEED, default=None,
                   help="the course's seeding: epoch i shuffles with seed + i + 1")
    g.add_argument("--decay-rate", type=float, default=0.0,
                   help="learning-rate decay lr0 / (1 + decay_rate * epoch)")
    g.add_argument("--decay-interval", type=int, default=None,
                   help="decay every this many epochs (the scheduled variant)")
    g = p.add_argument_group("regularisation and stopping")
    g.add_argument("--lambd", type=float, default=0.0, help="L2 strength lambda")
    g.add_argument("--keep-prob", type=float, default=1.0,
                   help="inverted-dropout keep probability of the hidden layers")
    g.add_argument("--class-weight", choices=["balanced"], default=None,
                   help="weight classes inversely to their frequency")
    g.add_argument("--validation-fraction", type=float, default=0.0,
                   help="hold out this fraction of the training examples for validation")
    g.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation cost stops improving; keep the best")
    g.add_argument("--patience", type=int, default=10, help="records without improvement (10)")
    g.add_argument("--on-nonfinite", choices=["raise", "skip"], default="raise",
                   help="a NaN/inf step stops training (default) or is skipped")
    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpoint", metavar="NPZ", type=_output_file, default=None,
                   help="save model and training state to this file every --checkpoint-every "
                        "epochs")
    g.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints")
    g.add_argument("--resume", metavar="NPZ", default=None,
                   help="continue the interrupted run of this checkpoint (same options)")
    p.set_defaults(func=run_train)


def _load_data(args):
    from . import datasets

    if args.dataset == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise SystemExit("error: --dataset digits needs scikit-learn: "
                             "pip install 'chainrule[sklearn]'")
        X, y = load_digits(return_X_y=True)
        return X.T / 16.0, y.reshape(1, -1)
    return datasets.load(args.dataset, seed=args.data_seed, m=args.m)


def run_train(args):
    import numpy as np

    from . import datasets
    from .errors import ChainruleError
    from .model import Network

    defaults = _DATASET_DEFAULTS[args.dataset]
    layers = _int_list(defaults["layers"]) if args.layers is None else args.layers
    hidden = args.hidden or defaults["hidden"]
    output = args.output or defaults.get("output", "sigmoid")
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    lr = defaults["learning_rate"] if args.learning_rate is None else args.learning_rate
    name = args.optimizer or defaults.get("optimizer", "gd")
    batch = defaults.get("mini_batch_size") if args.mini_batch_size is None else \
        args.mini_batch_size
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("error: --plot needs matplotlib: pip install 'chainrule[plot]'", file=sys.stderr)
            return 2
    if args.shuffle_seed is not None and args.shuffle_seed + epochs >= 2 ** 32:
        # The course's seeding uses seed + epoch + 1, which must stay a valid seed.
        print(f"error: --shuffle-seed {args.shuffle_seed} + {epochs} epochs exceeds 2**32 - 1: "
              f"give a smaller seed", file=sys.stderr)
        return 2
    X, Y = _load_data(args)
    X_train, Y_train, X_test, Y_test = datasets.train_test_split(X, Y, args.test_fraction, seed=0)
    if X_train.shape[1] == 0:
        print(f"error: --test-fraction {args.test_fraction} of {X.shape[1]} examples leaves "
              f"none to train on", file=sys.stderr)
        return 2
    try:
        hyper = {"momentum": dict(beta=args.beta),
                 "rmsprop": dict(beta=args.beta, epsilon=args.epsilon,
                                 eps_inside_sqrt=args.eps_inside_sqrt),
                 "adam": dict(beta1=args.beta1, beta2=args.beta2, epsilon=args.epsilon,
                              eps_inside_sqrt=args.eps_inside_sqrt)}.get(name, {})
        opt = optim.make_optimizer(name, **hyper)
        net = Network(layers, hidden=hidden, output=output, init=args.init, seed=args.seed,
                      dtype=args.dtype, backend=args.backend)
        print(f"{net}\ndata: {args.dataset}, {X_train.shape[1]} train / {X_test.shape[1]} test "
              f"examples; {epochs} epochs, {opt}, learning rate {lr}, "
              f"{'full batch' if batch is None else f'mini-batches of {batch}'}, "
              f"convention {args.convention}")
        start = time.perf_counter()
        try:
            net.fit(X_train, Y_train, epochs=epochs, learning_rate=lr,
                    cost_every=args.cost_every, progress=not args.no_progress,
                    print_cost=args.print_cost, optimizer=opt, mini_batch_size=batch,
                    shuffle_seed=args.shuffle_seed, decay_rate=args.decay_rate,
                    decay_interval=args.decay_interval, lambd=args.lambd,
                    keep_prob=args.keep_prob, class_weight=args.class_weight,
                    validation_fraction=args.validation_fraction,
                    early_stopping=args.early_stopping, patience=args.patience,
                    on_nonfinite=args.on_nonfinite, checkpoint=args.checkpoint,
                    checkpoint_every=args.checkpoint_every, resume=args.resume)
        except KeyboardInterrupt:
            print(f"\ninterrupted after epoch {net.epochs_trained_}"
                  + (f"; continue with --resume {args.checkpoint}" if args.checkpoint else ""),
                  file=sys.stderr)
            return 130
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
    history = net.history_
    if history["cost"]:
        print(f"final cost {history['cost'][-1]:.6f} after {net.epochs_trained_} epochs in "
              f"{seconds:.2f} s (backend {net.backend}"
              + (f", stopped early at epoch {history['epoch'][-1]}"
                 if net.stop_reason_ == "early_stopping" else "") + ")")
    else:  # --epochs 0 with mini-batches: nothing trained, nothing recorded
        print(f"no epoch trained (--epochs {epochs}): the initial parameters")
    if "val_cost" in history:
        print(f"validation cost {history['val_cost'][-1]:.6f}, accuracy "
              f"{100 * history['val_score'][-1]:.1f}%")
    print(f"train accuracy: {100 * train_acc:.1f}%")
    if X_test.shape[1]:
        print(f"test accuracy:  {100 * test_acc:.1f}%")
    else:
        print(f"test accuracy:  none (--test-fraction {args.test_fraction} of {X.shape[1]} "
              f"examples leaves no test example)")
    if args.plot:
        from .plot import plot_training

        plot_training(net, X, Y, args.plot, title=f"{args.dataset}: {layers}, {hidden}, {name}")
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
    from .errors import ChainruleError

    try:
        return args.func(args)
    except ChainruleError as exc:  # a refused value that reached the library: a message
        print(f"chainrule {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
