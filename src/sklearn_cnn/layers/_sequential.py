"""Sequential: a block of layers run one after another.

The container that layers holding layers (residual blocks) build on: its
children are built, fused and named under its own path
(``conv_layers.0.layers.1.weights``).
"""

from dataclasses import dataclass

from ._base import Layer, LayerSpec, as_layer_tuple, build_sequence, register, size_text


@dataclass(frozen=True, repr=False)
class Sequential(LayerSpec):
    """Layers applied in order, as one entry of an architecture.

    Parameters
    ----------
    layers : tuple of layers
        The contained layers (shorthands such as ``32`` or ``"maxpool"``
        are accepted); reachable in a grid search as
        ``conv_layers__0__layers__1__filters``.
    """

    layers: tuple

    def __post_init__(self):
        as_layer_tuple(self, "Sequential")


@register(Sequential)
class SequentialLayer(Layer):
    """Runs its children; its parameters are theirs."""

    def __init__(self, spec, input_shape, context, path):
        self.path = path
        self.input_shape = input_shape
        paths = [f"{path}.layers.{i}" for i in range(len(spec.layers))]
        sizes = [f"input of {self.location()} {size_text(input_shape)}"]
        self.layers, self.output_shape = build_sequence(
            spec.layers, input_shape, context, paths, sizes)
        self.name = f"Sequential({len(self.layers)} layers)"

    def children(self):
        return self.layers

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        self.training = training
        self.needs_input_grad = training and needs_input_grad
        for index, layer in enumerate(self.layers):
            layer.allocate(batch_size, dtype, n_threads, training,
                           needs_input_grad=needs_input_grad or index > 0)

    def forward(self, x, n_threads):
        for layer in self.layers:
            x = layer.forward(x, n_threads)
        return x

    def plan(self, x, n_threads, steps):
        for layer in self.layers:
            x = layer.plan(x, n_threads, steps)
        return x

    def export_onnx(self, graph, x, input_shape):
        return export_through(self.layers, graph, x, input_shape)

    def backward(self, grad_output, n_threads):
        return backward_through(self.layers, grad_output, n_threads)


def backward_through(layers, grad_output, n_threads):
    """Backward through consecutive layers; each sees its own output shape."""
    grad = grad_output
    n = grad_output.shape[0]
    for layer in reversed(layers):
        grad = layer.backward(grad.reshape(n, *layer.output_shape), n_threads)
        if grad is None:
            return None
    return grad


def export_through(layers, graph, x, input_shape):
    """ONNX nodes of ``layers`` in turn; returns the last output's name."""
    for layer in layers:
        x = layer.export_onnx(graph, x, input_shape)
        input_shape = layer.output_shape
    return x
