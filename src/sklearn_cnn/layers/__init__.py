"""Layer specifications: what a user writes to describe an architecture.

They are small immutable values with a short ``repr``, so an architecture is
plain data: it can be cloned, compared, pickled and grid-searched down to one
field (``conv_layers__0__filters``)::

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.layers import Conv2D, MaxPool2D

    CNNClassifier(conv_layers=(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D()))

In ``conv_layers`` an ``int`` is shorthand for ``Conv2D(filters=int)``, and
the strings ``"maxpool"``, ``"avgpool"`` and ``"globalavgpool"`` stand for
``MaxPool2D()``, ``AvgPool2D()`` and ``GlobalAvgPool2D()``.

Feature maps have a height, a width and channels.  Series take the 1-D
layers (``Conv1D``, ``MaxPool1D``, ...), which run as maps of height 1.

How layers work inside, and how to add one: see ``layers/_base.py``.
"""

from numbers import Integral

from ._activation import Activation
from ._base import LayerSpec
from ._batchnorm import BatchNormalization
from ._conv import Conv2D
from ._dense import Dense
from ._dropout import Dropout
from ._one_d import AvgPool1D, Conv1D, GlobalAvgPool1D, GlobalMaxPool1D, MaxPool1D
from ._pool import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from ._residual import Residual
from ._sequential import Sequential

__all__ = [
    "Activation",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNormalization",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "LayerSpec",
    "MaxPool1D",
    "MaxPool2D",
    "Residual",
    "Sequential",
]

# The specifications' public home (in reprs of their types, pickles and
# skops' lists of types to trust): ``sklearn_cnn.layers.Conv2D``, not the
# private module that defines it.
for _name in __all__:
    globals()[_name].__module__ = __name__

_SHORTHANDS = {
    "maxpool": MaxPool2D(),
    "avgpool": AvgPool2D(),
    "globalavgpool": GlobalAvgPool2D(),
}


def as_layer_spec(entry, location):
    """Turn one entry of an architecture (a spec or a shorthand) into a spec."""
    if isinstance(entry, LayerSpec):
        return entry
    if isinstance(entry, Integral) and not isinstance(entry, bool):
        if entry < 1:
            raise ValueError(
                f"{location} = {entry}: an int means Conv2D(filters=int) and must "
                "be >= 1.")
        return Conv2D(int(entry))
    if isinstance(entry, str) and entry in _SHORTHANDS:
        return _SHORTHANDS[entry]
    raise TypeError(
        f"{location} = {entry!r} is not a layer. Use an int (number of filters of "
        f"a 3x3 Conv2D), one of {sorted(_SHORTHANDS)}, or a layer from "
        f"sklearn_cnn.layers ({', '.join(n for n in __all__ if n != 'LayerSpec')}).")
