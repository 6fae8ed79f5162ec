"""Memory bounds and versioned pickles."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import sklearn_cnn
from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D


def peak_traced_bytes(func):
    """Peak of the memory NumPy and Python allocate while func runs."""
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def model():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 144).astype(np.float32)
    y = rng.randint(0, 3, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return CNNClassifier((16,), conv_layers=(Conv2D(8), MaxPool2D()), max_iter=1,
                             random_state=0).fit(X, y)


def test_predict_memory_does_not_grow_with_the_number_of_samples(model):
    rng = np.random.RandomState(1)
    small = rng.rand(2000, 144).astype(np.float32)
    large = rng.rand(200000, 144).astype(np.float32)  # 115 MB
    small_peak = peak_traced_bytes(lambda: model.predict_proba(small))
    large_peak = peak_traced_bytes(lambda: model.predict_proba(large))
    output_growth = (200000 - 2000) * 3 * 4  # the returned probabilities
    assert large_peak - small_peak < output_growth + 2 * 2**20


@pytest.mark.parametrize("layout", ["C", "F"])
def test_fit_copies_the_training_set_at_most_once(layout):
    rng = np.random.RandomState(0)
    X = np.asarray(rng.rand(20000, 144).astype(np.float32), order=layout)  # 11.5 MB
    y = rng.randint(0, 3, 20000)
    clf = CNNClassifier((8,), conv_layers=(Conv2D(4), MaxPool2D()), max_iter=1, random_state=0)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)

    peak = peak_traced_bytes(fit)
    copies = 0 if layout == "C" else 1  # Fortran order needs one C-ordered copy
    assert peak < (copies + 0.5) * X.nbytes


def test_pickle_from_another_version_warns(model):
    state = model.__getstate__()
    assert state["_sklearn_cnn_version"] == sklearn_cnn.__version__
    state["_sklearn_cnn_version"] = "0.0.1"
    blank = CNNClassifier.__new__(CNNClassifier)
    with pytest.warns(UserWarning, match="sklearn-cnn 0.0.1.*this is sklearn-cnn "
                                         + sklearn_cnn.__version__):
        blank.__setstate__(state)


def test_pickle_round_trip_is_silent(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = pickle.loads(pickle.dumps(model))
    assert restored.n_iter_ == model.n_iter_
