"""Ready-made architectures: functions that return a tuple of layers.

The result is plain data for ``conv_layers``: it prints, clones, pickles and
grid-searches like a tuple written by hand (``conv_layers__0__filters``).
Use them with ``hidden_layer_sizes=()``: they end in global pooling, and the
output layer follows directly, as in the papers.
"""

from .layers import (
    Activation,
    BatchNormalization,
    Conv1D,
    Conv2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    MaxPool2D,
    Residual,
)

__all__ = ["fcn", "resnet1d", "resnet2d", "vgg"]


def _conv_bn(conv, relu=True):
    return (conv, BatchNormalization(), *((Activation("relu"),) if relu else ()))


def fcn(filters=(128, 256, 128), kernel_sizes=(8, 5, 3)):
    """The fully convolutional network for series of Wang et al. (2017).

    ``Conv1D -> BatchNormalization -> ReLU`` blocks and global average
    pooling: the standard baseline of the review by Ismail Fawaz et al.
    (2019).

    Parameters
    ----------
    filters : tuple of int, default=(128, 256, 128)
        Filters of each convolution.
    kernel_sizes : tuple of int, default=(8, 5, 3)
        Kernel size of each convolution ("same" padding).

    Returns
    -------
    layers : tuple
        For ``conv_layers``.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.architectures import fcn
    >>> clf = CNNClassifier((), conv_layers=fcn(filters=(16, 32, 16)))
    >>> len(clf.conv_layers)
    10
    """
    _check_lengths(filters, kernel_sizes)
    layers = []
    for n_filters, kernel_size in zip(filters, kernel_sizes):
        layers += _conv_bn(Conv1D(n_filters, kernel_size, activation="identity"))
    return (*layers, GlobalAvgPool1D())


def resnet1d(filters=(64, 128, 128), kernel_sizes=(8, 5, 3)):
    """The residual network for series of Wang et al. (2017).

    One residual block per entry of ``filters``, each of one
    ``Conv1D -> BatchNormalization`` per kernel size (ReLU between them),
    with a 1x1 convolution + BatchNormalization shortcut where the number of
    channels changes, ReLU after the sum; then global average pooling.

    Parameters
    ----------
    filters : tuple of int, default=(64, 128, 128)
        Filters of each block.
    kernel_sizes : tuple of int, default=(8, 5, 3)
        Kernel sizes of the convolutions inside every block.

    Returns
    -------
    layers : tuple
        For ``conv_layers``.
    """
    blocks = []
    for n_filters in filters:
        body = []
        for position, kernel_size in enumerate(kernel_sizes):
            body += _conv_bn(Conv1D(n_filters, kernel_size, activation="identity"),
                             relu=position < len(kernel_sizes) - 1)
        blocks.append(Residual(tuple(body), activation="relu"))
    return (*blocks, GlobalAvgPool1D())


def resnet2d(filters=(16, 32, 64), blocks_per_stage=1):
    """A compact ResNet for small images (CIFAR-style, He et al. 2016).

    A 3x3 convolution stem, then one stage per entry of ``filters`` of
    ``blocks_per_stage`` residual blocks of two 3x3 convolutions; every stage
    after the first halves the map with a stride-2 first convolution (its
    shortcut is a strided 1x1 convolution + BatchNormalization); then global
    average pooling.

    Parameters
    ----------
    filters : tuple of int, default=(16, 32, 64)
        Filters of each stage.
    blocks_per_stage : int, default=1
        Residual blocks per stage.

    Returns
    -------
    layers : tuple
        For ``conv_layers``.
    """
    layers = list(_conv_bn(Conv2D(filters[0], activation="identity")))
    for stage, n_filters in enumerate(filters):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            body = (*_conv_bn(Conv2D(n_filters, stride=stride, activation="identity")),
                    *_conv_bn(Conv2D(n_filters, activation="identity"), relu=False))
            layers.append(Residual(body, activation="relu"))
    return (*layers, GlobalAvgPool2D())


def vgg(filters=(32, 64), convs_per_stage=2):
    """A VGG-style network for small images (Simonyan & Zisserman, 2015).

    One stage per entry of ``filters``: ``convs_per_stage`` times a 3x3
    ``Conv2D -> BatchNormalization -> ReLU``, then a 2x2 max-pool.  Follow it
    with a dense hidden layer (``hidden_layer_sizes=(256,)``), as the
    training recipe of the user guide does.

    Parameters
    ----------
    filters : tuple of int, default=(32, 64)
        Filters of the convolutions of each stage.
    convs_per_stage : int, default=2
        Convolutions before each pooling.

    Returns
    -------
    layers : tuple
        For ``conv_layers``.

    Examples
    --------
    >>> from sklearn_cnn.architectures import vgg
    >>> vgg(filters=(8,), convs_per_stage=1)
    (Conv2D(8, activation='identity'), BatchNormalization(), Activation('relu'), MaxPool2D())
    """
    if not (isinstance(convs_per_stage, int) and convs_per_stage >= 1):
        raise ValueError(f"convs_per_stage must be an int >= 1, got {convs_per_stage!r}.")
    layers = []
    for n_filters in filters:
        for _ in range(convs_per_stage):
            layers += _conv_bn(Conv2D(n_filters, activation="identity"))
        layers.append(MaxPool2D())
    return tuple(layers)


def _check_lengths(filters, kernel_sizes):
    if len(filters) != len(kernel_sizes):
        raise ValueError(
            f"filters and kernel_sizes must have the same length, got {len(filters)} "
            f"and {len(kernel_sizes)}.")
