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
# Your own data (--data): n[0] from the file, 16 relu units, the output from the target.
_USER_DATA_DEFAULTS = dict(hidden="relu", epochs=200, learning_rate=0.01, optimizer="adam",
                           mini_batch_size=64)




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
        "train", help="train a network on a built-in data set or your own (--data)",
        description="Train a fully-connected network and report train and test accuracy (R² "
                    "for an identity output), on a built-in data set — planar, moons, "
                    "circles: 2-D, generated, no download; digits: scikit-learn's bundled 8x8 "
                    "images, 64-D — or on your own: --data file.csv --target column, or "
                    "--data file.npz with arrays X (n[0], m) and Y (n[L], m) or labels (m,), "
                    "examples as columns as in Network.fit.")
    p.add_argument("--dataset", choices=sorted(_DATASET_DEFAULTS), default=None,
                   help="built-in data set (default: planar, the course's flower)")
    p.add_argument("--data", metavar="FILE", default=None,
                   help="your own data instead of --dataset: a .csv with a header row (every "
                        "column but --target is a numeric feature) or an .npz with arrays X "
                        "(n[0], m) and Y (n[L], m) or (m,) (examples are columns). Labels "
                        "make a classifier (sigmoid for 2 classes, softmax for more); "
                        "--output identity makes a regressor. Defaults: layers n[0],16,n[L], "
                        "relu, Adam, lr 0.01, mini-batches of 64, 200 epochs")
    p.add_argument("--target", metavar="COLUMN", default=None,
                   help="the .csv column (name, or 0-based index) to predict")
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
                   help="seed of a generated data set, in [0, 2**32)")
    p.add_argument("--m", type=_int_at_least(2), default=400,
                   help="number of examples generated (planar, moons, circles), >= 2 "
                        "(default: 400)")
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
    g.add_argument("--batch-norm", action="store_true",
                   help="batch normalization on every hidden layer (gamma, beta instead of b; "
                        "docs/batchnorm.md); every training batch needs >= 2 examples")
    g.add_argument("--batch-norm-momentum", type=float, default=0.9,
                   help="the course's beta of batch norm's running averages, in [0, 1) "
                        "(PyTorch's momentum is 1 - beta; default: 0.9)")
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
                             "pip install \".[sklearn]\"")
        X, y = load_digits(return_X_y=True)
        return X.T / 16.0, y.reshape(1, -1)
    return datasets.load(args.dataset, seed=args.data_seed, m=args.m)


class _DataError(Exception):
    """A --data file chainrule cannot read (the message names the file, row and column)."""


def _read_csv(path, target):
    """``X`` (n[0], m) of the numeric feature columns, the target column's strings, the
    feature names and the target's name, from a .csv with a header row."""
    import csv

    import numpy as np

    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise _DataError(f"{path}: expected a header row and at least one row of data, "
                         f"found {len(rows)} non-empty rows")
    header = [h.strip() for h in rows[0]]
    if target in header:
        t = header.index(target)
    elif target.lstrip("-").isdigit() and -len(header) <= int(target) < len(header):
        t = int(target) % len(header)
    else:
        raise _DataError(f"{path}: no column {target!r}; the columns are "
                         f"{', '.join(map(repr, header))}")
    if len(header) < 2:
        raise _DataError(f"{path}: the only column is the target {header[t]!r}: there are no "
                         f"features")
    features = [j for j in range(len(header)) if j != t]
    X = np.empty((len(features), len(rows) - 1))
    labels = []
    for k, row in enumerate(rows[1:]):
        line = k + 2
        if len(row) != len(header):
            raise _DataError(f"{path}, line {line}: {len(row)} fields, but the header has "
                             f"{len(header)}")
        labels.append(row[t].strip())
        for i, j in enumerate(features):
            cell = row[j].strip()
            try:
                X[i, k] = float(cell) if cell else np.nan  # empty: NaN, refused by fit
            except ValueError:
                raise _DataError(f"{path}, line {line}, column {header[j]!r}: {cell!r} is not a "
                                 f"number (every column but the target --target "
                                 f"{header[t]!r} must be numeric)") from None
    return X, labels, [header[j] for j in features], header[t]


def _encode_target(values, output):
    """Labels or targets as the network's ``Y`` and the output activation: ``identity``
    (numbers, a regressor), else classes (sorted): 0/1 for two (sigmoid), indices (softmax)."""
    import numpy as np

    values = np.asarray(values)
    if output == "identity":
        try:
            return values.astype(np.float64).reshape(1, -1), "identity", None
        except ValueError:
            bad = next(v for v in values.reshape(-1) if not _is_number(v))
            raise _DataError(f"--output identity needs numeric targets, got {bad!r}") from None
    if values.dtype.kind in "US" and all(_is_number(v) for v in values):
        values = values.astype(np.float64)
    classes, idx = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise _DataError(f"the target has only one value ({classes[0]!r}): there is nothing to "
                         f"learn")
    if output is None:
        output = "sigmoid" if len(classes) == 2 else "softmax"
    return idx.reshape(1, -1).astype(np.float64), output, classes


