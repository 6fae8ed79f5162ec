"""FCN on a UCR series dataset: our training epoch against PyTorch's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fcn_series.py

The FCN of Wang et al. (2017) (Conv1D 128/k8, 256/k5, 128/k3, each with
BatchNorm and ReLU, global average pooling), Adam, batch 16, float32, on
OSULeaf (200 training series of 427 steps, shipped by aeon).  PyTorch runs
the same network with Conv1d + BatchNorm1d.  At each thread count, blocks of
``--block`` epochs alternate between the two: ours as one ``fit`` of that
many epochs (as a long training protocol runs: one network build and one
allocation), PyTorch's as many epochs of its loop; the median epoch of each
and the ratio ours / PyTorch are printed, with the BLAS kernel
threadpoolctl reports.  Also printed: our epoch as a one-epoch warm-started
``fit`` call (which builds and allocates the network at each call), and one
BatchNormalization layer's forward + backward against BatchNorm1d.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import (
    CpuMonitor,
    cross_core_check,
    report_alternated,
    threads,
    timed,
    torch_or_none,
)
from threadpoolctl import threadpool_info

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import fcn
from sklearn_cnn.datasets import load_ucr


def torch_fcn(torch, n_channels, n_classes):
    nn = torch.nn
    layers, previous = [], n_channels
    for filters, kernel in ((128, 8), (256, 5), (128, 3)):
        # padding="same" with an even kernel puts the extra zero at the end,
        # as ours does.
        layers += [nn.Conv1d(previous, filters, kernel, padding="same"),
                   nn.BatchNorm1d(filters), nn.ReLU()]
        previous = filters
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(previous, n_classes))


def torch_epoch(torch, model, optimizer, X, y, batch_size, rng):
    loss_fn = torch.nn.CrossEntropyLoss()
    order = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="OSULeaf")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--epochs", type=int, default=5, help="blocks per side")
    parser.add_argument("--block", type=int, default=4, help="epochs per block")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y = load_ucr(args.dataset, return_X_y=True, dtype=np.float32)
    classes, y_index = np.unique(y, return_inverse=True)
    print(f"{args.dataset}: {X.shape[0]} series, {X.shape[1]} channel(s), length "
          f"{X.shape[2]}; FCN, Adam, batch 16, float32")
    blas = [(lib["internal_api"], lib.get("architecture")) for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    print(f"BLAS: {blas}")
    torch = torch_or_none()
    print(cross_core_check(), flush=True)
    monitor = CpuMonitor()
    for n_threads in [int(t) for t in args.threads.split(",")]:
        with threads(n_threads):
            # No early stopping: every block trains its --block epochs.
            ours = CNNClassifier((), conv_layers=fcn(), batch_size=16,
                                 max_iter=args.block, n_iter_no_change=10**6,
                                 random_state=0)
            ours.fit(X, y)  # warm up
            one_epoch = CNNClassifier((), conv_layers=fcn(), batch_size=16, max_iter=1,
                                      warm_start=True, random_state=0).fit(X, y)
            times = {"sklearn-cnn": [], "pytorch": []}
            calls = []
            if torch is not None:
                torch.manual_seed(0)
                model = torch_fcn(torch, X.shape[1], len(classes))
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                X_t, y_t = torch.from_numpy(X), torch.from_numpy(y_index)
                rng = np.random.RandomState(0)
                torch_epoch(torch, model, optimizer, X_t, y_t, 16, rng)  # warm up

                def torch_block():
                    for _ in range(args.block):
                        torch_epoch(torch, model, optimizer, X_t, y_t, 16, rng)

            for _ in range(args.epochs):
                times["sklearn-cnn"].append(timed(lambda: ours.fit(X, y)) / args.block)
                if torch is not None:
                    times["pytorch"].append(timed(torch_block) / args.block)
                calls.append(timed(lambda: one_epoch.fit(X, y)))
            report_alternated(f"{n_threads} thread(s), training epoch", times)
            call = statistics.median(calls)
            line = f"  one-epoch fit call (builds and allocates): {call:.3f} s"
            if times["pytorch"]:
                line += f"; ratio {call / statistics.median(times['pytorch']):.3f}"
            print(line)
            batchnorm_layer_timing(torch, n_threads)
    print(monitor.report())
    print(cross_core_check())


def batchnorm_layer_timing(torch, n_threads, repeats=50):
    """One BatchNormalization (+ the ReLU fused in ours) on (16, 427, 256)."""
    from sklearn_cnn._threads import single_threaded_blas
    from sklearn_cnn.layers import Activation, BatchNormalization, Sequential
    from sklearn_cnn.layers._base import BuildContext, build_layer

    rng = np.random.RandomState(0)
    x = rng.standard_normal((16, 1, 427, 256)).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    block = build_layer(Sequential((BatchNormalization(), Activation())), x.shape[1:],
                        BuildContext(), "bn")
    bn = block.layers[0]
    bn.bind({"scale": np.ones(256, np.float32), "shift": np.zeros(256, np.float32)},
            {"running_mean": np.zeros(256, np.float32),
             "running_var": np.ones(256, np.float32)})
    block.allocate(16, np.float32, n_threads, training=True, needs_input_grad=True)

    def ours():
        block.forward(x, n_threads)
        block.backward(grad.copy(), n_threads)

    results = {}
    with single_threaded_blas():
        ours()
        results["sklearn-cnn"] = statistics.median(timed(ours) for _ in range(repeats))
    if torch is not None:
        layer = torch.nn.Sequential(torch.nn.BatchNorm1d(256), torch.nn.ReLU())
        x_t = torch.from_numpy(x[:, 0].transpose(0, 2, 1).copy()).requires_grad_()
        g_t = torch.from_numpy(grad[:, 0].transpose(0, 2, 1).copy())

        def reference():
            x_t.grad = None
            layer(x_t).backward(g_t)

        reference()
        results["pytorch"] = statistics.median(timed(reference) for _ in range(repeats))
    line = ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in results.items())
    if len(results) == 2:
        line += f"; ratio {results['sklearn-cnn'] / results['pytorch']:.3f}"
    print(f"  BatchNorm + ReLU forward+backward on (16, 256, 427): {line}")


if __name__ == "__main__":
    time.sleep(0)
    main()
