"""BatchNormalization and Residual blocks: kernels, layers, and in estimators."""

import pickle
import warnings
from unittest import mock

import numpy as np
import pytest
from scipy.special import log_softmax, softmax
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from sklearn_cnn import (
    Activation,
    BatchNormalization,
    CNNClassifier,
    CNNRegressor,
    Conv1D,
    Conv2D,
    MaxPool2D,
    Residual,
    Sequential,
)
from sklearn_cnn._input import to_nhwc
from sklearn_cnn._kernels import _activations
from sklearn_cnn._kernels import _conv as _conv_kernels
from sklearn_cnn._threads import effective_n_threads
from sklearn_cnn.architectures import resnet1d, resnet2d
from sklearn_cnn.layers._base import ACTIVATION_CODES, BuildContext, build_layer
from sklearn_cnn.layers._conv import (
    ROW_BLOCKS,
    ROW_SPLIT_MAX_SAMPLES,
    ConvLayer,
    balanced_chunk,
)

from _layer_check import bind, build, check_layer, random_arrays, walk

EPS = 1e-5


def batchnorm_oracle(x, params, path="conv_layers.0"):
    axes = tuple(range(x.ndim - 1))
    normalised = (x - x.mean(axis=axes)) / np.sqrt(x.var(axis=axes) + EPS)
    return normalised * params[f"{path}.scale"] + params[f"{path}.shift"]


@pytest.mark.parametrize("shape", [(3, 4, 5), (7,), (1, 1, 3)],
                         ids=["feature-map", "flat", "1x1"])
def test_batchnorm_passes_the_shared_layer_checks(shape):
    check_layer(BatchNormalization(), shape, oracle=batchnorm_oracle, n_samples=4)


@pytest.mark.parametrize("activation, function", [
    ("tanh", np.tanh),
    # ReLU's backward recomputes the mask from the input (_batchnorm_blocks.h).
    ("relu", lambda z: np.maximum(z, 0)),
])
def test_batchnorm_fuses_a_following_activation(activation, function):
    spec = Sequential((BatchNormalization(), Activation(activation)))
    fused = build(spec, (3, 2, 4), fuse=True)
    assert len(fused.layers) == 1 and fused.layers[0].activation == activation
    check_layer(spec, (3, 2, 4), fuse=True,
                oracle=lambda x, p: function(batchnorm_oracle(x, p, "conv_layers.0.layers.0")))


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-7), (np.float64, 1e-12)])
@pytest.mark.parametrize("offset, spread", [(5, 3), (1000, 0.01)],
                         ids=["typical", "large-mean"])
def test_batchnorm_statistics_over_many_blocks_are_accurate_and_thread_independent(
        rng, dtype, rtol, offset, spread):
    """More rows than one block (256): the blocked sums are accurate to the
    data type's rounding, also where the mean is 1e5 times the spread (one
    pass, E[x²] - E[x]², would lose every digit there), and do not depend
    on the thread count."""
    layer = build(BatchNormalization(momentum=0.5), (16, 16, 3))
    params, state = random_arrays(layer, rng, dtype)
    bind(layer, params, state)
    x = (rng.standard_normal((9, 16, 16, 3)) * spread + offset).astype(dtype)
    outputs = []
    for n_threads in (1, 2, 3):
        layer.allocate(9, dtype, n_threads, training=True, needs_input_grad=True)
        outputs.append(layer.forward(x, n_threads).copy())
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[0], outputs[2])
    rows = x.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(layer.batch_mean, rows.mean(axis=0), rtol=rtol)
    np.testing.assert_allclose(layer.batch_var, rows.var(axis=0), rtol=1e3 * rtol
                               if dtype == np.float32 else rtol)
    expected = ((rows - rows.mean(axis=0)) / np.sqrt(rows.var(axis=0) + EPS)
                * params["conv_layers.0.scale"] + params["conv_layers.0.shift"])
    np.testing.assert_allclose(outputs[0].reshape(-1, 3), expected,
                               rtol=1e-4 if dtype == np.float32 else 1e-8,
                               atol=1e-4 if dtype == np.float32 else 1e-8)


