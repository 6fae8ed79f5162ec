"""Pooling: MaxPool2D, AvgPool2D and GlobalAvgPool2D, with their runtime layers."""

from dataclasses import dataclass

import numpy as np

from .._kernels import _pool
from ._base import KernelCallLayer, LayerSpec, as_pair, register, require_feature_map


@dataclass(frozen=True, repr=False)
class MaxPool2D(LayerSpec):
    """Max pooling over windows that stay inside the feature map.

    Parameters
    ----------
    pool_size : int or (int, int), default=2
        Height and width of the window.
    stride : int or (int, int) or None, default=None
        Step between windows; None means ``pool_size`` (no overlap).
    """

    pool_size: object = 2
    stride: object = None
    spatial_dims = 2

    def __post_init__(self):
        as_pair(self.pool_size, f"{type(self).__name__} pool_size", 1)
        if self.stride is not None:
            as_pair(self.stride, f"{type(self).__name__} stride", 1)


@dataclass(frozen=True, repr=False)
class AvgPool2D(MaxPool2D):
    """Average pooling over windows that stay inside the feature map.

    Takes the parameters of :class:`MaxPool2D`: ``pool_size`` (default 2)
    and ``stride`` (default None: no overlap).
    """


@dataclass(frozen=True, repr=False)
class GlobalAvgPool2D(LayerSpec):
    """Average of each channel over the whole feature map (output 1x1xC)."""

    spatial_dims = 2


@dataclass(frozen=True, repr=False)
class GlobalMaxPool2D(LayerSpec):
    """Maximum of each channel over the whole feature map (output 1x1xC)."""

    spatial_dims = 2


@register(MaxPool2D)
@register(AvgPool2D)
class PoolLayer(KernelCallLayer):
    """Max or average pooling with windows inside the map.

    With the default architecture (``conv_layers="auto"``) windows shrink to
    fit maps smaller than them, so that any input size works.
    """

    def __init__(self, spec, input_shape, context, path):
        require_feature_map(input_shape, spec, path)
        self.path = path
        height, width, channels = input_shape
        pool_h, pool_w = as_pair(spec.pool_size, "pool_size", 1)
        if context.auto:
            pool_h, pool_w = min(pool_h, height), min(pool_w, width)
        stride_h, stride_w = (as_pair(spec.stride, "stride", 1)
                              if spec.stride is not None else (pool_h, pool_w))
        if pool_h > height or pool_w > width:
            raise ValueError(
                f"{self.location()} = {spec!r}: its {pool_h}x{pool_w} window is larger "
                f"than the {height}x{width} feature map it receives. Use a smaller "
                "pool_size or fewer pooling layers, or a larger image_shape.")
        self.is_max = not isinstance(spec, AvgPool2D)
        self.pool_h, self.pool_w = pool_h, pool_w
        self.stride_h, self.stride_w = stride_h, stride_w
        self.input_shape = input_shape
        self.output_shape = ((height - pool_h) // stride_h + 1,
                             (width - pool_w) // stride_w + 1, channels)
        kind = "MaxPool2D" if self.is_max else "AvgPool2D"
        self.name = f"{kind}({pool_h}x{pool_w})"

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        super().allocate(batch_size, dtype, n_threads, training, needs_input_grad)
        # Only backward reads the winners' positions: prediction keeps none.
        self.argmax = (np.empty((batch_size, *self.output_shape), dtype=np.int32)
                       if self.is_max and training else None)

    def _bound_call(self, x, n_threads):
        n = x.shape[0]
        out = self.output[:n]
        if self.is_max:
            argmax = self.argmax[:n] if self.training else None
            return _pool.max_pool2d_forward, (x, out, argmax, self.pool_h, self.pool_w,
                                              self.stride_h, self.stride_w,
                                              n_threads), out
        return _pool.avg_pool2d_forward, (x, out, self.pool_h, self.pool_w,
                                          self.stride_h, self.stride_w, n_threads), out

    def export_onnx(self, graph, x, input_shape):
        return graph.node("MaxPool" if self.is_max else "AveragePool", [x],
                          kernel_shape=[self.pool_h, self.pool_w],
                          strides=[self.stride_h, self.stride_w])

    def backward(self, grad_output, n_threads):
        grad_input = self.input_grad_buffer(grad_output.shape[0])
        if grad_input is None:
            return None
        if self.is_max:
            _pool.max_pool2d_backward(grad_output, self.argmax[:len(grad_input)],
                                      grad_input, n_threads)
        else:
            _pool.avg_pool2d_backward(grad_output, grad_input, self.pool_h, self.pool_w,
                                      self.stride_h, self.stride_w, n_threads)
        return grad_input


class _GlobalPoolLayer(KernelCallLayer):
    """One value per channel over the whole map; output kept 3-D as 1x1xC."""

    def __init__(self, spec, input_shape, context, path):
        require_feature_map(input_shape, spec, path)
        self.path = path
        self.input_shape = input_shape
        self.output_shape = (1, 1, input_shape[2])
        self.name = type(spec).__name__

    def export_onnx(self, graph, x, input_shape):
        return graph.node(self.onnx_op, [x])


@register(GlobalAvgPool2D)
class GlobalAvgPoolLayer(_GlobalPoolLayer):
    """Channel means."""

    onnx_op = "GlobalAveragePool"

    def _bound_call(self, x, n_threads):
        n = x.shape[0]
        out = self.output[:n]
        return _pool.global_avg_pool2d_forward, (x, out.reshape(n, -1), n_threads), out

    def backward(self, grad_output, n_threads):
        grad_input = self.input_grad_buffer(grad_output.shape[0])
        if grad_input is None:
            return None
        _pool.global_avg_pool2d_backward(grad_output.reshape(len(grad_input), -1),
                                         grad_input, n_threads)
        return grad_input


@register(GlobalMaxPool2D)
class GlobalMaxPoolLayer(_GlobalPoolLayer):
    """Channel maxima, with the winning positions kept for backward."""

    onnx_op = "GlobalMaxPool"

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        super().allocate(batch_size, dtype, n_threads, training, needs_input_grad)
        self.argmax = np.empty((batch_size, self.input_shape[2]), dtype=np.int32)

    def _bound_call(self, x, n_threads):
        n = x.shape[0]
        out = self.output[:n]
        return _pool.global_max_pool2d_forward, (x, out.reshape(n, -1), self.argmax[:n],
                                                 n_threads), out

    def backward(self, grad_output, n_threads):
        grad_input = self.input_grad_buffer(grad_output.shape[0])
        if grad_input is None:
            return None
        n = len(grad_input)
        _pool.global_max_pool2d_backward(grad_output.reshape(n, -1), self.argmax[:n],
                                         grad_input, n_threads)
        return grad_input
