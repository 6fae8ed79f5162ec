"""Inference against ONNX Runtime running our own exported model, and PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/onnx_inference.py

For three networks (FM-LeNet and ``resnet2d((16, 32, 64))`` on Fashion-MNIST,
the FCN on OSULeaf's series), each trained for one epoch: ``predict_proba``
on the whole test set and the median latency of one-sample calls, through
our full scikit-learn path (validation included), against ONNX Runtime
(``InferenceSession.run`` on the model that ``skl2onnx.to_onnx`` exports
with ``sklearn_cnn.onnx``, ZipMap off, ``intra_op_num_threads`` set to the
same thread count; for the test set, in batches of the best of 128, 256
and 1024 rows).  PyTorch runs the same network with our fitted weights
(``_torch_copies``; its outputs are checked against ours) in
``torch.inference_mode``, at the same thread count and in the same batches,
softmax and conversions from and to NumPy included as in the other two.
Calls alternate; medians and the ratios ours / ONNX Runtime and ours /
PyTorch are printed, with the BLAS kernel threadpoolctl reports.

Each timed call (or block of one-sample calls) starts after a pause of
``SETTLE_SECONDS``: ONNX Runtime's idle workers keep spinning for a while
after a run, and on 2 cores they took the second core from whatever ran
next (our 2-thread predict_proba of FM-LeNet right after an ORT run: 0.208
s, 0.182 after a 0.1 s pause or with ORT's spinning off; ORT's own time
the same either way).
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import (
    CpuMonitor,
    cross_core_check,
    load_fashion_mnist_or_exit,
    ours_fm_lenet,
    threads,
    torch_fm_lenet,
    torch_or_none,
)
from _torch_copies import torch_copy
from fcn_series import torch_fcn
from resnet2d_fashion import torch_resnet
from threadpoolctl import threadpool_info

import sklearn_cnn.onnx  # noqa: F401 - registers the converters
from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import fcn, resnet2d
from sklearn_cnn.datasets import load_ucr


def models(n_train):
    """``(name, model, test rows, PyTorch network factory)`` of each network."""
    X, y, X_test, _ = load_fashion_mnist_or_exit()
    lenet = ours_fm_lenet(max_iter=1).fit(X[:n_train], y[:n_train])
    resnet = CNNClassifier((), conv_layers=resnet2d((16, 32, 64)), image_shape=(28, 28),
                           batch_size=128, max_iter=1, random_state=0).fit(
        X[:n_train], y[:n_train])
    S, t = load_ucr("OSULeaf", "train", return_X_y=True)
    S_test, _ = load_ucr("OSULeaf", "test", return_X_y=True)
    # float32, as the images (load_ucr returns float64; a float64 model would
    # predict float32 rows through cast copies of its weights).
    series = CNNClassifier((), conv_layers=fcn(), batch_size=16, max_iter=1,
                           random_state=0).fit(S.astype(np.float32), t)
    classes = len(series.classes_)
    return [("FM-LeNet", lenet, X_test, lambda torch: torch_fm_lenet()),
            ("resnet2d", resnet, X_test,
             lambda torch: torch_resnet(torch, exact_padding=True)),
            ("FCN OSULeaf", series, S_test.reshape(len(S_test), -1).astype(np.float32),
             lambda torch: torch_fcn(torch, 1, classes))]


def session_for(model, X, n_threads):
    import onnxruntime
    from skl2onnx import to_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    onx = to_onnx(model, X[:1], options={"zipmap": False})
    session = onnxruntime.InferenceSession(onx.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda rows: session.run(["probabilities"], {name: rows})[0]


def pytorch_for(torch, model, network):
    """Rows -> probabilities by PyTorch running ``network`` with ``model``'s
    weights (float32 rows: images of the model's shape, or series)."""
    network = torch_copy(torch, model, network)
    shape = (-1, *model.image_shape_)
    if model.image_shape_[1] == 1:  # series: (channels, 1, length)
        shape = (-1, model.image_shape_[0], model.image_shape_[2])

    def run(rows):
        with torch.inference_mode():
            return torch.softmax(network(torch.from_numpy(rows.reshape(shape))),
                                 1).numpy()
    return run


def in_batches(runtime, batch_size):
    """ONNX Runtime over the rows in batches (a whole test set at once makes
    maps of gigabytes, 10x slower for FM-LeNet)."""
    return lambda X: np.concatenate([runtime(X[start:start + batch_size])
                                     for start in range(0, len(X), batch_size)])


SETTLE_SECONDS = 0.1


def batch_sizes_of(others, batch_sizes):
    """Every (runtime, batch size) pair, alternating the runtimes."""
    return [(other, size) for size in batch_sizes for other in others]


def median_seconds(func, repeats):
    times = []
    for _ in range(repeats):
        time.sleep(SETTLE_SECONDS)
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--n-train", type=int, default=5000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    blas = [(lib["internal_api"], lib.get("architecture")) for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    print(f"ours against ONNX Runtime and PyTorch; BLAS {blas}", flush=True)
    print(cross_core_check(), flush=True)
    torch = torch_or_none()
    monitor = CpuMonitor()
    for name, model, X, torch_network in models(args.n_train):
        for n_threads in [int(t) for t in args.threads.split(",")]:
            with threads(n_threads):
                others = {"onnxruntime": session_for(model, X, n_threads)}
                if torch is not None:
                    others["pytorch"] = pytorch_for(torch, model, torch_network(torch))
                for runtime in others.values():
                    np.testing.assert_allclose(runtime(X[:50]),
                                               model.predict_proba(X[:50]),
                                               rtol=1e-4, atol=1e-6)
                # The others at their best batch size of these (ours: 256).
                batch_sizes = (128, 256, 1024)
                batch = {"ours": [], **{(other, size): [] for other in others
                                        for size in batch_sizes}}
                for _ in range(args.repeats):
                    batch["ours"].append(median_seconds(
                        lambda: model.predict_proba(X), 1))
                    for other, size in batch_sizes_of(others, batch_sizes):
                        batch[other, size].append(median_seconds(
                            lambda: in_batches(others[other], size)(X), 1))
                best = {other: min(batch_sizes, key=lambda size: statistics.median(
                    batch[other, size])) for other in others}
                batch = {"ours": batch["ours"],
                         **{other: batch[other, best[other]] for other in others}}
                single = {key: [] for key in batch}
                rows = [X[i:i + 1] for i in range(min(len(X), 100))]
                for _ in range(args.calls // 100):
                    for key, func in (("ours", model.predict_proba), *others.items()):
                        time.sleep(SETTLE_SECONDS)
                        for row in rows:
                            start = time.perf_counter()
                            func(row)
                            single[key].append(time.perf_counter() - start)
                b_ours, s_ours = (statistics.median(times["ours"])
                                  for times in (batch, single))
                print(f"{name:12s} {n_threads} thread(s): predict_proba on {len(X)} "
                      f"samples ours {b_ours:.3f} s; one sample ours "
                      f"{1e6 * s_ours:.0f} us", flush=True)
                for other in others:
                    b, s = (statistics.median(times[other]) for times in (batch, single))
                    print(f"  {other:12s} {b:.3f} s (batches of {best[other]}), ratio "
                          f"ours / {other} {b_ours / b:.2f}; one sample {1e6 * s:.0f} "
                          f"us, ratio {s_ours / s:.2f}", flush=True)
    print(monitor.report())
    print(cross_core_check())


if __name__ == "__main__":
    main()
