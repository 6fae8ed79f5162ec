"""GridSearchCV serial vs on a local Dask cluster, and Dask's overhead per task.

    python benchmarks/dask_search.py [--workers 2]

The cluster is a dask.distributed LocalCluster of separate worker processes
on loopback, one thread each (so workers x threads = cores).  The search is
8 candidates x 3 folds of CNNClassifier on the digits.  The overhead per task
is the wall time of 200 empty tasks sent through joblib's Dask backend,
divided by 200.
"""

import argparse
import os
import time
import warnings

import joblib
import numpy as np
from _common import CpuMonitor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D


def search(n_jobs):
    return GridSearchCV(
        CNNClassifier(hidden_layer_sizes=(64,), max_iter=10, batch_size=64,
                      image_shape=(8, 8), random_state=0),
        {"conv_layers": [(Conv2D(16), MaxPool2D()),
                         (Conv2D(16), MaxPool2D(), Conv2D(32), MaxPool2D())],
         "learning_rate_init": [3e-4, 1e-3, 3e-3, 1e-2]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=n_jobs)


def noop(i):
    return i


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = X / 16
    monitor = CpuMonitor()
    start = time.perf_counter()
    serial = search(n_jobs=1).fit(X, y)
    serial_seconds = time.perf_counter() - start
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        from sklearn_cnn._threads import effective_n_threads

        threads = sorted(client.run(effective_n_threads).values())
        with joblib.parallel_config(backend="dask"):
            start = time.perf_counter()
            distributed_search = search(n_jobs=-1).fit(X, y)
            dask_seconds = time.perf_counter() - start
            joblib.Parallel(n_jobs=-1)(joblib.delayed(noop)(i) for i in range(20))
            start = time.perf_counter()
            joblib.Parallel(n_jobs=-1)(joblib.delayed(noop)(i) for i in range(200))
            overhead = (time.perf_counter() - start) / 200
    same = np.array_equal(serial.cv_results_["mean_test_score"],
                          distributed_search.cv_results_["mean_test_score"])
    n_fits = len(serial.cv_results_["params"]) * 3
    print(f"serial (1 process, {effective_n_threads()} OpenMP threads): "
          f"{serial_seconds:.2f} s for {n_fits} fits + refit")
    print(f"dask ({args.workers} worker processes, OpenMP threads per worker: "
          f"{threads}): {dask_seconds:.2f} s; speed-up {serial_seconds / dask_seconds:.2f}x")
    print(f"identical cross-validation scores: {same}; best {serial.best_score_:.4f}")
    print(f"overhead per task through joblib's dask backend: {1e3 * overhead:.1f} ms")
    print(monitor.report() + " (the Dask workers, children of this process, count as"
          " its own)")


if __name__ == "__main__":
    main()
