"""TrainingHistoryDisplay and FeatureMapsDisplay: scikit-learn's Display API."""

import warnings

import matplotlib
import numpy as np
import pytest
from scipy.signal import correlate2d
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sklearn_cnn import CNNClassifier, CNNRegressor, Conv2D, MaxPool2D
from sklearn_cnn.inspection import FeatureMapsDisplay, TrainingHistoryDisplay

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data(rng):
    y = rng.randint(0, 3, 90)
    X = rng.rand(90, 8, 8) * 0.3
    X[np.arange(90), y, :] += 1
    return X.reshape(90, -1), y


def fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def test_training_history_draws_what_the_estimator_recorded(data):
    X, y = data
    clf = fit(CNNClassifier((8,), conv_layers=(Conv2D(4),), max_iter=6,
                            early_stopping=True, random_state=0), X, y)
    display = TrainingHistoryDisplay.from_estimator(clf)
    assert set(display.lines_) == {"loss", "validation_loss", "validation_score"}
    np.testing.assert_array_equal(display.lines_["loss"].get_ydata(), clf.loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation_score"].get_ydata(),
                                  clf.validation_scores_)
    np.testing.assert_array_equal(display.lines_["loss"].get_xdata(),
                                  np.arange(1, clf.n_iter_ + 1))
    best = int(np.argmax(clf.validation_scores_)) + 1
    assert display.best_line_.get_xdata()[0] == best
    assert display.ax_score_.get_ylabel() == "validation accuracy"
    assert display.ax_.get_title() == "CNNClassifier"


def test_training_history_of_a_regressor_into_given_axes(data):
    X, y = data
    reg = fit(CNNRegressor((8,), conv_layers=(Conv2D(4),), max_iter=3, random_state=0),
              X, y.astype(float))
    fig, (left, right) = plt.subplots(1, 2)
    display = TrainingHistoryDisplay.from_estimator(reg, ax=right, name="mine")
    assert display.ax_ is right and display.figure_ is fig
    assert set(display.lines_) == {"loss"} and display.ax_score_ is None
    assert display.best_line_ is None and right.get_title() == "mine"
    assert not left.lines
    with pytest.raises(NotFittedError):
        TrainingHistoryDisplay.from_estimator(CNNRegressor())


def test_feature_maps_are_the_layers_output(data):
    X, y = data
    clf = fit(CNNClassifier((8,), conv_layers=(Conv2D(5), MaxPool2D(), Conv2D(3)),
                            max_iter=2, random_state=0), X, y)
    display = FeatureMapsDisplay.from_estimator(clf, X[:1], max_filters=4)
    weights = clf.parameters_["conv_layers.0.weights"][:, :, 0, :]
    bias = clf.parameters_["conv_layers.0.bias"]
    image = X[0].reshape(8, 8)
    expected = np.stack([np.maximum(correlate2d(image, weights[:, :, k], mode="same")
                                    + bias[k], 0) for k in range(5)], axis=-1)
    np.testing.assert_allclose(display.feature_maps, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(display.filters, weights)
    assert display.axes_.shape == (3, 4)
    second = FeatureMapsDisplay.from_estimator(clf, X[1:2], layer=2)
    assert second.feature_maps.shape == (4, 4, 3)
    with pytest.raises(ValueError, match="layer=1 must be the index of a Conv2D"):
        FeatureMapsDisplay.from_estimator(clf, X[:1], layer=1)
    with pytest.raises(ValueError, match="X must hold one sample, got 2"):
        FeatureMapsDisplay.from_estimator(clf, X[:2])


def test_class_activation_maps_average_to_the_outputs():
    from test_series import bumps

    from sklearn_cnn.architectures import fcn
    from sklearn_cnn.inspection import class_activation_maps

    X, y = bumps(120, 0)
    clf = fit(CNNClassifier((), conv_layers=fcn((4, 8, 4)), max_iter=3, random_state=0),
              X, y)
    cams = class_activation_maps(clf, X[:7])
    assert cams.shape == (7, 64, 2)
    logits = cams.mean(axis=1) + clf.parameters_["output.bias"]
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True),
                               clf.predict_proba(X[:7]), rtol=1e-10)
    images = fit(CNNClassifier((), conv_layers=(Conv2D(3), "globalavgpool"), max_iter=1,
                               random_state=0), X.reshape(120, 8, 8), y)
    assert class_activation_maps(images, X[:2].reshape(2, 8, 8)).shape == (2, 8, 8, 2)
    with pytest.raises(ValueError, match="hidden_layer_sizes is empty"):
        class_activation_maps(fit(CNNClassifier((4,), conv_layers=fcn((2, 2, 2)),
                                                max_iter=1), X, y), X[:2])
