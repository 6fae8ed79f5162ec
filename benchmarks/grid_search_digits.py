"""GridSearchCV over two architectures x two learning rates on digits, n_jobs=2.

Reports the wall time, the best score, and the CPU time each loky worker used
(read from /proc), so that oversubscription would show up as CPU time far
above the wall time.

    python benchmarks/grid_search_digits.py
"""

import os
import time
import warnings

from _common import CpuMonitor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D


def children_cpu_seconds():
    """{pid: user + system CPU seconds} of this process's live children (Linux)."""
    result = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            result[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")
    return result


def main():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    grid = GridSearchCV(
        CNNClassifier(hidden_layer_sizes=(128,), max_iter=20, batch_size=64,
                      image_shape=(8, 8), random_state=0),
        {"conv_layers": [(Conv2D(16), MaxPool2D()),
                         (Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())],
         "learning_rate_init": [1e-3, 3e-3]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=2)
    monitor = CpuMonitor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        grid.fit(X, y)
        wall = time.perf_counter() - start
    print(f"wall time: {wall:.2f} s for {len(grid.cv_results_['params']) * 3} fits")
    print(f"best score: {grid.best_score_:.4f} with {grid.best_params_}")
    # The loky workers stay alive after the search, so their CPU time is readable.
    workers = children_cpu_seconds()
    for pid, seconds in sorted(workers.items()):
        print(f"worker {pid}: {seconds:.2f} s CPU")
    print(monitor.report(helper_seconds=sum(workers.values())))


if __name__ == "__main__":
    main()
