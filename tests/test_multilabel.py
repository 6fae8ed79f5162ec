"""CNNClassifier with a multilabel indicator matrix, as MLPClassifier takes it."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

# Objects none of which contains another: which are in the image is the label set.
SHAPES = [np.ones((1, 4)), np.ones((4, 1)), np.ones((2, 2)), np.eye(3)]


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


def multi_object_images(n_samples, seed, size=14):
    """Each object is present with probability 1/2, stamped at a random place."""
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n_samples, len(SHAPES)) < 0.5).astype(int)
    X = rng.normal(0, 0.2, (n_samples, size, size))
    for i in range(n_samples):
        for k, stamp in enumerate(SHAPES):
            if Y[i, k]:
                height, width = stamp.shape
                r = rng.randint(0, size - height + 1)
                c = rng.randint(0, size - width + 1)
                X[i, r:r + height, c:c + width] += stamp
    return X.reshape(n_samples, -1), Y


@pytest.fixture(scope="module")
def objects():
    X_train, Y_train = multi_object_images(2000, 0)
    X_test, Y_test = multi_object_images(500, 1)
    return X_train, X_test, Y_train, Y_test


@pytest.fixture(scope="module")
def fitted(objects):
    X_train, _, Y_train, _ = objects
    return quiet(CNNClassifier(hidden_layer_sizes=(64,),
                               conv_layers=(Conv2D(16), MaxPool2D(), Conv2D(32),
                                            MaxPool2D()),
                               max_iter=25, random_state=0).fit, X_train, Y_train)


def test_beats_mlp_on_subset_accuracy(objects, fitted):
    X_train, X_test, Y_train, Y_test = objects
    mlp = quiet(MLPClassifier((64,), max_iter=25, random_state=0).fit, X_train, Y_train)
    cnn_score, mlp_score = fitted.score(X_test, Y_test), mlp.score(X_test, Y_test)
    # Measured: 0.502 against 0.162 (every one of 4 labels right, 25 epochs).
    assert cnn_score > 0.4, cnn_score
    assert cnn_score > mlp_score + 0.2, (cnn_score, mlp_score)


def test_outputs_follow_mlps_multilabel_conventions(objects, fitted):
    _, X_test, _, Y_test = objects
    assert fitted.out_activation_ == "logistic" and fitted.n_outputs_ == 4
    np.testing.assert_array_equal(fitted.classes_, np.arange(4))
    predicted = fitted.predict(X_test)
    assert predicted.shape == Y_test.shape and set(np.unique(predicted)) <= {0, 1}
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (500, 4) and ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(axis=1), 1)  # independent, not a softmax
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X_test)), proba,
                               rtol=1e-10)
    assert fitted.score(X_test, Y_test) == accuracy_score(Y_test, predicted)
    assert fitted.__sklearn_tags__().classifier_tags.multi_label


def test_early_stopping_uses_subset_accuracy(objects):
    X_train, _, Y_train, _ = objects
    clf = quiet(CNNClassifier((16,), conv_layers=(Conv2D(4), MaxPool2D()),
                              max_iter=6, early_stopping=True, random_state=0).fit,
                X_train, Y_train)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert all(0 <= s <= 1 for s in clf.validation_scores_)


def test_partial_fit_and_mixing_kinds_of_y(objects):
    X_train, _, Y_train, _ = objects
    clf = CNNClassifier((8,), conv_layers=(Conv2D(4),))
    with pytest.raises(ValueError, match="partial_fit needs classes=range\\(4\\)"):
        clf.partial_fit(X_train[:50], Y_train[:50])
    clf.partial_fit(X_train[:50], Y_train[:50], classes=range(4))
    clf.partial_fit(X_train[50:100], Y_train[50:100])
    assert clf.n_iter_ == 2
    with pytest.raises(ValueError, match="multilabel indicator matrix of 3 labels but "
                                         "the model was fitted on 4 labels"):
        clf.partial_fit(X_train[:50], Y_train[:50, :3])
    with pytest.raises(ValueError, match="y holds class labels but the model was "
                                         "fitted on a multilabel"):
        clf.partial_fit(X_train[:50], Y_train[:50].argmax(axis=1))
    multiclass = CNNClassifier((8,), conv_layers=(Conv2D(4),))
    multiclass.partial_fit(X_train[:50], Y_train[:50, 0], classes=[0, 1])
    with pytest.raises(ValueError, match="fitted on class labels \\(multiclass\\)"):
        multiclass.partial_fit(X_train[:50], Y_train[:50])
    with pytest.raises(ValueError, match="class_weight is not supported with a "
                                         "multilabel y"):
        CNNClassifier(class_weight="balanced").fit(X_train[:50], Y_train[:50])
