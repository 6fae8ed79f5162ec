"""Same random_state, same model: bitwise, whatever the number of threads."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D
from sklearn_cnn.augmentation import Jitter, RandomFlip, RandomScaling, RandomTranslation
from sklearn_cnn.schedules import CosineDecay

# A modern recipe: every random draw of augmentation must be thread-independent.
RECIPE = dict(solver="adamw", alpha=0.01, learning_rate=CosineDecay(warmup_epochs=1),
              label_smoothing=0.1, test_time_augmentation=True,
              augment=(RandomTranslation(1, padding="reflect"), RandomFlip(),
                       RandomScaling(), Jitter(0.05)))

THREAD_COUNTS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return (X[:600] / 16).astype(np.float32), y[:600]


def train(data, n_threads, incremental, **params):
    X, y = data
    clf = CNNClassifier((16,), conv_layers=(Conv2D(8), MaxPool2D(), Conv2D(8, 3, 2)), batch_size=48,
                        max_iter=3, dropout=0.2, random_state=7, **params)
    with threadpool_limits(n_threads, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if incremental:
            for chunk in np.array_split(np.arange(len(X)), 3):
                clf.partial_fit(X[chunk], y[chunk], classes=np.arange(10))
        else:
            clf.fit(X, y)
        return clf, clf.predict_proba(X)


@pytest.mark.parametrize("incremental", [False, True], ids=["fit", "partial_fit"])
@pytest.mark.parametrize("params", [dict(solver="adam"), dict(solver="sgd"), RECIPE],
                         ids=["adam", "sgd", "recipe"])
def test_bitwise_identical_across_thread_counts(data, incremental, params):
    results = [train(data, n, incremental, **params) for n in THREAD_COUNTS]
    reference, reference_proba = results[0]
    for clf, proba in results[1:]:
        for a, b in zip(clf.coefs_ + clf.intercepts_,
                        reference.coefs_ + reference.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert clf.loss_curve_ == reference.loss_curve_
        np.testing.assert_array_equal(proba, reference_proba)


def test_prediction_identical_across_thread_counts(data):
    clf, _ = train(data, 2, False)
    X = data[0]
    outputs = []
    for n_threads in THREAD_COUNTS:
        with threadpool_limits(n_threads, user_api="openmp"):
            outputs.append((clf.predict_proba(X), clf.transform(X)))
    for proba, features in outputs[1:]:
        np.testing.assert_array_equal(proba, outputs[0][0])
        np.testing.assert_array_equal(features, outputs[0][1])


def test_same_seed_same_model_twice(data):
    (a, _), (b, _) = train(data, 2, False), train(data, 2, False)
    for x, y in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(x, y)
