"""Residual: a block of layers plus a shortcut, added before the activation.

``output = activation(layers(x) + shortcut(x))``.  The shortcut is the
identity when the block keeps the shape of its input, else a 1x1
convolution (with the stride that matches the block's downsampling) and a
BatchNormalization, as in He et al. (2016) and the time-series ResNet of
Wang et al. (2017).
"""

from dataclasses import dataclass

import numpy as np

from .._kernels import _activations
from ._base import (
    ACTIVATION_CODES,
    Layer,
    LayerSpec,
    as_layer_tuple,
    build_sequence,
    check_activation,
    forward_or_plan,
    register,
    replayable_call,
    require_feature_map,
    size_text,
)
from ._batchnorm import BatchNormalization
from ._conv import Conv2D
from ._sequential import backward_through, export_through


@dataclass(frozen=True, repr=False)
class Residual(LayerSpec):
    """A block with a shortcut connection (a residual block).

    Parameters
    ----------
    layers : tuple of layers
        The block, typically ending without an activation, e.g.
        ``(Conv2D(64, activation="identity"), BatchNormalization(),
        Activation(), Conv2D(64, activation="identity"),
        BatchNormalization())``.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or None, \
            default=None
        Applied after the sum; None uses the estimator's ``activation``.

    Notes
    -----
    When the block changes the number of channels or the size of the map,
    the shortcut is ``Conv2D(channels, 1, stride, padding="valid",
    activation="identity")`` followed by ``BatchNormalization()``, with
    the stride that maps the input size onto the output size (as a
    'same'-padded strided convolution does).  Its arrays are named
    ``"<path>.shortcut.0.weights"`` and so on.
    """

    layers: tuple
    activation: object = None

    def __post_init__(self):
        as_layer_tuple(self, "Residual")
        check_activation(self.activation, "Residual")


def _shortcut_stride(size_in, size_out):
    """The stride s with ceil(size_in / s) == size_out, or None."""
    for stride in range(1, size_in + 1):
        if -(-size_in // stride) == size_out:
            return stride
    return None


@register(Residual)
class ResidualLayer(Layer):
    """Runs the block and the shortcut, adds them, applies the activation."""

    def __init__(self, spec, input_shape, context, path):
        require_feature_map(input_shape, spec, path)
        self.path = path
        self.input_shape = input_shape
        paths = [f"{path}.layers.{i}" for i in range(len(spec.layers))]
        sizes = [f"input of {self.location()} {size_text(input_shape)}"]
        self.layers, output_shape = build_sequence(spec.layers, input_shape, context,
                                                   paths, sizes)
        if len(output_shape) != 3:
            raise ValueError(
                f"{self.location()}: a Residual block must output a feature map; "
                f"its layers end with a flat vector of {output_shape[0]}.")
        self.output_shape = output_shape
        self.shortcut = []
        if output_shape != input_shape:
            strides = [_shortcut_stride(i, o) for i, o in zip(input_shape[:2],
                                                              output_shape[:2])]
            if None in strides:
                raise ValueError(
                    f"{self.location()}: the block maps {size_text(input_shape)} to "
                    f"{size_text(output_shape)}, which no strided 1x1 convolution "
                    "shortcut can match. Use 'same' padding in the block.")
            shortcut = (Conv2D(output_shape[2], 1, tuple(strides), "valid", "identity"),
                        BatchNormalization())
            self.shortcut, _ = build_sequence(
                shortcut, input_shape, context,
                [f"{path}.shortcut.{i}" for i in range(len(shortcut))], [])
        self.activation = spec.activation or context.activation
        self.activation_code = ACTIVATION_CODES[self.activation]
        self.name = (f"Residual({len(spec.layers)} layers, "
                     f"{'projection' if self.shortcut else 'identity'} shortcut)")

    def children(self):
        return (*self.layers, *self.shortcut)

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        super().allocate(batch_size, dtype, n_threads, training, needs_input_grad)
        for branch in (self.layers, self.shortcut):
            for index, layer in enumerate(branch):
                layer.allocate(batch_size, dtype, n_threads, training,
                               needs_input_grad=needs_input_grad or index > 0)
        if self.layers[-1].adds_in_epilogue():
            # The block's last layer writes the sum into its own buffer (see
            # forward): no second map per block.
            self.output = self.layers[-1].output
        if training and not self._branches_keep_gradient():
            self.branch_grad = np.empty((batch_size, *self.output_shape), dtype=dtype)

    def _branches_keep_gradient(self):
        """Whether neither branch's backward writes into the gradient it is
        given: then both read the same one, and backward copies nothing."""
        return self.layers[-1].keeps_grad_output() and (
            not self.shortcut or self.shortcut[-1].keeps_grad_output())

    def forward(self, x, n_threads):
        return self._forward(x, n_threads, None)

    def plan(self, x, n_threads, steps):
        return self._forward(x, n_threads, steps)

    def _forward(self, x, n_threads, steps):
        """The forward, also appending its plan to ``steps`` unless None."""
        n = x.shape[0]
        shortcut = x
        for layer in self.shortcut:
            shortcut = forward_or_plan(layer, shortcut, n_threads, steps)
        block = x
        last = self.layers[-1]
        # The block's last layer adds the shortcut and applies the activation
        # while its output is in cache: in prediction a convolution (resnet2d's
        # forward at batch 20: 130.8 -> 123.5 us per image on 1 thread), in
        # training a BatchNormalization (one pass over the map fewer).
        fused = last.adds_in_epilogue()
        for layer in self.layers[:-1] if fused else self.layers:
            block = forward_or_plan(layer, block, n_threads, steps)
        if fused:
            return forward_or_plan(last, block, n_threads, steps, shortcut,
                                   self.activation_code)
        out = self.output[:n]
        arguments = (block.reshape(-1), shortcut.reshape(-1), out.reshape(-1),
                     self.activation_code, n_threads)
        _activations.add_and_activate(*arguments)
        if steps is not None:
            steps.append(replayable_call(_activations.add_and_activate, arguments))
        return out

    def export_onnx(self, graph, x, input_shape):
        block = export_through(self.layers, graph, x, input_shape)
        shortcut = export_through(self.shortcut, graph, x, input_shape)
        return graph.activation(graph.node("Add", [block, shortcut]), self.activation)

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        grad = grad_output.reshape(n, *self.output_shape)
        if self._branches_keep_gradient():
            # Both branches read the same gradient (resnet2d's blocks, whose
            # branches end in BatchNormalization: one 6.4 MB map written
            # fewer per 16-channel block at batch 128).
            branch_grad = grad
            _activations.activation_backward(self.output[:n].reshape(-1),
                                             grad.reshape(-1), self.activation_code,
                                             n_threads)
        else:
            # Each branch may overwrite its own copy.
            branch_grad = self.branch_grad[:n]
            _activations.activation_backward_copy(
                self.output[:n].reshape(-1), grad.reshape(-1), branch_grad.reshape(-1),
                self.activation_code, n_threads)
        from_block = backward_through(self.layers, branch_grad, n_threads)
        from_shortcut = (backward_through(self.shortcut, grad, n_threads)
                         if self.shortcut else grad)
        if not self.needs_input_grad:
            return None
        grad_input = self.grad_input[:n]
        _activations.add_and_activate(
            np.ascontiguousarray(from_block).reshape(-1),
            np.ascontiguousarray(from_shortcut).reshape(-1), grad_input.reshape(-1),
            ACTIVATION_CODES["identity"], n_threads)
        return grad_input
