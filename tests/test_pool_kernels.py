"""Pooling kernels against the NumPy reference and finite differences."""

import numpy as np
import pytest

from sklearn_cnn.layers import (
    Activation,
    AvgPool2D,
    Conv2D,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    Sequential,
)

import _reference as ref
from _layer_check import bind, build, check_layer
from _reference import tolerance

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
    layer.allocate(x.shape[0], x.dtype, n_threads, training=True, needs_input_grad=True)
    out = layer.forward(x, n_threads).copy()
    return out, layer.backward(grad_output.copy(), n_threads).copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_samples", [1, 4])
@pytest.mark.parametrize("shape, pool, stride", CASES, ids=IDS)
def test_max_pool_matches_reference(shape, pool, stride, n_samples, dtype, rng,
                                    n_threads):
    layer = build(MaxPool2D(pool, stride), shape)
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
def test_max_pool_in_prediction_keeps_no_argmax(shape, pool, stride, dtype, rng,
                                                n_threads):
    """Prediction pools without the winners' positions (only backward reads
    them), to the same values; NaN wins or loses as in training."""
    layer = build(MaxPool2D(pool, stride), shape)
    x = rng.randint(0, 3, (3, *shape)).astype(dtype)
    x[1].flat[::3] = np.nan
    layer.allocate(3, dtype, n_threads, training=False, needs_input_grad=False)
    predicted = layer.forward(x, n_threads).copy()
    assert layer.argmax is None
    layer.allocate(3, dtype, n_threads, training=True, needs_input_grad=False)
    np.testing.assert_array_equal(predicted, layer.forward(x, n_threads))
    pair, strides = (layer.pool_h, layer.pool_w), (layer.stride_h, layer.stride_w)
    np.testing.assert_array_equal(predicted[[0, 2]],
                                  ref.max_pool2d_forward(x[[0, 2]], pair, strides))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool, stride", CASES, ids=IDS)
def test_avg_pool_matches_reference(shape, pool, stride, dtype, rng, n_threads):
    layer = build(AvgPool2D(pool, stride), shape)
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


@pytest.mark.parametrize("channels", [4, 16, 37])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg_pool_matches_reference(dtype, channels, rng, n_threads):
    """Each channel summed position by position in order, as a plain loop
    does (the same bits at any thread count and channel count)."""
    layer = build(GlobalAvgPool2D(), (5, 3, channels))
    x = rng.standard_normal((3, 5, 3, channels)).astype(dtype)
    grad_output = rng.standard_normal((3, 1, 1, channels)).astype(dtype)
    out, grad_input = run(layer, x, grad_output, n_threads)
    np.testing.assert_allclose(out, x.mean(axis=(1, 2), keepdims=True),
                               **tolerance(dtype))
    in_order = np.zeros((3, channels), dtype)
    for position in x.reshape(3, 15, channels).transpose(1, 0, 2):
        in_order += position
    np.testing.assert_array_equal(out.reshape(3, channels), in_order * dtype(1 / 15))
    np.testing.assert_allclose(grad_input, np.broadcast_to(grad_output / 15, x.shape),
                               **tolerance(dtype))


@pytest.mark.parametrize("spec, shape", [
    (MaxPool2D(2), (4, 6, 2)),
    (MaxPool2D(3, 2), (5, 5, 2)),
    (AvgPool2D(2, 1), (4, 5, 2)),
    (GlobalAvgPool2D(), (3, 4, 2)),
], ids=["max", "max-overlap", "avg", "global"])
def test_pool_passes_the_shared_layer_checks(spec, shape):
    def oracle(x, params):
        if isinstance(spec, GlobalAvgPool2D):
            return x.mean(axis=(1, 2), keepdims=True)
        layer = build(spec, shape)
        reference = ref.max_pool2d_forward if layer.is_max else ref.avg_pool2d_forward
        return reference(x, (layer.pool_h, layer.pool_w),
                         (layer.stride_h, layer.stride_w))

    check_layer(spec, shape, oracle=oracle)


def test_activation_and_dropout_pass_the_shared_layer_checks():
    check_layer(Activation("tanh"), (3, 4, 2), oracle=lambda x, params: np.tanh(x))
    layer = check_layer(Dropout(0.4), (7,), n_samples=5)
    assert (layer.mask == 0).any() and (layer.mask > 1).any()


@pytest.mark.parametrize("channels, filters", [(2, 3), (8, 9)],
                         ids=["im2col", "winograd"])
@pytest.mark.parametrize("pool", [MaxPool2D(2), MaxPool2D(3, 2)], ids=["2", "3-2"])
def test_fused_block_passes_the_shared_layer_checks(pool, channels, filters):
    """Conv2D + Activation + MaxPool2D runs as one fused kernel; the block
    matches the same layers run one by one."""
    spec = Sequential((Conv2D(filters, activation="identity"), Activation("tanh"),
                       pool))
    shape = (7, 6, channels)
    fused = build(spec, shape, fuse=True)
    assert len(fused.layers) == 1 and fused.layers[0].pool is not None
    assert fused.layers[0].winograd == (channels >= 8)

    def unfused_forward(x, params):
        layer = build(spec, shape, fuse=False)
        bind(layer, params, {})
        layer.allocate(x.shape[0], x.dtype, 1, training=False, needs_input_grad=False)
        return layer.forward(x, 1)

    check_layer(spec, shape, oracle=unfused_forward, fuse=True)


def test_pool_larger_than_map_is_rejected():
    with pytest.raises(ValueError, match="larger than the 1x3 feature map"):
        build(MaxPool2D(2), (1, 3, 4))


def test_auto_pool_shrinks_to_fit():
    layer = build(MaxPool2D(2), (1, 3, 4), auto=True)
    assert (layer.pool_h, layer.pool_w) == (1, 2)
    assert layer.output_shape == (1, 1, 4)


def test_pool_kernels_check_the_argmax_they_are_given():
    from sklearn_cnn._kernels import _conv, _pool

    x = np.zeros((2, 4, 4, 3))
    out = np.empty((2, 2, 2, 3))
    for argmax in (np.empty((1, 2, 2, 3), np.int32), np.empty((2, 2, 2, 2), np.int32)):
        with pytest.raises(ValueError, match="argmax does not match"):
            _pool.max_pool2d_forward(x, out, argmax, 2, 2, 2, 2, 1)
        with pytest.raises(ValueError, match="argmax does not match"):
            _conv.conv2d_maxpool_forward(
                x, np.zeros((27, 3)), np.zeros(3), out, argmax, np.empty((1, 16 * 27)),
                np.empty((1, 16 * 3)), 3, 3, 1, 1, 1, 1, 1, 1, 4, 4, 2, 2, 2, 2, 1, 0, 0, 1)
