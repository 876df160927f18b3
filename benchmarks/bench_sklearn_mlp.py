"""chainrule.sklearn's MLP drop-ins against scikit-learn's MLPs with the same settings
(defaults, ``random_state=0``) on digits, breast_cancer and diabetes (shipped with
scikit-learn): the fit time of each (``time_fit``) and scikit-learn's time over chainrule's
(``track_speedup``). ``python -m chainrule.bench.sklearn_mlp`` prints the same comparison.
"""

import warnings

from chainrule.bench import sklearn_mlp


class SklearnMLP:
    params = [["digits", "breast_cancer", "diabetes"], ["chainrule", "sklearn"]]
    param_names = ["data", "library"]
    timeout = 600

    def setup(self, data, library):
        try:
            from sklearn import neural_network as skl

            from chainrule import sklearn as crs
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed")  # asv: n/a
        Xtr, _, ytr, _, kind = sklearn_mlp.datasets()[data]
        module = crs if library == "chainrule" else skl
        self.cls = getattr(module, "MLPClassifier" if kind == "classifier" else "MLPRegressor")
        self.X, self.y = Xtr, ytr
        self.time_fit(data, library)  # warm-up: JIT and thread pools are not timed

    def time_fit(self, data, library):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.cls(random_state=0).fit(self.X, self.y)


def _needs_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise NotImplementedError("scikit-learn is not installed")  # asv: n/a


def track_speedup(data):
    """scikit-learn's fit time over chainrule's (best of 3, one BLAS thread each)."""
    row, = sklearn_mlp.compare(repeats=3, threads=1, names=[data])
    return row["ratio"]


track_speedup.setup = lambda data: _needs_sklearn()  # asv skips it without scikit-learn
track_speedup.params = ["digits", "breast_cancer", "diabetes"]
track_speedup.param_names = ["data"]
track_speedup.unit = "x"
