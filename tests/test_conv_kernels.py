"""Convolution kernels against the NumPy reference and finite differences."""

import math

import numpy as np
import pytest

from sklearn_cnn.layers import Conv2D

import _reference as ref
from _layer_check import build, check_layer, float32_tolerance
from _reference import tolerance

# (input HxWxC, Conv2D spec): odd sizes, stride 2, paddings, 1x1 and
# non-square kernels and images.
CASES = [
    ((7, 9, 3), Conv2D(4, 3, 1, "same")),
    ((7, 9, 3), Conv2D(5, 3, 2, "same")),
    ((8, 8, 2), Conv2D(3, 3, 2, "valid")),
    ((6, 5, 2), Conv2D(4, (2, 3), (1, 2), 1)),
    ((5, 7, 4), Conv2D(6, 1, 1, "valid")),
    ((5, 7, 4), Conv2D(3, 1, 2, 0)),
    # 1x1, strided, unpadded: a shortcut's gather of one pixel per row.
    ((6, 8, 3), Conv2D(2, 1, (2, 3), "valid")),
    ((1, 11, 2), Conv2D(3, (1, 4), 1, "same")),
    ((4, 4, 1), Conv2D(2, 5, 1, 2)),
    ((9, 6, 3), Conv2D(2, (4, 2), (3, 1), (2, 0))),
    # One input channel takes the transposed-im2col path.
    ((7, 9, 1), Conv2D(3, 3, 2, "same")),
    ((6, 5, 1), Conv2D(2, (2, 3), (1, 2), 1)),
    ((5, 8, 1), Conv2D(4, (3, 1), (2, 3), (0, 2))),
    # Padding wider than the kernel: whole windows fall in the zeros.
    ((3, 4, 2), Conv2D(3, 1, 1, 2)),
    ((2, 3, 1), Conv2D(2, (2, 1), 2, (3, 4))),
    # 3x3, stride 1, >= 8 channels: Winograd F(2x2, 3x3), forward and, with
    # >= 8 filters, input gradient; odd sizes leave partial tiles, padding
    # 0 and 3 make the input gradient's padding 2 and -1.
    ((7, 9, 8), Conv2D(9, 3, 1, "same")),
    ((6, 5, 9), Conv2D(8, 3, 1, "valid")),
    ((3, 4, 8), Conv2D(10, 3, 1, 3)),
    ((5, 6, 8), Conv2D(3, 3, 1, "same")),
    # Series (height 1), 1 x 3..7 kernels, stride 1, >= 8 channels: the 1-D
    # Winograd F(9 - r, r); lengths that leave partial tiles, an even
    # kernel, a padding wider than the kernel (the input gradient's is
    # then negative) and too few filters for its input gradient.
    ((1, 13, 8), Conv2D(9, (1, 3), 1, "same")),
    ((1, 11, 9), Conv2D(8, (1, 5), 1, "valid")),
    ((1, 4, 8), Conv2D(8, (1, 4), 1, (0, 5))),
    ((1, 9, 8), Conv2D(3, (1, 6), 1, "same")),
    ((1, 17, 10), Conv2D(8, (1, 7), 1, "same")),
]
IDS = [f"{'x'.join(map(str, s))}-{c.kernel_size}-{c.stride}-{c.padding}" for s, c in CASES]


@pytest.fixture(autouse=True)
def series_winograd_on_short_series(monkeypatch):
    # The cases' series are short: let them take the series' Winograd, which
    # a layer otherwise leaves to im2col below WINOGRAD_SERIES_MIN_TILES tiles
    # per chunk (test_series_winograd_needs_enough_tiles checks that rule).
    from sklearn_cnn.layers import _conv

    monkeypatch.setattr(_conv, "WINOGRAD_SERIES_MIN_TILES", 0)


def make_layer(shape, spec, dtype, rng, activation="identity", chunk=None):
    layer = build(spec, shape, activation=activation)
    if chunk is not None:
        layer.im2col_chunk = chunk
        layer.winograd_chunks = dict.fromkeys(layer.winograd_chunks, chunk)
    layer.winograd_chunks = dict.fromkeys(layer.winograd_chunks, chunk)
    infos = layer.parameters()
    weights = rng.standard_normal(infos["weights"].shape).astype(dtype)
    bias = rng.standard_normal(infos["bias"].shape).astype(dtype)
    layer.bind({"weights": weights, "bias": bias}, {})
    return layer


def run_forward_backward(layer, x, grad_output, n_threads):
    layer.allocate(x.shape[0], x.dtype, n_threads, training=True, needs_input_grad=True)
    out = layer.forward(x, n_threads).copy()
    grad_input = layer.backward(grad_output.copy(), n_threads)
    return out, grad_input.copy(), layer.grad_weights.copy(), layer.grad_bias.copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_samples", [1, 5])
@pytest.mark.parametrize("shape, spec", CASES, ids=IDS)
@pytest.mark.parametrize("activation", ["identity", "relu", "tanh"])
def test_conv_matches_reference(shape, spec, n_samples, dtype, activation, rng,
                                n_threads):
    # A chunk of 2 samples exercises several chunks and a ragged last one.
    layer = make_layer(shape, spec, dtype, rng, activation, chunk=2)
    x = rng.standard_normal((n_samples, *shape)).astype(dtype)
    grad_output = rng.standard_normal((n_samples, *layer.output_shape)).astype(dtype)
    out, grad_input, grad_w, grad_b = run_forward_backward(
        layer, x, grad_output, n_threads)

    stride, pads = (layer.stride_h, layer.stride_w), (layer.pad_top, layer.pad_left)
    expected = ref.conv2d_forward(x, layer.weights, layer.bias, stride, pads,
                                  layer.output_shape[:2], activation)
    assert out.dtype == dtype

    def close(actual, expected, magnitude=0.0):
        # float32 Winograd F(4x4, 3x3) or the series' 10 points (training):
        # errors relative to the largest terms, see float32_tolerance.
        scaled = (float32_tolerance(expected, magnitude) if dtype == np.float32
                  else {})
        np.testing.assert_allclose(actual, expected, **{**tolerance(dtype), **scaled})

    # Behind tanh the largest terms are the pre-activations.
    linear = ref.conv2d_forward(x, layer.weights, layer.bias, stride, pads,
                                layer.output_shape[:2], "identity")
    close(out, expected, float(np.abs(linear).max()))
    exp_gx, exp_gw, exp_gb = ref.conv2d_backward(
        x, layer.weights, out, grad_output, stride, pads, activation)
    close(grad_input, exp_gx)
    close(grad_w, exp_gw)
    close(grad_b, exp_gb)


WINOGRAD_CASES = [(shape, spec) for shape, spec in CASES if shape[2] >= 8]


