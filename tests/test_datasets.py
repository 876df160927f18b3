"""Built-in data sets: shapes, seeds, and the course's planar draws."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import datasets


def test_planar_matches_the_course_generator():
    X, Y = datasets.load_planar_dataset()
    assert X.shape == (2, 400) and Y.shape == (1, 400)
    np.random.seed(1)  # the course's own code, inline
    t = np.linspace(0, 3.12, 200) + np.random.randn(200) * 0.2
    r = 4 * np.sin(4 * t) + np.random.randn(200) * 0.2
    np.testing.assert_array_equal(X[:, :200], np.c_[r * np.sin(t), r * np.cos(t)].T)
    assert Y[0, :200].sum() == 0 and Y[0, 200:].sum() == 200


@pytest.mark.parametrize("name", datasets.DATASETS)
def test_datasets_are_seeded_and_balanced(name):
    X1, Y1 = datasets.load(name, m=101)
    X2, Y2 = datasets.load(name, m=101)
    np.testing.assert_array_equal(X1, X2)
    assert X1.shape[0] == 2 and Y1.shape == (1, X1.shape[1])
    assert set(np.unique(Y1)) == {0, 1}
    X3, _ = datasets.load(name, seed=5, m=101)
    assert not np.array_equal(X1, X3)


def test_train_test_split_partitions_columns():
    X, Y = datasets.make_moons(m=50)
    X_tr, Y_tr, X_te, Y_te = datasets.train_test_split(X, Y, 0.2, seed=0)
    assert X_tr.shape == (2, 40) and X_te.shape == (2, 10)
    combined = np.sort(np.r_[X_tr[0], X_te[0]])
    np.testing.assert_array_equal(combined, np.sort(X[0]))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="planar, moons, circles"):
        datasets.load("mnist")
