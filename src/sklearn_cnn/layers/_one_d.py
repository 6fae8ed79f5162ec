"""Layers for series: Conv1D, MaxPool1D, AvgPool1D, GlobalAvgPool1D and
GlobalMaxPool1D.

A series of ``length`` steps and ``channels`` channels runs through the
network as a feature map of height 1 (NHWC: ``(n, 1, length, channels)``),
and each 1-D layer as the 2-D layer with a ``(1, k)`` window: the 2-D
kernels, whose chunked im2col + GEMM already work along one row.
"""

from dataclasses import dataclass

from .._spec import check_int
from ._base import (
    LayerSpec,
    build_layer,
    check_activation,
    register,
)
from ._conv import Conv2D
from ._pool import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D


@dataclass(frozen=True, repr=False)
class Conv1D(LayerSpec):
    """1-D convolution over the steps of a series, followed by an activation.

    Parameters
    ----------
    filters : int
        Number of output channels.
    kernel_size : int, default=3
        Steps the kernel covers.
    stride : int, default=1
        Step between neighbouring windows.
    padding : {"same", "valid"} or int, default="same"
        "same" pads so that the output has ``ceil(length / stride)`` steps;
        when the total padding is odd (an even kernel) the extra zero goes at
        the end, as TensorFlow and aeon's Keras models do.  An int pads that
        many zeros at both ends.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or None, \
            default=None
        None uses the estimator's ``activation``.
    dilation : int, default=1
        Spacing between the kernel's taps: it covers ``(kernel_size - 1) *
        dilation + 1`` steps.
    """

    filters: int
    kernel_size: int = 3
    stride: int = 1
    padding: object = "same"
    activation: object = None
    dilation: int = 1
    spatial_dims = 1

    def __post_init__(self):
        check_int(self.filters, "Conv1D filters")
        check_int(self.kernel_size, "Conv1D kernel_size", 1)
        check_int(self.stride, "Conv1D stride", 1)
        if not (isinstance(self.padding, str) and self.padding in ("same", "valid")):
            check_int(self.padding, "Conv1D padding ('same', 'valid' or an int)", 0)
        check_activation(self.activation, "Conv1D")
        check_int(self.dilation, "Conv1D dilation", 1)

    def as_2d(self):
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding)
        return Conv2D(self.filters, (1, self.kernel_size), (1, self.stride), padding,
                      self.activation, (1, self.dilation))


@dataclass(frozen=True, repr=False)
class MaxPool1D(LayerSpec):
    """Max pooling over windows of steps that stay inside the series.

    Parameters
    ----------
    pool_size : int, default=2
        Steps per window.
    stride : int or None, default=None
        Step between windows; None means ``pool_size``.
    """

    pool_size: int = 2
    stride: object = None
    spatial_dims = 1

    def __post_init__(self):
        check_int(self.pool_size, f"{type(self).__name__} pool_size", 1)
        if self.stride is not None:
            check_int(self.stride, f"{type(self).__name__} stride", 1)

    def as_2d(self):
        stride = None if self.stride is None else (1, self.stride)
        return MaxPool2D((1, self.pool_size), stride)


@dataclass(frozen=True, repr=False)
class AvgPool1D(MaxPool1D):
    """Average pooling over windows of steps; the parameters of
    :class:`MaxPool1D`."""

    def as_2d(self):
        stride = None if self.stride is None else (1, self.stride)
        return AvgPool2D((1, self.pool_size), stride)


@dataclass(frozen=True, repr=False)
class GlobalAvgPool1D(LayerSpec):
    """Average of each channel over all the steps."""

    spatial_dims = 1

    def as_2d(self):
        return GlobalAvgPool2D()


@dataclass(frozen=True, repr=False)
class GlobalMaxPool1D(LayerSpec):
    """Maximum of each channel over all the steps."""

    spatial_dims = 1

    def as_2d(self):
        return GlobalMaxPool2D()


def _build_as_2d(spec, input_shape, context, path):
    """The 2-D runtime layer of the equivalent spec, named and explained in
    the user's 1-D terms."""
    spec_2d = spec.as_2d()
    try:
        layer = build_layer(spec_2d, input_shape, context, path)
    except ValueError as error:
        raise ValueError(str(error).replace(repr(spec_2d), repr(spec))) from None
    layer.name = layer.name.replace("2D", "1D").replace("(1x", "(").replace(", 1x", ", ")
    return layer


for _spec_class in (Conv1D, MaxPool1D, AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D):
    register(_spec_class)(_build_as_2d)
