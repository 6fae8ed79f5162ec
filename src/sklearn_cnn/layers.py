"""Layer specifications: what a user writes to describe the convolutional part.

They are small immutable values with a readable ``repr``, so an architecture
is plain data: it can be cloned, compared, pickled and grid-searched::

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.layers import Conv2D, MaxPool2D

    CNNClassifier(conv_layers=(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D()))

In ``conv_layers`` an ``int`` is shorthand for ``Conv2D(filters=int)``, and
the strings ``"maxpool"``, ``"avgpool"`` and ``"globalavgpool"`` stand for
``MaxPool2D()``, ``AvgPool2D()`` and ``GlobalAvgPool2D()``.

Feature maps have a height, a width and channels.  A 1-D signal is an image
of height 1: use ``kernel_size=(1, k)`` and ``pool_size=(1, p)`` for it.
"""

from dataclasses import dataclass
from numbers import Integral

__all__ = ["Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"]

ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu")


def _pair(value, name, minimum):
    """Return ``value`` as a pair of ints >= ``minimum``, or raise a clear error."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(
            f"{name} must be an int or a pair of ints (height, width), got {value!r}."
        )
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} along both axes, got {value!r}.")
    return pair


@dataclass(frozen=True)
class Conv2D:
    """2-D convolution followed by the estimator's (or its own) activation.

    Parameters
    ----------
    filters : int
        Number of output channels.
    kernel_size : int or (int, int), default=3
        Height and width of the kernel.
    stride : int or (int, int), default=1
        Step between neighbouring windows.
    padding : {"same", "valid"} or int or (int, int), default="same"
        "valid" uses no padding; "same" pads with zeros so that the output has
        ``ceil(size / stride)`` positions (TensorFlow's convention); integers
        pad that many zeros on both sides.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or None, \
            default=None
        Activation after the convolution; None uses the estimator's
        ``activation``.
    """

    filters: int
    kernel_size: object = 3
    stride: object = 1
    padding: object = "same"
    activation: object = None

    def __post_init__(self):
        if not isinstance(self.filters, Integral) or isinstance(self.filters, bool):
            raise TypeError(f"Conv2D filters must be an int, got {self.filters!r}.")
        if self.filters < 1:
            raise ValueError(f"Conv2D filters must be >= 1, got {self.filters}.")
        _pair(self.kernel_size, "Conv2D kernel_size", 1)
        _pair(self.stride, "Conv2D stride", 1)
        if not (isinstance(self.padding, str) and self.padding in ("same", "valid")):
            _pair(self.padding, "Conv2D padding ('same', 'valid' or ints)", 0)
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Conv2D activation must be one of {ACTIVATIONS} or None, "
                f"got {self.activation!r}."
            )


@dataclass(frozen=True)
class MaxPool2D:
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

    def __post_init__(self):
        _pair(self.pool_size, f"{type(self).__name__} pool_size", 1)
        if self.stride is not None:
            _pair(self.stride, f"{type(self).__name__} stride", 1)


@dataclass(frozen=True)
class AvgPool2D(MaxPool2D):
    """Average pooling over windows that stay inside the feature map.

    Parameters
    ----------
    pool_size : int or (int, int), default=2
        Height and width of the window.
    stride : int or (int, int) or None, default=None
        Step between windows; None means ``pool_size`` (no overlap).
    """


@dataclass(frozen=True)
class GlobalAvgPool2D:
    """Average of each channel over the whole feature map (output 1x1xC)."""


_SHORTHANDS = {
    "maxpool": MaxPool2D(),
    "avgpool": AvgPool2D(),
    "globalavgpool": GlobalAvgPool2D(),
}

LAYER_TYPES = (Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D)


def as_layer_spec(entry, position):
    """Turn one entry of ``conv_layers`` into a layer specification."""
    if isinstance(entry, LAYER_TYPES):
        return entry
    if isinstance(entry, Integral) and not isinstance(entry, bool):
        if entry < 1:
            raise ValueError(
                f"conv_layers[{position}] = {entry}: an int means Conv2D(filters=int) "
                "and must be >= 1."
            )
        return Conv2D(int(entry))
    if isinstance(entry, str) and entry in _SHORTHANDS:
        return _SHORTHANDS[entry]
    raise TypeError(
        f"conv_layers[{position}] = {entry!r} is not a layer. Use an int (number of "
        f"filters of a 3x3 Conv2D), one of {sorted(_SHORTHANDS)}, or a layer from "
        "sklearn_cnn.layers (Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D)."
    )
