"""Peak resident memory of fit and predict, each in a fresh process.

    python benchmarks/memory.py

fit: one epoch of FM-LeNet on the 60k Fashion-MNIST training images
(float32, 188 MB), against the target of 1.5 x the training data + 200 MB.
predict: predict_proba on 10k and on 200k images (the test set tiled): the
memory beyond the input itself must not grow with the number of samples.
Each figure is the process's peak RSS during the call (VmHWM, reset just
before it through /proc/self/clear_refs) minus its RSS just before the call.
Linux only.
"""

import json
import subprocess
import sys

CHILD = r"""
import json, sys, warnings
import numpy as np
sys.path.insert(0, {bench_dir!r})
from _common import load_fashion_mnist_or_exit, ours_fm_lenet
warnings.simplefilter("ignore")

def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

def start_measuring():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    return status_mb("VmRSS")

X, y, X_test, y_test = load_fashion_mnist_or_exit()
task = {task!r}
if task == "fit":
    clf = ours_fm_lenet(max_iter=1)
    data = X
    before = start_measuring()
    clf.fit(X, y)
else:
    clf = ours_fm_lenet(max_iter=1).fit(X[:2000], y[:2000])
    n = int(task.split("-")[1])
    data = np.ascontiguousarray(np.tile(X_test, (n // len(X_test), 1)))
    del X, y
    before = start_measuring()
    clf.predict_proba(data)
peak = status_mb("VmHWM")
print(json.dumps({{"before": before, "peak": peak, "data_mb": data.nbytes / 2**20}}))
"""


def measure(task):
    import os

    code = CHILD.format(bench_dir=os.path.dirname(os.path.abspath(__file__)),
                        task=task)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    fit = measure("fit")
    bound = 1.5 * fit["data_mb"] + 200
    print(f"fit, 60k x 784 float32 ({fit['data_mb']:.0f} MB of data): peak RSS "
          f"{fit['peak']:.0f} MB; {fit['peak'] - fit['before']:.0f} MB above the RSS "
          f"before fit; target <= 1.5 x data + 200 MB = {bound:.0f} MB: "
          f"{'met' if fit['peak'] <= bound else 'NOT met'}")
    for n in (10000, 200000):
        result = measure(f"predict-{n}")
        print(f"predict_proba on {n:>6} images ({result['data_mb']:.0f} MB): peak RSS "
              f"{result['peak']:.0f} MB, {result['peak'] - result['before']:.0f} MB "
              f"above the RSS before the call")


if __name__ == "__main__":
    main()
