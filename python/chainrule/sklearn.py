"""scikit-learn estimators around :class:`chainrule.Network`.

Inputs are in scikit-learn's layout, examples as rows (``X`` of shape ``(n_samples,
n_features)``); they are validated once and transposed once into the course's columns
layout (``X.T``, shape ``(n[0], m)``) for the network.

The estimators hold only their parameters, a fitted :class:`~chainrule.Network` (plain
NumPy arrays, no compiled handles) and NumPy attributes, so they pickle, clone and run in
``Pipeline``, ``GridSearchCV(n_jobs=...)`` and on a Dask cluster (joblib's ``dask``
backend).

Both estimators also have ``transform(X, layer=k)`` (the activations of hidden layer ``k``,
rows as examples; default the last hidden layer) and ``fit_transform``, ``to_sklearn()`` (a
fitted scikit-learn ``MLPClassifier``/``MLPRegressor`` that predicts the same), the
classmethod ``from_sklearn(mlp, **params)`` (a fitted estimator from one) and
``to_onnx(path)``; see the Interoperability page.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from chainrule.sklearn import NetworkClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = NetworkClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=200,
...                         random_state=0).fit(X / 8, y)
>>> clf.score(X / 8, y) > 0.9
True
"""

from __future__ import annotations

import abc
import copy
import numbers

import numpy as np

try:  # scikit-learn is optional: the [sklearn] extra
    from scipy.sparse import issparse
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
    from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
    from sklearn.utils import TransformerTags, check_random_state
    from sklearn.utils._param_validation import Interval, StrOptions
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:
    raise ImportError(
        f"chainrule.sklearn needs scikit-learn >= 1.6 ({exc}): install the [sklearn] extra "
        f"(pip install \".[sklearn]\" in a chainrule checkout) or "
        f"pip install \"scikit-learn>=1.6\"") from exc

from . import _sklearn_stream as _stream
from . import _validate as check
from . import optim, spec
from .model import Network

__all__ = ["NetworkClassifier", "NetworkRegressor", "MLPClassifier", "MLPRegressor"]

# The optimiser hyperparameters the estimators take (each optimiser gets those it accepts).
_HYPERPARAMETERS = ("beta", "beta1", "beta2", "epsilon")


