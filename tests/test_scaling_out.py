"""Beyond one machine: a real Dask cluster, and training from a memmap on disk."""

import json
import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D
from sklearn_cnn.out_of_core import partial_fit_chunks


def small_search(n_jobs):
    return GridSearchCV(
        CNNClassifier(hidden_layer_sizes=(32,), max_iter=4, batch_size=64,
                      image_shape=(8, 8), random_state=0),
        {"conv_layers": [(Conv2D(8), MaxPool2D()), (Conv2D(16), MaxPool2D())],
         "learning_rate_init": [1e-3, 3e-3]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=n_jobs)


def test_grid_search_on_a_dask_cluster_matches_the_serial_run():
    distributed = pytest.importorskip("distributed")
    X, y = load_digits(return_X_y=True)
    X = X / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = small_search(n_jobs=1).fit(X, y)
        # Separate worker processes on loopback, one core each.
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                      processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            from sklearn_cnn._threads import effective_n_threads

            threads = client.run(effective_n_threads)
            with joblib.parallel_config(backend="dask"):
                on_dask = small_search(n_jobs=-1).fit(X, y)
    # Each worker limits its OpenMP threads to its share of the cores.
    assert list(threads.values()) == [1, 1]
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    assert on_dask.best_params_ == serial.best_params_


def augmented_digits(n_samples, seed):
    """Digits shifted by up to one pixel, with noise: as many as needed."""
    X, y = load_digits(return_X_y=True)
    images = (X / 16).reshape(-1, 8, 8)
    rng = np.random.RandomState(seed)
    picks = rng.randint(0, len(images), n_samples)
    padded = np.pad(images[picks], ((0, 0), (1, 1), (1, 1)))
    dy, dx = rng.randint(0, 3, n_samples), rng.randint(0, 3, n_samples)
    rows = np.arange(8)[None, :, None] + dy[:, None, None]
    cols = np.arange(8)[None, None, :] + dx[:, None, None]
    shifted = padded[np.arange(n_samples)[:, None, None], rows, cols]
    noisy = shifted + rng.normal(0, 0.05, shifted.shape)
    return noisy.reshape(n_samples, 64).astype(np.float32), y[picks]


OUT_OF_CORE_CHILD = r"""
import json, sys, threading, time, warnings
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_scaling_out import augmented_digits
from sklearn.datasets import load_digits
from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D
from sklearn_cnn.out_of_core import partial_fit_chunks
warnings.simplefilter("ignore")

def anon_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024

X = np.load(sys.argv[1], mmap_mode="r")
y = np.load(sys.argv[1].replace("X.npy", "y.npy"))
X_test, y_test = load_digits(return_X_y=True)
X_test = (X_test / 16).astype(np.float32)
clf = CNNClassifier((32,), conv_layers=(Conv2D(8), MaxPool2D()), batch_size=128, random_state=0)
clf.partial_fit(X[:256], y[:256], classes=np.arange(10))  # allocate what fit allocates
peak = baseline = anon_mb()
running = True
def sample():
    global peak
    while running:
        peak = max(peak, anon_mb())
        time.sleep(0.005)
sampler = threading.Thread(target=sample)
sampler.start()
partial_fit_chunks(clf, X, y, classes=np.arange(10), epochs=2, chunk_size=4000,
                   random_state=0)
running = False
sampler.join()
print(json.dumps({"growth_mb": peak - baseline, "score": clf.score(X_test, y_test)}))
"""


def test_out_of_core_training_from_a_memmap(tmp_path):
    X, y = augmented_digits(120000, seed=0)  # 30.7 MB on disk
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    result = subprocess.run(
        [sys.executable, "-c", OUT_OF_CORE_CHILD, str(tmp_path / "X.npy"),
         os.path.dirname(__file__)], capture_output=True, text=True, timeout=600,
        check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    # Bound: the process's own (anonymous) memory grows by less than a
    # quarter of the array while it trains on all of it.
    assert measured["growth_mb"] < 0.25 * X.nbytes / 2**20, measured
    # Same budget in memory: the stated margin is 0.02 of accuracy.
    X_test, y_test = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = CNNClassifier((32,), conv_layers=(Conv2D(8), MaxPool2D()), batch_size=128,
                                  max_iter=2, random_state=0).fit(X, y)
    in_memory_score = in_memory.score((X_test / 16).astype(np.float32), y_test)
    assert measured["score"] >= in_memory_score - 0.02, (measured, in_memory_score)
    print(f"out-of-core: peak growth {measured['growth_mb']:.1f} MB of a "
          f"{X.nbytes / 2**20:.1f} MB array; accuracy {measured['score']:.4f} vs "
          f"{in_memory_score:.4f} in memory")


def test_partial_fit_chunks_visits_every_row_each_epoch():
    X = np.arange(100, dtype=np.float64)[:, None].repeat(4, axis=1)
    y = np.arange(100) % 2

    class Recorder:
        def __init__(self):
            self.seen = []

        def partial_fit(self, X, y, classes, sample_weight):
            assert X.flags.c_contiguous
            self.seen.append(X[:, 0].astype(int))

    recorder = partial_fit_chunks(Recorder(), X, y, classes=[0, 1], epochs=2,
                                  chunk_size=30, random_state=0)
    assert len(recorder.seen) == 8
    first_epoch = np.concatenate(recorder.seen[:4])
    np.testing.assert_array_equal(np.sort(first_epoch), np.arange(100))
    # Rows are shuffled across chunks, not read in file order.
    assert not np.array_equal(first_epoch, np.arange(100))


@pytest.mark.parametrize("kwargs, message", [
    (dict(chunk_size=0), "chunk_size must be a positive int"),
    (dict(epochs=0), "epochs must be a positive int"),
])
def test_partial_fit_chunks_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        partial_fit_chunks(CNNClassifier(), np.zeros((4, 4)), [0, 1, 0, 1],
                           classes=[0, 1], **kwargs)
