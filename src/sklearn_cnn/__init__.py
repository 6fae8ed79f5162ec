"""sklearn-cnn: convolutional neural networks for scikit-learn."""

from ._build_info import show_build_info
from ._classifier import CNNClassifier
from ._regressor import CNNRegressor
from ._version import __version__
from .layers import (
    Activation,
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    Sequential,
)

__all__ = [
    "CNNClassifier",
    "CNNRegressor",
    "Activation",
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "GlobalAvgPool2D",
    "MaxPool2D",
    "Sequential",
    "show_build_info",
    "__version__",
]
