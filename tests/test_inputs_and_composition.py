"""Inputs of every kind, and CNNClassifier inside scikit-learn's machinery."""

import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D
from sklearn_cnn._threads import effective_n_threads

SMALL = dict(conv_layers=(Conv2D(4),), hidden_layer_sizes=(8,), max_iter=3,
             random_state=0)


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]),
    np.array([-3, 7, 100]),
    np.array([True, False, True]),
    np.array(["yes", "no", "no"]),
], ids=["str", "int", "bool", "binary-str"])
def test_labels_come_back_as_given(labels, rng):
    y = labels[rng.randint(0, 3, 60)]
    X = rng.standard_normal((60, 9))
    clf = CNNClassifier(**SMALL).fit(X, y)
    predictions = clf.predict(X)
    assert predictions.dtype == y.dtype
    assert set(predictions) <= set(y)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    assert clf.predict_proba(X).shape == (60, len(np.unique(y)))


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, bool])
def test_integer_and_boolean_X_become_float64(dtype, rng):
    X = rng.randint(0, 2, (40, 16)).astype(dtype)
    y = rng.randint(0, 2, 40)
    clf = CNNClassifier(**SMALL).fit(X, y)
    assert clf.coefs_[0].dtype == np.float64
    assert clf.predict_proba(X).dtype == np.float64


def test_read_only_and_fortran_arrays_give_the_same_model(digits):
    X, y = digits
    reference = CNNClassifier(**SMALL).fit(X, y)
    read_only = X.copy()
    read_only.flags.writeable = False
    for variant in (read_only, np.asfortranarray(X)):
        clf = CNNClassifier(**SMALL).fit(variant, y)
        for a, b in zip(clf.coefs_, reference.coefs_):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(clf.predict_proba(variant),
                                      reference.predict_proba(X))


def test_memmapped_input(digits, tmp_path):
    X, y = digits
    path = tmp_path / "X.joblib"
    joblib.dump(X.astype(np.float32), path)
    X_map = joblib.load(path, mmap_mode="r")
    clf = CNNClassifier(**SMALL).fit(X_map, y)
    assert clf.predict(X_map).shape == (len(X),)


def test_dataframe_keeps_feature_names(digits):
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    clf = CNNClassifier(**SMALL).fit(frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"pixel0": "other"}))


def test_sparse_input_is_rejected_with_a_clear_message(digits):
    X, y = digits
    with pytest.raises(TypeError, match="Sparse data was passed"):
        CNNClassifier(**SMALL).fit(sp.csr_matrix(X), y)
    clf = CNNClassifier(**SMALL).fit(X, y)
    with pytest.raises(TypeError, match="Sparse data was passed"):
        clf.predict(sp.csr_matrix(X))


def test_pipeline_and_cross_val_score(digits):
    X, y = digits
    pipe = make_pipeline(MinMaxScaler(), CNNClassifier(max_iter=10, batch_size=64,
                                                       random_state=0))
    scores = cross_val_score(pipe, X * 16, y, cv=3)
    assert scores.min() > 0.9


def test_grid_search_with_two_loky_workers(digits):
    X, y = digits
    grid = GridSearchCV(
        CNNClassifier(hidden_layer_sizes=(128,), max_iter=20, batch_size=64,
                      image_shape=(8, 8), random_state=0),
        {"conv_layers": [(Conv2D(16), MaxPool2D()),
                         (Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())],
         "learning_rate_init": [1e-3, 3e-3]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ >= 0.97
    assert len(grid.cv_results_["params"]) == 4


def test_loky_workers_limit_their_openmp_threads():
    # joblib gives each of the 2 workers cpu_count // 2 threads: never more
    # threads in all than cores.
    counts = Parallel(n_jobs=2, backend="loky")(
        delayed(effective_n_threads)() for _ in range(4))
    assert all(2 * count <= max(joblib.cpu_count(), 2) for count in counts)


def test_clone_gives_an_unfitted_copy(digits):
    X, y = digits
    clf = CNNClassifier(**SMALL).fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "coefs_")


def test_pickle_and_joblib_round_trips_are_exact(digits, tmp_path):
    X, y = digits
    clf = CNNClassifier(**SMALL).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X),
                                  expected)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X),
                                  expected)


def test_model_loaded_in_another_process_predicts_identically(digits, tmp_path):
    X, y = digits
    clf = CNNClassifier(**SMALL).fit(X, y)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.save(tmp_path / "X.npy", X)
    script = (
        "import joblib, numpy as np, sys; d = sys.argv[1]; "
        "m = joblib.load(d + '/model.joblib'); "
        "np.save(d + '/proba.npy', m.predict_proba(np.load(d + '/X.npy')))")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                   timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), clf.predict_proba(X))
