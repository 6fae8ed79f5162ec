"""Runtime network: layer geometry, parameters, buffers, forward and backward.

A network is built from the layer specifications and an input shape
``(height, width, channels)``.  Every shape is resolved and checked here,
before any kernel runs: the kernels do no bounds checking, so this module is
what makes out-of-range memory access impossible.

Feature maps are NHWC (channels last); see ``_kernels/_conv.pyx`` for why.
Parameters are plain NumPy arrays owned by the estimator (``coefs_`` and
``intercepts_``); a runtime layer only holds references to them, plus its
work buffers, which are allocated once per fit or predict call.
"""

import math

import numpy as np

from ._kernels import _conv, _dense, _pool
from .layers import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D

ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "logistic": 4}

# Rows (output pixels) of the im2col matrix one GEMM handles: enough to make
# the GEMM fat, small enough for the buffer to stay in L2 cache.  It depends
# on the layer's shape only, never on the thread count (determinism).
_TARGET_CHUNK_ROWS = 1024

# Predicting fewer samples than this, a fused conv + max-pool layer splits
# each image into _ROW_BLOCKS blocks of rows, so that all threads work on one
# image (latency).  Both numbers are constants: no dependence on threads.
_ROW_SPLIT_MAX_SAMPLES = 4
_ROW_BLOCKS = 8


def _pair(value):
    return (value, value) if np.isscalar(value) else tuple(int(v) for v in value)