@pytest.mark.parametrize("shape, spec", WINOGRAD_CASES)
def test_winograd_path_is_taken_and_agrees_with_im2col(shape, spec, rng):
    # The reference test above checks the values; this one that the
    # Winograd kernels really ran (their rounding differs from im2col's in
    # float32: output, input gradient, weight gradient) and that both paths
    # agree to float32 precision.
    x = rng.standard_normal((5, *shape)).astype(np.float32)
    results = {}
    for winograd in (True, False):
        layer = make_layer(shape, spec, np.float32, np.random.default_rng(0),
                           "relu", chunk=2)
        layer.winograd = winograd
        grad_output = np.random.default_rng(1).standard_normal(
            (5, *layer.output_shape)).astype(np.float32)
        results[winograd] = run_forward_backward(layer, x, grad_output, 2)
        assert layer.winograd_back == (winograd and spec.filters >= 8)
    (out, grad_input, grad_w, grad_b), (out_ref, grad_input_ref, grad_w_ref,
                                        grad_b_ref) = results[True], results[False]
    assert not np.array_equal(out, out_ref)
    assert not np.array_equal(grad_w, grad_w_ref)
    # Training runs F(4x4, 3x3) or the series' 10 points: float32 errors
    # within 2e-5 of the largest values (F(2x2, 3x3) and the series' 8
    # points, in predict, are checked against ONNX Runtime).
    for actual, expected in ((out, out_ref), (grad_input, grad_input_ref),
                             (grad_w, grad_w_ref)):
        np.testing.assert_allclose(actual, expected, **float32_tolerance(expected))
    # Winograd sums the bias gradient from its transformed tiles, a float
    # sum per tile first.
    np.testing.assert_allclose(grad_b, grad_b_ref, rtol=1e-6)
    if spec.filters >= 8:
        assert not np.array_equal(grad_input, grad_input_ref)


def test_winograd_weights_refuses_mismatched_arrays():
    from sklearn_cnn._kernels import _conv

    weights = np.zeros((3, 3, 8, 4))
    good = np.zeros(_conv.winograd_weights_shape(8, 4))
    with pytest.raises(ValueError, match="3x3 weights"):
        _conv.winograd_weights(np.zeros((3, 2, 8, 4)), good)
    with pytest.raises(ValueError, match="winograd_weights_shape"):
        _conv.winograd_weights(weights, np.zeros(_conv.winograd_weights_shape(8, 5)))
    with pytest.raises(ValueError, match="one value per output channel"):
        _conv.winograd_weights(weights, good, np.ones(3))
    # G g G^T of a kernel with a single 1 at the centre: G's middle column
    # squared, (0, 1/2, -1/2, 0) outer itself, for that channel pair only.
    weights[1, 1, 2, 3] = 1
    _conv.winograd_weights(weights, good)
    planes = good[:, :32].reshape(4, 4, 8, 4)
    column = np.array([0, 0.5, -0.5, 0])
    np.testing.assert_array_equal(planes[:, :, 2, 3], np.outer(column, column))
    assert np.count_nonzero(planes) == 4


def test_winograd4_weights_known_transform_and_tile_checks():
    from sklearn_cnn._kernels import _conv

    # F(4x4, 3x3): 36 planes; the centre tap's transform is the outer
    # product of G's middle column, (0, -1/6, 1/6, 1/12, -1/12, 0).
    weights = np.zeros((3, 3, 8, 4))
    weights[1, 1, 2, 3] = 1
    transformed = np.zeros(_conv.winograd_weights_shape(8, 4, tile=4))
    assert transformed.shape[0] == 36
    _conv.winograd_weights(weights, transformed)
    planes = transformed[:, :32].reshape(6, 6, 8, 4)
    column = np.array([0, -1 / 6, 1 / 6, 1 / 12, -1 / 12, 0])
    np.testing.assert_allclose(planes[:, :, 2, 3], np.outer(column, column), rtol=1e-15)
    assert np.count_nonzero(planes) == 16
    with pytest.raises(ValueError, match="16 or 36 planes"):
        _conv.winograd_weights(weights, np.zeros((25, transformed.shape[1])))
    with pytest.raises(ValueError, match="tile must be 2, 4 or a series"):
        _conv.winograd_weights_shape(8, 4, tile=3)


def test_training_uses_winograd4_and_prediction_winograd2():
    layer = build(Conv2D(16, 3, 1, "same"), (12, 12, 8))
    layer.bind({"weights": np.ones((3, 3, 8, 16)), "bias": np.zeros(16)}, {})
    layer.allocate(4, np.float32, 1, training=True, needs_input_grad=True)
    assert layer.winograd_weights.shape[0] == 36
    assert layer.winograd_back_weights.shape[0] == 36
    assert layer.winograd_weight_grad.shape[0] == 36
    layer.allocate(4, np.float32, 1, training=False, needs_input_grad=False)
    assert layer.winograd_weights.shape[0] == 16


def test_conv_output_sizes():
    assert build(Conv2D(1, 3, 2, "same"), (7, 9, 1)).output_shape == (4, 5, 1)
    assert build(Conv2D(1, 3, 1, "valid"), (7, 9, 1)).output_shape == (5, 7, 1)
    assert build(Conv2D(2, 3, 2, 1), (8, 8, 1)).output_shape == (4, 4, 2)


@pytest.mark.parametrize("shape, spec", CASES[:6] + CASES[9:11] + CASES[14:16],
                         ids=IDS[:6] + IDS[9:11] + IDS[14:16])
def test_conv_passes_the_shared_layer_checks(shape, spec):
    def oracle(x, params):
        layer = build(spec, shape)
        stride, pads = (layer.stride_h, layer.stride_w), (layer.pad_top, layer.pad_left)
        return ref.conv2d_forward(x, params["conv_layers.0.weights"],
                                  params["conv_layers.0.bias"], stride, pads,
                                  layer.output_shape[:2], "tanh")

    check_layer(spec, shape, oracle=oracle, activation="tanh")


def test_conv_first_layer_skips_input_gradient(rng):
    layer = make_layer((6, 6, 2), Conv2D(3), np.float64, rng)
    x = rng.standard_normal((2, 6, 6, 2))
    layer.allocate(2, np.float64, 1, training=True, needs_input_grad=False)
    layer.forward(x, 1)
    assert layer.backward(np.ones((2, 6, 6, 3)), 1) is None
    _, expected_gw, _ = ref.conv2d_backward(x, layer.weights, layer.output,
                                            np.ones((2, 6, 6, 3)), (1, 1), (1, 1))
    np.testing.assert_allclose(layer.grad_weights, expected_gw, rtol=1e-10)


@pytest.mark.parametrize("channels", [3, 8])  # im2col, Winograd
def test_conv_gradients_do_not_depend_on_thread_count(rng, channels):
    layer = make_layer((10, 10, channels), Conv2D(8), np.float32, rng, "relu",
                       chunk=3)
    x = rng.standard_normal((16, 10, 10, channels)).astype(np.float32)
    grad_output = rng.standard_normal((16, 10, 10, 8)).astype(np.float32)
    results = [run_forward_backward(layer, x, grad_output, t) for t in (1, 2, 3, 4)]
    assert layer.winograd_back == (channels == 8)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("filters", [5, 16, 37, 70])
