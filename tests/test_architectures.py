"""The ready-made architectures are plain data and train."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from test_series import bumps

from sklearn_cnn import (
    Activation,
    BatchNormalization,
    CNNClassifier,
    Conv1D,
    GlobalAvgPool1D,
    Residual,
)
from sklearn_cnn.architectures import fcn, resnet1d, resnet2d


def quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def test_fcn_is_wang_et_al_and_plain_data():
    layers = fcn()
    assert layers == (
        Conv1D(128, 8, activation="identity"), BatchNormalization(), Activation("relu"),
        Conv1D(256, 5, activation="identity"), BatchNormalization(), Activation("relu"),
        Conv1D(128, 3, activation="identity"), BatchNormalization(), Activation("relu"),
        GlobalAvgPool1D())
    clf = CNNClassifier((), conv_layers=layers)
    assert pickle.loads(pickle.dumps(clf)).conv_layers == layers
    assert clone(clf).set_params(conv_layers__0__filters=64).conv_layers[0].filters == 64
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        fcn(filters=(1, 2), kernel_sizes=(8, 5, 3))


def test_resnet1d_blocks_and_shortcuts():
    layers = resnet1d(filters=(4, 8), kernel_sizes=(5, 3))
    assert len(layers) == 3 and all(isinstance(b, Residual) for b in layers[:2])
    clf = CNNClassifier((), conv_layers=layers, max_iter=1, random_state=0)
    X, y = bumps(40, 0)
    quiet_fit(clf, X, y)
    # Block 0 changes 1 -> 4 channels and block 1 4 -> 8: both have projections.
    assert "conv_layers.0.shortcut.0.weights" in clf.parameters_
    assert "conv_layers.1.shortcut.1.running_var" in clf.state_


@pytest.mark.parametrize("builder", [
    lambda: fcn(filters=(8, 16, 8)), lambda: resnet1d(filters=(8, 8), kernel_sizes=(5, 3)),
], ids=["fcn", "resnet1d"])
def test_series_architectures_learn(builder):
    X, y = bumps(300, 0)
    X_test, y_test = bumps(200, 1)
    clf = quiet_fit(CNNClassifier((), conv_layers=builder(), max_iter=15,
                                  learning_rate_init=0.01, random_state=0), X, y)
    assert clf.score(X_test, y_test) > 0.9


def test_resnet2d_learns_digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    layers = resnet2d(filters=(8, 16))
    assert sum(isinstance(layer, Residual) for layer in layers) == 2
    clf = quiet_fit(CNNClassifier((), conv_layers=layers, max_iter=8, batch_size=64,
                                  learning_rate_init=0.01, random_state=0),
                    X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.9
    assert clf.parameters_["conv_layers.4.shortcut.0.weights"].shape == (1, 1, 8, 16)