def test_running_statistics_follow_the_momentum_and_serve_inference(rng):
    layer = build(BatchNormalization(momentum=0.8), (2, 2, 3))
    params, state = random_arrays(layer, rng, np.float64)
    state = {k: v.copy() for k, v in state.items()}
    bind(layer, params, state)
    x = rng.standard_normal((5, 2, 2, 3)) * 2 + 1
    layer.allocate(5, np.float64, 1, training=True, needs_input_grad=True)
    layer.forward(x, 1)
    rows = x.reshape(-1, 3)
    np.testing.assert_allclose(state["conv_layers.0.running_mean"],
                               0.2 * rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(state["conv_layers.0.running_var"],
                               0.8 + 0.2 * rows.var(axis=0, ddof=1), rtol=1e-12)
    layer.allocate(5, np.float64, 1, training=False, needs_input_grad=False)
    expected = ((x - state["conv_layers.0.running_mean"])
                / np.sqrt(state["conv_layers.0.running_var"] + EPS)
                * params["conv_layers.0.scale"] + params["conv_layers.0.shift"])
    np.testing.assert_allclose(layer.forward(x, 1), expected, rtol=1e-12)


BLOCK = (Conv2D(3, activation="identity"), BatchNormalization(), Activation("tanh"),
         Conv2D(3, activation="identity"), BatchNormalization())


@pytest.mark.parametrize("fuse", [False, True], ids=["plain", "fused"])
def test_residual_with_identity_shortcut(fuse):
    layer = check_layer(Residual(BLOCK, activation="tanh"), (5, 4, 3), fuse=fuse)
    assert layer.shortcut == [] and "identity shortcut" in layer.name


@pytest.mark.parametrize("fuse", [False, True], ids=["plain", "fused"])
def test_residual_with_projection_shortcut(fuse):
    spec = Residual((Conv2D(4, stride=2, activation="identity"), BatchNormalization()),
                    activation="tanh")

    def oracle(x, params):
        block = build(Sequential(spec.layers), (5, 4, 3), path="conv_layers.0")
        shortcut = build(Sequential((Conv2D(4, 1, 2, "valid", "identity"),
                                     BatchNormalization())), (5, 4, 3),
                         path="conv_layers.0")
        for branch, prefix in ((block, "layers"), (shortcut, "shortcut")):
            state = {f"{inner.path}.{name}": info.init(None, x.dtype, info.shape)
                     for inner in walk(branch) for name, info in inner.state().items()}
            bind(branch, {k.replace(f"conv_layers.0.{prefix}", "conv_layers.0.layers"): v
                          for k, v in params.items() if f".{prefix}." in k}, state)
            branch.allocate(len(x), x.dtype, 1, training=True, needs_input_grad=False)
        return np.tanh(block.forward(x, 1) + shortcut.forward(x, 1))

    layer = check_layer(spec, (5, 4, 3), oracle=oracle, fuse=fuse)
    assert [child.path for child in layer.children()][-2:] == [
        "conv_layers.0.shortcut.0", "conv_layers.0.shortcut.1"]
    assert layer.output_shape == (3, 2, 4)


def test_residual_errors_are_clear():
    with pytest.raises(ValueError, match=r"conv_layers\[0\]: the block maps 6x6x2 to "
                                         r"4x4x3, which no strided 1x1"):
        build(Residual((Conv2D(3, padding="valid"),)), (6, 6, 2))
    with pytest.raises(ValueError, match="Residual layers must be a non-empty tuple"):
        Residual(())
    assert repr(Residual((8, BatchNormalization()))) == (
        "Residual((Conv2D(8), BatchNormalization()))")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


RESNET = (Conv2D(8, activation="identity"), BatchNormalization(), Activation(),
          Residual((Conv2D(8, activation="identity"), BatchNormalization(), Activation(),
                    Conv2D(8, activation="identity"), BatchNormalization())),
          Residual((Conv2D(16, stride=2, activation="identity"), BatchNormalization(),
                    Activation(), Conv2D(16, activation="identity"),
                    BatchNormalization())),
          "globalavgpool")


def fit(estimator, X, y, n_threads=2):
    with threadpool_limits(n_threads, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def test_a_small_resnet_learns_and_is_bitwise_reproducible(digits):
    X, y = digits
    models = [fit(CNNClassifier((), conv_layers=RESNET, max_iter=8, batch_size=64,
                                learning_rate_init=0.01, random_state=0), X[:1200],
                  y[:1200], n_threads) for n_threads in (1, 2, 3)]
    assert models[0].score(X[1200:], y[1200:]) > 0.9
    for other in models[1:]:
        for arrays in ("parameters_", "state_"):
            for name, array in getattr(models[0], arrays).items():
                np.testing.assert_array_equal(getattr(other, arrays)[name], array)
    clf = models[0]
    # Running statistics moved away from their start, and predict uses them:
    # one sample alone gets what it gets inside a batch.
    assert not np.allclose(clf.state_["conv_layers.1.running_var"], 1)
    np.testing.assert_allclose(clf.predict_proba(X[1200:1201]),
                               clf.predict_proba(X[1200:1300])[:1], rtol=1e-5)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert set(clf.state_) == {f"{path}.{stat}" for path in (
        "conv_layers.1", "conv_layers.3.layers.1", "conv_layers.3.layers.4",
        "conv_layers.4.layers.1", "conv_layers.4.layers.4", "conv_layers.4.shortcut.1")
        for stat in ("running_mean", "running_var")}
    table = str(clf.summary())
    assert "running_var 8 (not trained)" in table and "projection shortcut" in table
    # scale and shift are exempt from the L2 penalty.
    assert not any(name.endswith((".scale", ".shift")) and info.decay
                   for name, info in clf._build_network(
                       10, clf.image_shape_).parameter_infos().items())


def test_early_stopping_restores_running_statistics_with_the_weights(digits):
    X, y = digits
    clf = fit(CNNClassifier((), conv_layers=RESNET[:3] + ("globalavgpool",),
                            max_iter=12, early_stopping=True, n_iter_no_change=2,
                            learning_rate_init=0.05, random_state=0), X, y)
    assert clf.n_iter_ - 1 > int(np.argmax(clf.validation_scores_))  # a later epoch was worse
    # The validation split is the random state's first draw: redo it.  The
    # kept model (weights *and* running statistics of the best epoch) scores
    # exactly the best validation score on it.
    _, X_val, _, y_val = train_test_split(X, y, random_state=np.random.RandomState(0),
                                          test_size=0.1, stratify=y)
    assert clf.score(X_val, y_val) == clf.best_validation_score_


def test_a_batch_of_one_sample_with_a_1x1_map_trains():
    """Zero variance in every batch: the output is the shift, gradients finite."""
    X = np.random.RandomState(0).rand(6, 1)
    clf = fit(CNNClassifier((4,), conv_layers=(Conv2D(2), BatchNormalization()),
                            batch_size=1, max_iter=3, random_state=0), X, [0, 1] * 3)
    assert all(np.isfinite(a).all() for a in clf.parameters_.values())
    assert np.isfinite(clf.predict_proba(X)).all()
    reg = fit(CNNRegressor((4,), conv_layers=(BatchNormalization(),), batch_size=1,
                           max_iter=2, random_state=0), X, X[:, 0])
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("n_samples, batch_size", [(50, 16), (60000, 128), (7, 7),
                                                    (5, 1), (33, 32)])
def test_training_batches_are_even_so_no_batch_is_a_tiny_remainder(n_samples,
                                                                    batch_size):
    from sklearn_cnn._base import _training_batches

    sizes = [b.stop - b.start for b in _training_batches(n_samples, batch_size)]
    assert len(sizes) == -(-n_samples // batch_size)
    assert sum(sizes) == n_samples and max(sizes) <= batch_size
    assert max(sizes) - min(sizes) <= 1
    starts = [b.start for b in _training_batches(n_samples, batch_size)]
    assert starts == list(np.cumsum([0] + sizes[:-1]))


@pytest.mark.parametrize("conv_layers", [
    (Conv2D(6, activation="identity"), BatchNormalization(), Activation("relu"),
     "maxpool", Conv2D(5, activation="identity"), BatchNormalization(),
     "globalavgpool"),
    RESNET,
], ids=["vgg-style", "resnet"])
def test_batchnorm_folded_into_the_convolution_at_inference(conv_layers, digits):
    """predict folds each BatchNormalization into the convolution before it
    (with the activation and max-pool after it fused too); the outputs match
    the unfolded layers, and resumed training is seen at once."""
    X, y = digits
    clf = fit(CNNClassifier((), conv_layers=conv_layers, max_iter=3, batch_size=64,
                            learning_rate_init=0.01, random_state=0), X[:600], y[:600],
              2)
    folded = clf._build_network(10, clf.image_shape_)
    assert any("+ BatchNormalization" in layer.name for layer in folded.walk())
    unfolded = clf._build_network(10, clf.image_shape_, training=True)
    assert not any("+ BatchNormalization" in layer.name for layer in unfolded.walk())

    def logits_of(network):
        network.bind(clf.parameters_, clf.state_)
        network.allocate(100, X.dtype, 1, training=False)
        return network.forward(to_nhwc(X[:100], clf.image_shape_), 1).copy()

    reference = logits_of(unfolded)
    np.testing.assert_allclose(logits_of(folded), reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(clf.predict_log_proba(X[:100]),
                               log_softmax(reference, axis=1), rtol=1e-4, atol=1e-5)
    # The pooled prediction network folds from the arrays as they are now.
    before = clf.predict_proba(X[:100])
    clf.partial_fit(X[:600], y[:600])
    after = clf.predict_proba(X[:100])
    assert not np.allclose(before, after)
    np.testing.assert_allclose(
        after, softmax(logits_of(clf._build_network(10, clf.image_shape_,
                                                    training=True)), axis=1),
        rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("spec, shape", [
    (Conv2D(8, activation="identity"), (6, 7, 8)),              # Winograd F(2x2)
    (Conv2D(8, 3, 2, activation="identity"), (6, 7, 3)),        # im2col, strided
    (Conv1D(8, 5, activation="identity"), (1, 40, 8)),          # series' Winograd
    (Conv1D(8, 5, activation="identity"), (1, 200, 8)),         # ... shared by a few
], ids=["winograd", "im2col", "series", "long-series"])
def test_convolution_adds_a_residual_in_its_epilogue(spec, shape, activation, dtype, rng):
    """A convolution given an addend returns activation(conv(x) + addend),
    bitwise as the separate sum of a residual block, at 1-3 threads."""
    layer = build(spec, shape)
    bind(layer, *random_arrays(layer, rng, dtype))
    code = ACTIVATION_CODES[activation]
    # 9 samples: chunks; 1 and 2: one image on all threads (Winograd), blocks
    # of rows (im2col) or of columns (series).
    for n_samples in (9, 1, 2):
        layer.allocate(n_samples, dtype, 3, training=False, needs_input_grad=False)
        assert layer.adds_in_epilogue()
        x = rng.standard_normal((n_samples, *shape)).astype(dtype)
        addend = rng.standard_normal((n_samples, *layer.output_shape)).astype(dtype)
        separate = np.empty_like(addend)
        _activations.add_and_activate(layer.forward(x, 1).copy().reshape(-1),
                                      addend.reshape(-1), separate.reshape(-1), code, 1)
        for n_threads in (1, 2, 3):
            fused = layer.forward(x, n_threads, addend, code)
            assert np.array_equal(fused, separate)


def test_convolution_refuses_a_misshapen_addend(rng):
    layer = build(Conv2D(8, activation="identity"), (6, 7, 8))
    bind(layer, *random_arrays(layer, rng, np.float64))
    layer.allocate(4, np.float64, 1, training=False, needs_input_grad=False)
    x = rng.standard_normal((4, 6, 7, 8))
    for shape in [(4, 6, 6, 8), (3, 6, 7, 8), (4, 6, 7, 9)]:
        with pytest.raises(ValueError, match="addend must have the shape of out"):
            layer.forward(x, 1, np.zeros(shape), ACTIVATION_CODES["relu"])
    pooled = build(Sequential((Conv2D(8, activation="identity"), MaxPool2D(2))),
                   (6, 7, 8), fuse=True).layers[0]
    assert pooled.pool is not None
    bind(pooled, *random_arrays(pooled, rng, np.float64))
    pooled.allocate(4, np.float64, 1, training=False, needs_input_grad=False)
    assert not pooled.adds_in_epilogue()
    with pytest.raises(ValueError, match="fused with pooling takes no addend"):
        pooled.forward(x, 1, np.zeros((4, 3, 3, 8)), ACTIVATION_CODES["relu"])


def count_addends(monkeypatch, layer_class, method="forward"):
    """From now on, record for each call of ``layer_class.<method>`` whether
    it was given an addend (a residual sum to fuse).  A convolution's
    forward and its prediction plan (Layer.plan) both go through
    ``_bound_call``."""
    calls = []
    original = getattr(layer_class, method)

    def counting(self, x, n_threads, addend=None, activation=None):
        calls.append(addend is not None)
        return original(self, x, n_threads, addend, activation)

    monkeypatch.setattr(layer_class, method, counting)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_sum_fused_into_the_last_convolution_changes_no_bit(dtype, digits,
                                                                    monkeypatch):
    """In prediction each residual block's last convolution adds the shortcut;
    predictions are bitwise those of the separate sum, at 1-3 threads, for
    images and series, in batches and one sample at a time."""
    X, y = digits
    X = X.astype(dtype)
    models = [CNNClassifier((8,), conv_layers=resnet2d((4, 8)), activation="tanh",
                            max_iter=2, random_state=0),
              CNNClassifier((), conv_layers=resnet1d((4, 8), (5, 3)), max_iter=2,
                            random_state=0)]
    for model in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[:300], y[:300])
    def predictions():
        result = []
        for n_threads in (1, 2, 3):
            with threadpool_limits(n_threads, "openmp"):
                result += [model.predict_proba(X[300:400]) for model in models]
                result += [model.predict_proba(X[400:401]) for model in models]
        return result

    fused_calls = count_addends(monkeypatch, ConvLayer, "_bound_call")
    fused = predictions()
    # Per block and model: each batch call, and the one-sample call once per
    # thread count the kernels get (then its recorded plan replays it).
    thread_counts = set()
    for n_threads in (1, 2, 3):
        with threadpool_limits(n_threads, "openmp"):
            thread_counts.add(effective_n_threads())
    assert sum(fused_calls) == 2 * 2 * (3 + len(thread_counts))
    monkeypatch.setattr(ConvLayer, "adds_in_epilogue", lambda self: False)
    fused_calls.clear()
    separate = predictions()
    assert not any(fused_calls)
    assert all(np.array_equal(a, b) for a, b in zip(fused, separate))
    assert all(np.array_equal(fused[0], other) for other in fused[4::4])
    assert all(np.array_equal(fused[2], other) for other in fused[6::4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "identity", "tanh"])
@pytest.mark.parametrize("conv", [dict(kernel_size=3, stride=2),
                                  dict(kernel_size=1, stride=2, padding="valid")],
                         ids=["3x3-stride-2", "1x1-stride-2"])
@pytest.mark.parametrize("filters", [6, 16])
def test_folded_batchnorm_epilogue_rounds_as_separate_operations(conv, filters, activation,
                                                                 dtype, rng):
    """In prediction an im2col convolution with a BatchNormalization folded
    in returns activation((conv * multiplier) + bias), each operation rounded
    to the data type as NumPy rounds it, in chunks and in blocks of rows, at
    1-3 threads (16 filters: rows grouped into long ones, with a remainder,
    see _conv.scaled_shifted)."""
    conv = Conv2D(filters, activation="identity", **conv)
    spec = Sequential((conv, BatchNormalization(), Activation(activation)))
    layer = build_layer(spec, (7, 9, 5), BuildContext(inference=True),
                        "conv_layers.0").layers[0]
    assert isinstance(layer, ConvLayer) and layer.batchnorm is not None
    params, state = random_arrays(layer, rng, dtype)
    for name in state:
        state[name] = (rng.uniform(0.5, 2, state[name].shape) if name.endswith("var")
                       else rng.standard_normal(state[name].shape)).astype(dtype)
    bind(layer, params, state)
    function = {"relu": lambda z: np.maximum(z, 0), "identity": lambda z: z,
                "tanh": np.tanh}[activation]
    for n_samples in (9, 1):
        x = rng.standard_normal((n_samples, 7, 9, 5)).astype(dtype)
        layer.allocate(n_samples, dtype, 3, training=False, needs_input_grad=False)
        multiplier, bias, _ = layer._epilogue()
        # The bare convolution, in the layer's own chunks or blocks of rows
        # (BLAS's sums may depend on a GEMM's height).
        bare = np.empty((n_samples, *layer.output_shape), dtype)
        out_h = layer.output_shape[0]
        rows_per_block = -(-out_h // ROW_BLOCKS) if n_samples < ROW_SPLIT_MAX_SAMPLES else 0
        _conv_kernels.conv2d_forward(
            x, layer.weights_2d, np.zeros_like(bias), bare, np.empty_like(layer.cols),
            layer.kernel_h, layer.kernel_w, layer.stride_h, layer.stride_w,
            layer.pad_top, layer.pad_left, layer.dilation_h, layer.dilation_w,
            balanced_chunk(n_samples, layer.samples_per_chunk),
            ACTIVATION_CODES["identity"], 1, None, rows_per_block, 0, None, None)
        expected = function(bare * multiplier + bias)
        for n_threads in (1, 2, 3):
            out = layer.forward(x, n_threads)
            if activation == "tanh":  # tanh is our own kernel's, not NumPy's
                np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
            else:
                np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh", "identity"])
def test_batchnorm_adds_a_residual_in_training(activation, dtype, rng):
    """In training a BatchNormalization without activation, given an addend,
    returns activation(batchnorm(x) + addend), bitwise as the separate sum,
    at 1-3 threads, and updates its running statistics as without it."""
    layer = build(BatchNormalization(), (16, 17, 3))   # 9 * 272 rows: many blocks
    params, state = random_arrays(layer, rng, dtype)
    bind(layer, params, state)
    x = (rng.standard_normal((9, 16, 17, 3)) * 2 + 1).astype(dtype)
    addend = rng.standard_normal(x.shape).astype(dtype)
    code = ACTIVATION_CODES[activation]
    layer.allocate(9, dtype, 1, training=True, needs_input_grad=True)
    assert layer.adds_in_epilogue()
    names = sorted(state)
    initial = [state[name].copy() for name in names]
    separate = np.empty_like(x)
    _activations.add_and_activate(layer.forward(x, 1).copy().reshape(-1),
                                  addend.reshape(-1), separate.reshape(-1), code, 1)
    updated = [state[name].copy() for name in names]
    assert not any(np.array_equal(a, b) for a, b in zip(initial, updated))
    for n_threads in (1, 2, 3):
        for name, value in zip(names, initial):
            state[name][...] = value
        layer.allocate(9, dtype, n_threads, training=True, needs_input_grad=True)
        fused = layer.forward(x, n_threads, addend, code)
        assert np.array_equal(fused, separate)
        # The running statistics move exactly as in the unfused forward.
        assert all(np.array_equal(state[name], value)
                   for name, value in zip(names, updated))
    with pytest.raises(ValueError, match="addend must have the shape of x"):
        layer.forward(x, 1, addend[:, :, :-1], code)
    layer.allocate(9, dtype, 1, training=False, needs_input_grad=False)
    assert not layer.adds_in_epilogue()
    with pytest.raises(ValueError, match="only a BatchNormalization in training"):
        layer.forward(x, 1, addend, code)
    activated = build(Sequential((BatchNormalization(), Activation("relu"))),
                      (16, 17, 3), fuse=True).layers[0]
    activated.allocate(9, dtype, 1, training=True, needs_input_grad=True)
    assert not activated.adds_in_epilogue()


def fitted_resnet_arrays(X, y, networks):
    """The fitted parameters and state of each of ``networks`` (tanh, 2
    epochs of batches of 50) at 1 and at 3 threads, in one list."""
    arrays = []
    for n_threads in (1, 3):
        for conv_layers in networks:
            model = CNNClassifier((), conv_layers=conv_layers, activation="tanh",
                                  batch_size=50, max_iter=2, random_state=0)
            with threadpool_limits(n_threads, "openmp"), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            arrays += [*model.parameters_.values(), *model.state_.values()]
    return arrays


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_sum_fused_into_the_last_batchnorm_changes_no_bit(dtype, digits,
                                                                  monkeypatch):
    """In training each residual block's last BatchNormalization adds the
    shortcut: the fitted arrays are bitwise those of the separate sum, at 1
    and 3 threads, for images and series."""
    from sklearn_cnn.layers._batchnorm import BatchNormLayer

    X, y = digits
    X, y = X[:200].astype(dtype), y[:200]
    networks = (resnet2d((4, 8)), resnet1d((4, 8), (5, 3)))

    def fitted_arrays():
        return fitted_resnet_arrays(X, y, networks)

    fused_calls = count_addends(monkeypatch, BatchNormLayer)
    fused = fitted_arrays()
    # 2 blocks x 2 models x 2 thread counts x 4 batches x 2 epochs
    assert sum(fused_calls) == 2 * 2 * 2 * 4 * 2
    monkeypatch.setattr(BatchNormLayer, "adds_in_epilogue", lambda self: False)
    fused_calls.clear()
    separate = fitted_arrays()
    assert not any(fused_calls)
    assert len(fused) == len(separate)
    assert all(np.array_equal(a, b) for a, b in zip(fused, separate))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_branches_share_the_gradient_they_keep(dtype, digits, monkeypatch):
    """Blocks whose branches end in layers that leave their incoming gradient
    as it was (BatchNormalization, a convolution without activation) share
    it instead of copying it: resnet2d's and resnet1d's fitted arrays are
    bitwise those of the copy, at 1 and 3 threads."""
    from sklearn_cnn.layers import _residual
    from sklearn_cnn.layers._residual import ResidualLayer

    X, y = digits
    X, y = X[:200].astype(dtype), y[:200]
    networks = (resnet2d((8, 16)), resnet1d((4, 8), (5, 3)))
    copy = mock.Mock(wraps=_residual._activations.activation_backward_copy)
    monkeypatch.setattr(_residual._activations, "activation_backward_copy", copy)
    shared = fitted_resnet_arrays(X, y, networks)
    assert copy.call_count == 0
    monkeypatch.setattr(ResidualLayer, "_branches_keep_gradient", lambda self: False)
    copied = fitted_resnet_arrays(X, y, networks)
    assert copy.call_count > 0
    assert len(shared) == len(copied)
    assert all(np.array_equal(a, b) for a, b in zip(shared, copied))


@pytest.mark.parametrize("last, keeps", [
    ((Conv2D(3, activation="tanh"),), False),
    ((Conv2D(3, activation="identity"),), True),
    ((BatchNormalization(), Activation("relu")), True),   # ReLU absorbed: mask from x
    ((BatchNormalization(), Activation("tanh")), False),  # dy made in place
])
def test_residual_copies_the_gradient_a_branch_may_overwrite(last, keeps):
    # A block ending in a layer whose backward turns the gradient into d
    # pre-activation in place gets its own copy; the others share it.
    # check_layer's gradients agree with finite differences either way.
    layer = check_layer(Residual((Conv2D(3, activation="identity"), *last),
                                 activation="tanh"), (5, 4, 3), fuse=True)
    assert type(layer.layers[-1]).__name__ == ("ConvLayer" if len(last) == 1
                                               else "BatchNormLayer")
    assert layer._branches_keep_gradient() == keeps


def test_a_fused_residual_sum_keeps_no_second_map():
    """Where the block's last layer adds the shortcut (a BatchNormalization in
    training, a convolution with it folded in prediction), the block's output
    is that layer's buffer; a block ending in an activation keeps its own."""
    rng = np.random.RandomState(0)
    spec = Residual((Conv2D(4, activation="identity"), BatchNormalization()))
    training = build(spec, (5, 6, 4))
    bind(training, *random_arrays(training, rng, np.float64))
    training.allocate(3, np.float64, 1, training=True, needs_input_grad=True)
    assert training.output is training.layers[-1].output
    predicting = build_layer(spec, (5, 6, 4), BuildContext(inference=True), "conv_layers.0")
    bind(predicting, *random_arrays(predicting, rng, np.float64))
    predicting.allocate(3, np.float64, 1, training=False, needs_input_grad=False)
    assert isinstance(predicting.layers[-1], ConvLayer)
    assert predicting.output is predicting.layers[-1].output
    own = build(Residual((Conv2D(4, activation="identity"), Activation("relu"))),
                (5, 6, 4))
    bind(own, *random_arrays(own, rng, np.float64))
    own.allocate(3, np.float64, 1, training=True, needs_input_grad=True)
    assert own.output is not own.layers[-1].output
    assert own.output.shape == (3, 5, 6, 4)


@pytest.mark.parametrize("channels", [16, 32, 64, 128])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("with_addend", [False, True])
@pytest.mark.parametrize("rows", [1, 256, 3 * 256 + 77])   # one row, one block, several
def test_batchnorm_blocks_for_common_channel_counts_change_no_bit(
        channels, activation, with_addend, rows, rng):
    """float32 blocks of 16, 32, 64 or 128 channels run loops compiled for
    that count (_batchnorm_blocks.h, in the AVX2 build that CPUs with AVX2
    load): every value and statistic is bitwise what the generic loops give,
    which a map with one more channel (an independent column) takes."""
    from sklearn_cnn._kernels import load

    kernels = load("_batchnorm")
    results = []
    for width in (channels, channels + 1):
        x = (rng.standard_normal((rows, width)) * 2 + 0.5).astype(np.float32)
        grad = rng.standard_normal((rows, width)).astype(np.float32)
        addend = rng.standard_normal((rows, width)).astype(np.float32)
        if results:  # the first columns as before
            x[:, :channels], grad[:, :channels], addend[:, :channels] = results[0][:3]
        scale = rng.uniform(0.5, 2, width).astype(np.float32)
        shift = rng.standard_normal(width).astype(np.float32)
        if results:
            scale[:channels], shift[:channels] = results[0][3:5]
        blocks = kernels.n_blocks(rows)
        out, grad_input = np.empty_like(x), np.empty_like(x)
        mean, var = np.empty(width), np.empty(width)
        coefficients = np.empty(6 * width, np.float32)
        grad_scale, grad_shift = np.empty_like(scale), np.empty_like(shift)
        code = ACTIVATION_CODES[activation]
        kernels.batchnorm_forward_train(
            x, scale, shift, out, mean, var, np.empty((blocks, 2 * width)),
            np.empty((blocks, 2 * width), np.float32), coefficients, EPS, code, 1,
            addend if with_addend else None)
        grad_output = grad.copy()
        kernels.batchnorm_backward(
            x, out, grad_output, scale, mean, var, grad_input, grad_scale, grad_shift,
            np.empty((blocks, 2 * width), np.float32), coefficients, EPS, code, True, 1)
        results.append((x, grad, addend, scale, shift, out, grad_input, grad_scale,
                        grad_shift, mean, var))
    specialised, generic = results
    for a, b in zip(specialised[5:], generic[5:]):
        np.testing.assert_array_equal(a, b[..., :channels])
