"""Series: 1-D layers, global max pooling, and X read as series, never images."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import (
    Activation,
    AvgPool1D,
    BatchNormalization,
    CNNClassifier,
    CNNRegressor,
    Conv1D,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    MaxPool1D,
    MaxPool2D,
)

import _reference as ref
from _layer_check import build, check_layer


def quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def conv1d_reference(x, weights, bias, stride, pad_before, out_length, activation):
    """x (n, 1, L, C); weights (1, k, C, F): plain loops over steps."""
    xp = np.pad(x[:, 0], ((0, 0), (pad_before, 0), (0, 0)))
    xp = np.pad(xp, ((0, 0), (0, max(0, (out_length - 1) * stride + weights.shape[1]
                                      - xp.shape[1])), (0, 0)))
    out = np.stack([np.einsum("nkc,kcf->nf", xp[:, t * stride:t * stride
                                                + weights.shape[1]], weights[0])
                    for t in range(out_length)], axis=1) + bias
    return ref.ACTIVATIONS[activation][0](out)[:, None]


@pytest.mark.parametrize("spec, length, pad_before, out_length", [
    (Conv1D(3, 5), 9, 2, 9),
    (Conv1D(3, 4), 9, 1, 9),           # even kernel, 'same': extra zero at the end
    (Conv1D(2, 3, stride=2), 9, 1, 5),
    (Conv1D(2, 4, padding="valid"), 9, 0, 6),
    (Conv1D(2, 3, padding=2), 7, 2, 9),
], ids=["k5", "k4-same", "stride2", "valid", "pad2"])
def test_conv1d_passes_the_shared_layer_checks(spec, length, pad_before, out_length):
    def oracle(x, params):
        return conv1d_reference(x, params["conv_layers.0.weights"],
                                params["conv_layers.0.bias"], spec.stride, pad_before,
                                out_length, "tanh")

    layer = check_layer(spec, (1, length, 2), oracle=oracle)
    assert layer.output_shape == (1, out_length, spec.filters)
    assert layer.name == f"Conv1D({spec.filters}, {spec.kernel_size})"


@pytest.mark.parametrize("spec, reference", [
    (MaxPool1D(3, 2), lambda x: ref.max_pool2d_forward(x, (1, 3), (1, 2))),
    (AvgPool1D(2), lambda x: ref.avg_pool2d_forward(x, (1, 2), (1, 2))),
    (GlobalAvgPool1D(), lambda x: x.mean(axis=(1, 2), keepdims=True)),
    (GlobalMaxPool1D(), lambda x: x.max(axis=(1, 2), keepdims=True)),
    (GlobalMaxPool2D(), lambda x: x.max(axis=(1, 2), keepdims=True)),
], ids=["max", "avg", "global-avg", "global-max", "global-max-2d"])
def test_pools_pass_the_shared_layer_checks(spec, reference):
    shape = (3, 4, 2) if isinstance(spec, GlobalMaxPool2D) else (1, 7, 3)
    check_layer(spec, shape, oracle=lambda x, params: reference(x))


def test_global_max_pool_ties_go_to_the_first_position():
    layer = build(GlobalMaxPool1D(), (1, 4, 1))
    layer.allocate(1, np.float64, 1, training=True, needs_input_grad=True)
    layer.forward(np.array([[[[1.0], [3.0], [3.0], [2.0]]]]), 1)
    grad = layer.backward(np.array([[[[5.0]]]]), 1)
    np.testing.assert_array_equal(grad.ravel(), [0, 5, 0, 0])


def bumps(n_samples, seed, length=64, channels=1):
    """Label 1: a bump somewhere in channel 0; anywhere, so position-invariant."""
    rng = np.random.RandomState(seed)
    X = rng.normal(0, 0.3, (n_samples, channels, length))
    y = rng.randint(0, 2, n_samples)
    for i in np.flatnonzero(y):
        start = rng.randint(0, length - 8)
        X[i, 0, start:start + 8] += np.hanning(8) * 2
    return X, y


FCN_LIKE = (Conv1D(8, 8, activation="identity"), BatchNormalization(), Activation(),
            Conv1D(8, 5, activation="identity"), BatchNormalization(), Activation(),
            GlobalAvgPool1D())


def test_a_1d_network_learns_a_position_invariant_pattern():
    X, y = bumps(400, 0, channels=2)
    X_test, y_test = bumps(200, 1, channels=2)
    clf = quiet_fit(CNNClassifier((), conv_layers=FCN_LIKE, max_iter=30,
                                  learning_rate_init=0.01, random_state=0), X, y)
    assert clf.image_shape_ == (2, 1, 64)
    assert clf.score(X_test, y_test) > 0.95
    # Multivariate rows flattened channel by channel read the same with image_shape.
    flat = CNNClassifier((), conv_layers=FCN_LIKE, max_iter=2, random_state=0,
                         image_shape=(2, 64))
    ragged = CNNClassifier((), conv_layers=FCN_LIKE, max_iter=2, random_state=0)
    np.testing.assert_array_equal(
        quiet_fit(flat, X.reshape(400, -1), y).predict_proba(X_test),
        quiet_fit(ragged, X, y).predict_proba(X_test))


def test_a_series_whose_length_is_a_square_stays_a_series(rng):
    X = rng.rand(30, 64)  # 64 = 8 x 8
    reg = quiet_fit(CNNRegressor(conv_layers=(Conv1D(2), GlobalMaxPool1D()),
                                 max_iter=1), X, X[:, 0])
    assert reg.image_shape_ == (1, 1, 64)
    assert "Conv1D(2, 3)" in str(reg.summary())
    image = quiet_fit(CNNRegressor(max_iter=1), X, X[:, 0])  # 2-D layers: an image
    assert image.image_shape_ == (1, 8, 8)


def test_series_input_errors_are_clear(rng):
    y = np.arange(12) % 2
    with pytest.raises(ValueError, match=r"looks like \(n_samples, length, channels\). "
                                         r"Pass X.transpose\(0, 2, 1\)"):
        CNNClassifier(conv_layers=(Conv1D(2),)).fit(rng.rand(12, 40, 3), y)
    confirmed = quiet_fit(CNNClassifier(conv_layers=(Conv1D(2),), max_iter=1,
                                        image_shape=(40, 3)), rng.rand(12, 40, 3), y)
    assert confirmed.image_shape_ == (40, 1, 3)
    with pytest.raises(ValueError, match="a network of 1-D layers .* takes series"):
        CNNClassifier(conv_layers=(Conv1D(2),)).fit(rng.rand(12, 2, 3, 4), y)
    with pytest.raises(ValueError, match="mixes 1-D layers .* with 2-D layers"):
        CNNClassifier(conv_layers=(Conv1D(2), MaxPool2D())).fit(rng.rand(12, 9), y)
    with pytest.raises(ValueError, match=r"image_shape must be None or \(length,\) or "
                                         r"\(channels, length\)"):
        CNNClassifier(conv_layers=(Conv1D(2),), image_shape=(1, 3, 3)).fit(
            rng.rand(12, 9), y)
    with pytest.raises(ValueError, match=r"conv_layers\[1\] = MaxPool1D\(pool_size=20\): "
                                         r"its 1x20 window is larger than the 1x9"):
        CNNClassifier(conv_layers=(Conv1D(2), MaxPool1D(20))).fit(rng.rand(12, 9), y)
    clf = quiet_fit(CNNClassifier(conv_layers=(Conv1D(2),), max_iter=1),
                    rng.rand(12, 3, 9), y)
    with pytest.raises(ValueError, match="X holds series of 9 channels and length 3 but "
                                         "the model was fitted on 3 channels of length 9"):
        clf.predict(rng.rand(4, 9, 3))
