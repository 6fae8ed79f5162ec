"""The baseline and AVX2 builds of the hot kernel modules: which one runs,
and that both give bitwise the same results."""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_cnn import CNNClassifier, _kernels
from sklearn_cnn._kernels._platform import has_avx2
from sklearn_cnn.layers import BatchNormalization, Conv2D, MaxPool2D
from sklearn_cnn.layers import _batchnorm as batchnorm_layer
from sklearn_cnn.layers import _conv as conv_layer


def avx2_modules_or_skip():
    """The AVX2 builds, or a skip where this CPU or build has none."""
    if not has_avx2():
        pytest.skip("this CPU has no AVX2: only the baseline build runs here")
    try:
        return {name: importlib.import_module(f"sklearn_cnn._kernels.{name}_avx2")
                for name in _kernels.AVX2_KERNELS}
    except ImportError:
        pytest.skip("built without the AVX2 modules (not x86-64, or no gcc/clang)")


def test_load_picks_the_avx2_build_only_where_it_runs():
    for name in _kernels.AVX2_KERNELS:
        module = _kernels.load(name)
        if _kernels.avx2_enabled() and has_avx2():
            avx2_modules_or_skip()
            assert module.__name__ == f"sklearn_cnn._kernels.{name}_avx2"
        else:
            assert module.__name__ == f"sklearn_cnn._kernels.{name}"
    # Modules without an AVX2 build always load their one build.
    assert _kernels.load("_pool").__name__ == "sklearn_cnn._kernels._pool"


def test_baseline_can_be_forced_by_the_environment():
    code = ("from sklearn_cnn.layers import _conv, _batchnorm; "
            "print(_conv._conv.__name__, _batchnorm._batchnorm.__name__)")
    env = {**os.environ, "SKLEARN_CNN_KERNELS": "baseline"}
    names = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    assert names == ["sklearn_cnn._kernels._conv", "sklearn_cnn._kernels._batchnorm"]


def fitted_parameters(monkeypatch, modules, dtype):
    """Train a small network with BatchNorm, Winograd (F(4x4) in training)
    and pooling on ``modules``' builds; its parameters and the probabilities
    its predict (Winograd F(2x2)) gives.  Its 16, 32, 64 and 128 channels
    take, in float32, the AVX2 build's loops compiled for those counts
    (_winograd4.h, _batchnorm_blocks.h)."""
    monkeypatch.setattr(conv_layer, "_conv", modules["_conv"])
    monkeypatch.setattr(batchnorm_layer, "_batchnorm", modules["_batchnorm"])
    X, y = load_digits(return_X_y=True)
    layers = (Conv2D(8, 3, padding="same", activation="identity"), BatchNormalization(),
              Conv2D(16, 3, padding="same", activation="identity"), BatchNormalization(),
              Conv2D(16, 3, padding="same", activation="identity"), BatchNormalization(),
              Conv2D(32, 3, padding="same", activation="identity"), BatchNormalization(),
              Conv2D(32, 3, padding="same", activation="identity"), BatchNormalization(),
              MaxPool2D(2), Conv2D(64, 1), BatchNormalization(), Conv2D(128, 1),
              BatchNormalization())
    clf = CNNClassifier((16,), conv_layers=layers, image_shape=(8, 8), max_iter=2,
                        batch_size=64, random_state=0).fit(X[:600].astype(dtype), y[:600])
    return clf.parameters_, clf.predict_proba(X[600:800].astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_avx2_and_baseline_builds_agree_bit_for_bit(monkeypatch, dtype):
    avx2 = avx2_modules_or_skip()
    baseline = {name: importlib.import_module(f"sklearn_cnn._kernels.{name}")
                for name in _kernels.AVX2_KERNELS}
    params, proba = fitted_parameters(monkeypatch, baseline, dtype)
    params_avx2, proba_avx2 = fitted_parameters(monkeypatch, avx2, dtype)
    assert params.keys() == params_avx2.keys()
    for name in params:
        np.testing.assert_array_equal(params_avx2[name], params[name], err_msg=name)
    np.testing.assert_array_equal(proba_avx2, proba)
