"""Activation: an element-wise non-linearity as a layer of its own.

Right after a convolution or dense layer without an activation of its own,
the runtime layer is absorbed into that layer's fused kernel (same results).
"""

from dataclasses import dataclass

import numpy as np

from .._kernels import _activations
from ._base import ACTIVATION_CODES, Layer, LayerSpec, check_activation, register


@dataclass(frozen=True, repr=False)
class Activation(LayerSpec):
    """Element-wise activation.

    Parameters
    ----------
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"}, \
            default="relu"
        The function applied to every value.
    """

    activation: str = "relu"

    def __post_init__(self):
        check_activation(self.activation, "Activation", allow_none=False)


@register(Activation)
class ActivationLayer(Layer):
    """Forward writes its own output; backward scales the gradient in place."""

    def __init__(self, spec, input_shape, context, path):
        self.path = path
        self.activation = spec.activation
        self.activation_code = ACTIVATION_CODES[spec.activation]
        self.input_shape = self.output_shape = input_shape
        self.name = f"Activation({spec.activation})"

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        # Backward works in place on the incoming gradient: no input buffer.
        self.training = training
        self.needs_input_grad = training and needs_input_grad
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)

    def forward(self, x, n_threads):
        out = self.output[: x.shape[0]]
        np.copyto(out, x.reshape(out.shape))
        _activations.activation_forward(out.reshape(-1), self.activation_code,
                                        n_threads)
        return out

    def export_onnx(self, graph, x, input_shape):
        return graph.activation(x, self.activation)

    def backward(self, grad_output, n_threads):
        if not self.needs_input_grad:
            return None
        n = grad_output.shape[0]
        grad = grad_output.reshape(n, *self.output_shape)
        _activations.activation_backward(self.output[:n].reshape(-1),
                                         grad.reshape(-1), self.activation_code,
                                         n_threads)
        return grad
