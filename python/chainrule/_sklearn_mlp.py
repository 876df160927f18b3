"""Drop-ins for scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` on chainrule's engine
(public as :mod:`chainrule.sklearn`).

The signature, defaults, parameter checks, attributes and stopping rules are
scikit-learn's (``sklearn/neural_network/_multilayer_perceptron.py``); the arithmetic is
chainrule's. Examples are rows here and columns in the :class:`~chainrule.Network` that is
trained (``coefs_[i]`` is ``W[i+1].T``, ``intercepts_[i]`` is ``b[i+1][:, 0]``: views of the
network's arrays).

Where each solver runs:

- ``adam``: chainrule's compiled training loop (``Network.fit`` with ``mini_batch_size =
  batch_size``, ``lambd = alpha``), one call for the whole fit; scikit-learn's rules
  (``tol``, ``n_iter_no_change``, ``early_stopping``, the ``ConvergenceWarning``) run after
  each epoch in a callback. chainrule's Adam is the course's (bias-corrected moments, then
  ``ε``); scikit-learn folds the corrections into the step size, which moves its ``ε`` by
  the factor ``√(1-β2^t)``: the same steps up to that ``ε``.
- ``sgd``: scikit-learn's momentum, Nesterov and learning-rate schedules exactly, one update
  per mini-batch from the backend's forward and backward ops.
- ``lbfgs``: ``scipy.optimize.minimize(method="L-BFGS-B")`` on the fused loss and gradient
  (one forward and one backward pass per evaluation, the parameters packed flat in
  scikit-learn's order).

The loss is scikit-learn's: the mean per-example loss plus ``alpha/2 · Σ‖W‖² / n`` per
mini-batch, which is chainrule's ``J`` with ``λ = alpha``
(``J = (1/m) Σ L + λ/(2m) Σ‖W‖²``);
``loss_`` is the mean over the epoch's mini-batches weighted by their sizes, as
scikit-learn's. Sparse ``X`` (CSR/CSC) is densified a block of rows at a time.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import reference as ref
from ._threads import limited
from .errors import NonFiniteError
from .model import Network
from .training.batches import example_weights

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names -> chainrule's (spec.py)
_HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUTPUT = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}
_STOCHASTIC = ("sgd", "adam")
# Rows densified at once from a sparse X (L-BFGS's passes, prediction).
_BLOCK_BYTES = 8 << 20

_NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain "
              "large values and need to be preprocessed.")


class _SGDRule:
    """scikit-learn's ``SGDOptimizer``: momentum, Nesterov, and the ``constant``,
    ``invscaling`` and ``adaptive`` schedules (``learning_rate`` is the current rate)."""

    def __init__(self, params, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule, self.momentum, self.nesterov = lr_schedule, momentum, nesterov
        self.power_t = power_t
        self.velocities = [np.zeros_like(p) for p in params]

    def update_params(self, params, grads):
        updates = [self.momentum * v - self.learning_rate * g
                   for v, g in zip(self.velocities, grads)]
        self.velocities = updates
        if self.nesterov:
            updates = [self.momentum * v - self.learning_rate * g
                       for v, g in zip(self.velocities, grads)]
        for p, u in zip(params, updates):
            p += u

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _AdamRule:
    """scikit-learn's ``AdamOptimizer`` seen from the fit loop: a constant rate, stop when
    the loss stops improving. The moments live in the network (``Network.optimizer_``)."""

    def __init__(self, learning_rate_init):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)

    def iteration_ends(self, time_step):
        return None

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


def _row_blocks(X, n_cols):
    """``(start, stop)`` of row blocks of ``X`` of about ``_BLOCK_BYTES`` once dense."""
    n = X.shape[0]
    step = max(1, _BLOCK_BYTES // max(1, 8 * n_cols))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _dense_columns(X, rows, dtype):
    """Rows ``rows`` (a slice or indices) of ``X`` as the network's columns: a dense
    C-ordered ``(n_features, len(rows))`` array of ``dtype`` (one allocation for a sparse
    ``X``)."""
    part = X[rows]
    if sp.issparse(part):
        return part.T.astype(dtype, copy=False).toarray(order="C")
    return np.ascontiguousarray(part.T, dtype=dtype)


class _MLPBase(BaseEstimator):
    """scikit-learn's ``BaseMultilayerPerceptron`` on a :class:`chainrule.Network`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"),
                             Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        # chainrule's extras
        "keep_prob": [Interval(numbers.Real, 0, 1, closed="right")],
        "backend": [str, None],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    # ---- the network's arrays in scikit-learn's layout
    @property
    def coefs_(self):
        """``coefs_[i]``, shape ``(n[i], n[i+1])``: ``W[i+1].T`` (a view of the network's)."""
        net = self.__dict__.get("network_")
        if net is None:
            if "_coefs_given" in self.__dict__:
                return self._coefs_given
            raise AttributeError("coefs_ (the estimator is not fitted)")
        return [W.T for W in net.layer_arrays()[0]]

    @coefs_.setter
    def coefs_(self, value):
        self._set_layers(coefs=value)

    @property
    def intercepts_(self):
        """``intercepts_[i]``, shape ``(n[i+1],)``: ``b[i+1][:, 0]`` (a view)."""
        net = self.__dict__.get("network_")
        if net is None:
            if "_intercepts_given" in self.__dict__:
                return self._intercepts_given
            raise AttributeError("intercepts_ (the estimator is not fitted)")
        return [b[:, 0] for b in net.layer_arrays()[1]]

    @intercepts_.setter
    def intercepts_(self, value):
        self._set_layers(intercepts=value)

    def _set_layers(self, coefs=None, intercepts=None):
        net = self.__dict__.get("network_")
        if net is None:  # kept until a fit builds the network from them
            if coefs is not None:
                self._coefs_given = coefs
            if intercepts is not None:
                self._intercepts_given = intercepts
            return
        params = dict(net.parameters)
        for i, c in enumerate(coefs or []):
            params[f"W{i + 1}"] = np.asarray(c).T
        for i, b in enumerate(intercepts or []):
            params[f"b{i + 1}"] = np.asarray(b).reshape(-1, 1)
        net.parameters = params

    # ---- building the network
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if np.any(np.array(sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)
        return sizes

    def _new_network(self, layer_units, dtype, rs, params=None):
        """A Network with scikit-learn's Glorot-uniform initialisation drawn from ``rs``
        (weights then biases, layer by layer, as ``_init_coef``), or ``params``."""
        if params is None:
            params = {}
            factor = 2.0 if self.activation == "logistic" else 6.0
            for i in range(len(layer_units) - 1):
                fan_in, fan_out = layer_units[i], layer_units[i + 1]
                bound = np.sqrt(factor / (fan_in + fan_out))
                coef = rs.uniform(-bound, bound, (fan_in, fan_out))
                intercept = rs.uniform(-bound, bound, fan_out)
                params[f"W{i + 1}"] = coef.T.astype(dtype)
                params[f"b{i + 1}"] = intercept.reshape(-1, 1).astype(dtype)
        seed = int(rs.randint(np.iinfo(np.int32).max))
        n_hidden = len(layer_units) - 2
        acts = [_HIDDEN[self.activation]] * n_hidden + [_OUTPUT[self.out_activation_]]
        net = Network(layer_units, activations=acts, init="zeros", seed=seed,
                      dtype=np.dtype(dtype).name, backend=self.backend,
                      n_threads=self.n_threads)
        net.parameters = params
        return net

    def _output_activation(self, y):
        if not is_classifier(self):
            return "identity"
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    # ---- fit
    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        if self.loss != "squared_error" and not is_classifier(self):
            raise ValueError(f"loss={self.loss!r} is not among chainrule's losses (an exp "
                             f"output with the Poisson deviance is not in chainrule.spec); "
                             f"use loss='squared_error' or scikit-learn's MLPRegressor")
        if self.keep_prob < 1 and self.solver != "adam":
            raise ValueError(f"keep_prob={self.keep_prob} (dropout) trains on chainrule's "
                             f"engine, with solver='adam' only; solver={self.solver!r} needs "
                             f"keep_prob=1.0")
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        dtype = X.dtype
        if first_pass:
            self._initialize(y, layer_units, dtype)
        elif "network_" in self.__dict__ and self.network_.layer_dims != layer_units:
            raise ValueError(f"warm_start/partial_fit continue the fitted network, of layer "
                             f"sizes {self.network_.layer_dims}; hidden_layer_sizes and the "
                             f"data now give {layer_units}. Set warm_start=False to fit a new "
                             f"network")
        elif "network_" not in self.__dict__:  # coefs_ and intercepts_ were assigned
            self.n_layers_ = len(layer_units)
            if not hasattr(self, "out_activation_"):
                self.out_activation_ = self._output_activation(y)
            given = {}
            for i, (c, b) in enumerate(zip(self._coefs_given, self._intercepts_given), 1):
                given[f"W{i}"] = np.asarray(c, dtype=dtype).T
                given[f"b{i}"] = np.asarray(b, dtype=dtype).reshape(-1, 1)
            self.network_ = self._new_network(layer_units, dtype, self._random_state, given)
            del self._coefs_given, self._intercepts_given
            for name, value in (("loss_curve_", []), ("_no_improvement_count", 0),
                                ("best_loss_", np.inf), ("t_", 0), ("n_iter_", 0)):
                if not hasattr(self, name):
                    setattr(self, name, value)
            if not hasattr(self, "validation_scores_"):
                self.validation_scores_ = self.best_validation_score_ = None
        Y = y  # bool for a classifier (the split stratifies on it), cast per block
        try:
            with limited(self.n_threads):
                if self.solver in _STOCHASTIC:
                    self._fit_stochastic(X, Y, sample_weight, incremental)
                else:
                    self._fit_lbfgs(X, Y, sample_weight)
        except NonFiniteError as exc:
            raise ValueError(_NONFINITE) from exc
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(_NONFINITE)
        return self

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation(y)
        self.__dict__.pop("_coefs_given", None)
        self.__dict__.pop("_intercepts_given", None)
        self.network_ = self._new_network(layer_units, dtype, self._random_state)
        self.__dict__.pop("_optimizer", None)
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    # ---- the fused loss and gradient (L-BFGS, SGD)
    def _loss_grad(self, blocks, share, ops=None):
        """scikit-learn's loss and gradients over ``blocks`` of examples.

        ``blocks`` yields ``(Xc, Yc, w)``: columns of examples (C-ordered, the network's
        dtype), their targets and weights (or None); ``share`` is ``Σw`` (or ``n``) of all
        of them. Returns ``(loss, dWs, dbs)`` with the L2 term ``alpha/2 ‖W‖² / share``.
        ``ops``: the backend's ops (resolved once per fit: ``auto`` weighs every call).
        """
        net = self.network_
        Ws, bs = net.layer_arrays()
        acts, loss = net.activations, net.loss
        data, dWs, dbs = 0.0, None, None
        for block in blocks:
            Xc, Yc, w = block
            mb = Xc.shape[1]
            ops = net.ops_for(mb) if ops is None else ops
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                Zs, As = ops.forward(Xc, Ws, bs, acts)
                AL = As[-1]
                losses = ref.example_losses(AL, Yc, loss)
                data += float(losses.sum() if w is None else np.dot(w, losses))
                dZ = ref.output_delta(AL, Yc, Zs[-1], acts[-1], loss, "L")
                scale = mb / share
                dZ = dZ * (AL.dtype.type(scale) if w is None else (w * scale).astype(AL.dtype))
                _, gW, gb, _ = ops.backward_delta(dZ, Zs, As, Ws, acts, "L", 0.0, None, False)
            if dWs is None:
                dWs, dbs = [g.copy() for g in gW], [g.copy() for g in gb]
            else:
                for acc, g in zip(dWs + dbs, gW + gb):
                    acc += g
            # a sparse X's dense block goes before the next one is made
            del block, Xc, Zs, As, AL, dZ
        sq = sum(float(np.dot(W.ravel(), W.ravel())) for W in Ws)
        for dW, W in zip(dWs, Ws):
            dW += (self.alpha / share) * W
        return data / share + 0.5 * self.alpha * sq / share, dWs, dbs

    def _blocks(self, X, Y, w, rows=None):
        """The examples (all, or ``rows``) as the network's columns, a block at a time for a
        sparse ``X`` (a dense ``X`` is one block)."""
        dtype = self.network_.dtype
        if rows is not None:
            yield (_dense_columns(X, rows, dtype), np.ascontiguousarray(Y[rows].T, dtype=dtype),
                   None if w is None else w[rows])
            return
        if not sp.issparse(X):
            yield (np.ascontiguousarray(X.T, dtype=dtype), np.ascontiguousarray(Y.T, dtype=dtype),
                   w)
            return
        for a, b in _row_blocks(X, X.shape[1]):
            yield from self._blocks(X, Y, w, slice(a, b))

    def _pack(self, Ws, bs):
        return np.hstack([W.T.ravel() for W in Ws] + [b.ravel() for b in bs])

    def _unpack(self, theta):
        Ws, bs = self.network_.layer_arrays()
        start = 0
        for W in Ws:
            n_out, n_in = W.shape
            W[...] = theta[start:start + n_in * n_out].reshape(n_in, n_out).T
            start += n_in * n_out
        for b in bs:
            b[:, 0] = theta[start:start + b.shape[0]]
            start += b.shape[0]

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, *unused):
        """scikit-learn's ``_loss_grad_lbfgs``: ``(loss, gradient)`` at the packed parameters
        (coefficients then intercepts, each flattened in ``coefs_``'s layout)."""
        self._unpack(packed_coef_inter)
        y = np.asarray(y)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        share = X.shape[0] if w is None else w.sum()
        J, dWs, dbs = self._loss_grad(self._blocks(X, Y, w), share)
        return J, self._pack(dWs, dbs).astype(np.float64)

    def _fit_lbfgs(self, X, Y, sample_weight):
        theta = self._pack(*self.network_.layer_arrays()).astype(np.float64)
        w = sample_weight
        share = X.shape[0] if w is None else float(w.sum())
        blocks = None if sp.issparse(X) else list(self._blocks(X, Y, w))  # one copy, reused
        ops = self.network_.ops_for(X.shape[0], steps=self.max_fun)

        def loss_grad(theta):
            self._unpack(theta)
            J, dWs, dbs = self._loss_grad(self._blocks(X, Y, w) if blocks is None else blocks,
                                          share, ops)
            return J, self._pack(dWs, dbs).astype(np.float64)

        res = scipy.optimize.minimize(
            loss_grad, theta, method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = min(res.nit, self.max_iter)
        if res.status != 0:
            msg = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                   f"(status={res.status}):\n{res.message}\n")
            if self.n_iter_ >= self.max_iter:
                msg += "\nIncrease the number of iterations to improve the convergence "\
                       f"(max_iter={self.max_iter})."
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        self.loss_ = float(res.fun)
        self._unpack(res.x)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

    # ---- the stochastic solvers
    def _split(self, X, Y, sample_weight):
        should_stratify = is_classifier(self) and self.n_outputs_ == 1
        stratify = Y if should_stratify else None
        arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
        parts = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        X_tr, X_val, Y_tr, Y_val = parts[:4]
        sw_tr, sw_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        if is_classifier(self):
            Y_val = self._label_binarizer.inverse_transform(Y_val.astype(bool))
        return X_tr, Y_tr, sw_tr, X_val, Y_val, sw_val

    def _fit_stochastic(self, X, Y, sample_weight, incremental):
        rule = _AdamRule if self.solver == "adam" else _SGDRule
        new_rule = not incremental or not isinstance(getattr(self, "_optimizer", None), rule)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early = self.early_stopping
        if early:
            X_tr, Y_tr, sw_tr, X_val, Y_val, sw_val = self._split(X, Y, sample_weight)
        else:
            X_tr, Y_tr, sw_tr, X_val, Y_val, sw_val = X, Y, sample_weight, None, None, None
        n = X_tr.shape[0]
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=3)
            batch = int(np.clip(self.batch_size, 1, n))
        if early and not hasattr(self, "_best_params"):
            self._best_params = dict(self.network_.parameters)
        self.n_iter_ = 0
        val = (X_val, Y_val, sw_val)
        try:
            if self.solver == "adam":
                if new_rule:
                    self._optimizer = _AdamRule(self.learning_rate_init)
                self._epochs_on_engine(X_tr, Y_tr, sw_tr, batch, val, incremental, new_rule)
            else:
                if new_rule:
                    self._optimizer = _SGDRule(
                        self._params(), self.learning_rate_init, self.learning_rate,
                        self.momentum, self.nesterovs_momentum, self.power_t)
                self._epochs_sgd(X_tr, Y_tr, sw_tr, batch, val, incremental)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if early:
            self.network_.parameters = self._best_params

    def _params(self):
        Ws, bs = self.network_.layer_arrays()
        return Ws + bs

    def _epoch_end(self, loss, n, val, incremental):
        """scikit-learn's bookkeeping after an epoch; True: stop."""
        self.n_iter_ += 1
        self.loss_ = float(loss)
        self.t_ += n
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        self._update_no_improvement_count(*val)
        self._optimizer.iteration_ends(self.t_)
        if self._no_improvement_count > self.n_iter_no_change:
            if val[0] is not None:
                msg = ("Validation score did not improve more than tol=%f for %d consecutive "
                       "epochs." % (self.tol, self.n_iter_no_change))
            else:
                msg = ("Training loss did not improve more than tol=%f for %d consecutive "
                       "epochs." % (self.tol, self.n_iter_no_change))
            if self._optimizer.trigger_stopping(msg, self.verbose):
                return True
            self._no_improvement_count = 0
        if incremental:
            return True
        if self.n_iter_ == self.max_iter:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % self.max_iter,
                          ConvergenceWarning, stacklevel=4)
            return True
        return False

    def _update_no_improvement_count(self, X_val, y_val, sw_val):
        if X_val is not None:
            score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = {k: v.copy() for k, v in self.network_.parameters.items()}
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _epochs_on_engine(self, X, Y, w, batch, val, incremental, new_rule):
        """Adam: the epochs in chainrule's compiled loop; scikit-learn's rules in a callback."""
        n = X.shape[0]

        def rules(net, epoch, logs):
            return self._epoch_end(logs["cost"], n, val, incremental)

        Xt = X.T  # examples as columns: a view (of a sparse X too)
        opt = {"name": "adam", "beta1": self.beta_1, "beta2": self.beta_2,
               "epsilon": self.epsilon}
        self.network_.fit(
            Xt, np.ascontiguousarray(Y.T, dtype=self.network_.dtype),
            epochs=1 if incremental else self.max_iter,
            learning_rate=self.learning_rate_init, optimizer=opt, mini_batch_size=batch,
            shuffle=self.shuffle, lambd=self.alpha, keep_prob=self.keep_prob,
            sample_weight=w, class_weight=self._class_weight_indices(Y), progress=False,
            callbacks=[rules], continue_training=not new_rule)

    def _epochs_sgd(self, X, Y, w, batch, val, incremental):
        """SGD: scikit-learn's updates, one per mini-batch, on the backend's passes."""
        n = X.shape[0]
        net = self.network_
        cw = self._example_class_weights(Y)
        if cw is not None:
            w = cw if w is None else w * cw
        idx = np.arange(n)
        ops = net.ops_for(batch, steps=self.max_iter * -(-n // batch))
        while True:
            if self.shuffle:
                idx = net.rng.permutation(n)
            total = 0.0
            for start in range(0, n, batch):
                rows = idx[start:start + batch]
                wb = None if w is None else w[rows]
                share = len(rows) if wb is None else float(wb.sum())
                J, dWs, dbs = self._loss_grad(self._blocks(X, Y, w, rows), share, ops)
                total += J * len(rows)
                self._optimizer.update_params(self._params(), dWs + dbs)
            if self._epoch_end(total / n, n, val, incremental):
                return

    def _class_weight_indices(self, Y):
        return None

    def _example_class_weights(self, Y):
        return None

    # ---- prediction
    def _forward_pass_fast(self, X, check_input=True):
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self.network_
        if not sp.issparse(X):
            Xc = np.ascontiguousarray(X.T, dtype=net.dtype)
            return np.ascontiguousarray(self._forward_columns(Xc).T)
        out = np.empty((X.shape[0], self.n_outputs_), dtype=net.dtype)
        Xr = X.tocsr()
        for a, b in _row_blocks(Xr, X.shape[1]):
            out[a:b] = self._forward_columns(_dense_columns(Xr, slice(a, b), net.dtype)).T
        return out

    def _forward_columns(self, Xc):
        net = self.network_
        Ws, bs = net.layer_arrays()
        with np.errstate(over="ignore", invalid="ignore"), limited(self.n_threads):
            return net.ops_for(Xc.shape[1]).forward(Xc, Ws, bs, net.activations)[1][-1]

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features; dense, CSR or CSC) and ``y``.

        Returns self.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_PARAMS_DOC = """
    Parameters
    ----------
    {first}hidden_layer_sizes : array-like of int, default=(100,)
        Units of each hidden layer.
    activation : {{"identity", "logistic", "tanh", "relu"}}, default="relu"
        Hidden activation (chainrule's ``identity``, ``sigmoid``, ``tanh``, ``relu``).
    solver : {{"lbfgs", "sgd", "adam"}}, default="adam"
        ``adam`` runs on chainrule's compiled training loop; ``sgd`` is scikit-learn's
        momentum/Nesterov SGD; ``lbfgs`` is SciPy's L-BFGS-B on the fused loss and gradient.
    alpha : float, default=0.0001
        L2 strength: chainrule's ``lambd`` (``alpha/2 · Σ‖W‖² / n`` added to the mean loss).
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` for ``"auto"``.
    learning_rate : {{"constant", "invscaling", "adaptive"}}, default="constant"
        The ``sgd`` schedule.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        The ``invscaling`` exponent.
    max_iter : int, default=200
        Epochs (``lbfgs``: iterations).
    shuffle : bool, default=True
    random_state : int, RandomState or None, default=None
        Draws the initial parameters as scikit-learn does, then seeds the network.
    tol : float, default=1e-4
    verbose : bool or int, default=False
        Print scikit-learn's ``Iteration %d, loss = %.8f`` lines.
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
    keep_prob : float, default=1.0
        chainrule's extra: inverted dropout on the hidden layers (``adam`` only).
    {extra}backend : str, default="auto"
        chainrule's extra: ``"numpy"``, ``"numba"``, ``"c"`` or ``"auto"``.
    n_threads : int, optional
        chainrule's extra: limit the BLAS threads of the network.

    Attributes
    ----------
    {classes}loss_ : float
    best_loss_ : float or None
    loss_curve_ : list of float
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    t_ : int
    coefs_ : list of ndarray
        ``coefs_[i]`` is ``W[i+1].T``, a view of the network's array.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is ``b[i+1][:, 0]``, a view.
    n_features_in_ : int
    feature_names_in_ : ndarray
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    network_ : chainrule.Network
        The trained network (examples as columns).

    See ``docs/sklearn.md`` for the map to chainrule's arguments.
"""


class MLPClassifier(ClassifierMixin, _MLPBase):
    __doc__ = ("Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` on "
               "chainrule's engine.\n" + _PARAMS_DOC.format(
                   first="", classes="classes_ : ndarray of shape (n_classes,)\n    ",
                   extra="class_weight : dict, \"balanced\" or None, default=None\n"
                         "        chainrule's extra: weights by class label.\n    "))

    _parameter_constraints: dict = {
        **_MLPBase._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    loss = "log_loss"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 keep_prob=1.0, class_weight=None, backend="auto", n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.keep_prob = keep_prob
        self.class_weight = class_weight
        self.backend = backend
        self.n_threads = n_threads

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def _class_weight_indices(self, Y):
        cw = self.class_weight
        if cw is None or self.n_outputs_ > 1 and self.out_activation_ != "softmax":
            return None
        if isinstance(cw, str):
            return cw
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        unknown = [c for c in cw if c not in index]
        if unknown:
            raise ValueError(f"class_weight has keys {unknown!r} that are not classes; the "
                             f"classes are {self.classes_.tolist()}")
        return {index[c]: float(w) for c, w in cw.items()}

    def _example_class_weights(self, Y):
        cw = self._class_weight_indices(Y)
        if cw is None:
            return None
        net = self.network_
        return example_weights(None, cw, np.asarray(Y, dtype=np.float64).T,
                               net.activations[-1][0], net.layer_dims[-1], Y.shape[0],
                               np.float64)

    def predict(self, X):
        """The predicted classes, shape (n_samples,) (or (n_samples, n_classes) multilabel)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X, y``; the first call needs ``classes``. Returns self."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        return np.log(self.predict_proba(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _check_partial_fit_first_call(clf, classes):
    """scikit-learn's rule: ``classes`` is required on the first call and must not change."""
    if getattr(clf, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if getattr(clf, "classes_", None) is not None:
            if not np.array_equal(clf.classes_, unique_labels(classes)):
                raise ValueError("`classes=%r` is not the same as on last call to "
                                 "partial_fit, was: %r" % (classes, clf.classes_))
        else:
            clf.classes_ = unique_labels(classes)
            return True
    return False


class MLPRegressor(RegressorMixin, _MLPBase):
    __doc__ = ("Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on "
               "chainrule's engine.\n" + _PARAMS_DOC.format(
                   first="loss : {\"squared_error\"}, default=\"squared_error\"\n"
                         "        ``\"poisson\"`` is refused (no exp output in chainrule).\n    ",
                   classes="", extra=""))

    _parameter_constraints: dict = {
        **_MLPBase._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 keep_prob=1.0, backend="auto", n_threads=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.keep_prob = keep_prob
        self.backend = backend
        self.n_threads = n_threads

    def predict(self, X):
        """Predictions, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X, y``. Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
