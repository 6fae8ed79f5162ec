"""sklearn-cnn: a convolutional neural network classifier for scikit-learn."""

from ._build_info import show_build_info
from ._classifier import CNNClassifier
from ._version import __version__
from .layers import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D

__all__ = [
    "CNNClassifier",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "show_build_info",
    "__version__",
]
