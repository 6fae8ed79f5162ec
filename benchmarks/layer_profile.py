"""Where a training step of FM-LeNet spends its time, layer by layer.

    python benchmarks/layer_profile.py --threads 1,2

For one batch of 128 real Fashion-MNIST images: the median time of each
layer's forward and backward kernels, their GFLOP/s, the optimizer update,
and the Python overhead (a whole ``partial_fit`` step minus the kernels),
against the float32 GEMM peak measured in the same run.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import (
    FM_LENET_LAYER_FLOPS,
    CpuMonitor,
    gemm_peak,
    load_fashion_mnist_or_exit,
    ours_fm_lenet,
    threads,
)

from sklearn_cnn._input import to_nhwc
from sklearn_cnn._kernels import _loss
from sklearn_cnn._threads import single_threaded_blas


def median_ms(func, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y, _, _ = load_fashion_mnist_or_exit()
    batch = 128
    clf = ours_fm_lenet(max_iter=1).fit(X[:1280], y[:1280])
    flops = list(FM_LENET_LAYER_FLOPS.values())
    monitor = CpuMonitor()
    for n_threads in [int(t) for t in args.threads.split(",")]:
        with threads(n_threads):
            peak = gemm_peak(n_threads)
            net = clf._build_network(10, clf.image_shape_, training=True)
            net.bind(clf.parameters_, clf.state_)
            net.allocate(batch, np.float32, n_threads, training=True)
            layers = net.layers
            x = to_nhwc(X[:batch], clf.image_shape_)
            labels = y[:batch].astype(np.int32)
            weights = np.full(batch, 1 / batch)
            losses = np.empty(batch)
            print(f"\n== {n_threads} thread(s), batch {batch}; GEMM peak {peak:.0f} "
                  "GFLOP/s")
            print(f"  {'layer':36s} {'forward ms':>10s} {'GFLOP/s':>8s} "
                  f"{'backward ms':>11s} {'GFLOP/s':>8s}")
            total = 0.0
            with single_threaded_blas():
                inputs = []
                h = x
                for layer in layers:
                    inputs.append(h)
                    h = layer.forward(h, n_threads)
                grads = {}
                logits = h.copy()
                for layer, layer_flops in zip(layers, flops):
                    index = layers.index(layer)
                    forward = median_ms(
                        lambda: layer.forward(inputs[index], n_threads), args.repeats)
                    grad_output = np.random.rand(batch, *layer.output_shape).astype(
                        np.float32)
                    backward = median_ms(
                        lambda: layer.backward(grad_output.copy(), n_threads),
                        args.repeats)
                    # Backward does the weight gradient, and the input gradient
                    # except in the first layer.
                    backward_flops = layer_flops * (1 if index == 0 else 2) * batch
                    total += forward + backward
                    grads[layer.name] = (forward, backward)
                    print(f"  {layer.name:36s} {forward:10.3f} "
                          f"{layer_flops * batch / forward / 1e6:8.1f} {backward:11.3f} "
                          f"{backward_flops / backward / 1e6:8.1f}")
                loss_ms = median_ms(lambda: _loss.softmax_cross_entropy(
                    logits.copy(), labels, weights, losses, 0.0, n_threads),
                    args.repeats)
                params = list(clf.parameters_.values())
                update_ms = median_ms(lambda: clf._optimizer.update_params(
                    [p.copy() for p in params], net.grads(), 1e-3,
                    [0.0] * len(params), [0.0] * len(params), n_threads),
                    args.repeats)
            total += loss_ms + update_ms
            print(f"  {'loss':36s} {loss_ms:10.3f}")
            print(f"  {'optimizer update (with param copies)':36s} {update_ms:10.3f}")
            step = median_ms(lambda: clf.partial_fit(X[:batch], y[:batch]), args.repeats)
            step_flops = 3 * sum(flops) * batch
            print(f"  kernels {total:.2f} ms; a whole partial_fit step on one batch "
                  f"{step:.2f} ms ({step_flops / step / 1e6:.0f} GFLOP/s, "
                  f"{100 * step_flops / step / 1e6 / peak:.0f}% of peak); Python and "
                  f"other overhead {step - total:.2f} ms")
    print(monitor.report())


if __name__ == "__main__":
    main()
