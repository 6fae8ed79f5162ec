"""sklearn-cnn: convolutional neural networks for scikit-learn."""

from . import layers
from ._build_info import show_build_info, show_versions
from ._classifier import CNNClassifier
from ._regressor import CNNRegressor
from ._version import __version__
from .layers import *  # noqa: F403 - the layer specs are public at the top level

# The estimators' public home, for pickles and skops' lists of types to trust.
CNNClassifier.__module__ = CNNRegressor.__module__ = __name__

__all__ = [
    "CNNClassifier",
    "CNNRegressor",
    "show_build_info",
    "show_versions",
    "__version__",
    *(name for name in layers.__all__ if name != "LayerSpec"),
]
