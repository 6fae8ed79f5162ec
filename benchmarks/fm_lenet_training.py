"""Training speed and accuracy of FM-LeNet on Fashion-MNIST: ours vs PyTorch.

FM-LeNet (DESIGN.md): conv 1->32 3x3 same, ReLU, max-pool 2; conv 32->64 3x3
same, ReLU, max-pool 2; dense 3136->128, ReLU; dense 128->10.  Adam, lr 1e-3,
batch 128, float32, the same thread count for both.  Epochs alternate
between the two frameworks so that drift of the shared host hits both alike.

    python benchmarks/fm_lenet_training.py --threads 2 --epochs 5

Needs Fashion-MNIST (apt-get install -y dataset-fashion-mnist) and, for the
reference, PyTorch (pip install torch==2.13.0); without it only ours runs.
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np

# Forward FLOPs per image (multiply-adds count 2), training ~ 3x forward.
FORWARD_FLOPS = 2 * (28 * 28 * 9 * 32 + 14 * 14 * 288 * 64 + 3136 * 128 + 128 * 10)


def gemm_peak(n_threads, size=2048, repeats=5):
    """float32 GEMM GFLOP/s of NumPy's BLAS at this thread count (best of repeats)."""
    from threadpoolctl import threadpool_limits

    a = np.random.rand(size, size).astype(np.float32)
    b = np.random.rand(size, size).astype(np.float32)
    with threadpool_limits(n_threads, user_api="blas"):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def other_cpu_use(wall_start, cpu_start):
    """Share of the machine's CPU time used by other processes during the run.

    Reads the whole machine's busy time (/proc/stat) and subtracts our own
    process's CPU time; None where /proc/stat is missing.
    """
    try:
        busy_now = _machine_busy_seconds()
    except OSError:
        return None
    ours = sum(os.times()[:2]) - cpu_start[1]
    others = busy_now - cpu_start[0] - ours
    return max(others, 0.0) / ((time.perf_counter() - wall_start) * os.cpu_count())


def _machine_busy_seconds():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


class Ours:
    name = "sklearn-cnn"

    def __init__(self, X, y, seed):
        from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

        self.X, self.y = X, y
        self.clf = CNNClassifier(
            conv_layers=(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D()),
            hidden_layer_sizes=(128,), solver="adam", learning_rate_init=1e-3,
            batch_size=128, alpha=0.0, image_shape=(28, 28), random_state=seed)
        self.first = True

    def epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            self.clf.partial_fit(self.X, self.y, classes=np.arange(10))
            return time.perf_counter() - start

    def score(self, X, y):
        return self.clf.score(X, y)


class Torch:
    name = "pytorch"

    def __init__(self, X, y, seed):
        import torch

        torch.manual_seed(seed)
        self.torch = torch
        nn = torch.nn
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.X = torch.from_numpy(X.reshape(-1, 1, 28, 28))
        self.y = torch.from_numpy(y)
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self):
        torch = self.torch
        start = time.perf_counter()
        self.net.train()
        order = torch.randperm(len(self.X), generator=self.generator)
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            self.optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.net(self.X[idx]), self.y[idx])
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start

    def score(self, X, y):
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            logits = self.net(torch.from_numpy(X.reshape(-1, 1, 28, 28)))
        return float((logits.argmax(1).numpy() == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from sklearn_cnn.datasets import load_fashion_mnist

    X, y = load_fashion_mnist("train")
    X, y = X[: args.n_train], y[: args.n_train]
    X_test, y_test = load_fashion_mnist("test")
    runners = [Ours(X, y, args.seed)]
    try:
        import torch

        torch.set_num_threads(args.threads)
        runners.append(Torch(X, y, args.seed))
    except ImportError:
        print("PyTorch not installed (pip install torch==2.13.0): ours only.")

    wall_start = time.perf_counter()
    try:
        cpu_start = (_machine_busy_seconds(), sum(os.times()[:2]))
    except OSError:
        cpu_start = None
    peak = gemm_peak(args.threads)
    print(f"threads={args.threads}  float32 GEMM peak (NumPy 2048^3): {peak:.0f} GFLOP/s")
    times = {r.name: [] for r in runners}
    with threadpool_limits(args.threads, user_api="openmp"):
        for epoch in range(1, args.epochs + 1):
            for runner in runners:
                seconds = runner.epoch()
                times[runner.name].append(seconds)
                print(f"epoch {epoch} {runner.name:12s} {seconds:7.2f} s", flush=True)
        accuracy = {r.name: r.score(X_test, y_test) for r in runners}

    flops = 3 * FORWARD_FLOPS * len(X)
    print(f"\n{'':12s} {'median s':>9s} {'min':>7s} {'max':>7s} {'GFLOP/s':>8s} "
          f"{'% peak':>7s} {'test acc':>9s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:12s} {median:9.2f} {min(values):7.2f} {max(values):7.2f} "
              f"{flops / median / 1e9:8.1f} {100 * flops / median / 1e9 / peak:6.1f}% "
              f"{accuracy[name]:9.4f}")
    if len(times) == 2:
        ratio = statistics.median(times["sklearn-cnn"]) / statistics.median(
            times["pytorch"])
        print(f"\nratio ours/pytorch (median epoch): {ratio:.3f}")
    if cpu_start is not None:
        share = other_cpu_use(wall_start, cpu_start)
        print(f"other processes used {100 * share:.1f}% of the machine's CPU during "
              "the run" + (" (timings are suspect)" if share > 0.05 else ""))


if __name__ == "__main__":
    main()
