"""Inference against ONNX Runtime running our own exported model.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/onnx_inference.py

For three networks (FM-LeNet and ``resnet2d((16, 32, 64))`` on Fashion-MNIST,
the FCN on OSULeaf's series), each trained for one epoch: ``predict_proba``
on the whole test set and the median latency of one-sample calls, through
our full scikit-learn path (validation included), against ONNX Runtime
(``InferenceSession.run`` on the model that ``skl2onnx.to_onnx`` exports
with ``sklearn_cnn.onnx``, ZipMap off, ``intra_op_num_threads`` set to the
same thread count; for the test set, in batches of the best of 128, 256
and 1024 rows).  Calls alternate; medians and ratios ours / ONNX Runtime
are printed, with the BLAS kernel threadpoolctl reports.

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
)
from threadpoolctl import threadpool_info

import sklearn_cnn.onnx  # noqa: F401 - registers the converters
from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import fcn, resnet2d
from sklearn_cnn.datasets import load_ucr


def models(n_train):
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
    return [("FM-LeNet", lenet, X_test), ("resnet2d", resnet, X_test),
            ("FCN OSULeaf", series, S_test.reshape(len(S_test), -1).astype(np.float32))]


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


def in_batches(runtime, batch_size):
    """ONNX Runtime over the rows in batches (a whole test set at once makes
    maps of gigabytes, 10x slower for FM-LeNet)."""
    return lambda X: np.concatenate([runtime(X[start:start + batch_size])
                                     for start in range(0, len(X), batch_size)])


SETTLE_SECONDS = 0.1


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
    print(f"ours / ONNX Runtime; BLAS {blas}", flush=True)
    print(cross_core_check(), flush=True)
    monitor = CpuMonitor()
    for name, model, X in models(args.n_train):
        for n_threads in [int(t) for t in args.threads.split(",")]:
            with threads(n_threads):
                runtime = session_for(model, X, n_threads)
                np.testing.assert_allclose(runtime(X[:50]), model.predict_proba(X[:50]),
                                           rtol=1e-4, atol=1e-6)
                # ONNX Runtime at its best batch size of these (ours: 256).
                batch_sizes = (128, 256, 1024)
                batch = {"ours": [], **{size: [] for size in batch_sizes}}
                for _ in range(args.repeats):
                    batch["ours"].append(median_seconds(
                        lambda: model.predict_proba(X), 1))
                    for size in batch_sizes:
                        batch[size].append(median_seconds(
                            lambda: in_batches(runtime, size)(X), 1))
                best = min(batch_sizes, key=lambda size: statistics.median(batch[size]))
                batch = {"ours": batch["ours"], "onnxruntime": batch[best]}
                single = {"ours": [], "onnxruntime": []}
                rows = [X[i:i + 1] for i in range(min(len(X), 100))]
                for _ in range(args.calls // 100):
                    for key, func in (("ours", model.predict_proba),
                                      ("onnxruntime", runtime)):
                        time.sleep(SETTLE_SECONDS)
                        for row in rows:
                            start = time.perf_counter()
                            func(row)
                            single[key].append(time.perf_counter() - start)
                b_ours, b_ort = (statistics.median(batch[k]) for k in batch)
                s_ours, s_ort = (statistics.median(single[k]) for k in single)
                print(f"{name:12s} {n_threads} thread(s): predict_proba on {len(X)} "
                      f"samples ours {b_ours:.3f} s, onnxruntime {b_ort:.3f} s "
                      f"(batches of {best}), ratio "
                      f"{b_ours / b_ort:.2f}; one sample ours {1e6 * s_ours:.0f} us, "
                      f"onnxruntime {1e6 * s_ort:.0f} us, ratio {s_ours / s_ort:.2f}",
                      flush=True)
    print(monitor.report())
    print(cross_core_check())


if __name__ == "__main__":
    main()
