"""chainrule.sklearn's MLP drop-ins against scikit-learn's MLPs: fit time and held-out
score on data sets that ship with scikit-learn (no download), the same settings for both.

``python -m chainrule.bench.sklearn_mlp [--repeats 3] [--threads 1] [--solver adam]``
prints one row per data set: each library's best fit time of ``repeats``, the ratio
(scikit-learn / chainrule) and the held-out accuracy (R² for the regression).
"""

from __future__ import annotations

import argparse
import time
import warnings


def datasets():
    """``name -> (X_train, X_test, y_train, y_test, kind)``, standardised (the targets of
    the regression too)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    out = {}
    for name, loader, kind in (("digits", load_digits, "classifier"),
                               ("breast_cancer", load_breast_cancer, "classifier"),
                               ("diabetes", load_diabetes, "regressor")):
        X, y = loader(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        if kind == "regressor":
            y = (y - y.mean()) / y.std()
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
        out[name] = (Xtr, Xte, ytr, yte, kind)
    return out


def _fit_once(cls, params, Xtr, ytr, Xte, yte):
    est = cls(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(Xtr, ytr)
        seconds = time.perf_counter() - start
    return seconds, est.score(Xte, yte), est.n_iter_


def compare(repeats=3, threads=1, solver="adam", names=None, **params):
    """Rows ``{data, n, chainrule_s, sklearn_s, ratio, chainrule_score, sklearn_score,
    n_iter}`` (best time of ``repeats``; the BLAS pools limited to ``threads``)."""
    from sklearn import neural_network as skl
    from threadpoolctl import threadpool_limits

    from .. import sklearn as crs

    params = {"random_state": 0, "solver": solver, **params}
    rows = []
    for name, (Xtr, Xte, ytr, yte, kind) in datasets().items():
        if names and name not in names:
            continue
        cls_name = "MLPClassifier" if kind == "classifier" else "MLPRegressor"
        result = {}
        with threadpool_limits(threads):
            for lib, module in (("chainrule", crs), ("sklearn", skl)):
                runs = [_fit_once(getattr(module, cls_name), params, Xtr, ytr, Xte, yte)
                        for _ in range(repeats)]
                result[lib] = (min(r[0] for r in runs), runs[0][1], runs[0][2])
        rows.append({"data": name, "n": len(ytr), "chainrule_s": result["chainrule"][0],
                     "sklearn_s": result["sklearn"][0],
                     "ratio": result["sklearn"][0] / result["chainrule"][0],
                     "chainrule_score": result["chainrule"][1],
                     "sklearn_score": result["sklearn"][1],
                     "n_iter": (result["chainrule"][2], result["sklearn"][2])})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chainrule.bench.sklearn_mlp",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (both)")
    parser.add_argument("--solver", default="adam", choices=["adam", "sgd", "lbfgs"])
    args = parser.parse_args(argv)
    print(f"{'data':<14} {'n':>5} {'chainrule s':>12} {'sklearn s':>10} {'ratio':>6} "
          f"{'chainrule score':>16} {'sklearn score':>14} {'n_iter':>10}")
    for r in compare(args.repeats, args.threads, args.solver):
        print(f"{r['data']:<14} {r['n']:>5} {r['chainrule_s']:>12.3f} {r['sklearn_s']:>10.3f} "
              f"{r['ratio']:>6.2f} {r['chainrule_score']:>16.4f} {r['sklearn_score']:>14.4f} "
              f"{str(r['n_iter']):>10}")


if __name__ == "__main__":
    main()
