"""Hostile inputs get a clear ValueError/TypeError naming the culprit and the fix."""

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_cnn import AvgPool2D, CNNClassifier, Conv2D, GlobalAvgPool2D, MaxPool2D

X = np.random.RandomState(0).rand(20, 64)
y = np.arange(20) % 2


@pytest.mark.parametrize("conv_layers, message", [
    ((Conv2D(2), "maxpool", "maxpool", "maxpool", "maxpool"),
     r"conv_layers\[4\].*2x2 window is larger than the 1x1 feature map.*"
     r"input 8x8x1 -> Conv2D 8x8x2 -> MaxPool2D 4x4x2 -> MaxPool2D 2x2x2 -> "
     r"MaxPool2D 1x1x2"),
    ((Conv2D(2, 9, padding="valid"),), r"conv_layers\[0\].*9x9 kernel does not fit"),
    ((AvgPool2D(3), AvgPool2D(3)), r"conv_layers\[1\].*3x3 window is larger than the 2x2"),
    ((GlobalAvgPool2D(), MaxPool2D(2)), r"conv_layers\[1\].*larger than the 1x1"),
    ((Conv2D(2, (1, 9), padding="valid"),), r"1x9 kernel does not fit the 8x8"),
])
def test_architectures_that_shrink_the_image_to_nothing(conv_layers, message):
    with pytest.raises(ValueError, match=message):
        CNNClassifier(conv_layers=conv_layers).fit(X, y)


@pytest.mark.parametrize("make_layer, error, message", [
    (lambda: Conv2D(2, stride=0), ValueError, "stride must be >= 1"),
    (lambda: Conv2D(2, padding=-1), ValueError, "padding.*>= 0"),
    (lambda: Conv2D(0), ValueError, "filters must be >= 1"),
    (lambda: Conv2D(2.5), TypeError, "filters must be an int"),
    (lambda: Conv2D(2, kernel_size=(3, 3, 3)), TypeError, "kernel_size must be an int or"),
    (lambda: Conv2D(2, padding="full"), TypeError, "padding"),
    (lambda: Conv2D(2, activation="swish"), ValueError, "activation must be one of"),
    (lambda: MaxPool2D(0), ValueError, "pool_size must be >= 1"),
    (lambda: AvgPool2D(2, stride=(1, 0)), ValueError, "stride must be >= 1"),
])
def test_bad_layer_specifications(make_layer, error, message):
    with pytest.raises(error, match=message):
        make_layer()


@pytest.mark.parametrize("entry, message", [
    (0, r"conv_layers\[0\] = 0: an int means Conv2D"),
    ("pool", r"conv_layers\[0\] = 'pool' is not a layer"),
    (None, "is not a layer"),
])
def test_bad_conv_layers_entries(entry, message):
    with pytest.raises((TypeError, ValueError), match=message):
        CNNClassifier(conv_layers=(entry,)).fit(X, y)


@pytest.mark.parametrize("params, error, message", [
    (dict(hidden_layer_sizes=(0,)), ValueError, "hidden_layer_sizes must be > 0"),
    (dict(hidden_layer_sizes=(1.5,)), ValueError, "hidden_layer_sizes must be an int"),
    (dict(image_shape=(7, 7)), ValueError, r"image_shape=\(7, 7\) holds 49 values"),
    (dict(image_shape=(2, 4, 4)), ValueError, "holds 32 values per sample but X has 64"),
    (dict(image_shape=(8, 0)), ValueError, "image_shape must be None"),
    (dict(image_shape=(1, 1, 8, 8)), ValueError, "image_shape must be None"),
    (dict(learning_rate_init=0), InvalidParameterError, "learning_rate_init"),
    (dict(dropout=1.0), InvalidParameterError, "dropout"),
    (dict(batch_size=0), InvalidParameterError, "batch_size"),
])
def test_bad_parameters(params, error, message):
    with pytest.raises(error, match=message):
        CNNClassifier(**params).fit(X, y)


@pytest.mark.parametrize("bad_X, error, message", [
    (np.empty((0, 64)), ValueError, "0 sample"),
    (np.where(X > 0.9, np.nan, X), ValueError, "NaN"),
    (np.where(X > 0.9, np.inf, X), ValueError, "infinity"),
    (X + 1j, ValueError, "Complex data not supported"),
    (np.array([["a"] * 64] * 20), ValueError, "could not convert|dtype"),
    (X.astype(np.float32) * 1e10, ValueError, "values as large as.*Scale X"),
    (np.zeros((20, 2, 2, 2, 2)), ValueError, "X has 5 dimensions"),
])
def test_bad_X(bad_X, error, message):
    with pytest.raises(error, match=message):
        CNNClassifier().fit(bad_X, y[: len(bad_X)] if len(bad_X) else y[:0])


def test_bad_X_in_predict():
    clf = CNNClassifier((4,), conv_layers=(Conv2D(2),), max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.where(X > 0.9, np.nan, X))
    with pytest.raises(ValueError, match="X has 63 features"):
        clf.predict(X[:, :63])
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 16\).*fitted on "
                                          r"\(1, 8, 8\)"):
        clf.predict(X.reshape(20, 4, 16))
    with pytest.raises(ValueError, match="values as large as"):
        clf.predict(X * 1e100)
    # No images, in the 2-D, 3-D or 4-D layout: scikit-learn's message.
    for empty in (X[:0], X[:0].reshape(0, 8, 8), X[:0].reshape(0, 1, 8, 8)):
        with pytest.raises(ValueError, match="0 sample"):
            clf.predict(empty)


@pytest.mark.parametrize("bad_y, message", [
    (np.array([0, "a"] * 10, dtype=object), "Mix of label input types|unknown"),
    (np.linspace(0, 1, 20), "Unknown label type"),
    (np.arange(19), "19 samples|inconsistent numbers of samples|must match"),
    (np.c_[np.arange(20) % 3, y], "y is multiclass-multioutput: CNNClassifier takes"),
])
def test_bad_y(bad_y, message):
    with pytest.raises(ValueError, match=message):
        CNNClassifier().fit(X, bad_y)


@pytest.mark.parametrize("weights, message", [
    (np.ones(19), "sample_weight.shape|19"),
    (-np.ones(20), "non-negative.*20 negative"),
    (np.zeros(20), "non-zero|sums to zero"),
    (np.full(20, np.nan), "finite|NaN"),
])
def test_bad_sample_weight(weights, message):
    with pytest.raises(ValueError, match=message):
        CNNClassifier().fit(X, y, sample_weight=weights)


def test_edge_cases_that_are_valid():
    # One sample, one class, a single feature: all fit and predict.
    one = CNNClassifier(max_iter=2).fit(X[:1], y[:1])
    assert one.predict(X[:3]).tolist() == [0, 0, 0]
    single_class = CNNClassifier(max_iter=2).fit(X, np.zeros(20, dtype=int))
    np.testing.assert_allclose(single_class.predict_proba(X), 1.0)
    narrow = CNNClassifier(max_iter=2).fit(X[:, :1], y)
    assert np.isfinite(narrow.predict_proba(X[:, :1])).all()
