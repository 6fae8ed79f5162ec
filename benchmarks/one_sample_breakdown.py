"""Where one sample's ``predict_proba`` spends its time, against ONNX Runtime.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/one_sample_breakdown.py

FM-LeNet and resnet2d, trained for one epoch as in ``onnx_inference.py``.  At
each thread count, blocks of one-sample calls alternate (the order reversed
every round) between our call stripped step by step and ONNX Runtime running
the exported model:

- ``predict_proba``: the whole scikit-learn path;
- ``raw outputs``: without the output activation (softmax);
- ``forward``: without validation and the outputs' check;
- ``network``: without the pool (the key of the parameter arrays);
- ``no check``: without the check of the prepared parameters;
- ``kernels``: the network's recorded plan replayed bare, its kernels alone.

Medians over rounds of each block's median call, in us.  ``predict_proba``
minus ``kernels`` is what our call adds around the kernels: with kernels
faster than ONNX Runtime's whole call, that is the one-sample gap.  Each piece
costs more in a real call than in a loop of its own (session 20: about 2.3x),
its data and the interpreter's having left the cache.  Uses private
structures (the pool, the plans) to replay: a diagnostic, not an API.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import threads
from onnx_inference import models, session_for

from sklearn_cnn import _network_pool
from sklearn_cnn._input import to_nhwc
from sklearn_cnn._threads import single_threaded_blas


def pooled_plan(model, n_threads):
    """The pooled network of ``model`` and its plan for one sample."""
    (slot,) = [slot for key, slot in _network_pool._pools[model].items()
               if key[1] == n_threads]  # key: (dtype, threads)
    network = slot[-1]
    source, steps, _ = network._plans[(1, n_threads, len(network.layers))]
    return network, source, steps


def stripped_calls(model, n_threads):
    """``{name: one-sample function}``, from the whole call to the kernels."""
    network, source, steps = pooled_plan(model, n_threads)
    shape = model.image_shape_

    def network_forward(row, check=True):
        with single_threaded_blas():
            if check:
                network.prepare(n_threads)
            return network.forward(to_nhwc(row, shape), n_threads).reshape(1, -1).copy()

    def kernels(row):
        np.copyto(source, row.reshape(source.shape))
        for kernel, arguments in steps:
            kernel(*arguments)

    return {
        "predict_proba": model.predict_proba,
        "raw outputs": lambda row: model._predict_outputs(row, n_threads),
        "forward": lambda row: model._forward(row, n_threads),
        "network": network_forward,
        "no check": lambda row: network_forward(row, check=False),
        "kernels": kernels,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--n-train", type=int, default=2000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name, model, X, _ in models(args.n_train)[:2]:
        rows = [np.ascontiguousarray(X[i:i + 1]) for i in range(100)]
        for n_threads in [int(t) for t in args.threads.split(",")]:
            with threads(n_threads):
                for row in rows:  # builds the pooled network and its plan
                    model.predict_proba(row)
                calls = stripped_calls(model, n_threads)
                onnx = session_for(model, X, n_threads)
                calls["onnxruntime"] = onnx
                for row in rows:
                    onnx(row)
                times = {key: [] for key in calls}
                for round_ in range(args.rounds):
                    order = list(calls) if round_ % 2 else list(calls)[::-1]
                    for key in order:
                        call, block = calls[key], []
                        for i in range(args.calls):
                            row = rows[i % len(rows)]
                            start = time.perf_counter()
                            call(row)
                            block.append(time.perf_counter() - start)
                        times[key].append(statistics.median(block))
            medians = {key: 1e6 * statistics.median(t) for key, t in times.items()}
            print(f"{name:9s} {n_threads} thread(s), us: " + ", ".join(
                f"{key} {value:.1f}" for key, value in medians.items()))
            print(f"  around the kernels {medians['predict_proba'] - medians['kernels']:.1f}"
                  f" us; ratios to ONNX Runtime: predict_proba "
                  f"{medians['predict_proba'] / medians['onnxruntime']:.2f}, kernels "
                  f"{medians['kernels'] / medians['onnxruntime']:.2f}", flush=True)


if __name__ == "__main__":
    main()
