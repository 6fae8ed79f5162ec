"""Whole-network gradient check and geometry errors."""

import numpy as np
import pytest

from sklearn_cnn import _network
from sklearn_cnn._kernels import _loss
from sklearn_cnn.layers import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D


def network_loss_and_grads(layers, coefs, intercepts, x, labels, weights):
    net = _network.Network(layers, coefs, intercepts)
    net.allocate(x.shape[0], x.dtype, 2, training=True)
    logits = net.forward(x, 2)
    losses = np.empty(x.shape[0])
    _loss.softmax_cross_entropy(logits, labels, weights, losses, 2)
    net.backward(logits, 2)
    return losses.sum(), [g.copy() for g in net.grads()]


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_whole_network_gradient_by_finite_differences(activation, rng):
    specs = (Conv2D(3, 3, 1, "same"), MaxPool2D(2), Conv2D(4, (2, 3), 2, 1),
             AvgPool2D((1, 2)), Conv2D(2, 1), GlobalAvgPool2D())
    layers = _network.build_layers(specs, [5], 3, (7, 9, 2), activation)
    coefs, intercepts = _network.init_params(layers, rng, np.float64)
    intercepts = [rng.standard_normal(b.shape) * 0.1 for b in intercepts]
    x = rng.standard_normal((4, 7, 9, 2))
    labels = np.array([0, 2, 1, 2], dtype=np.int32)
    weights = np.full(4, 0.25)
    _, grads = network_loss_and_grads(layers, coefs, intercepts, x, labels, weights)

    def loss():
        value, _ = network_loss_and_grads(layers, coefs, intercepts, x, labels, weights)
        return value

    eps = 1e-6
    numerics = []
    for param in coefs + intercepts:
        numeric = np.empty_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + eps
            up = loss()
            param[i] = saved - eps
            down = loss()
            param[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        numerics.append(numeric.ravel())
    numeric = np.concatenate(numerics)
    analytic = np.concatenate([g.ravel() for g in grads])
    # Relative to the whole gradient: the rounding error of the differences
    # (about 1e-10) would swamp entries that are themselves tiny.
    assert np.abs(numeric).max() > 1e-3
    assert np.abs(numeric - analytic).max() / np.abs(numeric).max() < 1e-6


def test_shapes_are_described_in_errors():
    with pytest.raises(ValueError, match=r"conv_layers\[2\].*larger than the 1x1"):
        _network.build_layers((Conv2D(2), MaxPool2D(2), MaxPool2D(2)), [], 2,
                              (2, 2, 1), "relu")
    with pytest.raises(ValueError, match=r"conv_layers\[0\].*5x5 kernel does not fit"):
        _network.build_layers((Conv2D(2, 5, padding="valid"),), [], 2, (4, 4, 1), "relu")


def test_float32_and_float64_start_from_the_same_weights():
    layers = _network.build_layers((Conv2D(2),), [3], 2, (4, 4, 1), "relu")
    c32, _ = _network.init_params(layers, np.random.RandomState(1), np.float32)
    c64, _ = _network.init_params(layers, np.random.RandomState(1), np.float64)
    for a, b in zip(c32, c64):
        np.testing.assert_array_equal(a, b.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("pool", [MaxPool2D(2), MaxPool2D(3, 2), MaxPool2D((1, 2))],
                         ids=["2", "3-stride2", "1x2"])
def test_fused_conv_maxpool_matches_separate_layers(pool, activation, dtype, rng):
    specs = (Conv2D(3, 3, 1, "same"), pool, Conv2D(4, 3, 2, "valid"), MaxPool2D(1))
    x = rng.standard_normal((5, 9, 11, 2)).astype(dtype)
    results = []
    for fuse in (True, False):
        layers = _network.build_layers(specs, [4], 3, (9, 11, 2), activation, fuse=fuse)
        assert len(layers) == (4 if fuse else 6)
        coefs, intercepts = _network.init_params(layers, np.random.RandomState(0), dtype)
        intercepts = [np.full(b.shape, 0.05, dtype) for b in intercepts]
        loss, grads = network_loss_and_grads(
            layers, coefs, intercepts, x, np.array([0, 1, 2, 1, 0], np.int32),
            np.full(5, 0.2))
        results.append((loss, grads))
    (loss_fused, grads_fused), (loss_plain, grads_plain) = results
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss_fused, loss_plain, rtol=rtol)
    for a, b in zip(grads_fused, grads_plain):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)


def test_dropout_gradient_by_finite_differences(rng):
    """With the mask held fixed (same random state each pass), the dropout
    network's gradient matches central differences."""
    layers = _network.build_layers((Conv2D(2),), [6, 5], 3, (3, 3, 1), "tanh",
                                   dropout=0.4, rng=np.random.RandomState(0))
    assert sum(isinstance(layer, _network.DropoutLayer) for layer in layers) == 2
    dropouts = [layer for layer in layers if isinstance(layer, _network.DropoutLayer)]
    coefs, intercepts = _network.init_params(layers, rng, np.float64)
    x = rng.standard_normal((4, 3, 3, 1))
    labels = np.array([0, 2, 1, 2], dtype=np.int32)
    weights = np.full(4, 0.25)

    def loss_and_grads():
        for layer in dropouts:
            layer.rng = np.random.RandomState(7)
        return network_loss_and_grads(layers, coefs, intercepts, x, labels, weights)

    _, grads = loss_and_grads()
    assert (dropouts[0].mask == 0).any() and (dropouts[0].mask > 1).any()
    eps = 1e-6
    for param, analytic in zip(coefs + intercepts, grads):
        numeric = np.empty_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + eps
            up, _ = loss_and_grads()
            param[i] = saved - eps
            down, _ = loss_and_grads()
            param[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("specs", [
    (Conv2D(8), MaxPool2D(2), Conv2D(16), MaxPool2D(2)),
    (Conv2D(4, 3, 2), MaxPool2D(3, 1), Conv2D(3, (1, 3), 1, (2, 0)), MaxPool2D((2, 1))),
    (Conv2D(5, 1, padding="valid"), MaxPool2D(3, 2)),
], ids=["lenet", "strided-overlapping", "pointwise"])
def test_few_sample_prediction_paths_match_batch_paths(specs, dtype, rng):
    """Below _ROW_SPLIT_MAX_SAMPLES, fused layers split images into row blocks
    and dense layers split their outputs: the results must not change."""
    layers = _network.build_layers(specs, [70], 3, (13, 11, 1), "relu")
    coefs, intercepts = _network.init_params(layers, rng, dtype)
    intercepts = [rng.standard_normal(b.shape).astype(dtype) * 0.1 for b in intercepts]
    x = rng.standard_normal((9, 13, 11, 1)).astype(dtype)

    def predict(batch, n_threads):
        net = _network.Network(layers, coefs, intercepts)
        net.allocate(len(batch), dtype, n_threads, training=False)
        return net.forward(batch, n_threads).copy()

    batched = predict(x, 2)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for i in range(len(x)):
        for n_threads in (1, 2, 3):
            single = predict(x[i:i + 1], n_threads)
            np.testing.assert_allclose(single[0], batched[i], rtol=rtol, atol=rtol)
    # Same results whatever the thread count, bit for bit.
    np.testing.assert_array_equal(predict(x[:2], 1), predict(x[:2], 3))