class ConvLayer:
    """Convolution + bias + activation, fused."""

    has_params = True

    def __init__(self, spec, input_shape, activation, position):
        height, width, channels = input_shape
        self.kernel_h, self.kernel_w = _pair(spec.kernel_size)
        self.stride_h, self.stride_w = _pair(spec.stride)
        self.activation = spec.activation or activation
        self.activation_code = ACTIVATION_CODES[self.activation]
        self.filters = spec.filters
        if spec.padding == "valid":
            pad_h = pad_w = (0, 0)
        elif spec.padding == "same":
            pad_h = _same_padding(height, self.kernel_h, self.stride_h)
            pad_w = _same_padding(width, self.kernel_w, self.stride_w)
        else:
            ph, pw = _pair(spec.padding)
            pad_h, pad_w = (ph, ph), (pw, pw)
        self.pad_top, self.pad_left = pad_h[0], pad_w[0]
        padded_h, padded_w = height + sum(pad_h), width + sum(pad_w)
        if self.kernel_h > padded_h or self.kernel_w > padded_w:
            raise ValueError(
                f"conv_layers[{position}] = {spec!r}: its {self.kernel_h}x"
                f"{self.kernel_w} kernel does not fit the {height}x{width} feature "
                f"map it receives (padded to {padded_h}x{padded_w}). Use a smaller "
                "kernel_size, padding='same', or fewer pooling layers before it."
            )
        out_h = (padded_h - self.kernel_h) // self.stride_h + 1
        out_w = (padded_w - self.kernel_w) // self.stride_w + 1
        self.input_shape = (height, width, channels)
        self.output_shape = (out_h, out_w, spec.filters)
        self.taps = self.kernel_h * self.kernel_w * channels
        self.samples_per_chunk = max(1, _TARGET_CHUNK_ROWS // (out_h * out_w))
        self.name = f"Conv2D({spec.filters}, {self.kernel_h}x{self.kernel_w})"
        self.pool = None

    def fuse_max_pool(self, pool):
        """Absorb the max-pool layer that follows: see ``_conv.pyx``'s notes."""
        self.pool = pool
        self.conv_shape = self.output_shape
        self.output_shape = pool.output_shape
        self.name += f" + {pool.name}"

    def param_shapes(self):
        return [(self.kernel_h, self.kernel_w, self.input_shape[2], self.filters),
                (self.filters,)]

    def fans(self):
        fan_in = self.taps
        fan_out = self.kernel_h * self.kernel_w * self.filters
        return fan_in, fan_out

    def bind(self, weights, bias):
        self.weights, self.bias = weights, bias
        self.weights_2d = weights.reshape(self.taps, self.filters)

    def allocate(self, batch_size, dtype, n_threads, training, first):
        out_h, out_w, _ = self.conv_shape if self.pool else self.output_shape
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)
        chunk_rows = self.samples_per_chunk * out_h * out_w
        self.cols = np.empty((n_threads, chunk_rows * self.taps), dtype=dtype)
        self.training = training
        if self.pool:
            self.argmax = np.empty((batch_size, *self.output_shape), dtype=np.int32)
            self.conv_buffer = np.empty((n_threads, chunk_rows * self.filters), dtype)
        self.compute_grad_input = training and not first
        if training:
            n_chunks = -(-batch_size // self.samples_per_chunk)
            self.weight_partials = np.empty((n_chunks, self.taps * self.filters), dtype)
            self.bias_partials = np.empty((n_chunks, self.filters), np.float64)
            self.grad_weights = np.empty(self.weights.shape, dtype=dtype)
            self.grad_bias = np.empty(self.bias.shape, dtype=dtype)
            shape = (batch_size, *self.input_shape) if not first else (0, 1, 1, 1)
            self.grad_input = np.empty(shape, dtype=dtype)

    def forward(self, x, n_threads):
        self.input = x
        out = self.output[: x.shape[0]]
        if self.pool:
            pool = self.pool
            # Predicting a few images: split each into blocks of pooled rows.
            few = not self.training and x.shape[0] < _ROW_SPLIT_MAX_SAMPLES
            rows_per_block = -(-pool.output_shape[0] // _ROW_BLOCKS) if few else 0
            _conv.conv2d_maxpool_forward(
                x, self.weights_2d, self.bias, out, self.argmax[: x.shape[0]],
                self.cols, self.conv_buffer,
                self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
                self.pad_top, self.pad_left, *self.conv_shape[:2],
                pool.pool_h, pool.pool_w, pool.stride_h, pool.stride_w,
                self.samples_per_chunk, rows_per_block, self.activation_code,
                n_threads,
            )
            return out
        _conv.conv2d_forward(
            x, self.weights_2d, self.bias, out, self.cols,
            self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
            self.pad_top, self.pad_left, self.samples_per_chunk,
            self.activation_code, n_threads,
        )
        return out

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        grad_input = self.grad_input[:n] if self.compute_grad_input else self.grad_input
        if self.pool:
            _conv.conv2d_maxpool_backward(
                self.input, self.weights_2d, self.output[:n], self.argmax[:n],
                grad_output, grad_input,
                self.grad_weights.reshape(self.taps, self.filters), self.grad_bias,
                self.weight_partials, self.bias_partials, self.cols, self.conv_buffer,
                self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
                self.pad_top, self.pad_left, *self.conv_shape[:2],
                self.pool.pool_h, self.pool.pool_w, self.pool.stride_h,
                self.pool.stride_w, self.samples_per_chunk, self.activation_code,
                self.compute_grad_input, n_threads,
            )
            return grad_input if self.compute_grad_input else None
        _conv.conv2d_backward(
            self.input, self.weights_2d, self.output[:n], grad_output, grad_input,
            self.grad_weights.reshape(self.taps, self.filters), self.grad_bias,
            self.weight_partials, self.bias_partials, self.cols,
            self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
            self.pad_top, self.pad_left, self.samples_per_chunk,
            self.activation_code, self.compute_grad_input, n_threads,
        )
        return grad_input if self.compute_grad_input else None

    def grads(self):
        return [self.grad_weights, self.grad_bias]


def _same_padding(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ParameterFreeLayer:
    """Output and input-gradient buffers of a layer without parameters."""

    has_params = False

    def allocate(self, batch_size, dtype, n_threads, training, first):
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)
        self.compute_grad_input = training and not first
        if self.compute_grad_input:
            self.grad_input = np.empty((batch_size, *self.input_shape), dtype=dtype)


class PoolLayer(_ParameterFreeLayer):
    """Max or average pooling with windows inside the map."""

    def __init__(self, spec, input_shape, position, shrink_to_fit=False):
        height, width, channels = input_shape
        pool_h, pool_w = _pair(spec.pool_size)
        if shrink_to_fit:
            pool_h, pool_w = min(pool_h, height), min(pool_w, width)
        stride_h, stride_w = _pair(spec.stride) if spec.stride is not None else (
            pool_h, pool_w)
        if pool_h > height or pool_w > width:
            raise ValueError(
                f"conv_layers[{position}] = {spec!r}: its {pool_h}x{pool_w} window "
                f"is larger than the {height}x{width} feature map it receives. Use a "
                "smaller pool_size or fewer pooling layers, or a larger image_shape."
            )
        self.is_max = not isinstance(spec, AvgPool2D)
        self.pool_h, self.pool_w = pool_h, pool_w
        self.stride_h, self.stride_w = stride_h, stride_w
        self.input_shape = input_shape
        self.output_shape = (
            (height - pool_h) // stride_h + 1, (width - pool_w) // stride_w + 1, channels)
        kind = "MaxPool2D" if self.is_max else "AvgPool2D"
        self.name = f"{kind}({pool_h}x{pool_w})"

    def allocate(self, batch_size, dtype, n_threads, training, first):
        super().allocate(batch_size, dtype, n_threads, training, first)
        if self.is_max:
            self.argmax = np.empty((batch_size, *self.output_shape), dtype=np.int32)

    def forward(self, x, n_threads):
        n = x.shape[0]
        out = self.output[:n]
        if self.is_max:
            _pool.max_pool2d_forward(x, out, self.argmax[:n], self.pool_h, self.pool_w,
                                     self.stride_h, self.stride_w, n_threads)
        else:
            _pool.avg_pool2d_forward(x, out, self.pool_h, self.pool_w,
                                     self.stride_h, self.stride_w, n_threads)
        return out

    def backward(self, grad_output, n_threads):
        if not self.compute_grad_input:
            return None
        n = grad_output.shape[0]
        grad_input = self.grad_input[:n]
        if self.is_max:
            _pool.max_pool2d_backward(grad_output, self.argmax[:n], grad_input, n_threads)
        else:
            _pool.avg_pool2d_backward(grad_output, grad_input, self.pool_h, self.pool_w,
                                      self.stride_h, self.stride_w, n_threads)
        return grad_input


class GlobalAvgPoolLayer(_ParameterFreeLayer):
    """Channel means over the whole map; output kept 4-D as 1x1xC."""

    def __init__(self, input_shape):
        self.input_shape = input_shape
        self.output_shape = (1, 1, input_shape[2])
        self.name = "GlobalAvgPool2D"

    def forward(self, x, n_threads):
        n = x.shape[0]
        out = self.output[:n]
        _pool.global_avg_pool2d_forward(x, out.reshape(n, -1), n_threads)
        return out

    def backward(self, grad_output, n_threads):
        if not self.compute_grad_input:
            return None
        n = grad_output.shape[0]
        grad_input = self.grad_input[:n]
        _pool.global_avg_pool2d_backward(grad_output.reshape(n, -1), grad_input,
                                         n_threads)
        return grad_input


class DropoutLayer(_ParameterFreeLayer):
    """Inverted dropout: in training, zero each value with probability ``rate``
    and scale the rest by ``1 / (1 - rate)``; the identity otherwise.

    The mask is drawn with NumPy from the estimator's random state, one array
    per batch, so it does not depend on the thread count.
    """

    def __init__(self, n_features, rate, rng):
        self.input_shape = self.output_shape = (n_features,)
        self.rate = rate
        self.rng = rng
        self.name = f"Dropout({rate:g})"

    def allocate(self, batch_size, dtype, n_threads, training, first):
        super().allocate(batch_size, dtype, n_threads, training, first)
        self.training = training
        if training:
            self.mask = np.empty((batch_size, *self.output_shape), dtype=dtype)

    def forward(self, x, n_threads):
        if not self.training:
            return x
        n = x.shape[0]
        mask = self.mask[:n]
        np.greater_equal(self.rng.random_sample(mask.shape), self.rate, out=mask,
                         casting="unsafe")
        mask *= 1 / (1 - self.rate)
        return np.multiply(x, mask, out=self.output[:n])

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        return np.multiply(grad_output, self.mask[:n], out=self.grad_input[:n])


class DenseLayer:
    """Fully connected + bias + activation, fused; input flattened (NHWC order)."""

    has_params = True

    def __init__(self, n_inputs, n_outputs, activation):
        self.input_shape = (n_inputs,)
        self.output_shape = (n_outputs,)
        self.activation = activation
        self.activation_code = ACTIVATION_CODES[activation]
        self.name = f"Dense({n_outputs})"

    def param_shapes(self):
        return [(self.input_shape[0], self.output_shape[0]), (self.output_shape[0],)]

    def fans(self):
        return self.input_shape[0], self.output_shape[0]

    def bind(self, weights, bias):
        self.weights, self.bias = weights, bias

    def allocate(self, batch_size, dtype, n_threads, training, first):
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)
        self.compute_grad_input = training and not first
        if training:
            self.grad_weights = np.empty(self.weights.shape, dtype=dtype)
            self.grad_bias = np.empty(self.bias.shape, dtype=dtype)
            self.bias_sums = np.empty(self.bias.shape, dtype=np.float64)
            shape = (batch_size, *self.input_shape) if not first else (0, 1)
            self.grad_input = np.empty(shape, dtype=dtype)

    def forward(self, x, n_threads):
        x = x.reshape(x.shape[0], -1)
        self.input = x
        out = self.output[: x.shape[0]]
        _dense.dense_forward(x, self.weights, self.bias, out, self.activation_code,
                             n_threads)
        return out

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        grad_input = self.grad_input[:n] if self.compute_grad_input else self.grad_input
        _dense.dense_backward(
            self.input, self.weights, self.output[:n], grad_output, grad_input,
            self.grad_weights, self.grad_bias, self.bias_sums,
            self.activation_code, self.compute_grad_input, n_threads,
        )
        return grad_input if self.compute_grad_input else None

    def grads(self):
        return [self.grad_weights, self.grad_bias]


def default_conv_layers():
    """The architecture that ``conv_layers='auto'`` stands for."""
    return (Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())


def build_layers(conv_specs, hidden_layer_sizes, n_outputs, input_shape, activation,
                 auto=False, fuse=True, dropout=0.0, rng=None):
    """Resolve every layer's geometry; raise a ValueError naming the culprit.

    With ``auto`` (the default architecture), pooling windows shrink to fit
    maps smaller than them, so that any input size, down to one feature,
    works.  With ``fuse``, a max pooling right after a convolution runs
    inside it (same results, less memory traffic).  With ``dropout`` > 0, a
    dropout layer drawing from ``rng`` follows each hidden dense layer.
    """
    layers = []
    shape = tuple(input_shape)
    sizes = [f"input {_size(shape)}"]
    for position, spec in enumerate(conv_specs):
        try:
            layer = _conv_part_layer(spec, shape, activation, position, auto)
        except ValueError as error:
            raise ValueError(
                f"{error} Feature maps (height x width x channels) so far: "
                f"{' -> '.join(sizes)}.") from None
        sizes.append(f"{type(spec).__name__} {_size(layer.output_shape)}")
        if isinstance(layer, PoolLayer):
            previous = layers[-1] if layers else None
            if (fuse and layer.is_max and isinstance(previous, ConvLayer)
                    and previous.pool is None):
                previous.fuse_max_pool(layer)
                shape = previous.output_shape
                continue
        layers.append(layer)
        shape = layer.output_shape
    n_inputs = math.prod(shape)
    for size in hidden_layer_sizes:
        layers.append(DenseLayer(n_inputs, size, activation))
        if dropout > 0:
            layers.append(DropoutLayer(size, dropout, rng))
        n_inputs = size
    layers.append(DenseLayer(n_inputs, n_outputs, "identity"))
    return layers


def _conv_part_layer(spec, shape, activation, position, auto):
    if isinstance(spec, Conv2D):
        return ConvLayer(spec, shape, activation, position)
    if isinstance(spec, (MaxPool2D, AvgPool2D)):
        return PoolLayer(spec, shape, position, shrink_to_fit=auto)
    if isinstance(spec, GlobalAvgPool2D):
        return GlobalAvgPoolLayer(shape)
    raise TypeError(f"Unknown layer {spec!r}")  # pragma: no cover - normalised


def _size(shape):
    return "x".join(str(s) for s in shape)


def init_params(layers, rng, dtype):
    """He-uniform weights for ReLU-like layers, Glorot-uniform otherwise.

    The output layer (identity) uses Glorot.  Biases start at zero.  The
    draws are made in float64 and cast, so float32 and float64 models start
    from the same values.
    """
    coefs, intercepts = [], []
    for layer in layers:
        if not layer.has_params:
            continue
        weight_shape, bias_shape = layer.param_shapes()
        fan_in, fan_out = layer.fans()
        if layer.activation in ("relu", "leaky_relu"):
            bound = math.sqrt(6.0 / fan_in)
        elif layer.activation == "logistic":
            bound = math.sqrt(2.0 / (fan_in + fan_out))  # as MLPClassifier
        else:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, weight_shape).astype(dtype))
        intercepts.append(np.zeros(bias_shape, dtype=dtype))
    return coefs, intercepts


