"""Saving and loading with skops.io: only public types to trust."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import (
    Activation,
    BatchNormalization,
    CNNClassifier,
    CNNRegressor,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool1D,
    MaxPool2D,
    Residual,
    Sequential,
)
from sklearn_cnn.augmentation import RandomFlip, RandomTranslation
from sklearn_cnn.schedules import CosineDecay, ReduceOnPlateau

sio = pytest.importorskip("skops.io")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


def fitted(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


IMAGE_MODEL = dict(
    conv_layers=(Conv2D(4, activation="identity"), BatchNormalization(), Activation(),
                 Residual((Conv2D(4), Dropout(0.1))), Sequential((MaxPool2D(),)),
                 Dense(8)),
    learning_rate=CosineDecay(warmup_epochs=1), augment=(RandomTranslation(1),
                                                         RandomFlip()),
    max_iter=2, random_state=0)


@pytest.mark.parametrize("solver", ["adam", "sgd", "adamw"])
def test_round_trip_trusts_only_public_types_and_training_continues(solver, digits):
    X, y = digits
    model = fitted(CNNClassifier(solver=solver, **IMAGE_MODEL), X, y)
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted == sorted([
        "sklearn_cnn.CNNClassifier", "sklearn_cnn.augmentation.RandomFlip",
        "sklearn_cnn.augmentation.RandomTranslation", "sklearn_cnn.layers.Activation",
        "sklearn_cnn.layers.BatchNormalization", "sklearn_cnn.layers.Conv2D",
        "sklearn_cnn.layers.Dense", "sklearn_cnn.layers.Dropout",
        "sklearn_cnn.layers.MaxPool2D", "sklearn_cnn.layers.Residual",
        "sklearn_cnn.layers.Sequential", "sklearn_cnn.schedules.CosineDecay"])
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(data)
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # The solver's state (moments, schedule, random state) came along:
    # partial_fit continues exactly as on the original, and as after pickle.
    unpickled = pickle.loads(pickle.dumps(model))
    for copy in (model, loaded, unpickled):
        copy.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(unpickled.predict_proba(X), model.predict_proba(X))


def test_series_regressor_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, 2, 20)).astype(np.float32)
    y = X.mean(axis=(1, 2))
    model = fitted(CNNRegressor((), conv_layers=(Conv1D(4, 3), GlobalAvgPool1D()),
                                learning_rate=ReduceOnPlateau(patience=2),
                                max_iter=3, random_state=0), X, y)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == ["sklearn_cnn.CNNRegressor", "sklearn_cnn.layers.Conv1D",
                         "sklearn_cnn.layers.GlobalAvgPool1D",
                         "sklearn_cnn.schedules.ReduceOnPlateau"]
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X.reshape(40, -1)),
                                  model.predict(X.reshape(40, -1)))
