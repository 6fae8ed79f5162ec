"""BatchNormalization: per-channel (or per-feature) normalisation, and its
runtime layer, which absorbs a following activation into its kernel."""

from dataclasses import dataclass
from numbers import Real

import numpy as np

from .._kernels import load
from .._onnx_graph import channel_shape
from ._base import (
    ACTIVATION_CODES,
    Layer,
    LayerSpec,
    ParamInfo,
    absorb_activation,
    ones_init,
    register,
    zeros_init,
)

# The AVX2 build where the CPU has it (see sklearn_cnn._kernels).
_batchnorm = load("_batchnorm")


@dataclass(frozen=True, repr=False)
class BatchNormalization(LayerSpec):
    """Normalise each channel (feature map) or feature (flat input).

    In training, each batch is normalised with its own mean and variance;
    running averages of them are kept (``state_``) and used in predict and
    transform.  A learned scale and shift follow; they are exempt from the
    L2 penalty ``alpha``.  The statistics are bitwise the same at any thread
    count.

    Parameters
    ----------
    momentum : float, default=0.9
        Weight of the old value in the running averages:
        ``running = momentum * running + (1 - momentum) * batch`` (Keras'
        convention; PyTorch's ``momentum=0.1`` is this 0.9).  The running
        variance uses the unbiased batch variance.
    epsilon : float, default=1e-5
        Added to the variance before the square root.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5

    def __post_init__(self):
        for name, value in (("momentum", self.momentum), ("epsilon", self.epsilon)):
            if not isinstance(value, Real) or isinstance(value, bool):
                raise TypeError(f"BatchNormalization {name} must be a float, got "
                                f"{value!r}.")
        if not 0 <= self.momentum < 1:
            raise ValueError(
                f"BatchNormalization momentum must be in [0, 1), got {self.momentum}.")
        if not self.epsilon > 0:
            raise ValueError(
                f"BatchNormalization epsilon must be > 0, got {self.epsilon}.")


@register(BatchNormalization)
class BatchNormLayer(Layer):
    """Normalises the last axis over all the others (samples, and pixels)."""

    def __init__(self, spec, input_shape, context, path):
        self.path = path
        self.input_shape = self.output_shape = input_shape
        self.channels = input_shape[-1]
        self.momentum = float(spec.momentum)
        self.epsilon = float(spec.epsilon)
        self.activation = "identity"
        self.name = "BatchNormalization"

    def absorb(self, following):
        return absorb_activation(self, following)

    def parameters(self):
        return {"scale": ParamInfo((self.channels,), False, ones_init),
                "shift": ParamInfo((self.channels,), False, zeros_init)}

    def state(self):
        return {"running_mean": ParamInfo((self.channels,), False, zeros_init),
                "running_var": ParamInfo((self.channels,), False, ones_init)}

    def bind(self, params, state):
        self.scale, self.shift = params["scale"], params["shift"]
        self.running_mean, self.running_var = state["running_mean"], state["running_var"]

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        super().allocate(batch_size, dtype, n_threads, training, needs_input_grad)
        rows = batch_size * int(np.prod(self.input_shape[:-1]))
        if training:
            self.batch_mean = np.empty(self.channels)
            self.batch_var = np.empty(self.channels)
            blocks = _batchnorm.n_blocks(rows)
            self.partials = np.empty((blocks, 2 * self.channels))
            self.sums = np.empty((blocks, 2 * self.channels), dtype=dtype)
            # The forward's (centre, multiplier, offset), then the backward's.
            self.coefficients = np.empty(6 * self.channels, dtype=dtype)
            self.grad_scale = np.empty(self.channels, dtype=dtype)
            self.grad_shift = np.empty(self.channels, dtype=dtype)
            if not self.needs_input_grad:
                self.grad_input = np.empty((0, self.channels), dtype=dtype)

    def adds_in_epilogue(self):
        """Whether ``forward`` can add an ``addend``: in training, with no
        activation of its own.  (Prediction folds the BatchNormalization
        into the convolution before it, which adds instead.)"""
        return self.training and self.activation == "identity"

    def forward(self, x, n_threads, addend=None, activation=None):
        """The layer's output; given ``addend`` (see adds_in_epilogue),
        ``activation(batchnorm(x) + addend)`` instead: a residual block's sum
        and activation fused into its last BatchNormalization.  Backward
        never reads the output of a BatchNormalization without activation,
        so the sum may take its place."""
        n = x.shape[0]
        self.input = x.reshape(-1, self.channels)
        out = self.output[:n]
        out_rows = out.reshape(-1, self.channels)
        code = ACTIVATION_CODES[self.activation]
        if addend is not None:
            if not self.adds_in_epilogue():
                raise ValueError("only a BatchNormalization in training, without "
                                 "activation, takes an addend")
            code = activation
            addend = addend.reshape(-1, self.channels)
        if not self.training:
            # Running statistics folded into one multiply-add per value,
            # centred on the running mean rounded to the data's type.
            dtype = self.input.dtype
            mean = self.running_mean.astype(np.float64)
            centre = mean.astype(dtype)
            multiplier = self.scale / np.sqrt(self.running_var.astype(np.float64)
                                              + self.epsilon)
            offset = self.shift - (mean - centre) * multiplier
            _batchnorm.batchnorm_forward_infer(
                self.input, centre, multiplier.astype(dtype), offset.astype(dtype),
                out_rows, code, n_threads)
            return out
        _batchnorm.batchnorm_forward_train(
            self.input, self.scale, self.shift, out_rows, self.batch_mean,
            self.batch_var, self.partials, self.sums, self.coefficients, self.epsilon, code,
            n_threads, addend)
        rows = self.input.shape[0]
        unbiased = self.batch_var * (rows / (rows - 1)) if rows > 1 else self.batch_var
        # In place: the estimator's state_ arrays are bound here.
        self.running_mean *= self.momentum
        self.running_mean += (1 - self.momentum) * self.batch_mean
        self.running_var *= self.momentum
        self.running_var += (1 - self.momentum) * unbiased
        return out

    def export_onnx(self, graph, x, input_shape):
        # Running statistics as one multiply-add per value, as in predict.
        multiplier = self.scale / np.sqrt(self.running_var.astype(np.float64)
                                          + self.epsilon)
        offset = self.shift - self.running_mean * multiplier
        shape = channel_shape(input_shape)
        x = graph.node("Mul", [x, graph.constant(multiplier.reshape(shape), "scale")])
        x = graph.node("Add", [x, graph.constant(offset.reshape(shape), "offset")])
        return graph.activation(x, self.activation)

    def keeps_grad_output(self):
        """batchnorm_backward takes ReLU's mask from x, and the identity
        needs none: only other activations turn grad_output into dy in place."""
        return self.activation in ("identity", "relu")

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        grad_input = self.grad_input[:n] if self.needs_input_grad else self.grad_input
        _batchnorm.batchnorm_backward(
            self.input, self.output[:n].reshape(-1, self.channels),
            grad_output.reshape(-1, self.channels), self.scale, self.batch_mean,
            self.batch_var, grad_input.reshape(-1, self.channels), self.grad_scale,
            self.grad_shift, self.sums, self.coefficients, self.epsilon,
            ACTIVATION_CODES[self.activation], self.needs_input_grad, n_threads)
        return grad_input if self.needs_input_grad else None

    def grads(self):
        return {"scale": self.grad_scale, "shift": self.grad_shift}