@pytest.mark.parametrize("pooled", [False, True], ids=["conv", "conv-maxpool"])
@pytest.mark.parametrize("channels", [3, 8], ids=["im2col", "winograd"])
def test_bias_gradient_sums_every_column(filters, pooled, channels, rng):
    # The chunks' column sums run in blocks of 32 and 16 columns, then the
    # rest (_column_sums.h): widths that take each (70 = 32 + 32 + 6).
    # Winograd's weight gradient sums them from its transformed tiles
    # instead (5x6 maps: partial F(4x4) tiles).
    from sklearn_cnn.layers import MaxPool2D, Sequential

    shape = (5, 6, channels)
    spec = Sequential((Conv2D(filters), MaxPool2D(2))) if pooled else Conv2D(filters)
    layer = build(spec, shape, activation="identity", fuse=pooled)
    if pooled:  # the convolution with its max-pool fused
        (layer,) = layer.layers
        assert layer.pool is not None
    layer.im2col_chunk = 2
    layer.bind({name: rng.standard_normal(info.shape)
                for name, info in layer.parameters().items()}, {})
    x = rng.standard_normal((5, *shape))
    grad_output = rng.standard_normal((5, *layer.output_shape))
    for n_threads in (1, 2):
        _, _, _, grad_bias = run_forward_backward(layer, x, grad_output, n_threads)
        assert layer.winograd_active == (channels == 8)
        # Each output's gradient reaches the bias once (pooled: at its winner).
        np.testing.assert_allclose(grad_bias, grad_output.sum(axis=(0, 1, 2)),
                                   rtol=1e-12, atol=1e-12)


