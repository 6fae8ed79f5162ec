"""The architecture as data: nested parameters, layer reprs, the homes of the
fitted arrays, validation before any change, and what new users tripped over."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_cnn import (
    Activation,
    AvgPool2D,
    CNNClassifier,
    CNNRegressor,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    Sequential,
)


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


@pytest.fixture
def data(rng):
    y = rng.randint(0, 3, 90)
    X = rng.rand(90, 8, 8) * 0.3
    X[np.arange(90), y, :] += 1
    return X.reshape(90, -1), y


def test_layer_reprs_show_only_what_differs_from_the_defaults():
    assert repr(Conv2D(32)) == "Conv2D(32)"
    assert repr(Conv2D(32, 5, padding="valid")) == "Conv2D(32, kernel_size=5, padding='valid')"
    assert repr(MaxPool2D()) == "MaxPool2D()"
    assert repr(AvgPool2D(3, 1)) == "AvgPool2D(pool_size=3, stride=1)"
    assert repr(GlobalAvgPool2D()) == "GlobalAvgPool2D()"
    assert repr(Dense(10, "tanh")) == "Dense(10, activation='tanh')"
    assert repr(Dropout()) == "Dropout()"
    assert repr(Activation("tanh")) == "Activation(activation='tanh')"
    assert repr(Sequential((8, "maxpool"))) == "Sequential((Conv2D(8), MaxPool2D()))"


def test_conv_layers_is_keyword_only_and_mlp_positional_arguments_work():
    clf = CNNClassifier((64,), "tanh")  # MLPClassifier((64,), "tanh") ported as is
    assert clf.hidden_layer_sizes == (64,) and clf.activation == "tanh"
    assert clf.conv_layers == "auto"
    with pytest.raises(TypeError):
        CNNClassifier((64,), "relu", (Conv2D(8),))


def test_nested_layer_parameters_get_and_set():
    clf = CNNClassifier(conv_layers=(Conv2D(8), "maxpool",
                                     Sequential((Conv2D(4), Activation()))))
    params = clf.get_params()
    assert params["conv_layers__0"] == Conv2D(8)
    assert params["conv_layers__0__filters"] == 8
    assert params["conv_layers__1"] == "maxpool"
    assert params["conv_layers__2__layers__0__filters"] == 4
    assert set(clf.get_params(deep=False)) <= set(params)
    clf.set_params(conv_layers__0__filters=16, conv_layers__1__pool_size=3,
                   conv_layers__2__layers__0__kernel_size=5, alpha=0.1)
    assert clf.conv_layers == (Conv2D(16), MaxPool2D(3),
                               Sequential((Conv2D(4, 5), Activation())))
    assert clf.alpha == 0.1
    clf.set_params(conv_layers__1=AvgPool2D())
    assert clf.conv_layers[1] == AvgPool2D()
    with pytest.raises(ValueError, match="Conv2D has no parameter 'filter'"):
        clf.set_params(conv_layers__0__filter=3)
    with pytest.raises(ValueError, match="conv_layers has 3 layers, numbered 0 to 2"):
        clf.set_params(conv_layers__7__filters=3)
    with pytest.raises(ValueError, match="set conv_layers to a tuple of layers"):
        CNNClassifier().set_params(conv_layers__0__filters=3)
    with pytest.raises(ValueError, match="Conv2D filters must be >= 1"):
        clf.set_params(conv_layers__0__filters=0)


def test_grid_search_inside_the_architecture(data):
    X, y = data
    search = GridSearchCV(
        CNNClassifier((8,), conv_layers=(Conv2D(2), MaxPool2D()), max_iter=3,
                      random_state=0),
        {"conv_layers__0__filters": [2, 4], "conv_layers__1__pool_size": [2, 4]}, cv=2)
    quiet(search.fit, X, y)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_
    assert best.conv_layers[0].filters == search.best_params_["conv_layers__0__filters"]
    first_weights = best.parameters_["conv_layers.0.weights"]
    assert first_weights.shape[-1] == search.best_params_["conv_layers__0__filters"]


def test_every_learned_array_has_a_named_home(data):
    X, y = data
    clf = quiet(CNNClassifier((6,), conv_layers=(Sequential((Conv2D(3), "maxpool")),
                                                 Conv2D(2)), max_iter=2,
                              random_state=0).fit, X, y)
    assert list(clf.parameters_) == [
        "conv_layers.0.layers.0.weights", "conv_layers.0.layers.0.bias",
        "conv_layers.1.weights", "conv_layers.1.bias",
        "hidden_layers.0.weights", "hidden_layers.0.bias",
        "output.weights", "output.bias"]
    assert clf.state_ == {}
    # coefs_ and intercepts_ are MLP's view of the same arrays.
    assert clf.coefs_[0] is clf.parameters_["conv_layers.0.layers.0.weights"]
    assert clf.intercepts_[-1] is clf.parameters_["output.bias"]
    clf.coefs_[-1][...] = 0  # in place, as MLP users do
    assert (clf.parameters_["output.weights"] == 0).all()
    clf.intercepts_ = [b + 1 for b in clf.intercepts_]
    assert (clf.parameters_["output.bias"] == clf.intercepts_[-1]).all()
    with pytest.raises(ValueError, match="Expected 4 arrays"):
        clf.coefs_ = clf.coefs_[:2]
    # Arrays in another order, dtype or as lists become the model's.
    expected = clf.predict_proba(X)
    dtypes = [w.dtype for w in clf.coefs_]
    clf.coefs_ = [np.asfortranarray(w).astype(np.float32) if i % 2 else w.tolist()
                  for i, w in enumerate(clf.coefs_)]
    assert [w.dtype for w in clf.coefs_] == dtypes
    assert all(w.flags.c_contiguous for w in clf.coefs_)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-6)
    # Put into parameters_ directly, a Fortran-ordered array gets a clear error
    # (a convolution's by im2col, a dense layer's).
    for name in ("conv_layers.1.weights", "hidden_layers.0.weights"):
        good = clf.parameters_[name]
        clf.parameters_[name] = np.asfortranarray(good)
        with pytest.raises(ValueError, match="must be C-contiguous.*coefs_"):
            clf.predict_proba(X)
        clf.parameters_[name] = good
    # Survives pickling; clone starts afresh; summary shows every array.
    loaded = pickle.loads(pickle.dumps(clf))
    for name, array in clf.parameters_.items():
        np.testing.assert_array_equal(loaded.parameters_[name], array)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert not hasattr(clone(clf), "parameters_")
    table = str(clf.summary())
    for array in ("weights 3x3x1x3", "weights 3x3x3x2", "weights 32x6", "weights 6x3"):
        assert array in table
    assert f"Total parameters: {sum(a.size for a in clf.parameters_.values()):,}" in table


def test_n_layers_counts_declared_layers_only(data):
    X, y = data
    fused = quiet(CNNClassifier((6, 5), conv_layers=(Conv2D(3), MaxPool2D()),
                                dropout=0.3, max_iter=1).fit, X, y)
    assert fused.n_layers_ == 1 + 2 + 2 + 1  # input, conv + pool, 2 hidden, output
    auto = quiet(CNNClassifier(max_iter=1).fit, X, y)
    assert auto.n_layers_ == 1 + 4 + 1 + 1


def test_activation_layers_and_blocks_train(data):
    X, y = data
    arch = (Sequential((Conv2D(4, activation="identity"), Activation("relu"),
                        MaxPool2D())), Conv2D(4, activation="identity"),
            Activation("tanh"), GlobalAvgPool2D(), Dense(8), Dropout(0.1))
    clf = quiet(CNNClassifier((), conv_layers=arch, max_iter=40, random_state=0,
                              learning_rate_init=0.01).fit, X, y)
    assert clf.score(X, y) > 0.9
    assert clf.transform(X).shape == (90, 8)


def test_validation_happens_before_any_change(data):
    X, y = data
    clf = quiet(CNNClassifier((4,), conv_layers=(Conv2D(2),), max_iter=1,
                              random_state=0).fit, X, y)
    before = {name: a.copy() for name, a in clf.parameters_.items()}
    attributes = dict(vars(clf))
    with pytest.raises(ValueError, match="early_stopping"):
        clf.set_params(early_stopping=True).partial_fit(X, y)
    clf.set_params(early_stopping=False, warm_start=True,
                   conv_layers=(Conv2D(2), MaxPool2D(16)))
    with pytest.raises(ValueError, match="larger than the 8x8 feature map"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match=r"labels \[7\] not among"):
        clf.set_params(conv_layers=(Conv2D(2),)).partial_fit(X, np.r_[y[:-1], 7])
    clf.set_params(conv_layers=(Conv2D(3),))
    with pytest.raises(ValueError, match="architecture no longer matches"):
        clf.fit(X, y)
    assert vars(clf).keys() == attributes.keys()
    for name in ("classes_", "n_iter_", "loss_curve_", "image_shape_"):
        assert np.array_equal(getattr(clf, name), attributes[name]), name
    for name, array in clf.parameters_.items():
        np.testing.assert_array_equal(array, before[name])
    fresh = CNNClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        fresh.partial_fit(X, y, classes=[0, 1, 2])
    assert not [name for name in vars(fresh) if name.endswith("_")]


def test_channels_last_images_are_never_misread(rng):
    X = rng.rand(12, 10, 10, 3)
    y = np.arange(12) % 2
    with pytest.raises(ValueError, match=r"looks channels-last.*X.transpose\(0, 3, 1, 2\)"):
        CNNClassifier(max_iter=1).fit(X, y)
    # Transposed, it is read as 3 channels of 10x10.
    clf = quiet(CNNClassifier(max_iter=1).fit, X.transpose(0, 3, 1, 2), y)
    assert clf.image_shape_ == (3, 10, 10)
    # Confirmed by image_shape, the channels-first reading is kept.
    confirmed = quiet(CNNClassifier(max_iter=1, image_shape=(10, 10, 3)).fit, X, y)
    assert confirmed.image_shape_ == (10, 10, 3)


def test_warnings_point_at_the_callers_line(data):
    X, y = data
    with pytest.warns(ConvergenceWarning) as records:
        CNNRegressor(max_iter=1).fit(X, y.astype(float))
    assert records[0].filename == __file__
    with pytest.warns(UserWarning, match="batch_size=500 larger") as records:
        quiet(CNNClassifier(max_iter=1, batch_size=500).fit, X, y)
    assert all(record.filename == __file__ for record in records)