def _encode_attr(name, value):
    """A fitted attribute as JSON: arrays keep their dtype (``{"ndarray": ..., "dtype": ...}``)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUO":
            raise TypeError(f"cannot save {name}: an array of dtype {value.dtype}")
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode_attr(value):
    if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
        dtype = np.dtype(value["dtype"])
        return np.array(value["ndarray"], dtype=dtype)
    return value


class _NetworkEstimator(BaseEstimator, abc.ABC):
    """Shared parameters and the fitting loop of both estimators."""

    # Checked by scikit-learn's own parameter validation at the start of every fit (an
    # InvalidParameterError, a ValueError and TypeError), before any work; the names the
    # network knows (activation, init, dtype, backend) are then checked by chainrule.
    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [str, tuple, list],
        "optimizer": [StrOptions(set(optim.OPTIMIZERS))],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "mini_batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None,
                                                           closed="left")],
        "lambd": [Interval(numbers.Real, 0, None, closed="left")],
        "keep_prob": [Interval(numbers.Real, 0, 1, closed="right")],
        "beta": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "decay_rate": [Interval(numbers.Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "patience": [Interval(numbers.Integral, 0, None, closed="left")],
        "init": [str],
        "dtype": [str, type, np.dtype],
        "backend": [str, None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "batch_norm": ["boolean", "array-like"],
    }
    # Parameters that shape the network: a warm start cannot continue if they changed.
    _architecture = ("hidden_layer_sizes", "activation", "dtype", "batch_norm")

    def __init__(self, hidden_layer_sizes=(32,), activation="relu", optimizer="adam",
                 learning_rate=0.001, max_iter=200, mini_batch_size="auto", lambd=0.0,
                 keep_prob=1.0, beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 decay_rate=0.0, early_stopping=False, validation_fraction=0.1, patience=10,
                 init="he", dtype="float64", backend="auto", warm_start=False,
                 random_state=None, verbose=False, batch_norm=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.mini_batch_size = mini_batch_size
        self.lambd = lambd
        self.keep_prob = keep_prob
        self.beta = beta
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.decay_rate = decay_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.init = init
        self.dtype = dtype
        self.backend = backend
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.batch_norm = batch_norm

    def __setstate__(self, state):
        state = dict(state)
        state.setdefault("batch_norm", False)  # pickled before batch_norm existed
        super().__setstate__(state)

    # ---- what the subclasses define
    _is_classifier = False
    _multi_output = False

    @abc.abstractmethod
    def _encode_y(self, y, first):
        """``y`` (rows are examples) as the network's ``Y`` (columns are examples)."""

    # ---- helpers
    def _optimizer_spec(self):
        """The optimiser's config: its name and those of this estimator's hyperparameters
        (``beta``, ``beta1``, ``beta2``, ``epsilon``) it takes (``optim.OPTIMIZERS``)."""
        name = self.optimizer
        return {"name": name, **{key: getattr(self, key) for key in optim.hyperparameter_names(name)
                                 if key in _HYPERPARAMETERS}}

    def _layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        sizes = list(sizes)
        if any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0
               for n in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        return sizes

    def _new_network(self, n_features, n_outputs):
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        dims = [n_features] + self._layer_sizes() + [n_outputs]
        return Network(dims, hidden=self.activation, output=self._output_for(n_outputs),
                       init=self.init, seed=seed, dtype=self.dtype, backend=self.backend,
                       batch_norm=self._batch_norm_flags())

    def _batch_norm_flags(self):
        """``batch_norm`` as one bool per hidden layer (checked by the network's rule)."""
        flags = check.batch_norm(self.batch_norm if isinstance(self.batch_norm, bool)
                                 else list(self.batch_norm), len(self._layer_sizes()) + 1)
        return flags[:-1]

    def _check_params(self):
        """Every estimator parameter, before any work (scikit-learn's rules, then ours)."""
        self._validate_params()
        self._layer_sizes()
        check.activation(self.activation, 1, False)
        check.init(self.init)
        check.dtype(self.dtype)
        check.backend(self.backend)
        self._batch_norm_flags()

    def _built_with(self):
        """The architecture parameters the fitted network was built with."""
        return getattr(self, "_network_params", None)

    def _architecture_params(self):
        return {"hidden_layer_sizes": tuple(self._layer_sizes()),
                "activation": check.activation(self.activation, 1, False),
                "dtype": check.dtype(self.dtype).name,
                "batch_norm": tuple(self._batch_norm_flags())}

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        """``fit`` (``max_iter`` epochs) or, ``incremental``, one epoch continuing the last.

        A call that raises leaves the estimator as it was (its attributes are restored).
        """
        saved = dict(self.__dict__)
        net = saved.get("network_")
        kept = None
        if net is not None and (incremental or self.warm_start):
            # a warm start trains the fitted network in place: keep its state to restore
            kept = (net.get_state(), copy.deepcopy(net.history_), net.stop_reason_)
        try:
            return self._fit_checked(X, y, sample_weight, incremental, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if kept is not None:
                net.set_state(kept[0])
                net.history_, net.stop_reason_ = kept[1], kept[2]
            raise

    def _fit_checked(self, X, y, sample_weight, incremental, classes):
        self._check_params()
        fitted = hasattr(self, "network_")
        first = not fitted or not (incremental or self.warm_start)
        if not first and self._built_with() is not None:
            # scikit-learn's MLP would continue with mismatched weights (and fail); refuse,
            # as scikit-learn does for a warm start with other classes.
            now = self._architecture_params()
            built = {**now, **self._built_with()}  # (fitted before a parameter existed)
            changed = {k: (built[k], now[k]) for k in now if now[k] != built[k]}
            if changed:
                what = "; ".join(f"{k} was {old!r} and is now {new!r}"
                                 for k, (old, new) in changed.items())
                raise ValueError(f"warm_start/partial_fit continue the fitted network, whose "
                                 f"architecture has changed: {what}. Set warm_start=False "
                                 f"(or restore the parameters) to fit a new network")
        if _stream.is_stream(X):  # a dask array, chunks of rows, a generator
            return _stream.fit(self, X, y, sample_weight, incremental, classes, first)
        X, y = validate_data(self, X, y, reset=first, dtype=(np.float64, np.float32),
                             accept_sparse=["csr", "csc"],
                             multi_output=self._multi_output,
                             y_numeric=not self._is_classifier)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight sums to 0: there is nothing to learn from")
        Y = self._encode_y(y, first, classes)
        # The course's layout (examples are columns) as a view: fit keeps an F-ordered X and
        # trains on X itself as examples-as-rows, without a copy.
        Xt = X.T
        class_weight = self._class_weight_indices()
        if first:
            self.network_ = self._new_network(Xt.shape[0], Y.shape[0])
            self._network_params = self._architecture_params()
            self.n_iter_ = 0
            self.t_ = 0
        m = Xt.shape[1]
        batch = self.mini_batch_size
        batch = min(200, m) if batch == "auto" else batch
        kwargs = dict(optimizer=self._optimizer_spec(), mini_batch_size=batch,
                      decay_rate=self.decay_rate, lambd=self.lambd, keep_prob=self.keep_prob,
                      sample_weight=sample_weight, progress=bool(self.verbose),
                      print_cost=bool(self.verbose) and self.verbose > 1,
                      class_weight=class_weight)
        if incremental:
            self.network_.fit(Xt, Y, epochs=1, learning_rate=self.learning_rate,
                              continue_training=not first, **kwargs)
        else:
            early = self.early_stopping and m >= 2
            self.network_.fit(Xt, Y, epochs=self.max_iter, learning_rate=self.learning_rate,
                              continue_training=not first,
                              early_stopping=early, patience=self.patience,
                              validation_fraction=self.validation_fraction if early else 0.0,
                              **kwargs)
        history = self.network_.history_
        self.loss_curve_ = list(history["cost"])
        self.n_iter_ = int(self.network_.epochs_trained_)
        self.t_ = int(self.network_.steps_trained_)
        if "val_score" in history:
            self.validation_scores_ = list(history["val_score"])
        return self

    # ---- files: the network's .npz (no pickle) with the estimator beside it
    def save(self, path):
        """Save the fitted estimator to ``path`` atomically, without pickle: the network's
        file (:func:`chainrule.io.save`) with the estimator's parameters and fitted
        attributes (``classes_``, ``n_features_in_``, ``loss_curve_``...) in its metadata.
        :meth:`load` gives back an estimator that predicts the same. Returns ``path``."""
        from . import io

        check_is_fitted(self, "network_")
        params = self.get_params(deep=False)
        if not (params.get("random_state") is None or isinstance(params["random_state"],
                                                                   numbers.Integral)):
            params["random_state"] = None  # a RandomState object has no JSON form
        params["dtype"] = np.dtype(params["dtype"]).name
        if isinstance(params.get("class_weight"), dict):  # JSON keys are strings: keep labels
            params["class_weight"] = {"pairs": [[k, v] for k, v in params["class_weight"].items()]}
        attrs = {k: _encode_attr(k, v) for k, v in vars(self).items()
                 if k.endswith("_") and k != "network_" and k not in params or k == "_y_1d"}
        extra = {"estimator": type(self).__name__, "params": params, "attributes": attrs}
        return io.save(self.network_, path, extra=extra)

    @classmethod
    def load(cls, path, backend=None):
        """An estimator from a file written by :meth:`save` (of this class); raises
        ``ModelFileError`` for a bad file or one written by another class."""
        from . import io
        from .errors import ModelFileError

        net, extra = io.restore(Network, path, backend, extra=True)
        if not isinstance(extra, dict) or extra.get("estimator") != cls.__name__:
            what = extra.get("estimator") if isinstance(extra, dict) else None
            raise ModelFileError(f"{path} holds " + (f"a {what}" if what else "a bare Network "
                                 "(chainrule.load reads it)") + f", not a {cls.__name__}")
        try:
            params = dict(extra["params"])
            if isinstance(params.get("hidden_layer_sizes"), list):
                params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
            act = params.get("activation")
            if isinstance(act, list) and len(act) == 2 and isinstance(act[1], (int, float)):
                params["activation"] = tuple(act)  # ("leaky_relu", 0.2) came back as a list
            if isinstance(params.get("class_weight"), dict):
                params["class_weight"] = {k: v for k, v in params["class_weight"]["pairs"]}
            est = cls(**params)
            for k, v in extra["attributes"].items():
                setattr(est, k, _decode_attr(v))
            est._network_params = est._architecture_params()  # what fit records
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: the saved estimator is malformed ({exc})") from exc
        est.network_ = net
        return est

    def _class_weight_indices(self):
        return None

    def _predict_columns(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32),
                          accept_sparse=["csr", "csc"])
        # a sparse X is densified a block of examples at a time (Network.predict_proba)
        return self.network_.predict_proba(X.T if issparse(X) else np.ascontiguousarray(X.T))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        # transform(X, layer=k) gives hidden activations, in the network's dtype
        tags.transformer_tags = TransformerTags(preserves_dtype=[check.dtype(self.dtype).name])
        tags.input_tags.sparse = True
        return tags

    # ---- inspection and conversion
    def transform(self, X, layer=None):
        """The activations ``A[layer]`` of a hidden layer, examples as rows.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        layer : int, optional
            A hidden layer, ``1 <= layer <= L - 1`` (default ``L - 1``, the last one).

        Returns
        -------
        A : array, shape (n_samples, n[layer])
        """
        check_is_fitted(self, "network_")
        L = self.network_.L
        if L < 2:
            raise ValueError("this network has no hidden layer (hidden_layer_sizes is empty): "
                             "there is nothing to transform into")
        k = L - 1 if layer is None else layer
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= L - 1:
            raise ValueError(f"layer must be a hidden layer, an integer from 1 to {L - 1} "
                             f"(layer {L} is the output: use predict), got {layer!r}")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        _, caches = self.network_.forward(np.ascontiguousarray(X.T))
        return np.ascontiguousarray(caches[int(k)][0][0].T)  # A[k] is layer k+1's A_prev

    def fit_transform(self, X, y, sample_weight=None, layer=None):
        """``fit(X, y)``, then :meth:`transform` of ``X`` (hidden layer ``layer``)."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X, layer=layer)

    def to_onnx(self, path, dtype="float32"):
        """Write the fitted network as an ONNX model (see :meth:`chainrule.Network.to_onnx`):
        input ``"X"`` ``(n_samples, n_features)``, output ``"AL"`` (``A[L]`` as rows: one
        probability column for two classes, one per class for more, the targets for a
        regressor), the labels in the metadata (``chainrule.classes``). Returns the path."""
        check_is_fitted(self, "network_")
        return self.network_.to_onnx(path, dtype=dtype, classes=getattr(self, "classes_", None))

    def _sklearn_params(self):
        """This estimator's training parameters in scikit-learn's MLP names (those it has)."""
        params = {"learning_rate_init": self.learning_rate, "max_iter": self.max_iter,
                  "batch_size": self.mini_batch_size, "alpha": self.lambd,
                  "early_stopping": self.early_stopping,
                  "validation_fraction": self.validation_fraction,
                  "n_iter_no_change": max(self.patience, 1), "warm_start": self.warm_start,
                  "random_state": self.random_state}
        if self.optimizer == "adam":
            params.update(solver="adam", beta_1=self.beta1, beta_2=self.beta2,
                          epsilon=self.epsilon)
        elif self.optimizer in ("gd", "momentum"):
            params.update(solver="sgd", nesterovs_momentum=False,
                          momentum=self.beta if self.optimizer == "momentum" else 0.0)
        return params

    def to_sklearn(self):
        """A fitted scikit-learn ``MLPClassifier``/``MLPRegressor`` with this estimator's
        weights (same predictions; see :meth:`chainrule.Network.to_sklearn`) and training
        parameters where scikit-learn has them (rmsprop has no equivalent: its solver stays
        scikit-learn's default)."""
        check_is_fitted(self, "network_")
        mlp = self.network_.to_sklearn(classes=getattr(self, "classes_", None),
                                       **self._sklearn_params())
        mlp.n_iter_ = self.n_iter_  # (t_ stays 0: scikit-learn counts samples, not steps)
        mlp.loss_curve_ = list(self.loss_curve_)
        if hasattr(self, "feature_names_in_"):
            mlp.feature_names_in_ = self.feature_names_in_
        return mlp

    @classmethod
    def from_sklearn(cls, mlp, **params):
        """A fitted estimator from a fitted scikit-learn ``MLPClassifier``/``MLPRegressor``:
        the same predictions (the weights, see :meth:`chainrule.Network.from_sklearn`), its
        training parameters where chainrule has them, and ``params`` over them."""
        cls._check_sklearn_kind(mlp)
        net = Network.from_sklearn(mlp, dtype=params.get("dtype"),
                                   backend=params.get("backend", "auto"))
        est = cls(**{**cls._params_from(mlp, net), **params})
        est._check_params()
        est.network_ = net
        est._network_params = est._architecture_params()
        est.n_features_in_ = int(mlp.n_features_in_)
        if hasattr(mlp, "feature_names_in_"):
            est.feature_names_in_ = mlp.feature_names_in_
        # chainrule's own counts (what a warm start continues): none yet
        est.n_iter_, est.t_, est.loss_curve_ = 0, 0, []
        est._adopt(mlp)
        return est

    @staticmethod
    def _params_from(mlp, net):
        params = {"hidden_layer_sizes": tuple(net.layer_dims[1:-1]),
                  "activation": net.activations[0][0] if net.L > 1 else "relu",
                  "learning_rate": mlp.learning_rate_init, "max_iter": mlp.max_iter,
                  "mini_batch_size": mlp.batch_size, "lambd": mlp.alpha,
                  "early_stopping": mlp.early_stopping,
                  "validation_fraction": mlp.validation_fraction,
                  "patience": mlp.n_iter_no_change, "warm_start": mlp.warm_start,
                  "random_state": mlp.random_state, "dtype": net.dtype.name}
        if mlp.solver == "adam":
            params.update(optimizer="adam", beta1=mlp.beta_1, beta2=mlp.beta_2,
                          epsilon=mlp.epsilon)
        elif mlp.solver == "sgd":
            params.update(optimizer="momentum" if mlp.momentum > 0 else "gd",
                          beta=mlp.momentum)
        return params


class NetworkClassifier(ClassifierMixin, _NetworkEstimator):
    """A fully-connected classifier: a sigmoid output for two classes, softmax for more.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Units of each hidden layer (``n[1], ..., n[L-1]``).
    activation : str
        Hidden activation: one of {hidden_activations} (:mod:`chainrule.spec`).
    optimizer : {optimizers}
    learning_rate : float
    max_iter : int
        Epochs per :meth:`fit` (:meth:`partial_fit` runs one).
    mini_batch_size : int or "auto"
        ``"auto"`` is ``min(200, n_samples)``.
    lambd : float
        L2 strength ``λ`` (cost ``+ λ/(2m) Σ‖W‖²``).
    keep_prob : float
        Inverted-dropout keep probability of the hidden layers.
    beta, beta1, beta2, epsilon : float
        Momentum/RMSprop ``β``; Adam ``β1, β2``; ``ε``.
    decay_rate : float
        ``lr = lr0 / (1 + decay_rate · epoch)``.
    early_stopping, validation_fraction, patience
        Stop when the cost on a held-out fraction stops improving; restore the best.
    class_weight : dict, "balanced" or None
        Weights by class label (keys are labels as in ``y``).
    init, dtype, backend
        Passed to :class:`~chainrule.Network`.
    warm_start : bool
        Continue from the previous fit's parameters and optimiser state. If
        ``hidden_layer_sizes``, ``activation`` or ``dtype`` changed since, the network cannot
        be continued and ``fit`` raises ``ValueError`` (set ``warm_start=False``).
    random_state : int, RandomState or None
        Seeds initialisation, shuffling and dropout.
    verbose : bool or int
        A progress bar (and, if > 1, the cost per epoch).
    batch_norm : bool or sequence of bool
        Batch normalization on every hidden layer, or one bool per hidden layer
        (:class:`~chainrule.Network`'s ``batch_norm``; every training batch then needs at
        least 2 examples).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : Network
    loss_curve_ : list of float
        The cost per epoch.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    """

    _multi_output = False
    _parameter_constraints: dict = {
        **_NetworkEstimator._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(32,), activation="relu", optimizer="adam",
                 learning_rate=0.001, max_iter=200, mini_batch_size="auto", lambd=0.0,
                 keep_prob=1.0, beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 decay_rate=0.0, early_stopping=False, validation_fraction=0.1, patience=10,
                 class_weight=None, init="he", dtype="float64", backend="auto",
                 warm_start=False, random_state=None, verbose=False, batch_norm=False):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation,
                         optimizer=optimizer, learning_rate=learning_rate, max_iter=max_iter,
                         mini_batch_size=mini_batch_size, lambd=lambd, keep_prob=keep_prob,
                         beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon,
                         decay_rate=decay_rate, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, patience=patience,
                         init=init, dtype=dtype, backend=backend, warm_start=warm_start,
                         random_state=random_state, verbose=verbose, batch_norm=batch_norm)
        self.class_weight = class_weight

    def _output_for(self, n_outputs):
        return "sigmoid" if n_outputs == 1 else "softmax"

    @staticmethod
    def _check_sklearn_kind(mlp):
        if not isinstance(mlp, _SkMLPClassifier):
            raise TypeError(f"NetworkClassifier.from_sklearn takes an MLPClassifier, got "
                            f"{type(mlp).__name__} (NetworkRegressor.from_sklearn takes "
                            f"an MLPRegressor)")
        if mlp.out_activation_ == "logistic" and mlp.n_outputs_ > 1:
            raise ValueError(f"this MLPClassifier is multilabel ({mlp.n_outputs_} logistic "
                             f"outputs); NetworkClassifier predicts one label per example: "
                             f"use chainrule.Network.from_sklearn for the network")

    def _adopt(self, mlp):
        self.classes_ = np.asarray(mlp.classes_)

    _is_classifier = True

    def _encode_y(self, y, first, classes=None):
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(self.classes_) < 2:
                raise ValueError(f"a classifier needs samples of at least 2 classes; the data "
                                 f"has 1 class: {self.classes_[0]!r}")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} not among classes_ "
                             f"{self.classes_.tolist()}")
        idx = np.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return idx.reshape(1, -1).astype(np.float64)
        onehot = np.zeros((len(self.classes_), len(y)))
        onehot[idx, np.arange(len(y))] = 1
        return onehot

    def _class_weight_indices(self):
        cw = self.class_weight
        if cw is None or isinstance(cw, str):
            return cw
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        unknown = [c for c in cw if c not in index]
        if unknown:
            raise ValueError(f"class_weight has keys {unknown!r} that are not classes; the "
                             f"classes are {self.classes_.tolist()}")
        bad = {c: w for c, w in cw.items() if isinstance(w, bool) or not isinstance(
            w, numbers.Real) or not np.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"class_weight values must be finite numbers >= 0, got {bad!r}")
        return {index[c]: float(w) for c, w in cw.items()}

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,). Returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on ``X, y``; the first call needs ``classes`` (all labels). Returns self."""
        if not hasattr(self, "network_") and classes is None:
            raise ValueError("the first call to partial_fit needs classes= (every label)")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), rows summing to 1 (a dask
        array, computed blockwise, for a dask ``X``)."""
        if _stream.is_dask(X):
            return _stream.predict(self, "predict_proba", X)
        A = self._predict_columns(X)
        if A.shape[0] == 1:
            p = A[0]
            return np.column_stack([1 - p, p])
        return np.ascontiguousarray(A.T)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class label of each row, shape (n_samples,) (a dask array for
        a dask ``X``)."""
        check_is_fitted(self, "network_")
        if _stream.is_dask(X):
            return _stream.predict(self, "predict", X)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


NetworkClassifier.__doc__ = NetworkClassifier.__doc__.replace(
    "{hidden_activations}", spec.activation_help(hidden_only=True)).replace(
    "{optimizers}", optim.optimizer_choices())


class NetworkRegressor(RegressorMixin, _NetworkEstimator):
    """A fully-connected regressor: identity output, the mean squared error
    ``J = (1/(2m)) Σ_k ‖a_k - y_k‖²``; one or several targets.

    Parameters are those of :class:`NetworkClassifier` without ``class_weight``.

    Attributes
    ----------
    network_ : Network
    loss_curve_ : list of float
    n_iter_ : int
    n_outputs_ : int
    n_features_in_ : int
    """

    _multi_output = True

    def _output_for(self, n_outputs):
        return "identity"

    @staticmethod
    def _check_sklearn_kind(mlp):
        if not isinstance(mlp, _SkMLPRegressor):
            raise TypeError(f"NetworkRegressor.from_sklearn takes an MLPRegressor, got "
                            f"{type(mlp).__name__} (NetworkClassifier.from_sklearn takes "
                            f"an MLPClassifier)")

    def _adopt(self, mlp):
        self.n_outputs_ = int(mlp.n_outputs_)
        self._y_1d = self.n_outputs_ == 1

    def _encode_y(self, y, first, classes=None):
        y = np.asarray(y, dtype=np.float64)
        if first:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} targets; this regressor was fitted with "
                             f"{self.n_outputs_}")
        return np.ascontiguousarray(Y.T)

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_targets)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on ``X, y``. Returns self."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, shape (n_samples,) (or (n_samples, n_targets)); a dask array for a
        dask ``X``."""
        if _stream.is_dask(X):
            check_is_fitted(self, "network_")
            return _stream.predict(self, "predict", X)
        A = self._predict_columns(X)
        return A[0].copy() if self._y_1d else np.ascontiguousarray(A.T)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


# The drop-ins for scikit-learn's MLPClassifier and MLPRegressor live in their own module
# (they share nothing with the estimators above but the Network they drive).
from ._sklearn_mlp import MLPClassifier, MLPRegressor  # noqa: E402
