"""Pooling kernels against the NumPy reference and finite differences."""

import numpy as np
import pytest
from _reference import tolerance

import _reference as ref
from sklearn_cnn._network import GlobalAvgPoolLayer, PoolLayer
from sklearn_cnn.layers import AvgPool2D, MaxPool2D

CASES = [
    ((6, 6, 3), 2, None),
    ((7, 9, 2), 2, None),
    ((7, 9, 2), 3, 2),          # overlapping windows
    ((5, 8, 4), (1, 2), None),  # 1-D style
    ((6, 7, 1), (3, 2), (1, 3)),
    ((1, 1, 5), 1, None),
]
IDS = [f"{'x'.join(map(str, s))}-{p}-{st}" for s, p, st in CASES]


def run(layer, x, grad_output, n_threads):
    layer.allocate(x.shape[0], x.dtype, n_threads, training=True, first=False)
    out = layer.forward(x, n_threads).copy()
    return out, layer.backward(grad_output.copy(), n_threads).copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_samples", [1, 4])
@pytest.mark.parametrize("shape, pool, stride", CASES, ids=IDS)
def test_max_pool_matches_reference(shape, pool, stride, n_samples, dtype, rng,
                                    n_threads):
    layer = PoolLayer(MaxPool2D(pool, stride), shape, 0)
    # Few distinct values: ties are common and must go to the first maximum.
    x = rng.randint(0, 3, (n_samples, *shape)).astype(dtype)
    grad_output = rng.standard_normal((n_samples, *layer.output_shape)).astype(dtype)
    out, grad_input = run(layer, x, grad_output, n_threads)
    pair = (layer.pool_h, layer.pool_w)
    strides = (layer.stride_h, layer.stride_w)
    np.testing.assert_array_equal(out, ref.max_pool2d_forward(x, pair, strides))
    np.testing.assert_allclose(
        grad_input, ref.max_pool2d_backward(x, grad_output, pair, strides),
        **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool, stride", CASES, ids=IDS)
def test_avg_pool_matches_reference(shape, pool, stride, dtype, rng, n_threads):
    layer = PoolLayer(AvgPool2D(pool, stride), shape, 0)
    x = rng.standard_normal((3, *shape)).astype(dtype)
    grad_output = rng.standard_normal((3, *layer.output_shape)).astype(dtype)
    out, grad_input = run(layer, x, grad_output, n_threads)
    pair = (layer.pool_h, layer.pool_w)
    strides = (layer.stride_h, layer.stride_w)
    np.testing.assert_allclose(out, ref.avg_pool2d_forward(x, pair, strides),
                               **tolerance(dtype))
    np.testing.assert_allclose(
        grad_input, ref.avg_pool2d_backward(x.shape, grad_output, pair, strides),
        **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg_pool_matches_reference(dtype, rng, n_threads):
    layer = GlobalAvgPoolLayer((5, 3, 4))
    x = rng.standard_normal((3, 5, 3, 4)).astype(dtype)
    grad_output = rng.standard_normal((3, 1, 1, 4)).astype(dtype)
    out, grad_input = run(layer, x, grad_output, n_threads)
    np.testing.assert_allclose(out, x.mean(axis=(1, 2), keepdims=True),
                               **tolerance(dtype))
    np.testing.assert_allclose(grad_input, np.broadcast_to(grad_output / 15, x.shape),
                               **tolerance(dtype))


@pytest.mark.parametrize("layer", [
    PoolLayer(MaxPool2D(2), (4, 6, 2), 0),
    PoolLayer(MaxPool2D(3, 2), (5, 5, 2), 0),
    PoolLayer(AvgPool2D(2, 1), (4, 5, 2), 0),
    GlobalAvgPoolLayer((3, 4, 2)),
], ids=["max", "max-overlap", "avg", "global"])
def test_pool_gradients_by_finite_differences(layer, rng):
    x = rng.standard_normal((2, *layer.input_shape))  # distinct values: no ties
    projection = rng.standard_normal((2, *layer.output_shape))
    _, analytic = run(layer, x, projection, 1)

    def loss():
        return float((layer.forward(x, 1) * projection).sum())

    numeric = np.empty_like(x)
    eps = 1e-6
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = loss()
        x[i] = saved - eps
        down = loss()
        x[i] = saved
        numeric[i] = (up - down) / (2 * eps)
    assert np.abs(numeric - analytic).max() / np.abs(numeric).max() < 1e-6


def test_pool_larger_than_map_is_rejected():
    with pytest.raises(ValueError, match="larger than the 1x3 feature map"):
        PoolLayer(MaxPool2D(2), (1, 3, 4), position=2)


def test_auto_pool_shrinks_to_fit():
    layer = PoolLayer(MaxPool2D(2), (1, 3, 4), 0, shrink_to_fit=True)
    assert (layer.pool_h, layer.pool_w) == (1, 2)
    assert layer.output_shape == (1, 1, 4)
