"""Dropout: inverted dropout during training, the identity otherwise."""

from dataclasses import dataclass
from numbers import Real

import numpy as np

from ._base import Layer, LayerSpec, register


@dataclass(frozen=True, repr=False)
class Dropout(LayerSpec):
    """Zero each value with probability ``rate`` in training.

    The kept values are scaled by ``1 / (1 - rate)`` (inverted dropout), so
    nothing changes in predict and transform.  Masks are drawn from the
    estimator's ``random_state``: the same at any thread count.

    Parameters
    ----------
    rate : float, default=0.5
        Share of the values dropped, in [0, 1).
    """

    rate: float = 0.5

    def __post_init__(self):
        if not isinstance(self.rate, Real) or isinstance(self.rate, bool) or not (
                0 <= self.rate < 1):
            raise ValueError(f"Dropout rate must be a float in [0, 1), got {self.rate!r}.")


@register(Dropout)
class DropoutLayer(Layer):
    """One NumPy mask per batch, drawn from the build context's ``rng``."""

    def __init__(self, spec, input_shape, context, path):
        self.path = path
        self.input_shape = self.output_shape = input_shape
        self.rate = float(spec.rate)
        self.rng = context.rng
        self.name = f"Dropout({self.rate:g})"

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        super().allocate(batch_size, dtype, n_threads, training, needs_input_grad)
        if training:
            self.mask = np.empty((batch_size, *self.output_shape), dtype=dtype)

    def forward(self, x, n_threads):
        if not self.training or self.rate == 0:
            return x
        n = x.shape[0]
        mask = self.mask[:n]
        np.greater_equal(self.rng.random_sample(mask.shape), self.rate, out=mask,
                         casting="unsafe")
        mask *= 1 / (1 - self.rate)
        return np.multiply(x.reshape(mask.shape), mask, out=self.output[:n])

    def export_onnx(self, graph, x, input_shape):
        return x  # nothing is dropped in predict

    def backward(self, grad_output, n_threads):
        if not self.needs_input_grad:
            return None
        n = grad_output.shape[0]
        grad = grad_output.reshape(n, *self.output_shape)
        if self.rate == 0:
            return grad
        return np.multiply(grad, self.mask[:n], out=self.grad_input[:n])
