"""Thread and process safety: the kernels release the GIL, so these are real races."""

import multiprocessing
import threading
import warnings

import joblib
import numpy as np
import pytest
from joblib import Parallel, delayed
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D


def make_data():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def fit_model(seed=0, max_iter=2):
    X, y = make_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return CNNClassifier((16,), conv_layers=(Conv2D(8), MaxPool2D()), max_iter=max_iter,
                             random_state=seed).fit(X, y)


@pytest.fixture(scope="module")
def model():
    return fit_model()


def run_in_threads(functions):
    results = [None] * len(functions)
    errors = []
    barrier = threading.Barrier(len(functions))

    def runner(i):
        try:
            barrier.wait()
            results[i] = functions[i]()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return results


def test_predict_proba_from_eight_threads_matches_serial(model):
    X, _ = make_data()
    expected = model.predict_proba(X)
    for _ in range(3):
        results = run_in_threads([lambda: model.predict_proba(X)] * 8)
        for proba in results:
            np.testing.assert_array_equal(proba, expected)


def test_two_fits_in_two_threads_match_serial_fits():
    serial = [fit_model(seed) for seed in (1, 2)]
    parallel = run_in_threads([lambda: fit_model(1), lambda: fit_model(2)])
    for a, b in zip(serial, parallel):
        for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(x, y)


def _predict_in_child(model_path):
    model = joblib.load(model_path)
    X, _ = make_data()
    return model.predict_proba(X)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_model_fitted_in_parent_works_in_child_processes(model, method, tmp_path):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    X, _ = make_data()
    model.predict_proba(X)  # the parent's OpenMP threads are now alive
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        result = pool.apply_async(_predict_in_child, (str(path),))
        proba = result.get(timeout=120)  # a hang fails here instead of blocking
    np.testing.assert_array_equal(proba, model.predict_proba(X))


def test_model_under_loky(model, tmp_path):
    X, _ = make_data()
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    results = Parallel(n_jobs=2, backend="loky", timeout=120)(
        delayed(_predict_in_child)(str(path)) for _ in range(2))
    for proba in results:
        np.testing.assert_array_equal(proba, model.predict_proba(X))


def test_pickle_loaded_as_read_only_memmap_predicts(model, tmp_path):
    X, _ = make_data()
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    loaded = joblib.load(path, mmap_mode="r")
    assert any(isinstance(c, np.memmap) and not c.flags.writeable
               for c in loaded.coefs_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
