"""Training time per epoch of FM-LeNet on Fashion-MNIST: ours vs PyTorch.

FM-LeNet (DESIGN.md): conv 1->32 3x3 same, ReLU, max-pool 2; conv 32->64 3x3
same, ReLU, max-pool 2; dense 3136->128, ReLU; dense 128->10.  Adam, lr 1e-3,
batch 128, float32, the same data and thread count for every framework.
Within a thread count the frameworks take turns epoch by epoch, so drift of
the shared host hits all alike.  skorch runs where installed, and
scikit-learn's MLPClassifier (256, 128) gives context.

    python benchmarks/fm_lenet_training.py --threads 1,2 --epochs 5

Reports per thread count: median (min-max) seconds per epoch, GFLOP/s and
share of the float32 GEMM peak measured in the same run, ratios to PyTorch,
test accuracy after the last epoch, then the 1 -> N thread speed-ups.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import (
    FM_LENET_FORWARD_FLOPS,
    CpuMonitor,
    describe,
    gemm_peak,
    load_fashion_mnist_or_exit,
    ours_fm_lenet,
    threads,
    torch_fm_lenet,
    torch_or_none,
)


class Ours:
    name = "sklearn-cnn"

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.clf = ours_fm_lenet()

    def epoch(self):
        start = time.perf_counter()
        self.clf.partial_fit(self.X, self.y, classes=np.arange(10))
        return time.perf_counter() - start

    def score(self, X, y):
        return self.clf.score(X, y)


class Torch:
    name = "pytorch"

    def __init__(self, X, y):
        import torch

        self.torch = torch
        self.net = torch_fm_lenet()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.X = torch.from_numpy(X.reshape(-1, 1, 28, 28))
        self.y = torch.from_numpy(y)
        self.generator = torch.Generator().manual_seed(0)

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


class Skorch:
    name = "skorch"

    def __init__(self, X, y):
        import torch
        from skorch import NeuralNetClassifier

        self.X, self.y = X.reshape(-1, 1, 28, 28), y
        self.net = NeuralNetClassifier(
            torch_fm_lenet(), criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam, lr=1e-3, batch_size=128, max_epochs=1,
            train_split=None, iterator_train__shuffle=True, verbose=0)

    def epoch(self):
        start = time.perf_counter()
        self.net.partial_fit(self.X, self.y)
        return time.perf_counter() - start

    def score(self, X, y):
        return float((self.net.predict(X.reshape(-1, 1, 28, 28)) == y).mean())


class MLP:
    name = "sklearn MLP"
    # A different network: no GFLOP/s are reported for it.

    def __init__(self, X, y):
        from sklearn.neural_network import MLPClassifier

        self.X, self.y = X, y
        self.clf = MLPClassifier((256, 128), batch_size=128, random_state=0)

    def epoch(self):
        start = time.perf_counter()
        self.clf.partial_fit(self.X, self.y, classes=np.arange(10))
        return time.perf_counter() - start

    def score(self, X, y):
        return self.clf.score(X, y)


def run(n_threads, epochs, X, y, X_test, y_test, with_torch, with_skorch, with_mlp):
    runners = [Ours(X, y)]
    if with_torch:
        runners.append(Torch(X, y))
    if with_skorch:
        runners.append(Skorch(X, y))
    if with_mlp:
        runners.append(MLP(X, y))
    with threads(n_threads):
        peak = gemm_peak(n_threads)
        print(f"\n== {n_threads} thread(s); float32 GEMM peak (NumPy 2048^3): "
              f"{peak:.0f} GFLOP/s")
        times = {runner.name: [] for runner in runners}
        for epoch in range(1, epochs + 1):
            for runner in runners:
                seconds = runner.epoch()
                times[runner.name].append(seconds)
                print(f"  epoch {epoch} {runner.name:12s} {seconds:7.2f} s", flush=True)
        accuracy = {runner.name: runner.score(X_test, y_test) for runner in runners}
    flops = 3 * FM_LENET_FORWARD_FLOPS * len(X)
    print(f"  {'':12s} {'seconds per epoch':>34s} {'GFLOP/s':>8s} {'% peak':>7s} "
          f"{'/ pytorch':>9s} {'test acc':>9s}")
    torch_median = statistics.median(times["pytorch"]) if "pytorch" in times else None
    for name, values in times.items():
        median = statistics.median(values)
        ratio = f"{median / torch_median:9.3f}" if torch_median else f"{'-':>9s}"
        if name == MLP.name:
            rate = f"{'-':>8s} {'-':>7s}"
        else:
            gflops = flops / median / 1e9
            rate = f"{gflops:8.1f} {100 * gflops / peak:6.1f}%"
        print(f"  {name:12s} {describe(values):>34s} {rate} {ratio} "
              f"{accuracy[name]:9.4f}")
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2",
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--no-skorch", action="store_true")
    parser.add_argument("--no-mlp", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    X, y, X_test, y_test = load_fashion_mnist_or_exit()
    X, y = X[: args.n_train], y[: args.n_train]
    torch = torch_or_none()
    try:
        import skorch  # noqa: F401
        with_skorch = torch is not None and not args.no_skorch
    except ImportError:
        with_skorch = False
    monitor = CpuMonitor()
    medians = {}
    thread_counts = [int(t) for t in args.threads.split(",")]
    for n_threads in thread_counts:
        medians[n_threads] = run(n_threads, args.epochs, X, y, X_test, y_test,
                                 torch is not None, with_skorch, not args.no_mlp)
    if len(thread_counts) > 1:
        base = thread_counts[0]
        print(f"\nspeed-up over {base} thread(s):")
        for n_threads in thread_counts[1:]:
            for name in medians[base]:
                print(f"  {n_threads} threads {name:12s} "
                      f"{medians[base][name] / medians[n_threads][name]:.2f}x")
    print(monitor.report())


if __name__ == "__main__":
    main()
