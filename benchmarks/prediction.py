"""Prediction speed: predict_proba on the 10k Fashion-MNIST test images, and
single-image latency; ours vs PyTorch (under no_grad) on FM-LeNet.

    python benchmarks/prediction.py --threads 1,2

Our latency is the full scikit-learn path, input validation included:
``clf.predict_proba(X[i:i+1])``.  PyTorch's is ``softmax(net(x))`` on a
ready tensor.  Both models are trained for one epoch first (weights matter
little for speed, but they are real).  Calls alternate in blocks.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import (
    CpuMonitor,
    describe,
    load_fashion_mnist_or_exit,
    ours_fm_lenet,
    threads,
    torch_fm_lenet,
    torch_or_none,
)


def latencies(func, images, n_calls):
    """Seconds of each call of func on single images, cycling through them."""
    out = []
    for i in range(n_calls):
        image = images[i % len(images)]
        start = time.perf_counter()
        func(image)
        out.append(time.perf_counter() - start)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed passes over the 10k test images")
    parser.add_argument("--calls", type=int, default=1000,
                        help="single-image calls per framework (median reported)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    X, y, X_test, _ = load_fashion_mnist_or_exit()
    clf = ours_fm_lenet(max_iter=1).fit(X[:10000], y[:10000])
    torch = torch_or_none()
    if torch is not None:
        net = torch_fm_lenet().eval()
        X_torch = torch.from_numpy(X_test.reshape(-1, 1, 28, 28))

        def torch_proba(x, batch=128):
            with torch.no_grad():
                return torch.cat([torch.softmax(net(x[i:i + batch]), 1)
                                  for i in range(0, len(x), batch)])

        def torch_single(x):
            with torch.no_grad():
                return torch.softmax(net(x), 1)

    ours_images = [X_test[i:i + 1] for i in range(100)]
    torch_images = [X_torch[i:i + 1] for i in range(100)] if torch else None
    monitor = CpuMonitor()
    throughput = {}
    thread_counts = [int(t) for t in args.threads.split(",")]
    for n_threads in thread_counts:
        print(f"\n== {n_threads} thread(s)")
        with threads(n_threads):
            results = {"ours": [], "pytorch b128": [], "pytorch b1000": []}
            clf.predict_proba(X_test)
            for _ in range(args.repeats):
                start = time.perf_counter()
                clf.predict_proba(X_test)
                results["ours"].append(time.perf_counter() - start)
                if torch is not None:
                    for batch in (128, 1000):
                        start = time.perf_counter()
                        torch_proba(X_torch, batch)
                        results[f"pytorch b{batch}"].append(time.perf_counter() - start)
            throughput[n_threads] = statistics.median(results["ours"])
            print("predict_proba on 10,000 images:")
            for name, values in results.items():
                if values:
                    print(f"  {name:14s} {describe(values)}  "
                          f"{len(X_test) / statistics.median(values):9.0f} images/s")
            if torch is not None:
                best = min(statistics.median(results["pytorch b128"]),
                           statistics.median(results["pytorch b1000"]))
                print(f"  ratio ours / pytorch (its better batch size): "
                      f"{statistics.median(results['ours']) / best:.3f}")

            lat = {"ours": [], "pytorch": []}
            for _ in range(10):  # alternate in blocks of calls
                lat["ours"] += latencies(clf.predict_proba, ours_images,
                                         args.calls // 10)
                if torch is not None:
                    lat["pytorch"] += latencies(torch_single, torch_images,
                                                args.calls // 10)
            print(f"single-image predict_proba latency (median of {args.calls}):")
            for name, values in lat.items():
                if values:
                    print(f"  {name:14s} {1e6 * statistics.median(values):8.1f} us "
                          f"(p10 {1e6 * np.percentile(values, 10):.1f}, "
                          f"p90 {1e6 * np.percentile(values, 90):.1f})")
            if torch is not None:
                print(f"  ratio ours / pytorch: "
                      f"{statistics.median(lat['ours']) / statistics.median(lat['pytorch']):.3f}")
    for n_threads in thread_counts[1:]:
        print(f"ours: predict_proba speed-up {thread_counts[0]} -> {n_threads} threads: "
              f"{throughput[thread_counts[0]] / throughput[n_threads]:.2f}x")
    print(monitor.report())


if __name__ == "__main__":
    main()