def _is_number(text):
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _load_user_data(args):
    """``X, Y, output, classes, description`` from ``--data`` (a .csv or an .npz)."""
    import os

    import numpy as np

    path = args.data
    if not os.path.isfile(path):
        raise _DataError(f"--data {path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        if args.target is None:
            raise _DataError("--data FILE.csv needs --target COLUMN (the column to predict)")
        X, labels, names, target = _read_csv(path, args.target)
        Y, output, classes = _encode_target(labels, args.output)
        return X, Y, output, classes, f"{path} ({len(names)} features, target {target!r})"
    if ext != ".npz":
        raise _DataError(f"--data {path}: expected a .csv or an .npz file")
    if args.target is not None:
        raise _DataError("--target names a .csv column; an .npz holds arrays X and Y")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("X", "Y") if k not in z.files]
            if missing:
                raise _DataError(f"{path}: no array {' or '.join(missing)}; it has "
                                 f"{', '.join(z.files) or 'none'} (expected X (n[0], m) and Y "
                                 f"(n[L], m) or (m,), examples as columns)")
            X, Y = z["X"], z["Y"]
    except (OSError, ValueError) as exc:
        raise _DataError(f"{path}: not a readable .npz ({exc})") from None
    output, classes = args.output, None
    if Y.ndim == 1 or Y.ndim == 2 and Y.shape[0] == 1:  # labels (integers, strings) or targets
        if Y.dtype.kind in "biuUS" and output != "identity" or output in ("sigmoid", "softmax"):
            Y, output, classes = _encode_target(Y.reshape(-1), output)
        else:
            output = output or "identity"
    elif output is None:  # one row per output unit: one-hot columns are classes
        onehot = Y.ndim == 2 and Y.dtype.kind in "biuf" and np.isin(Y, (0, 1)).all() and \
            (Y.sum(axis=0) == 1).all()
        output = "softmax" if onehot else "identity"
    return X, Y, output, classes, path


def run_train(args):
    import numpy as np

    from . import datasets
    from .errors import ChainruleError
    from .model import Network

    classes = None
    if args.data is not None:
        if args.dataset is not None:
            print("error: give --dataset or --data, not both", file=sys.stderr)
            return 2
        try:
            X, Y, output, classes, source = _load_user_data(args)
        except _DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        defaults = dict(_USER_DATA_DEFAULTS, output=output, layers=None)
        if args.layers is None:
            n_x = X.shape[0] if X.ndim == 2 else 1  # a wrong X is for fit's message
            n_out = len(classes) if output == "softmax" and classes is not None else \
                (Y.shape[0] if Y.ndim == 2 and output != "sigmoid" else 1)
            defaults["layers"] = f"{n_x},16,{n_out}"
    else:
        if args.target is not None:
            print("error: --target names a column of --data FILE.csv", file=sys.stderr)
            return 2
        args.dataset = args.dataset or "planar"
        source = args.dataset
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
            print('error: --plot needs matplotlib: pip install ".[plot]"', file=sys.stderr)
            return 2
    if args.shuffle_seed is not None and args.shuffle_seed + epochs >= 2 ** 32:
        # The course's seeding uses seed + epoch + 1, which must stay a valid seed.
        print(f"error: --shuffle-seed {args.shuffle_seed} + {epochs} epochs exceeds 2**32 - 1: "
              f"give a smaller seed", file=sys.stderr)
        return 2
    if args.data is None:
        X, Y = _load_data(args)
    elif X.ndim != 2 or Y.ndim not in (1, 2) or (Y.shape[-1] != X.shape[1]):
        # fit's own message for arrays it cannot take (before the split needs columns)
        try:
            Network(layers, hidden=hidden, output=output, backend="numpy").validate_data(X, Y)
        except ChainruleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    Y = Y.reshape(1, -1) if Y.ndim == 1 else Y
    X_train, Y_train, X_test, Y_test = datasets.train_test_split(X, Y, args.test_fraction, seed=0)
    if X_train.shape[1] == 0:
        print(f"error: --test-fraction {args.test_fraction} of {X.shape[1]} examples leaves "
              f"none to train on", file=sys.stderr)
        return 2
    try:
        # the flags of the hyperparameters this optimiser takes (optim.OPTIMIZERS)
        hyper = {key: getattr(args, key) for key in optim.hyperparameter_names(name)
                 if hasattr(args, key)}
        opt = optim.make_optimizer(name, **hyper)
        net = Network(layers, hidden=hidden, output=output, init=args.init, seed=args.seed,
                      dtype=args.dtype, backend=args.backend, batch_norm=args.batch_norm,
                      batch_norm_momentum=args.batch_norm_momentum)
        if classes is not None:
            print("classes: " + ", ".join(f"{i} = {c}" for i, c in enumerate(classes.tolist())))
        print(f"{net}\ndata: {source}, {X_train.shape[1]} train / {X_test.shape[1]} test "
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
    if output == "identity":
        print(f"train R²: {train_acc:.4f}")
    else:
        print(f"train accuracy: {100 * train_acc:.1f}%")
    if not X_test.shape[1]:
        print(f"test {'R²' if output == 'identity' else 'accuracy'}:  none (--test-fraction "
              f"{args.test_fraction} of {X.shape[1]} examples leaves no test example)")
    elif output == "identity":
        print(f"test R²:  {test_acc:.4f}")
    else:
        print(f"test accuracy:  {100 * test_acc:.1f}%")
    if args.plot:
        from .plot import plot_training

        plot_training(net, X_train, Y_train, args.plot, X_test=X_test, Y_test=Y_test,
                      title=f"{source}: {layers}, {hidden}, {name}")
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
