"""CNNClassifier: fit/predict behaviour on real data, shapes, dtypes, determinism."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16).astype(np.float32), y, test_size=0.25,
                            stratify=y, random_state=0)


def fit_quietly(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y)


def test_digits_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    clf = fit_quietly(CNNClassifier(max_iter=15, batch_size=64, random_state=0),
                      X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.97
    assert clf.n_iter_ == 15 and len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 5
    assert clf.t_ == 15 * X_train.shape[0]


def test_digits_with_every_default_reach_098(digits):
    """The defaults (max_iter=200 with MLP's stopping rule) on held-out digits:
    0.9867, 0.9889, 0.9956 for seeds 0, 1, 2 when measured."""
    X_train, X_test, y_train, y_test = digits
    clf = fit_quietly(CNNClassifier(random_state=0), X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.98
    assert clf.n_iter_ < clf.max_iter  # stopped by the rule, not the limit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_end_to_end(digits, dtype):
    X_train, X_test, y_train, _ = digits
    clf = fit_quietly(CNNClassifier((8,), conv_layers=(Conv2D(4),), max_iter=2, random_state=0),
                      X_train[:200].astype(dtype), y_train[:200])
    assert all(c.dtype == dtype for c in clf.coefs_ + clf.intercepts_)
    proba = clf.predict_proba(X_test.astype(dtype))
    assert proba.dtype == dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    log_proba = clf.predict_log_proba(X_test.astype(dtype))
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-4, atol=1e-6)


def test_predictions_use_original_labels(digits):
    X_train, X_test, y_train, _ = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = fit_quietly(CNNClassifier((16,), conv_layers=(Conv2D(4), "maxpool"), max_iter=3,
                                    random_state=0), X_train, names[y_train])
    assert set(clf.predict(X_test)) <= set(names)
    np.testing.assert_array_equal(clf.classes_, np.sort(names))


def test_same_random_state_same_model_across_thread_counts(digits):
    X_train, X_test, y_train, _ = digits
    results = []
    for n_threads in (1, 2):
        with threadpool_limits(n_threads, user_api="openmp"):
            clf = fit_quietly(CNNClassifier(max_iter=2, batch_size=50, random_state=3),
                              X_train, y_train)
            results.append((clf.coefs_, clf.loss_curve_, clf.predict_proba(X_test)))
    (coefs_a, curve_a, proba_a), (coefs_b, curve_b, proba_b) = results
    for a, b in zip(coefs_a, coefs_b):
        np.testing.assert_array_equal(a, b)
    assert curve_a == curve_b
    np.testing.assert_array_equal(proba_a, proba_b)


def test_image_shape_and_nd_inputs_agree(digits):
    X_train, X_test, y_train, _ = digits
    params = dict(conv_layers=(Conv2D(4), MaxPool2D()), hidden_layer_sizes=(8,),
                  max_iter=2, random_state=0)
    flat = fit_quietly(CNNClassifier(image_shape=(8, 8), **params), X_train, y_train)
    cube = fit_quietly(CNNClassifier(**params), X_train.reshape(-1, 8, 8), y_train)
    four = fit_quietly(CNNClassifier(**params), X_train.reshape(-1, 1, 8, 8), y_train)
    expected = flat.predict_proba(X_test)
    np.testing.assert_array_equal(cube.predict_proba(X_test.reshape(-1, 8, 8)), expected)
    np.testing.assert_array_equal(four.predict_proba(X_test.reshape(-1, 1, 8, 8)),
                                  expected)
    assert flat.image_shape_ == cube.image_shape_ == (1, 8, 8)


def test_multichannel_images_are_read_channels_first(rng):
    # The class is given by which channel is bright: only a correct channel
    # split can learn it.
    n = 300
    y = rng.randint(0, 3, n)
    X = rng.uniform(0, 0.2, (n, 3, 5, 5))
    X[np.arange(n), y] += 1.0
    clf = fit_quietly(CNNClassifier((8,), conv_layers=(Conv2D(4),), max_iter=30, random_state=0,
                                    image_shape=(3, 5, 5)), X.reshape(n, -1), y)
    assert clf.image_shape_ == (3, 5, 5)
    assert clf.score(X.reshape(n, -1), y) == 1.0


@pytest.mark.parametrize("n_features", [1, 2, 3, 5, 30])
def test_default_architecture_fits_any_width(n_features, rng):
    X = rng.standard_normal((40, n_features))
    y = (X[:, 0] > 0).astype(int)
    clf = fit_quietly(CNNClassifier(max_iter=5, random_state=0), X, y)
    assert clf.predict_proba(X).shape == (40, 2)


def test_verbose_prints_one_line_per_epoch(digits, capsys):
    X_train, _, y_train, _ = digits
    fit_quietly(CNNClassifier((4,), conv_layers=(Conv2D(2),), max_iter=3, verbose=1,
                              random_state=0), X_train[:100], y_train[:100])
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 3
    assert all("loss =" in line and " s, " in line and "samples/s" in line
               for line in lines)


def test_early_stopping_restores_best_weights(digits):
    X_train, _, y_train, _ = digits
    clf = fit_quietly(CNNClassifier((16,), conv_layers=(Conv2D(4),), max_iter=40,
                                    early_stopping=True, n_iter_no_change=2, random_state=0),
                      X_train, y_train)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.validation_loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_bad_image_shape_is_explained(digits):
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match=r"image_shape=\(7, 7\) holds 49 values"):
        CNNClassifier(image_shape=(7, 7)).fit(X_train, y_train)
    with pytest.raises(ValueError, match="larger than the"):
        CNNClassifier(conv_layers=("maxpool",) * 4).fit(X_train, y_train)