def dilated_as_dense(weights, dilation):
    """The dense kernel with zeros between the taps: the same convolution."""
    kh, kw, channels, filters = weights.shape
    dense = np.zeros(((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1, channels,
                      filters))
    dense[::dilation[0], ::dilation[1]] = weights
    return dense


DILATED = [
    ((9, 11, 3), Conv2D(4, 3, 1, "same", dilation=2)),
    ((9, 11, 1), Conv2D(3, 3, 1, "same", dilation=(2, 3))),   # one channel: taps-major
    ((9, 11, 2), Conv2D(3, (2, 3), 2, "valid", dilation=(3, 2))),
    ((8, 10, 2), Conv2D(2, 2, (1, 2), 1, dilation=(1, 4))),
    ((1, 30, 2), Conv2D(3, (1, 4), 1, "same", dilation=(1, 5))),
]


@pytest.mark.parametrize("shape, spec", DILATED,
                         ids=[f"{s}-{c.kernel_size}-{c.dilation}" for s, c in DILATED])
def test_dilated_conv_passes_the_shared_layer_checks(shape, spec):
    def oracle(x, params):
        layer = build(spec, shape)
        dilation = (layer.dilation_h, layer.dilation_w)
        return ref.conv2d_forward(
            x, dilated_as_dense(params["conv_layers.0.weights"], dilation),
            params["conv_layers.0.bias"], (layer.stride_h, layer.stride_w),
            (layer.pad_top, layer.pad_left), layer.output_shape[:2], "tanh")

    layer = check_layer(spec, shape, oracle=oracle, activation="tanh")
    if spec.padding == "same":
        assert layer.output_shape[:2] == tuple(-(-s // st) for s, st in zip(
            shape[:2], (layer.stride_h, layer.stride_w)))


SERIES_CASES = [(shape, spec) for shape, spec in WINOGRAD_CASES if shape[0] == 1]


@pytest.mark.parametrize("shape, spec", SERIES_CASES,
                         ids=[f"{s}-{c.kernel_size}-{c.padding}" for s, c in SERIES_CASES])
def test_series_winograd_passes_the_shared_layer_checks(shape, spec):
    from sklearn_cnn.layers import Conv1D

    padding = spec.padding if isinstance(spec.padding, str) else spec.padding[1]
    series = Conv1D(spec.filters, spec.kernel_size[1], padding=padding)

    def oracle(x, params):
        layer = build(series, shape)
        return ref.conv2d_forward(x, params["conv_layers.0.weights"],
                                  params["conv_layers.0.bias"], (1, 1),
                                  (0, layer.pad_left), layer.output_shape[:2], "tanh")

    layer = check_layer(series, shape, oracle=oracle, activation="tanh")
    assert layer.winograd_series and layer.winograd_active


@pytest.mark.parametrize("shape, spec", SERIES_CASES[:3])
@pytest.mark.parametrize("n_samples", [1, 3, 7])
def test_series_winograd_predicts_as_the_reference(shape, spec, n_samples, rng):
    # Prediction runs the same F(9 - r, r) (no less precise tile as in 2-D);
    # one to three series take im2col's blocks of columns instead.
    layer = make_layer(shape, spec, np.float32, rng, "relu", chunk=2)
    layer.allocate(n_samples, np.float32, 2, training=False, needs_input_grad=False)
    x = rng.standard_normal((n_samples, *shape)).astype(np.float32)
    out = layer.forward(x, 2)
    assert (layer.winograd_weights.shape[0] == 8) and layer.winograd_series
    expected = ref.conv2d_forward(x.astype(np.float64), layer.weights, layer.bias,
                                  (1, 1), (0, layer.pad_left), layer.output_shape[:2],
                                  "relu")
    np.testing.assert_allclose(out, expected, **float32_tolerance(expected))


def test_series_winograd_gradients_do_not_depend_on_thread_count(rng):
    layer = make_layer((1, 50, 8), Conv2D(16, (1, 5)), np.float32, rng, "relu",
                       chunk=3)
    x = rng.standard_normal((16, 1, 50, 8)).astype(np.float32)
    grad_output = rng.standard_normal((16, 1, 50, 16)).astype(np.float32)
    results = [run_forward_backward(layer, x, grad_output, t) for t in (1, 2, 3, 4)]
    assert layer.winograd_series and layer.winograd_back
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_which_series_convolutions_take_winograd():
    from sklearn_cnn.layers import Conv1D

    def series_path(spec, channels=8, length=40):
        return build(spec, (1, length, channels)).winograd_series

    assert all(series_path(Conv1D(8, k)) for k in range(3, 8))
    # The FCN's first layer (8 taps), 1 or 2 taps, strides, dilations and
    # fewer than 8 channels keep im2col.
    assert not series_path(Conv1D(128, 8))
    assert not series_path(Conv1D(8, 2))
    assert not series_path(Conv1D(8, 3, stride=2))
    assert not series_path(Conv1D(8, 3, dilation=2))
    assert not series_path(Conv1D(8, 3), channels=4)
    # A 1 x k kernel over an image (height > 1) is 2-D work.
    assert not build(Conv2D(8, (1, 3)), (4, 40, 8)).winograd


def test_series_winograd_needs_enough_tiles(monkeypatch):
    # Below WINOGRAD_SERIES_MIN_TILES tiles per chunk a series' convolution
    # keeps im2col, decided per allocation from the batch size (training)
    # and per call for a few series (prediction).
    from sklearn_cnn.layers import Conv1D, _conv

    monkeypatch.setattr(_conv, "WINOGRAD_SERIES_MIN_TILES", 24)
    rng = np.random.default_rng(0)
    # ItalyPowerDemand's shape: 24 steps, per series 4 tiles of 6 outputs in
    # training (10 points), 6 tiles of 4 in prediction (8 points).
    short = build(Conv1D(16, 5), (1, 24, 8))
    short.bind({"weights": rng.standard_normal((1, 5, 8, 16)), "bias": np.zeros(16)}, {})
    short.allocate(6, np.float64, 2, training=True, needs_input_grad=True)
    assert short.winograd_series and not short.winograd_active  # chunks of 2: 8
    assert short.winograd_weight_grad is None
    short.allocate(32, np.float64, 2, training=True, needs_input_grad=True)
    assert short.winograd_active  # chunks of 8 series: 32 tiles
    assert short.winograd_weights.shape[0] == 10
    short.allocate(500, np.float64, 2, training=False, needs_input_grad=False)
    assert short.winograd_active
    short.forward(rng.standard_normal((1, 1, 24, 8)), 2)  # one series: 6 tiles
    assert not short._takes_winograd(True)
    long = build(Conv1D(16, 5), (1, 427, 8))
    long.bind({"weights": rng.standard_normal((1, 5, 8, 16)), "bias": np.zeros(16)}, {})
    long.allocate(500, np.float64, 2, training=False, needs_input_grad=False)
    assert long._takes_winograd(True)


@pytest.mark.parametrize("columns_per_block", [0, 256], ids=["chunks", "one-chunk"])
@pytest.mark.parametrize("with_scale", [False, True])
def test_series_winograd_kernel_scale_bias_and_activation(columns_per_block,
                                                          with_scale, rng):
    # The kernel's own contract, also where the layers never go: without a
    # scale the output transform adds the bias; a scale (multiplier before
    # the bias) keeps the bias in the epilogue.  Chunks of samples, and a few
    # series as one chunk shared by the threads (blocks of columns asked).
    from sklearn_cnn._kernels import _conv
    from sklearn_cnn.layers._base import ACTIVATION_CODES

    series = _conv.WINOGRAD_SERIES_TILE
    x = rng.standard_normal((3, 1, 40, 8))
    weights = rng.standard_normal((1, 5, 8, 12))
    bias = rng.standard_normal(12)
    scale = rng.standard_normal(12) if with_scale else None
    transformed = np.empty(_conv.winograd_weights_shape(8, 12, series))
    _conv.winograd_weights(weights, transformed)
    out = np.empty((3, 1, 40, 12))
    cols = np.empty((2, _conv.winograd_scratch_size(3, 1, 40, 8, 12, series, 5)))
    _conv.conv2d_forward(x, weights.reshape(-1, 12), bias, out, cols, 1, 5, 1, 1, 0, 2,
                         1, 1, 2, ACTIVATION_CODES["relu"], 2, scale, 0,
                         columns_per_block, transformed)
    conv = ref.conv2d_forward(x, weights, np.zeros(12), (1, 1), (0, 2), (1, 40),
                              "identity")
    expected = np.maximum(conv * (1 if scale is None else scale) + bias, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("height, width, pad, pool", [
    (11, 9, 1, None), (11, 9, 1, (2, 2)), (11, 9, 1, (3, 2)),
    (6, 5, 0, None), (6, 5, 0, (2, 2)), (3, 3, 0, None)],
    ids=["conv", "pool", "overlap", "valid", "valid-pool", "one-output"])
@pytest.mark.parametrize("with_scale", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_few_images_by_winograd_match_chunks_and_threads(tile, height, width, pad,
                                                        pool, with_scale, dtype, rng):
    # Row blocks with 2-D Winograd weights (a few images in prediction)
    # convolve each block of whole tiles as a chunk, or, for a negative count
    # of rows, each image by all threads together.  Shared: the same bits as a chunk
    # of that one image (the same GEMMs), whatever the thread count.  Blocks:
    # the same bits at any thread count (whether they are the chunk's depends
    # on the BLAS kernels: their GEMMs are shorter).  Both give the
    # reference's values; partial tiles and maps smaller than one tile
    # included.
    from sklearn_cnn._kernels import _conv
    from sklearn_cnn.layers._base import ACTIVATION_CODES

    n, channels, filters = 3, 8, 12
    out_h, out_w = height + 2 * pad - 2, width + 2 * pad - 2
    x = rng.standard_normal((n, height, width, channels)).astype(dtype)
    weights = rng.standard_normal((3, 3, channels, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    scale = rng.uniform(0.5, 2, filters).astype(dtype) if with_scale else None
    transformed = np.empty(_conv.winograd_weights_shape(channels, filters, tile), dtype)
    _conv.winograd_weights(weights, transformed)
    relu = ACTIVATION_CODES["relu"]
    conv = ref.conv2d_forward(x, weights, np.zeros(filters), (1, 1), (pad, pad),
                              (out_h, out_w), "identity")
    expected = np.maximum(conv * (1 if scale is None else scale) + bias, 0)

    def run(rows_per_block, n_threads, share=False):
        per_thread = max(
            _conv.winograd_scratch_size(1, out_h, out_w, channels, filters, tile),
            -(-_conv.winograd_shared_scratch_size(out_h, out_w, channels, filters,
                                                  tile, n_threads) // n_threads))
        cols = np.full((n_threads, per_thread), np.nan, dtype)
        if pool is None:
            out = np.empty((n, out_h, out_w, filters), dtype)
            _conv.conv2d_forward(x, weights.reshape(-1, filters), bias, out, cols,
                                 3, 3, 1, 1, pad, pad, 1, 1, 1, relu, n_threads, scale,
                                 -rows_per_block if share else rows_per_block, 0,
                                 transformed)
            return out
        size, stride = pool
        pooled = np.empty((n, (out_h - size) // stride + 1, (out_w - size) // stride + 1,
                           filters), dtype)
        _conv.conv2d_maxpool_forward(
            x, weights.reshape(-1, filters), bias, pooled, None, cols,
            np.empty((n_threads, out_h * out_w * filters), dtype),
            3, 3, 1, 1, pad, pad, 1, 1, out_h, out_w, size, size, stride, stride,
            1, -rows_per_block if share else rows_per_block, relu, n_threads, scale,
            transformed, True)
        return pooled

    chunks = run(0, 1)
    if pool is not None:
        size, stride = pool
        expected = ref.max_pool2d_forward(expected, (size, size), (stride, stride))
    tolerance = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(chunks, expected, rtol=tolerance, atol=tolerance)
    for n_threads in (1, 2, 3):
        np.testing.assert_array_equal(run(2, n_threads, share=True), chunks)
    # Blocks start on the image's tiles: whole tiles of rows, or pooled rows
    # whose windows start there.
    rows = tile if pool is None else tile // math.gcd(pool[1], tile)
    blocks = run(rows, 1)
    np.testing.assert_allclose(blocks, expected, rtol=tolerance, atol=tolerance)
    for n_threads in (2, 3):
        np.testing.assert_array_equal(run(rows, n_threads), blocks)
    with pytest.raises(ValueError, match="too small"):
        cols = np.empty((1, 10), dtype)
        _conv.conv2d_forward(x, weights.reshape(-1, filters), bias,
                             np.empty_like(conv, dtype=dtype),
                             cols, 3, 3, 1, 1, pad, pad, 1, 1, 1, relu, 1, None, -2, 0,
                             transformed)


def test_series_winograd_arrays_are_checked():
    from sklearn_cnn._kernels import _conv

    series = _conv.WINOGRAD_SERIES_TILE
    transformed = np.zeros(_conv.winograd_weights_shape(8, 4, series))
    assert transformed.shape == (8, 8 * 4 + 16)
    with pytest.raises(ValueError, match="1 x 3..7 weights"):
        _conv.winograd_weights(np.zeros((1, 8, 8, 4)), transformed)
    with pytest.raises(ValueError, match="1 x 3..7 weights"):
        _conv.winograd_weights(np.zeros((3, 3, 8, 4)), transformed)
    with pytest.raises(ValueError, match="3 to 7 taps"):
        _conv.winograd_scratch_size(2, 1, 10, 8, 4, series, kernel_w=8)
    # Series' arrays given for an image's 3x3 convolution: refused.
    x = np.zeros((2, 5, 5, 8))
    with pytest.raises(ValueError, match="maps of height 1"):
        _conv.conv2d_forward(x, np.zeros((72, 4)), np.zeros(4), np.zeros((2, 5, 5, 4)),
                             np.zeros((1, 10**5)), 3, 3, 1, 1, 1, 1, 1, 1, 2, 0, 1,
                             None, 0, 0, transformed)
    # And a 2-D Winograd array for a series' 1 x 5 kernel.
    with pytest.raises(ValueError, match="3x3 kernels"):
        _conv.conv2d_forward(np.zeros((2, 1, 9, 8)), np.zeros((40, 4)), np.zeros(4),
                             np.zeros((2, 1, 9, 4)), np.zeros((1, 10**5)), 1, 5, 1, 1,
                             0, 2, 1, 1, 2, 0, 1, None, 0, 0,
                             np.zeros(_conv.winograd_weights_shape(8, 4)))


@pytest.mark.parametrize("points", [8, 10])
def test_series_winograd_transform_is_exact_on_polynomials(points):
    # In float64, F(points + 1 - r, r) reproduces the correlation of integer
    # data to rounding: a check of B^T, G and A^T themselves, tap by tap.
    from sklearn_cnn._kernels import _conv

    # The two tiles (transforms) the layers use.
    assert {_conv.WINOGRAD_SERIES_TILE, _conv.WINOGRAD_SERIES_TRAINING_TILE} == {8, 10}
    series = points
    for taps in range(3, 8):
        x = np.arange(1.0, 15.0).reshape(1, 1, 14, 1).repeat(8, axis=3)
        weights = np.zeros((1, taps, 8, 1))
        weights[0, :, 0, 0] = np.arange(1.0, taps + 1)
        transformed = np.empty(_conv.winograd_weights_shape(8, 1, series))
        _conv.winograd_weights(weights, transformed)
        out_w = 14 - taps + 1
        out = np.empty((1, 1, out_w, 1))
        cols = np.empty((1, _conv.winograd_scratch_size(1, 1, out_w, 8, 1, series, taps)))
        _conv.conv2d_forward(x, weights.reshape(-1, 1), np.zeros(1), out, cols, 1, taps,
                             1, 1, 0, 0, 1, 1, 1, 0, 1, None, 0, 0, transformed)
        expected = np.correlate(np.arange(1.0, 15.0), np.arange(1.0, taps + 1), "valid")
        np.testing.assert_allclose(out.ravel(), expected, rtol=1e-13)


def test_dilated_conv_fused_with_max_pool_and_in_1d():
    from sklearn_cnn.layers import Conv1D, MaxPool2D, Sequential

    check_layer(Sequential((Conv2D(3, 3, dilation=2), MaxPool2D(2))), (9, 8, 2), fuse=True)
    layer = check_layer(Conv1D(3, 3, dilation=4), (1, 20, 2))
    assert (layer.kernel_w, layer.dilation_w, layer.output_shape) == (3, 4, (1, 20, 3))
    with pytest.raises(ValueError, match=r"3x3 kernel \(dilated to 9x9\) does not fit "
                                         r"the 5x5"):
        build(Conv2D(2, 3, padding="valid", dilation=4), (5, 5, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, pool, stride", [(1, 2, 2), (8, 2, 2), (8, 3, 2)],
                         ids=["im2col", "winograd", "overlapping"])
@pytest.mark.parametrize("rows_per_block", [0, 3], ids=["chunks", "row-blocks"])
@pytest.mark.parametrize("activation, scale_sign", [
    ("relu", 1), ("identity", 1), ("relu", None), ("relu", -1)])
def test_pooling_before_the_epilogue_gives_the_same_bits(
        dtype, channels, pool, stride, rows_per_block, activation, scale_sign, rng):
    """Prediction's pool_first: bias, a non-negative multiplier and ReLU (or
    identity) after the max-pool instead of before, with the same bits (and
    not with a negative multiplier).  Prediction's pooling without argmax
    gives the same bits as training's with it."""
    from sklearn_cnn._kernels import _conv
    from sklearn_cnn.layers._base import ACTIVATION_CODES

    n, height, width, filters = 5, 11, 10, 9
    x = rng.standard_normal((n, height, width, channels)).astype(dtype)
    weights = rng.standard_normal((3, 3, channels, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    scale = None if scale_sign is None else (scale_sign * rng.random(filters)).astype(dtype)
    pooled_h, pooled_w = (height - pool) // stride + 1, (width - pool) // stride + 1
    transformed = None
    if channels >= 8 and rows_per_block == 0:
        transformed = np.empty(_conv.winograd_weights_shape(channels, filters), dtype)
        _conv.winograd_weights(weights, transformed, scale)
    chunk = 2
    size = max(chunk * height * width * 9 * channels,
               _conv.winograd_scratch_size(chunk, height, width, channels, filters))
    results = []
    for pool_first in (False, True):
        without_argmax = []
        for keep_argmax in (True, False):
            pooled = np.empty((n, pooled_h, pooled_w, filters), dtype)
            argmax = np.empty(pooled.shape, np.int32) if keep_argmax else None
            _conv.conv2d_maxpool_forward(
                x, weights.reshape(-1, filters), bias, pooled, argmax,
                np.empty((2, size), dtype),
                np.empty((2, chunk * height * width * filters), dtype),
                3, 3, 1, 1, 1, 1, 1, 1, height, width, pool, pool, stride, stride,
                chunk, rows_per_block, ACTIVATION_CODES[activation], 2,
                None if transformed is not None else scale, transformed, pool_first)
            without_argmax.append(pooled)
        np.testing.assert_array_equal(without_argmax[1], without_argmax[0])
        results.append(without_argmax[0])
    if scale_sign == -1 and transformed is None:
        # A negative multiplier in the epilogue turns the max into a min: why
        # the caller passes pool_first only without one.  (Folded into
        # Winograd weights, the multiplier comes before the pool anyway.)
        assert not np.array_equal(results[1], results[0])
        return
    np.testing.assert_array_equal(results[1], results[0])
    if activation == "relu":
        assert (results[0] == 0).any() and (results[0] > 0).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fold_batchnorm_is_numpys_expression_bit_for_bit(dtype, rng):
    """The kernel replaced ``scale / np.sqrt(var + eps)`` and ``(b - mean) * m
    + shift`` in the prediction path: it must give the same bits."""
    from sklearn_cnn._kernels import _conv

    n = 37
    conv_bias, scale, shift, mean = (rng.normal(size=n).astype(dtype) for _ in range(4))
    var = rng.uniform(0, 3, size=n).astype(dtype)
    var[0] = 0  # a channel that never varied
    multiplier, bias = np.empty(n, dtype), np.empty(n, dtype)
    nonnegative = _conv.fold_batchnorm(conv_bias, scale, shift, mean, var, 1e-5,
                                       multiplier, bias)
    expected = scale / np.sqrt(var.astype(np.float64) + 1e-5)
    np.testing.assert_array_equal(multiplier, expected.astype(dtype))
    np.testing.assert_array_equal(bias, ((conv_bias - mean) * expected + shift).astype(dtype))
    assert nonnegative is bool(np.all(multiplier >= 0)) is False  # scale has negatives
    assert _conv.fold_batchnorm(conv_bias, np.abs(scale), shift, mean, var, 1e-5,
                                multiplier, bias) is True
    with pytest.raises(ValueError, match="one value per channel"):
        _conv.fold_batchnorm(conv_bias, scale[:-1], shift, mean, var, 1e-5, multiplier, bias)


def test_balanced_chunks_stay_within_their_scratch_and_share_evenly():
    from sklearn_cnn.layers._conv import CHUNK_GROUP, balanced_chunk, chunk_count

    for cap in range(1, 30):
        for n in range(1, 300):
            size = balanced_chunk(n, cap)
            made = -(-n // size)
            assert 1 <= size <= cap  # scratch is allocated for cap samples
            # ... and weight-gradient scratch for the batch size's chunk count.
            assert made <= chunk_count(n, cap) <= chunk_count(300, cap)
            assert chunk_count(n, cap) % CHUNK_GROUP == 0
    # The cases that motivated it: 41 samples at 20 per chunk were 20 + 20 + 1
    # (now 11 + 11 + 11 + 8), 128 were six of 20 and 8 (now eight of 16).
    assert balanced_chunk(41, 20) == 11
    assert balanced_chunk(128, 20) == 16
    assert balanced_chunk(0, 7) == 7


def wide_mode():
    """The loaded conv module's mode in prediction: 16-wide transforms, and
    fused chunks where OpenBLAS's AVX-512 kernels run (layers._conv)."""
    from sklearn_cnn._blas_kernels import has_small_matrix_kernels

    return 2 if has_small_matrix_kernels() else 1


@pytest.fixture
def wide_transforms():
    """The loaded conv module, with its 16-wide float transforms on (skips
    where this CPU or build has none); as in prediction afterwards."""
    from sklearn_cnn.layers._conv import _conv

    _conv.set_wide_transforms(True)
    if not _conv.set_wide_transforms(wide_mode()):
        pytest.skip("no 16-wide (AVX-512) transforms here: baseline build or CPU")
    yield _conv
    _conv.set_wide_transforms(wide_mode())


def test_wide_transforms_follow_the_cpu():
    # The AVX2 build asks CPUID and XGETBV itself whether AVX-512 runs here:
    # on Linux that must agree with the kernel's own flags.
    import os

    from sklearn_cnn._kernels import _conv, _platform

    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo to compare with")
    flags = set()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    assert not _conv.set_wide_transforms(True)  # the baseline build: never
    if not _platform.has_avx2():
        pytest.skip("no AVX2 build runs here")
    try:
        from sklearn_cnn._kernels import _conv_avx2
    except ImportError:
        pytest.skip("built without the AVX2 modules")
    _conv_avx2.set_wide_transforms(True)
    assert _conv_avx2.set_wide_transforms(wide_mode()) == ("avx512f" in flags)


@pytest.mark.parametrize("channels, filters", [(16, 16), (32, 16), (48, 16), (16, 32),
                                               (32, 48), (17, 16), (16, 20)])
@pytest.mark.parametrize("height, width, pad", [(28, 28, 1), (11, 9, 1), (6, 5, 0)])
def test_wide_winograd_transforms_give_the_same_bits(wide_transforms, channels,
                                                     filters, height, width, pad, rng):
    # Prediction's float F(2x2) transforms run 16 channels wide where the
    # CPU can: the same additions lane by lane, so the same bits as the
    # 8-wide loops, in chunks, in blocks of rows and in the one-image shared
    # path (partial
    # tiles, maps with inner tiles and with none, channel counts that are
    # not multiples of 16 on either side); and the reference's values.  With
    # 16 filters (and 16, 32 or 48 channels) chunks and blocks of rows run
    # fused, in groups of 8 tiles and a shorter last group, where OpenBLAS's
    # AVX-512 kernels run: their products' chains of FMAs give its bits.
    from sklearn_cnn.layers._base import ACTIVATION_CODES

    _conv = wide_transforms
    n, relu = 2, ACTIVATION_CODES["relu"]
    out_h, out_w = height + 2 * pad - 2, width + 2 * pad - 2
    x = rng.standard_normal((n, height, width, channels)).astype(np.float32)
    weights = rng.standard_normal((3, 3, channels, filters)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    transformed = np.empty(_conv.winograd_weights_shape(channels, filters, 2),
                           np.float32)
    _conv.winograd_weights(weights, transformed)

    def run(rows_per_block, n_threads, share=False):
        size = max(_conv.winograd_scratch_size(n, out_h, out_w, channels, filters, 2),
                   _conv.winograd_shared_scratch_size(out_h, out_w, channels, filters,
                                                      2, n_threads))
        out = np.empty((n, out_h, out_w, filters), np.float32)
        _conv.conv2d_forward(x, weights.reshape(-1, filters), bias, out,
                             np.full((n_threads, size), np.nan, np.float32),
                             3, 3, 1, 1, pad, pad, 1, 1, n, relu, n_threads, None,
                             -rows_per_block if share else rows_per_block, 0, transformed)
        return out

    runs = [(0, 1), (2, 1), (2, 3), (2, 1, True), (2, 2, True), (2, 3, True)]
    wide = [run(*args) for args in runs]
    _conv.set_wide_transforms(False)
    narrow = [run(*args) for args in runs]
    for a, b in zip(wide, narrow):
        np.testing.assert_array_equal(a, b)
    conv = ref.conv2d_forward(x.astype(np.float64), weights.astype(np.float64),
                              np.zeros(filters), (1, 1), (pad, pad), (out_h, out_w),
                              "identity")
    np.testing.assert_allclose(wide[0], np.maximum(conv + bias, 0), rtol=2e-4,
                               atol=2e-4)


@pytest.mark.parametrize("channels, filters", [(16, 16), (32, 16), (16, 32), (48, 64),
                                               (17, 16), (16, 20)])
@pytest.mark.parametrize("height, width", [(28, 28), (11, 9), (5, 6)])
def test_wide_winograd4_transforms_give_the_same_bits(wide_transforms, channels,
                                                      filters, height, width, rng):
    # Training's F(4x4) transforms (input tiles, output tiles, the output
    # gradient's tiles of the weight gradient) run 16 channels wide where
    # the CPU can: the same bits as the 8-wide loops in the forward, the
    # input gradient and the weight gradient, with partial tiles and channel
    # counts that are not multiples of 16 on either side.
    _conv = wide_transforms
    layer = make_layer((height, width, channels), Conv2D(filters), np.float32, rng,
                       "relu", chunk=3)
    x = rng.standard_normal((7, height, width, channels)).astype(np.float32)
    grad_output = rng.standard_normal((7, *layer.output_shape)).astype(np.float32)
    wide = run_forward_backward(layer, x, grad_output, 2)
    assert layer.winograd_weights.shape[0] == 36 and layer.winograd_back
    _conv.set_wide_transforms(False)
    narrow = run_forward_backward(layer, x, grad_output, 2)
    for a, b in zip(wide, narrow):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def own_products(wide_transforms):
    """The loaded conv module in mode 2, where our own products stand in for
    OpenBLAS's (skips where they never run: no AVX-512 kernels of OpenBLAS,
    or no AVX-512 build or CPU)."""
    from sklearn_cnn._blas_kernels import has_small_matrix_kernels

    if not has_small_matrix_kernels():
        pytest.skip("OpenBLAS without its AVX-512 kernels here: our products never run")
    yield wide_transforms


def _relu_forwards_in_modes_2_and_3(_conv, weights, bias, geometry, runs):
    """conv2d_forward + ReLU of each run ``(x, out_h, out_w, pads,
    samples_per_chunk, rows_per_block, n_threads)`` in mode 2 (our own
    products), asserting that mode 3 (OpenBLAS's, after im2col) gives the same
    bits; scratch full of NaN.  ``geometry``: (kernel_h, kernel_w), (stride_h,
    stride_w), (dilation_h, dilation_w)."""
    from sklearn_cnn.layers._base import ACTIVATION_CODES

    (kernel_h, kernel_w), (stride_h, stride_w), (dilation_h, dilation_w) = geometry
    taps, filters = weights.shape

    def run(x, out_h, out_w, pads, samples_per_chunk, rows_per_block, n_threads):
        out = np.empty((len(x), out_h, out_w, filters), np.float32)
        cols = np.full((n_threads, samples_per_chunk * out_h * out_w * taps), np.nan,
                       np.float32)
        _conv.conv2d_forward(x, weights, bias, out, cols, kernel_h, kernel_w, stride_h,
                             stride_w, *pads, dilation_h, dilation_w, samples_per_chunk,
                             ACTIVATION_CODES["relu"], n_threads, None, rows_per_block)
        return out

    own = [run(*args) for args in runs]
    _conv.set_wide_transforms(3)
    for args, result in zip(runs, own):
        np.testing.assert_array_equal(result, run(*args))
    return own


@pytest.mark.parametrize("channels, filters, kernel, stride", [
    (16, 64, 3, 2), (32, 64, 3, 2), (32, 128, 3, 2), (16, 192, 3, 1), (32, 64, 1, 1),
    (48, 64, 4, 2), (43, 64, 3, 2), (32, 96, 3, 2), (4, 64, 5, 1), (1, 64, 3, 1),
    (16, 32, 3, 2), (3, 64, 3, 1), (3, 96, 3, 1)])
def test_own_products_give_openblas_bits(own_products, channels, filters, kernel,
                                         stride, rng):
    # Mode 2 multiplies im2col chunks of 64k filters with _products.h's kernel,
    # or reads them from the input (_implicit.h, 32k filters, kernels larger
    # than 1x1), both in OpenBLAS's chains of FMAs (mode 3): the same bits.
    # Chunks and blocks of 1 to 90 rows leave every remainder of the blocks
    # of 6, 12 and 2 rows; 4 x 4 x 48 = 768 taps and 43 x 9 = 387 are past
    # the depth where OpenBLAS starts a second chain (OpenBLAS's product
    # then), the 1x1 layer is multiplied in place and one channel is
    # transposed; 27 taps to 64 filters take im2col and _products.h, to 96
    # filters _implicit.h.
    taps = kernel * kernel * channels
    weights = rng.standard_normal((taps, filters)).astype(np.float32) / math.sqrt(taps)
    bias = rng.standard_normal(filters).astype(np.float32)
    runs = []
    for height, width in [(5, 5), (7, 3), (9, 11), (12, 1), (2, 2), (3, 5)]:
        pad = kernel // 2
        out_h = (height + 2 * pad - kernel) // stride + 1
        out_w = (width + 2 * pad - kernel) // stride + 1
        x = rng.standard_normal((3, height, width, channels)).astype(np.float32)
        for samples_per_chunk, rows_per_block, n_threads in [(1, 0, 1), (2, 0, 2),
                                                             (3, 0, 1), (1, 1, 2),
                                                             (1, 2, 3)]:
            runs.append((x, out_h, out_w, (pad, pad), samples_per_chunk,
                         rows_per_block, n_threads))
    own = _relu_forwards_in_modes_2_and_3(
        own_products, weights, bias, ((kernel, kernel), (stride, stride), (1, 1)), runs)
    x, out_h, out_w, (pad, _) = runs[0][:4]
    conv = ref.conv2d_forward(x.astype(np.float64),
                              weights.reshape(kernel, kernel, channels, filters),
                              np.zeros(filters), (stride, stride), (pad, pad),
                              (out_h, out_w), "identity")
    np.testing.assert_allclose(own[0], np.maximum(conv + bias, 0), rtol=2e-4,
                               atol=2e-4)


@pytest.mark.parametrize("size, channels, filters, chunk", [
    (26, 16, 16, 3), (26, 17, 32, 2), (26, 48, 48, 1), (26, 12, 80, 2), (26, 16, 20, 2),
    (92, 64, 64, 1)])
def test_winograd_weight_gradient_gives_openblas_bits(own_products, size, channels,
                                                      filters, chunk, rng):
    # Mode 2 sums Winograd's weight gradient of each tile position with
    # _products.h's transposed product (16k filters, up to 384 tiles per
    # chunk), in OpenBLAS's chains of FMAs (mode 3): the same bits.  Blocks
    # of 16 and 12 input channels, then of 4 and single ones; 20 filters stay
    # with OpenBLAS, as does a 92x93 map (529 tiles, past its first block of
    # depth: OpenBLAS starts a second chain there for 64 x 64 outputs).
    layer = make_layer((size, size + 1, channels), Conv2D(filters), np.float32, rng,
                       "relu", chunk=chunk)
    x = rng.standard_normal((3, size, size + 1, channels)).astype(np.float32)
    grad_output = rng.standard_normal((3, *layer.output_shape)).astype(np.float32)
    own = run_forward_backward(layer, x, grad_output, 2)
    assert layer.winograd_weight_grad is not None
    own_products.set_wide_transforms(3)
    try:
        openblas = run_forward_backward(layer, x, grad_output, 2)
    finally:
        own_products.set_wide_transforms(2)
    for a, b in zip(own, openblas):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel, stride, pads, dilation", [
    ((3, 3), (2, 2), (0, 0), (1, 1)),  # "same" at stride 2: padding after only
    ((3, 3), (1, 2), (4, 5), (1, 1)),  # padding wider than the kernel
    ((3, 3), (1, 1), (2, 1), (2, 1)),  # dilated down the columns
    ((3, 3), (1, 1), (1, 2), (1, 2)),  # dilated along the rows: im2col
    ((2, 4), (2, 1), (0, 3), (1, 1)),  # even kernel
    ((9, 1), (1, 1), (4, 0), (1, 1)),  # 9 kernel rows, past _implicit.h's 8: im2col
])
def test_implicit_convolution_gives_openblas_bits(own_products, kernel, stride, pads,
                                                  dilation, rng):
    # Mode 2 reads the im2col rows of the forward product straight from the
    # input (_implicit.h): interior pixels, rows of padding, pixels at either
    # edge assembled with their zeros; 96 filters take a block of 64 and one
    # of 32.  The bits are those of im2col and OpenBLAS (mode 3), for maps
    # narrower or shorter than the kernel, chunks of 1 to 3 images and blocks
    # of rows (a negative padding on top).
    (kernel_h, kernel_w), (stride_h, stride_w) = kernel, stride
    (pad_top, pad_left), (dilation_h, dilation_w) = pads, dilation
    channels, filters = 5, 96
    taps = kernel_h * kernel_w * channels
    weights = rng.standard_normal((taps, filters)).astype(np.float32) / math.sqrt(taps)
    bias = rng.standard_normal(filters).astype(np.float32)
    runs = []
    for height, width in [(6, 7), (1, 9), (11, 2)]:
        # One more row and column of padding after than before.
        out_h = max(1, (height + 2 * pad_top + 1 - dilation_h * (kernel_h - 1) - 1)
                    // stride_h + 1)
        out_w = max(1, (width + 2 * pad_left + 1 - dilation_w * (kernel_w - 1) - 1)
                    // stride_w + 1)
        x = rng.standard_normal((3, height, width, channels)).astype(np.float32)
        for samples_per_chunk, rows_per_block, n_threads in [(1, 0, 1), (3, 0, 2),
                                                             (2, 0, 1), (1, 2, 3)]:
            runs.append((x, out_h, out_w, pads, samples_per_chunk, rows_per_block,
                         n_threads))
    own = _relu_forwards_in_modes_2_and_3(own_products, weights, bias,
                                          (kernel, stride, dilation), runs)
    # Against float64 sums over the zero-padded input.
    for (x, out_h, out_w, *_), result in zip(runs[::4], own[::4]):
        bottom = stride_h * (out_h - 1) + dilation_h * (kernel_h - 1) + 1
        right = stride_w * (out_w - 1) + dilation_w * (kernel_w - 1) + 1
        padded = np.zeros((len(x), max(bottom, pad_top + x.shape[1]),
                           max(right, pad_left + x.shape[2]), channels))
        padded[:, pad_top:pad_top + x.shape[1], pad_left:pad_left + x.shape[2]] = x
        w = weights.astype(np.float64).reshape(kernel_h, kernel_w, channels, filters)
        expected = np.zeros((len(x), out_h, out_w, filters)) + bias
        for kh in range(kernel_h):
            for kw in range(kernel_w):
                top, left = kh * dilation_h, kw * dilation_w
                window = padded[:, top:top + stride_h * (out_h - 1) + 1:stride_h,
                                left:left + stride_w * (out_w - 1) + 1:stride_w]
                expected += window @ w[kh, kw]
        np.testing.assert_allclose(result, np.maximum(expected, 0), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("conv_layers, shape", [
    # Our products in a stride-2 im2col layer (288 taps), a Winograd layer
    # (F(2x2) predicting, F(4x4) training) and a 1x1 layer of 128 filters.
    ((Conv2D(32), Conv2D(64, 3, 2), Conv2D(64), Conv2D(128, 1)), (1, 9, 7)),
    # Series: an im2col layer of two channels, then Winograd 1-D (3 taps) from
    # 64 to 128 filters and back.
    ("series", (2, 40)),
])
def test_own_products_train_and_predict_openblas_bits(own_products, conv_layers, shape,
                                                      rng):
    # The layers' paths end to end: a fit (training's forward pass) and
    # predictions of 1, 3 and 40 samples on 1 and 2 threads, with our
    # products (mode 2) and with OpenBLAS's (mode 3), bit for bit.
    from threadpoolctl import threadpool_limits

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.layers import Conv1D, GlobalAvgPool1D, GlobalAvgPool2D

    if conv_layers == "series":
        conv_layers = (Conv1D(64, 5), Conv1D(128, 3), Conv1D(64, 3), GlobalAvgPool1D())
    else:
        conv_layers = (*conv_layers, GlobalAvgPool2D())
    X = rng.standard_normal((40, math.prod(shape))).astype(np.float32)
    y = np.arange(40) % 3

    def fit_and_predict():
        model = CNNClassifier(image_shape=shape, conv_layers=conv_layers,
                              hidden_layer_sizes=(), batch_size=16, max_iter=2,
                              random_state=0)
        with pytest.warns(Warning):  # two epochs: not converged
            model.fit(X, y)
        predictions = []
        for n_threads in (1, 2):
            with threadpool_limits(n_threads, user_api="openmp"):
                predictions += [model.predict_proba(X[:n]) for n in (1, 3, 40)]
        return model.coefs_, predictions

    own = fit_and_predict()
    own_products.set_wide_transforms(3)
    blas = fit_and_predict()
    for a, b in zip(own[0] + own[1], blas[0] + blas[1]):
        np.testing.assert_array_equal(a, b)