class Network:
    """Layers bound to parameter arrays, with buffers for one batch size."""

    def __init__(self, layers, coefs, intercepts):
        self.layers = layers
        self.param_layers = [layer for layer in layers if layer.has_params]
        for layer, weights, bias in zip(self.param_layers, coefs, intercepts):
            layer.bind(weights, bias)

    def allocate(self, batch_size, dtype, n_threads, training):
        for index, layer in enumerate(self.layers):
            layer.allocate(batch_size, dtype, n_threads, training, first=index == 0)

    def forward(self, x, n_threads, n_layers=None):
        """Output of the first ``n_layers`` (all: the logits) for the NHWC batch
        ``x``; a view of an internal buffer."""
        for layer in self.layers[:n_layers]:
            x = layer.forward(x, n_threads)
        return x

    def backward(self, grad_logits, n_threads):
        """Fill each layer's gradient buffers; ``grad_logits`` is overwritten."""
        grad = grad_logits
        n = grad_logits.shape[0]
        for layer in reversed(self.layers):
            # Dense layers see flat rows; the layer before may want NHWC.
            grad = layer.backward(grad.reshape(n, *layer.output_shape), n_threads)

    def grads(self):
        """Gradient arrays in the order of ``coefs + intercepts``."""
        weight_grads = [layer.grad_weights for layer in self.param_layers]
        bias_grads = [layer.grad_bias for layer in self.param_layers]
        return weight_grads + bias_grads
