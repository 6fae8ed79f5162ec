"""ONNX export (skl2onnx registration) checked against ONNX Runtime."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sklearn_cnn.onnx  # noqa: F401 - registers the converters
from sklearn_cnn import (
    Activation,
    AvgPool1D,
    AvgPool2D,
    BatchNormalization,
    CNNClassifier,
    CNNRegressor,
    Conv1D,
    Conv2D,
    Dropout,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    MaxPool1D,
    MaxPool2D,
    Residual,
    Sequential,
)
from sklearn_cnn.architectures import fcn, resnet1d, resnet2d

onnxruntime = pytest.importorskip("onnxruntime")
from skl2onnx import to_onnx  # noqa: E402 - after the import check

ACTIVATIONS = ["identity", "relu", "leaky_relu", "tanh", "logistic"]


def run_onnx(model, X, **options):
    """Outputs of ONNX Runtime for the exported ``model`` on ``X``."""
    onx = to_onnx(model, X[:1], **options)
    session = onnxruntime.InferenceSession(onx.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def fitted(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def assert_same_predictions(model, X):
    label, proba = run_onnx(model, X, options={"zipmap": False})
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-5, atol=1e-7)


def random_layer(rng, dims, depth=0):
    """One layer spec drawn at random (blocks nest once)."""
    kinds = ["conv", "conv", "bn", "act", "maxpool", "avgpool", "dropout"]
    if depth == 0:
        kinds += ["residual", "sequential"]
    kind = rng.choice(kinds)
    conv_cls, max_cls, avg_cls = ((Conv1D, MaxPool1D, AvgPool1D) if dims == 1
                                  else (Conv2D, MaxPool2D, AvgPool2D))
    if kind == "conv":
        return conv_cls(int(rng.randint(1, 5)), kernel_size=int(rng.randint(1, 5)),
                        stride=int(rng.choice([1, 1, 2])),
                        padding=str(rng.choice(["same", "valid"])),
                        dilation=int(rng.choice([1, 1, 2])),
                        activation=str(rng.choice(ACTIVATIONS)))
    if kind == "bn":
        return BatchNormalization()
    if kind == "act":
        return Activation(str(rng.choice(ACTIVATIONS[1:])))
    if kind in ("maxpool", "avgpool"):
        cls = max_cls if kind == "maxpool" else avg_cls
        # Overlapping windows (stride < pool) included.
        return cls(int(rng.randint(2, 4)), stride=int(rng.randint(1, 3)))
    if kind == "dropout":
        return Dropout(0.2)
    layers = tuple(random_layer(rng, dims, depth + 1) for _ in range(rng.randint(1, 3)))
    if kind == "residual":
        same = [conv_cls(int(rng.randint(1, 5)), kernel_size=3, activation="identity"),
                BatchNormalization()]
        return Residual(tuple(same[:rng.randint(1, 3)]),
                        activation=str(rng.choice(ACTIVATIONS[1:])))
    return Sequential(layers)


def random_model(seed):
    """A small random network and data it fits, of either dimensionality."""
    rng = np.random.RandomState(seed)
    dims = int(rng.choice([1, 2]))
    channels = int(rng.randint(1, 4))
    if dims == 1:
        length = int(rng.randint(9, 30))
        X = rng.standard_normal((40, channels, length)).astype(np.float32)
    else:
        height, width = int(rng.randint(7, 15)), int(rng.randint(7, 15))
        X = rng.standard_normal((40, channels, height, width)).astype(np.float32)
    layers = tuple(random_layer(rng, dims) for _ in range(rng.randint(1, 5)))
    if rng.rand() < 0.5:
        layers += ((GlobalAvgPool1D, GlobalMaxPool1D) if dims == 1
                   else (GlobalAvgPool2D, GlobalMaxPool2D))[rng.randint(2)](),
    hidden = tuple(int(h) for h in rng.randint(2, 9, size=rng.randint(0, 3)))
    params = dict(hidden_layer_sizes=hidden, conv_layers=layers, max_iter=3,
                  batch_size=16, random_state=seed,
                  activation=str(rng.choice(ACTIVATIONS)))
    return X, params


@pytest.mark.parametrize("seed", range(24))
def test_random_architectures_match_onnx_runtime(seed):
    y = np.arange(40) % 3
    for attempt in range(50):  # redraw until the geometry fits the input
        X, params = random_model(1000 * seed + attempt)
        model = CNNClassifier(**params)
        try:
            fitted(model, X, y)
            break
        except ValueError as error:
            assert "does not fit" in str(error) or "larger than" in str(error) \
                or "no strided 1x1" in str(error), error
    flat = X.reshape(len(X), -1)
    assert_same_predictions(model, flat)
    regressor = fitted(CNNRegressor(**params), X, np.c_[y, -y].astype(np.float32))
    (values,) = run_onnx(regressor, flat)
    np.testing.assert_allclose(values, regressor.predict(flat), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


@pytest.mark.parametrize("n_predicted", [60, 1, 3])
def test_series_winograd_predictions_match_onnx_runtime(n_predicted):
    # Series' convolutions of 3-7 taps with >= 8 channels predict by the
    # 1-D Winograd F(9 - r, r), one or a few series included (blocks of
    # columns; the fused max-pool's blocks of rows), BatchNormalization
    # folded into the transformed weights.
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 8, 150)).astype(np.float32)  # >= 24 tiles each
    y = np.arange(60) % 3
    pooled = (Conv1D(12, 5, activation="identity"), BatchNormalization(), Activation(),
              MaxPool1D(2), Conv1D(8, 4), GlobalAvgPool1D())
    for layers in (fcn((8, 16, 8)), pooled):
        model = fitted(CNNClassifier((), conv_layers=layers, max_iter=4,
                                     random_state=0), X, y)
        network = model._build_network(model.n_outputs_, model.image_shape_)
        assert any(getattr(layer, "winograd_series", False)
                   for layer in network.layers)
        assert_same_predictions(model, X[:n_predicted].reshape(n_predicted, -1))


@pytest.mark.parametrize("n_predicted", [1, 3])
def test_few_images_winograd_predictions_match_onnx_runtime(n_predicted, digits):
    # One to three images predict each 3x3 convolution with >= 8 input
    # channels by Winograd on all threads (in blocks of rows, or shared: see
    # layers._conv.ROW_SPLIT_MAX_SAMPLES), a fused max-pool and a folded
    # BatchNormalization included.
    X, y = digits
    layers = (Conv2D(8), Conv2D(12, activation="identity"), BatchNormalization(),
              Activation(), "maxpool", Conv2D(16), "maxpool")
    for conv_layers in (layers, resnet2d((8, 16))):
        model = fitted(CNNClassifier((), conv_layers=conv_layers, max_iter=3,
                                     random_state=0), X[:300], y[:300])
        network = model._build_network(model.n_outputs_, model.image_shape_)
        network.allocate(1, np.float32, 2, training=False)
        assert any(getattr(layer, "winograd_active", False)
                   for layer in network.walk())
        for start in (0, 100, 200):
            assert_same_predictions(model, X[start:start + n_predicted])


@pytest.mark.parametrize("conv_layers", ["auto", resnet2d((4, 8)),
                                         (Conv2D(6, activation="identity"),
                                          BatchNormalization(), Activation(), "maxpool")],
                         ids=["auto", "resnet2d", "conv-bn-relu-pool"])
def test_image_classifiers_match(conv_layers, digits):
    X, y = digits
    model = fitted(CNNClassifier((16,), conv_layers=conv_layers, max_iter=3,
                                 random_state=0), X[:400], y[:400])
    assert_same_predictions(model, X)


def test_series_architectures_match(digits):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 2, 37)).astype(np.float32)
    y = np.arange(60) % 4
    for layers in (fcn((4, 8, 4)), resnet1d((4, 6), (5, 3))):
        model = fitted(CNNClassifier((), conv_layers=layers, max_iter=5,
                                     random_state=0), X, y)
        assert_same_predictions(model, X.reshape(60, -1))


def test_labels_options_and_zipmap(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    model = fitted(CNNClassifier(max_iter=2, random_state=0), X[:300], names[y[:300]])
    label, proba = run_onnx(model, X[:50], options={"zipmap": False})
    np.testing.assert_array_equal(label, model.predict(X[:50]))
    # ZipMap (the default): one dict per sample, keyed by class.
    label, dicts = run_onnx(model, X[:5])
    assert set(dicts[0]) == set(names)
    three = list(model.classes_).index("three")
    np.testing.assert_allclose([d["three"] for d in dicts],
                               model.predict_proba(X[:5])[:, three], rtol=1e-5)
    # output_class_labels adds the classes as an output.
    outputs = run_onnx(model, X[:5], options={"zipmap": False,
                                              "output_class_labels": True})
    assert len(outputs) == 3
    # Float labels (whole numbers, as scikit-learn requires) come out as int64.
    floats = fitted(CNNClassifier(max_iter=1, random_state=0), X[:200],
                    y[:200].astype(float))
    label, _ = run_onnx(floats, X[:50], options={"zipmap": False})
    np.testing.assert_array_equal(label, floats.predict(X[:50]))
    # Binary y: two softmax outputs, as predict_proba.
    binary = fitted(CNNClassifier(max_iter=2, random_state=0), X[:300], y[:300] > 4)
    assert_same_predictions(binary, X[:100])


def test_multilabel_and_regressor(digits):
    X, y = digits
    Y = np.c_[y % 2, y > 4, y == 0]
    multi = fitted(CNNClassifier(max_iter=3, random_state=0), X[:400], Y[:400])
    label, proba = run_onnx(multi, X[:200], options={"zipmap": False})
    np.testing.assert_array_equal(label, multi.predict(X[:200]))
    np.testing.assert_allclose(proba, multi.predict_proba(X[:200]), rtol=1e-5, atol=1e-7)
    reg = fitted(CNNRegressor(max_iter=3, random_state=0), X[:400], y[:400] / 9.0)
    (values,) = run_onnx(reg, X[:200])
    np.testing.assert_allclose(values[:, 0], reg.predict(X[:200]), rtol=1e-5, atol=1e-6)


def test_inside_a_pipeline_and_from_float64_models(digits):
    X, y = digits
    pipe = fitted(make_pipeline(StandardScaler(), CNNClassifier(max_iter=2,
                                                                random_state=0)),
                  X[:300].astype(np.float64), y[:300])
    label, proba = run_onnx(pipe, X[:100], options={"zipmap": False})
    np.testing.assert_array_equal(label, pipe.predict(X[:100]))
    np.testing.assert_allclose(proba, pipe.predict_proba(X[:100]), rtol=1e-4, atol=1e-6)


def test_what_cannot_be_exported_is_refused(digits):
    X, y = digits
    for unfitted in (CNNClassifier(), CNNRegressor()):
        with pytest.raises(NotFittedError):
            to_onnx(unfitted, X[:1])
    model = fitted(CNNClassifier(max_iter=1, test_time_augmentation=True,
                                 random_state=0), X[:200], y[:200])
    with pytest.raises(ValueError, match="test_time_augmentation=False"):
        to_onnx(model, X[:1])
