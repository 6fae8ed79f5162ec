"""Numerical safety: stable softmax, divergence caught, accurate float32 sums."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import CNNClassifier, Conv2D
from sklearn_cnn.layers import Dense

from _layer_check import build


def test_diverging_learning_rate_is_caught_and_weights_stay_finite(rng):
    X = rng.standard_normal((200, 16)) * 50
    y = rng.randint(0, 3, 200)
    clf = CNNClassifier((16,), conv_layers=(Conv2D(4),), solver="sgd", learning_rate_init=1e6,
                        momentum=0.99, max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Training diverged in epoch"):
        clf.fit(X, y)
    assert clf.n_iter_ < 20
    assert all(np.isfinite(p).all() for p in clf.coefs_ + clf.intercepts_)
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_give_finite_probabilities(dtype, rng):
    X = rng.rand(30, 9).astype(dtype)
    y = rng.randint(0, 2, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = CNNClassifier((4,), conv_layers=(), max_iter=1, random_state=0).fit(X, y)
    clf.coefs_[-1][...] = 1e4  # logits of order +-1e4
    clf.coefs_[-1][:, 0] = -1e4
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert np.isfinite(clf.predict_log_proba(X)).all()


def test_float32_bias_gradient_is_accumulated_in_float64(rng):
    # 64 x 64 x 64 = 262,144 terms per channel: a float32 running sum would
    # be off by ~1e-4 relative; float64 accumulation keeps ~1e-7.
    layer = build(Conv2D(2, 1, padding="valid"), (64, 64, 1), activation="identity")
    layer.bind({"weights": np.ones((1, 1, 1, 2), np.float32),
                "bias": np.zeros(2, np.float32)}, {})
    layer.allocate(64, np.float32, 2, training=True, needs_input_grad=False)
    x = rng.rand(64, 64, 64, 1).astype(np.float32)
    layer.forward(x, 2)
    grad = (rng.rand(64, 64, 64, 2) + 0.5).astype(np.float32)
    expected = grad.astype(np.float64).sum(axis=(0, 1, 2))
    layer.backward(grad.copy(), 2)
    np.testing.assert_allclose(layer.grad_bias, expected, rtol=2e-7)

    dense = build(Dense(3, "identity"), (8,))
    dense.bind({"weights": np.ones((8, 3), np.float32), "bias": np.zeros(3, np.float32)},
               {})
    dense.allocate(100000, np.float32, 2, training=True, needs_input_grad=False)
    dense.forward(rng.rand(100000, 8).astype(np.float32), 2)
    grad = (rng.rand(100000, 3) + 0.5).astype(np.float32)
    expected = grad.astype(np.float64).sum(axis=0)
    dense.backward(grad.copy(), 2)
    np.testing.assert_allclose(dense.grad_bias, expected, rtol=2e-7)
