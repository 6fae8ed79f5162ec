"""Dense: fully connected + bias + activation (fused), and its runtime layer."""

from dataclasses import dataclass

import numpy as np

from .._blas_kernels import use_own_products
from .._kernels import _dense
from .._spec import check_int
from ._base import (
    ACTIVATION_CODES,
    KernelCallLayer,
    LayerSpec,
    ParamInfo,
    absorb_activation,
    bias_init,
    check_activation,
    register,
    uniform_init,
)


@dataclass(frozen=True, repr=False)
class Dense(LayerSpec):
    """Fully connected layer; a feature map is flattened first (NHWC order).

    The estimator adds one per entry of ``hidden_layer_sizes`` and the output
    layer itself; in ``conv_layers`` a ``Dense`` ends the spatial part.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or None, \
            default=None
        None uses the estimator's ``activation``.
    """

    units: int
    activation: object = None

    def __post_init__(self):
        check_int(self.units, "Dense units")
        check_activation(self.activation, "Dense")


@register(Dense)
class DenseLayer(KernelCallLayer):
    """GEMM + bias + activation over flattened inputs."""

    def __init__(self, spec, input_shape, context, path):
        self.path = path
        n_inputs = int(np.prod(input_shape))
        self.input_shape = (n_inputs,)
        self.output_shape = (spec.units,)
        self.activation = spec.activation or context.activation
        self.weight_init = context.weight_init
        self.name = f"Dense({spec.units})"

    @property
    def activation_code(self):
        return ACTIVATION_CODES[self.activation]

    def absorb(self, following):
        return absorb_activation(self, following)

    def parameters(self):
        n_inputs, n_outputs = self.input_shape[0], self.output_shape[0]
        return {
            "weights": ParamInfo((n_inputs, n_outputs), True,
                                 uniform_init(n_inputs, n_outputs, self.activation,
                                              self.weight_init)),
            "bias": ParamInfo((n_outputs,), False, bias_init(n_inputs, self.weight_init)),
        }

    def bind(self, params, state):
        self.weights, self.bias = params["weights"], params["bias"]

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        self.training = training
        self.needs_input_grad = training and needs_input_grad
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)
        use_own_products()
        self.one_row_partials = np.empty(
            (_dense.one_row_parts(self.input_shape[0]), *self.output_shape), dtype=dtype)
        if training:
            self.grad_weights = np.empty(self.weights.shape, dtype=dtype)
            self.grad_bias = np.empty(self.bias.shape, dtype=dtype)
            self.bias_sums = np.empty(self.bias.shape, dtype=np.float64)
            shape = (batch_size, *self.input_shape) if self.needs_input_grad else (0, 1)
            self.grad_input = np.empty(shape, dtype=dtype)

    def _bound_call(self, x, n_threads):
        x = x.reshape(x.shape[0], -1)
        self.input = x
        out = self.output[: x.shape[0]]
        return _dense.dense_forward, (x, self.weights, self.bias, out,
                                      self.one_row_partials, self.activation_code,
                                      n_threads), out

    def export_onnx(self, graph, x, input_shape):
        weights = self.weights
        if len(input_shape) == 3:
            # Our rows are flattened NHWC, ONNX's NCHW: reorder the weights'
            # rows to match, rather than transposing the maps.
            height, width, channels = input_shape
            weights = (weights.reshape(height, width, channels, -1)
                       .transpose(2, 0, 1, 3).reshape(weights.shape))
            x = graph.node("Flatten", [x], axis=1)
        x = graph.node("Gemm", [x, graph.constant(weights, "weights"),
                                graph.constant(self.bias, "bias")])
        return graph.activation(x, self.activation)

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        grad_output = grad_output.reshape(n, -1)
        grad_input = self.grad_input[:n] if self.needs_input_grad else self.grad_input
        _dense.dense_backward(
            self.input, self.weights, self.output[:n], grad_output, grad_input,
            self.grad_weights, self.grad_bias, self.bias_sums,
            self.activation_code, self.needs_input_grad, n_threads,
        )
        return grad_input if self.needs_input_grad else None

    def grads(self):
        return {"weights": self.grad_weights, "bias": self.grad_bias}
