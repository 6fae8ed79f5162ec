"""Helpers shared by the benchmark scripts: data, the reference network, the
GEMM peak, thread settings, and a check for other processes on the CPU."""

import os
import statistics
import sys
import time
from contextlib import contextmanager

import numpy as np

# Forward FLOPs per 28x28 image of FM-LeNet (a multiply-add counts 2);
# training is about 3x forward (forward, input gradient, weight gradient).
FM_LENET_LAYER_FLOPS = {
    "conv1": 2 * 28 * 28 * 9 * 32,
    "conv2": 2 * 14 * 14 * 288 * 64,
    "dense1": 2 * 3136 * 128,
    "dense2": 2 * 128 * 10,
}
FM_LENET_FORWARD_FLOPS = sum(FM_LENET_LAYER_FLOPS.values())


def load_fashion_mnist_or_exit():
    from sklearn_cnn.datasets import fashion_mnist_available, load_fashion_mnist

    if not fashion_mnist_available():
        sys.exit("Fashion-MNIST is not installed: apt-get install -y "
                 "dataset-fashion-mnist (or set SKLEARN_CNN_FASHION_MNIST).")
    X, y = load_fashion_mnist("train", return_X_y=True)
    X_test, y_test = load_fashion_mnist("test", return_X_y=True)
    return X, y, X_test, y_test


def ours_fm_lenet(**params):
    from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

    defaults = dict(conv_layers=(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D()),
                    hidden_layer_sizes=(128,), solver="adam", learning_rate_init=1e-3,
                    batch_size=128, alpha=0.0, image_shape=(28, 28), random_state=0)
    defaults.update(params)
    return CNNClassifier(**defaults)


def torch_fm_lenet(seed=0):
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def torch_or_none():
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch==2.13.0): ours only.")
        return None
    return torch


@contextmanager
def threads(n_threads):
    """Both frameworks (and BLAS) on ``n_threads`` threads inside the block."""
    from threadpoolctl import threadpool_limits

    try:
        import torch
        previous = torch.get_num_threads()
        torch.set_num_threads(n_threads)
    except ImportError:
        torch = None
    with threadpool_limits(n_threads):
        yield
    if torch is not None:
        torch.set_num_threads(previous)


def gemm_peak(n_threads, size=2048, repeats=5):
    """float32 GEMM GFLOP/s of NumPy's BLAS at this thread count (best of repeats)."""
    from threadpoolctl import threadpool_limits

    a = np.random.rand(size, size).astype(np.float32)
    b = np.random.rand(size, size).astype(np.float32)
    with threadpool_limits(n_threads, user_api="blas"):
        a @ b
        best = min(timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def describe(values):
    """'median (min-max)' of a list of seconds."""
    return (f"{statistics.median(values):8.3f} s ({min(values):.3f}-"
            f"{max(values):.3f}, n={len(values)})")


def report_alternated(title, times):
    """Print the alternated timings ``{"sklearn-cnn": [...], "pytorch": [...]}``,
    the ratio of their medians and the median of the ratios of each pair of
    neighbouring runs (when PyTorch ran).

    The paired ratio compares runs a few seconds apart, so a drift of the
    host's speed over the whole run (15-20% within minutes on the shared
    hosts; session 21: six runs of resnet2d_fashion.py gave ratios of
    medians from 0.64 to 0.80) weighs on both sides of each pair alike; its
    range shows how far single pairs spread.
    """
    print(f"== {title}")
    for name, values in times.items():
        if values:
            print(f"  {name:12s} {describe(values)}")
    ours, theirs = times["sklearn-cnn"], times["pytorch"]
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        pairs = [a / b for a, b in zip(ours, theirs)]
        print(f"  ratio ours / pytorch: {ratio:.3f}; paired {statistics.median(pairs):.3f} "
              f"({min(pairs):.3f}-{max(pairs):.3f}, n={len(pairs)})", flush=True)


class CpuMonitor:
    """Share of the machine's CPU time that other processes used meanwhile."""

    def __init__(self):
        self.wall = time.perf_counter()
        self.busy = _machine_busy_seconds()
        self.ours = _own_cpu_seconds()

    def report(self, helper_seconds=0.0):
        """``helper_seconds``: CPU time of our own helper processes (workers)."""
        if self.busy is None:
            return "other processes: unknown (no /proc/stat)"
        busy = _machine_busy_seconds() - self.busy
        ours = _own_cpu_seconds() - self.ours + helper_seconds
        wall = time.perf_counter() - self.wall
        share = max(busy - ours, 0.0) / (wall * os.cpu_count())
        verdict = " (timings are suspect)" if share > 0.05 else ""
        return (f"other processes used {100 * share:.1f}% of the machine's CPU "
                f"during the run{verdict}")


def cross_core_check():
    """How much more a tiny OpenMP region costs on 2 threads than on 1.

    This host has periods of minutes in which work shared by its two cores
    runs slowly, ours and ONNX Runtime's alike: FM-LeNet's 10k predictions
    take 0.305 s on 2 threads instead of 0.167. Each core alone runs at full
    speed then (two GEMM loops at once each ran at 0.89-0.94x of one alone),
    so CpuMonitor cannot see it. A region of our kernels on 4096 values
    costs 0.1-0.35 us more on 2 threads than on 1 in good periods, and
    0.8-0.9 us more in the slow ones.
    """
    import timeit

    from sklearn_cnn._kernels import _activations

    a = np.ones(4096, dtype=np.float32)
    out = np.empty_like(a)
    cost = {n_threads: min(timeit.repeat(
        lambda: _activations.add_and_activate(a, a, out, 1, n_threads),
        number=5000, repeat=5)) / 5000 * 1e6 for n_threads in (1, 2)}
    extra = cost[2] - cost[1]
    verdict = " (2-thread timings are suspect)" if extra > 0.55 else ""
    return (f"cross-core check: a tiny parallel region costs {extra:.2f} us more on "
            f"2 threads than on 1{verdict}")


def _own_cpu_seconds():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _machine_busy_seconds():
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")
