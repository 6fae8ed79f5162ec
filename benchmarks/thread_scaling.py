"""Thread scaling beyond 2 cores, and bit-for-bit identical results at every count.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/thread_scaling.py \\
        --threads 1,2,4,8,16

For FM-LeNet, the training recipe (``vgg()`` + dense 256, AdamW, schedule,
label smoothing, augmentation) and ``resnet2d((16, 32, 64))``: one training
epoch on ``--n-train`` images, ours and PyTorch's (alternated, medians of
``--repeats``), ``predict_proba`` on 10000 images and the median latency of
``--calls`` one-sample calls, at each thread count, with speed-ups against 1
thread.  Then each network is trained for one epoch at 1 thread and at the
largest count, and the weights and probabilities are compared bit for bit.

Fashion-MNIST is used when installed; ``--synthetic`` (or its absence) uses
random images of its shape, half their pixels zero like Fashion-MNIST's.
"""

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
from _common import ours_fm_lenet, threads, timed, torch_fm_lenet, torch_or_none
from fm_recipe import TorchRecipe, recipe
from resnet2d_fashion import torch_epoch, torch_resnet
from threadpoolctl import threadpool_info

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import resnet2d
from sklearn_cnn.datasets import fashion_mnist_available, load_fashion_mnist


def load(n_train, synthetic):
    if not synthetic and fashion_mnist_available():
        X, y = load_fashion_mnist("train", return_X_y=True)
        X_test, _ = load_fashion_mnist("test", return_X_y=True)
        return "Fashion-MNIST", X[:n_train], y[:n_train], X_test
    # Half the pixels zero, as in Fashion-MNIST: on the 2-core host, dense
    # random images made predict_proba 20% slower on 2 threads (not on 1).
    rng = np.random.default_rng(0)
    X = rng.random((n_train + 10000, 784), dtype=np.float32)
    X *= rng.random(X.shape, dtype=np.float32) < 0.5
    y = rng.integers(0, 10, n_train)
    return "random 28x28 images (half zeros)", X[:n_train], y, X[n_train:]


def networks(torch):
    """name -> (make our estimator, make a PyTorch epoch function or None)."""

    def torch_plain(make_model):
        def make(X, y):
            torch.manual_seed(0)
            model = make_model()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            X_t = torch.from_numpy(X.reshape(-1, 1, 28, 28))
            y_t = torch.from_numpy(y.astype(np.int64))
            rng = np.random.RandomState(0)
            return lambda: torch_epoch(torch, model, optimizer, X_t, y_t, rng)
        return make

    def torch_recipe(X, y):
        theirs = TorchRecipe(torch, len(X), 50)
        X_t = torch.from_numpy(X.reshape(-1, 1, 28, 28))
        y_t = torch.from_numpy(y.astype(np.int64))
        return lambda: theirs.epoch(X_t, y_t)

    def resnet(max_iter):
        return CNNClassifier((), conv_layers=resnet2d((16, 32, 64)), image_shape=(28, 28),
                             batch_size=128, max_iter=max_iter, random_state=0)

    return {
        "FM-LeNet": (lambda max_iter: ours_fm_lenet(max_iter=max_iter),
                     torch and torch_plain(torch_fm_lenet)),
        # A schedule of 50 epochs, of which we run a few.
        "recipe": (lambda max_iter: recipe(50, 0), torch and torch_recipe),
        "resnet2d": (resnet, torch and torch_plain(lambda: torch_resnet(torch))),
    }


def median_latency(clf, x, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        clf.predict_proba(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--networks", default="FM-LeNet,recipe,resnet2d")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    counts = [int(t) for t in args.threads.split(",")]
    data, X, y, X_test = load(args.n_train, args.synthetic)
    torch = torch_or_none()
    blas = [(lib["internal_api"], lib.get("architecture")) for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{data}, {len(X)} training images; BLAS {blas}; PyTorch "
          f"{torch.__version__ if torch else 'absent'}", flush=True)
    chosen = networks(torch)
    for name in args.networks.split(","):
        make_ours, make_theirs = chosen[name]
        rows = []
        for n_threads in counts:
            with threads(n_threads):
                # One partial_fit per epoch (the first, on a few images, builds).
                ours = make_ours(1)
                ours.partial_fit(X[:256], y[:256], classes=np.arange(10))
                # Prediction first: PyTorch's OpenMP threads spin on after its
                # epochs, and would slow what runs next.
                ours.predict_proba(X_test[:300])
                proba = min(timed(lambda: ours.predict_proba(X_test)) for _ in range(2))
                one = median_latency(ours, X_test[:1], args.calls)
                theirs = make_theirs(X, y) if make_theirs else None
                epochs = {"ours": [], "pytorch": []}
                for _ in range(args.repeats):
                    epochs["ours"].append(timed(lambda: ours.partial_fit(X, y)))
                    if theirs:
                        epochs["pytorch"].append(timed(theirs))
            theirs_epoch = statistics.median(epochs["pytorch"]) if theirs else np.nan
            rows.append((n_threads, statistics.median(epochs["ours"]), theirs_epoch,
                         proba, one))
            print(f"  {name} {n_threads:2d} threads: epoch ours {rows[-1][1]:.3f} s, "
                  f"pytorch {theirs_epoch:.3f} s; predict_proba {proba:.3f} s; "
                  f"one sample {one * 1e6:.0f} us", flush=True)
        base = rows[0]
        print(f"{name}: threads | epoch ours (speed-up) | pytorch (speed-up) | "
              f"ours/pytorch | predict_proba 10k (speed-up) | one sample (speed-up)")
        for n_threads, ours_epoch, theirs_epoch, proba, one in rows:
            print(f"  {n_threads:2d} | {ours_epoch:.3f} s ({base[1] / ours_epoch:.2f}x) | "
                  f"{theirs_epoch:.3f} s ({base[2] / theirs_epoch:.2f}x) | "
                  f"{ours_epoch / theirs_epoch:.3f} | {proba:.3f} s "
                  f"({base[3] / proba:.2f}x) | {one * 1e6:.0f} us ({base[4] / one:.2f}x)")
        # Determinism: one epoch at 1 thread and at the largest count.
        results = []
        for n_threads in (counts[0], counts[-1]):
            with threads(n_threads):
                clf = make_ours(1).partial_fit(X[:2048], y[:2048],
                                               classes=np.arange(10))
                results.append((clf.parameters_, clf.predict_proba(X_test[:1000])))
        (weights_a, proba_a), (weights_b, proba_b) = results
        same = (all(np.array_equal(weights_a[k], weights_b[k]) for k in weights_a)
                and np.array_equal(proba_a, proba_b))
        print(f"{name}: weights and probabilities at {counts[0]} and {counts[-1]} threads "
              f"{'bitwise identical' if same else 'DIFFER'}", flush=True)


if __name__ == "__main__":
    main()
