"""The fast prediction path: pooled networks, quick validation, replayed plans."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D, _network_pool
from sklearn_cnn.architectures import resnet2d


@pytest.fixture
def fitted(rng):
    X = rng.rand(60, 36).astype(np.float32)
    y = rng.randint(0, 3, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = CNNClassifier((8,), conv_layers=(Conv2D(4), MaxPool2D()), max_iter=2,
                            random_state=0).fit(X, y)
    return clf, X, y


def test_networks_are_reused_and_renewed_after_refit(fitted):
    clf, X, y = fitted
    first = clf.predict_proba(X)
    assert clf in _network_pool._pools
    (key,) = _network_pool._pools[clf]
    network = _network_pool._pools[clf][key][0]
    np.testing.assert_array_equal(clf.predict_proba(X), first)
    assert _network_pool._pools[clf][key][0] is network
    # partial_fit updates the arrays in place: the pooled network sees it.
    clf.partial_fit(X, y)
    pooled = clf.predict_proba(X)
    assert not np.array_equal(pooled, first)
    del _network_pool._pools[clf]  # a freshly built network must agree
    np.testing.assert_array_equal(clf.predict_proba(X), pooled)
    # A new fit makes new arrays: the old networks are dropped.
    network = _network_pool._pools[clf][key][0]
    clf.fit(X, y)
    clf.predict_proba(X)
    assert network not in _network_pool._pools[clf][key]
    assert _network_pool._pools[clf].arrays == (*clf.parameters_.values(),
                                                *clf.state_.values())


def test_pool_slots_are_per_key_and_dropped_with_old_arrays():
    class Estimator:
        pass

    estimator = Estimator()
    weights, bias, mean = np.zeros(3), np.zeros(2), np.zeros(2)
    parameters, state = {"w": weights, "b": bias}, {"mean": mean}
    network, slot = _network_pool.acquire(estimator, parameters, state, "f4", 1)
    assert network is None and _network_pool._pools[estimator] == {("f4", 1): slot}
    assert _network_pool._pools[estimator].arrays == (weights, bias, mean)
    for n in range(_network_pool._MAX_IDLE + 2):
        _network_pool.release(slot, f"network {n}")
    assert slot == [f"network {n}" for n in range(_network_pool._MAX_IDLE)]
    newest = slot[-1]
    assert _network_pool.acquire(estimator, parameters, state, "f4", 1) == (newest, slot)
    assert len(slot) == _network_pool._MAX_IDLE - 1
    # Another dtype or thread count has its own slot, for the same arrays.
    _, other_slot = _network_pool.acquire(estimator, parameters, state, "f8", 2)
    assert other_slot is not slot
    assert _network_pool._pools[estimator] == {("f4", 1): slot, ("f8", 2): []}
    # Equal values are not the same arrays: an array replaced by a copy, a
    # dict in another order, one array more or less, each make new arrays.
    for new_parameters, new_state in [
            ({"w": weights.copy(), "b": bias}, state),
            (parameters, {"mean": mean.copy()}),
            ({"b": bias, "w": weights}, state),
            (parameters, {}),
            (parameters, {"mean": mean, "var": mean})]:
        # A call with new arrays drops the old arrays' slots; a network given
        # back to one afterwards (by a call that took it before) stays out.
        _, new_slot = _network_pool.acquire(estimator, new_parameters, new_state, "f4", 1)
        assert _network_pool._pools[estimator] == {("f4", 1): new_slot}
        assert _network_pool._pools[estimator].arrays == (
            *new_parameters.values(), *new_state.values())
        _network_pool.release(slot, "late network")
        assert _network_pool._pools[estimator] == {("f4", 1): []}
        slot = _network_pool.acquire(estimator, parameters, state, "f4", 1)[1]


def test_pool_does_not_change_the_estimator(fitted):
    clf, X, _ = fitted
    before = dict(vars(clf))
    clf.predict(X)
    assert vars(clf).keys() == before.keys()


@pytest.mark.parametrize("bad", [
    lambda X: np.where(X > 0.5, np.nan, X),
    lambda X: X[:, :35],
    lambda X: X.astype(np.int64),
    lambda X: np.asfortranarray(X),
], ids=["nan", "width", "int", "fortran"])
def test_quick_validation_hands_odd_inputs_to_sklearn(bad, fitted):
    clf, X, _ = fitted
    converted = bad(X.copy())
    if np.isnan(converted).any() if converted.dtype.kind == "f" else False:
        with pytest.raises(ValueError, match="NaN"):
            clf.predict(converted)
    elif converted.shape[1] != X.shape[1]:
        with pytest.raises(ValueError, match="features"):
            clf.predict(converted)
    else:
        expected = clf.predict_proba(np.ascontiguousarray(converted, dtype=np.float64))
        np.testing.assert_allclose(clf.predict_proba(converted), expected, rtol=1e-6)


@pytest.mark.parametrize("value, message", [
    (np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity"), (1e30, "as large as")])
@pytest.mark.parametrize("where", [0, -1])
def test_quick_validation_catches_one_bad_value(value, message, where, fitted):
    # The fast path tests NaN, inf and the magnitude by the largest |X|
    # alone: a single bad value anywhere, of either sign, must fail it.
    clf, X, _ = fitted
    bad = X.copy()
    bad[where, where] = value
    with pytest.raises(ValueError, match=message):
        clf.predict_proba(bad)
    bad[where, where] = -value
    with pytest.raises(ValueError, match=message):
        clf.predict_proba(bad)


def test_quick_validation_takes_images_and_series_in_their_layouts(monkeypatch):
    # 3-D and 4-D arrays in the fitted layout take the fast path (as a 2-D
    # view); other layouts and models pickled before the fast path knew them
    # go through the full validation and its errors.
    from sklearn_cnn import CNNClassifier, _base
    from sklearn_cnn.layers import Conv1D, GlobalAvgPool1D

    rng = np.random.default_rng(0)
    calls = []
    real = _base.validate_data
    monkeypatch.setattr(_base, "validate_data",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    series = rng.standard_normal((30, 2, 16))
    images = rng.standard_normal((30, 1, 6, 5))
    y = np.arange(30) % 2
    for X, layers, layouts in (
            (series, (Conv1D(3, 3), GlobalAvgPool1D()), [series]),
            (images, "auto", [images, images[:, 0]])):
        clf = CNNClassifier((4,), conv_layers=layers, max_iter=2,
                            random_state=0).fit(X, y)
        expected = clf.predict_proba(X.reshape(30, -1))
        for layout in layouts:
            calls.clear()
            np.testing.assert_array_equal(clf.predict_proba(layout), expected)
            assert not calls
        swapped = np.ascontiguousarray(np.swapaxes(X.reshape(30, X.shape[1], -1), 1, 2))
        with pytest.raises(ValueError, match="fitted on"):
            clf.predict(swapped)
        assert calls
        del clf._fitted_spatial_dims  # as unpickled from an older version
        calls.clear()
        np.testing.assert_array_equal(clf.predict_proba(X), expected)
        assert calls


@pytest.mark.parametrize("with_batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_predicting_in_another_dtype_sees_partial_fit_updates(with_batchnorm, rng):
    """A float64 model asked for float32 predictions works on cast copies:
    those are never pooled, so in-place training is never left unseen."""
    from sklearn_cnn import BatchNormalization

    X = rng.rand(60, 16)
    y = np.arange(60) % 3
    layers = (Conv2D(2), BatchNormalization()) if with_batchnorm else (Conv2D(2),)
    clf = CNNClassifier((4,), conv_layers=layers, random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    before = clf.predict_proba(X[:5].astype(np.float32))
    for _ in range(5):
        clf.partial_fit(X, y)
    after = clf.predict_proba(X[:5].astype(np.float32))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, clf.predict_proba(X[:5]), rtol=1e-4, atol=1e-6)
    assert all(key[0] == np.float64 for key in _network_pool._pools.get(clf, {}))


@pytest.mark.parametrize("image_shape, conv_layers, dtype, expected", [
    # Largest map 28x28x16 = 50 KB in float32: 41 samples fill 2 MiB.
    ((28, 28), (Conv2D(16),), np.float32, 41),
    ((28, 28), (Conv2D(16),), np.float64, 20),
    # Small maps: at most 256 per batch; huge ones: at least 12.
    ((6, 6), (Conv2D(4),), np.float32, 256),
    ((128, 128), (Conv2D(64),), np.float32, 12),
    # Many maps: resnet2d's outputs, 615 KB per image in all, fill 7.5 MiB at
    # 12 images (its largest map alone would allow 41).
    ((28, 28), resnet2d((16, 32, 64)), np.float32, 12),
])
def test_predict_batches_fit_the_feature_maps(image_shape, conv_layers, dtype,
                                                     expected, rng):
    from sklearn_cnn._base import _predict_batch_size

    n_pixels = image_shape[0] * image_shape[1]
    clf = CNNClassifier((), conv_layers=conv_layers, image_shape=image_shape,
                        max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(rng.rand(4, n_pixels).astype(dtype), [0, 1, 0, 1])
    network = clf._build_network(clf.n_outputs_, clf.image_shape_)
    assert _predict_batch_size(network, dtype) == expected
    # predict runs in those batches, and agrees with one sample at a time.
    X = rng.rand(expected + 3, n_pixels).astype(dtype)
    proba = clf.predict_proba(X)
    (key,) = _network_pool._pools[clf]
    assert _network_pool._pools[clf][key][0].batch_size == expected
    np.testing.assert_allclose(proba[-3:], clf.predict_proba(X[-3:]), rtol=1e-5)


def _fitted_models(X, y):
    from sklearn_cnn import BatchNormalization
    from sklearn_cnn.architectures import resnet1d

    models = [
        CNNClassifier((), conv_layers=resnet2d((4, 8)), max_iter=2, random_state=0),
        CNNClassifier((), conv_layers=resnet1d((8, 8), (5, 3)), max_iter=2,
                      random_state=0),
        CNNClassifier((8,), conv_layers=(Conv2D(8), BatchNormalization(), Conv2D(8),
                                         MaxPool2D()), max_iter=2, random_state=0),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return [model.fit(X, y) for model in models]


def test_prediction_prepares_once_and_changes_no_bit(monkeypatch):
    """predict folds the BatchNormalizations and transforms the Winograd
    weights once, not once per batch, and a pooled network keeps them for
    the next calls while the parameters are unchanged: predictions are
    bitwise those of computing them at every batch, at 1-3 threads, in
    batches and one sample at a time."""
    from sklearn.datasets import load_digits

    from sklearn_cnn._network import Network
    from sklearn_cnn.layers import _conv

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    models = _fitted_models(X[:200], y[:200])
    for model in models:
        model.predict_proba(X[:1])
        (key,) = _network_pool._pools[model]
        assert _network_pool._pools[model][key][0].batch_size < 300  # several batches
    _network_pool._pools.clear()
    folds = []
    fold = _conv._conv.fold_batchnorm

    def counting_fold(*args):
        folds.append(1)
        return fold(*args)

    monkeypatch.setattr(_conv._conv, "fold_batchnorm", counting_fold)

    def predictions():
        result = []
        for n_threads in (1, 2, 3):
            with threadpool_limits(n_threads, "openmp"):
                for model in models:
                    result += [model.predict_proba(X[:1000]), model.predict_proba(X[5:6])]
        return result

    prepared = predictions()
    # One fold per BatchNormalization folded into a convolution (5 + 5 + 1
    # in the three models), once per pooled network: one per thread count
    # (counts above the cores run as many threads as cores).
    n_counts = len(_network_pool._pools[models[0]])
    assert all(len(_network_pool._pools[model]) == n_counts for model in models)
    assert len(folds) == n_counts * (5 + 5 + 1)
    folds.clear()
    again = predictions()
    assert not folds  # kept: nothing changed
    monkeypatch.setattr(Network, "prepare", lambda self, n_threads: None)
    _network_pool._pools.clear()
    per_batch = predictions()
    assert len(folds) > 3 * 2 * (5 + 5 + 1)
    assert all(np.array_equal(a, b) for a, b in zip(prepared, per_batch))
    assert all(np.array_equal(a, b) for a, b in zip(prepared, again))
    assert all(np.array_equal(prepared[0], other) for other in prepared[6::6])


@pytest.mark.parametrize("n_samples", [1, 1000])
def test_prediction_sees_weights_changed_between_calls(monkeypatch, n_samples):
    """What a pooled network prepared is computed again once a parameter or
    running statistic changed in place, one sample or several batches, also
    after a call that failed."""
    from sklearn.datasets import load_digits

    from sklearn_cnn._network import Network

    X, y = load_digits(return_X_y=True)
    model = _fitted_models(X[:200], y[:200])[0]
    X = X[:n_samples]
    before = model.predict_proba(X)
    (key,) = _network_pool._pools[model]
    for name, array in model.parameters_.items():
        if name.endswith("weights"):
            array *= 0.5
    for name, array in model.state_.items():
        if name.endswith("running_var"):
            array *= 2
    changed = model.predict_proba(X)
    assert not np.allclose(before, changed)
    np.testing.assert_array_equal(changed, _fresh_prediction(model, X))

    def failing_forward(self, x, n_threads, n_layers=None):
        raise RuntimeError("stop")

    monkeypatch.setattr(Network, "forward", failing_forward)
    with pytest.raises(RuntimeError, match="stop"):
        model.predict_proba(X)
    monkeypatch.undo()
    for array in model.parameters_.values():
        array *= 2
    np.testing.assert_array_equal(model.predict_proba(X),
                                  _fresh_prediction(model, X))
    # One value of one running mean: seen too.
    model.state_[next(k for k in model.state_ if k.endswith("running_mean"))][0] += 1
    np.testing.assert_array_equal(model.predict_proba(X),
                                  _fresh_prediction(model, X))
    # One value of each convolution's weights, one at a time: read at each
    # call by im2col, compared with the snapshot where Winograd keeps their
    # transform.
    convolutions = [name for name, array in model.parameters_.items()
                    if name.endswith("weights") and array.ndim == 4]
    assert len(convolutions) >= 5
    for name in convolutions:
        model.parameters_[name].flat[0] += 1
        np.testing.assert_array_equal(model.predict_proba(X),
                                      _fresh_prediction(model, X))


@pytest.mark.parametrize("n_samples", [1, 1000])
def test_kept_kernel_arguments_follow_a_changed_sign(n_samples):
    """A prepared convolution keeps its kernel's arguments between calls,
    among them whether its max-pool may run before a folded
    BatchNormalization's multiplier (only if none is negative).  A scale
    turned negative in place must be seen: the arguments are worked out
    again with the folded values."""
    from sklearn.datasets import load_digits

    from sklearn_cnn import BatchNormalization

    X, y = load_digits(return_X_y=True)
    # Folded into the convolution, with the max-pool fused.
    model = CNNClassifier((8,), conv_layers=(Conv2D(8, activation="identity"),
                                             BatchNormalization(), MaxPool2D()),
                          max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:200], y[:200])
    X = X[:n_samples]
    before = model.predict_proba(X)
    scale = next(v for k, v in model.parameters_.items() if k.endswith("scale"))
    scale *= -1
    changed = model.predict_proba(X)
    assert not np.allclose(before, changed)
    np.testing.assert_array_equal(changed, _fresh_prediction(model, X))


def test_a_prepare_cut_short_is_not_trusted(monkeypatch):
    """If preparing stops half way (an error, an interrupt), the next call
    does not use the half-prepared layers (the failed call's network is not
    pooled again, and a network does not trust a prepare cut short)."""
    from sklearn.datasets import load_digits

    from sklearn_cnn.layers._conv import ConvLayer

    X, y = load_digits(return_X_y=True)
    model = _fitted_models(X[:200], y[:200])[0]
    model.predict_proba(X[:1])
    for array in (*model.parameters_.values(), *model.state_.values()):
        array *= 0.5
    prepare = ConvLayer.prepare
    calls = []

    def prepare_then_stop(self, n_threads):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        prepare(self, n_threads)

    monkeypatch.setattr(ConvLayer, "prepare", prepare_then_stop)
    with pytest.raises(KeyboardInterrupt):
        model.predict_proba(X[:1])
    monkeypatch.undo()
    np.testing.assert_array_equal(model.predict_proba(X[:50]),
                                  _fresh_prediction(model, X[:50]))


def _fresh_prediction(model, X):
    """Predictions of a copy of ``model`` with copies of its arrays: no
    pooled network, nothing prepared."""
    fresh = clone(model)
    fresh.__setstate__(model.__getstate__())
    fresh.parameters_ = {k: v.copy() for k, v in model.parameters_.items()}
    fresh.state_ = {k: v.copy() for k, v in model.state_.items()}
    return fresh.predict_proba(X)


@pytest.mark.parametrize("small_kernels", [False, True])
def test_im2col_chunks_follow_the_blas_kernels(monkeypatch, small_kernels):
    """With BLAS small-matrix kernels, prediction's im2col products hold at
    most SMALL_GEMM_MULTIPLY_ADDS (here lowered so that the digits' maps
    reach it); the chunks depend on the shapes and the libraries, never on
    the threads: predictions are bitwise the same at 1-3 threads, and within
    rounding of the other chunking."""
    from sklearn.datasets import load_digits

    from sklearn_cnn.layers import _conv

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    model = _fitted_models(X[:200], y[:200])[0]
    monkeypatch.setattr(_conv, "SMALL_GEMM_MULTIPLY_ADDS", 5000)
    monkeypatch.setattr(_conv, "has_small_matrix_kernels", lambda: small_kernels)
    results = []
    for n_threads in (1, 2, 3):
        with threadpool_limits(n_threads, "openmp"):
            results.append(model.predict_proba(X[:300]))
    assert all(np.array_equal(results[0], other) for other in results[1:])
    (network,) = next(iter(_network_pool._pools[model].values()))
    checked = 0
    for layer in network.walk():
        if isinstance(layer, _conv.ConvLayer) and not layer.winograd_active:
            out_h, out_w, filters = layer.conv_shape
            per_sample = out_h * out_w * layer.taps * filters
            expected = (min(layer.im2col_chunk, max(1, 5000 // per_sample))
                        if small_kernels else layer.im2col_chunk)
            assert layer.samples_per_chunk == expected
            checked += expected < layer.im2col_chunk
    assert checked > 0 if small_kernels else checked == 0
    _network_pool._pools.clear()
    monkeypatch.setattr(_conv, "has_small_matrix_kernels", lambda: not small_kernels)
    np.testing.assert_allclose(model.predict_proba(X[:300]), results[0], rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("small_kernels", [False, True])
def test_one_image_by_winograd_takes_blocks_or_the_shared_path(monkeypatch,
                                                              small_kernels):
    """One image's 2-D Winograd convolutions: with BLAS small-matrix kernels
    (which pack no weights for a block's short GEMMs), blocks of whole tiles
    of rows at every thread count; without, a chunk of one sample on one
    thread and the image shared between 2 or more threads, which run the
    same GEMMs.  Either way bitwise the same predictions at 1-3 threads
    (float32, fused residual sums and max-pooling included)."""
    from sklearn.datasets import load_digits

    from sklearn_cnn.layers import _conv

    monkeypatch.setattr(_conv, "has_small_matrix_kernels", lambda: small_kernels)
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    models = _fitted_models(X[:200], y[:200])
    calls = []
    for name in ("conv2d_forward", "conv2d_maxpool_forward"):
        kernel = getattr(_conv._conv, name)

        def spy(*args, kernel=kernel, name=name, **kwargs):
            # See ConvLayer._kernel_call's arguments; a block of pooled rows
            # starts on conv row (block * rows) * pool stride.
            # A negative count of rows asks for the shared path.
            pooled = name == "conv2d_maxpool_forward"
            rows, winograd = (22, 26) if pooled else (17, 19)
            if args[winograd] is not None:
                calls.append((abs(args[rows]) * (args[20] if pooled else 1),
                              args[rows] < 0))
            return kernel(*args, **kwargs)

        monkeypatch.setattr(_conv._conv, name, spy)
    for index, model in enumerate(models):
        results = []
        for n_threads in (1, 2, 3):
            calls.clear()
            with threadpool_limits(n_threads, "openmp"):
                results.append(model.predict_proba(X[7:8]))
            # The 2-D models have Winograd layers; the series one has none.
            assert bool(calls) == (index != 1)
            for conv_rows, share in calls:
                if small_kernels:  # blocks of whole tiles (of 2 rows)
                    assert conv_rows > 0 and conv_rows % 2 == 0 and not share
                else:
                    assert (conv_rows > 0) == share == (n_threads > 1)
        assert all(np.array_equal(results[0], other) for other in results[1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 7, 784, 65537])
def test_largest_magnitude_is_numpys_with_any_bad_value(dtype, size, rng):
    """The one-pass kernel (small arrays) and numpy's max and min (large
    ones) agree: largest |x|, inf for any infinity, NaN for any NaN, wherever
    it is and whatever else the array holds."""
    from sklearn_cnn._base import _largest_magnitude

    def expected(x):
        if x.size == 0:
            return 0.0
        if np.isnan(x).any():
            return np.nan
        return float(np.abs(x).max())

    x = (rng.standard_normal(size) * 1e3).astype(dtype)
    np.testing.assert_equal(_largest_magnitude(x), expected(x))
    np.testing.assert_equal(_largest_magnitude(-x), expected(x))
    for position in {0, size // 2, size - 1} if size else ():
        for value in (np.nan, np.inf, -np.inf, -np.nan, 1e30, -1e30, -0.0):
            bad = x.copy()
            bad[position] = value
            np.testing.assert_equal(_largest_magnitude(bad), expected(bad))
        both = x.copy()
        both[position], both[-1 - position] = np.inf, np.nan
        assert np.isnan(_largest_magnitude(both))


def test_largest_magnitude_kernel_reads_any_shape_and_refuses_other_arrays(rng):
    """The kernel reads C-contiguous float32 and float64 arrays of any shape
    through the buffer protocol, and refuses what it cannot read as such."""
    from sklearn_cnn._kernels._activations import largest_magnitude

    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((3, 4, 5)).astype(dtype)
        x[1, 2, 3] = -7.5
        assert largest_magnitude(x) == 7.5
        assert largest_magnitude(x[1]) == 7.5
        assert largest_magnitude(x[:0]) == 0.0
    for wrong in (np.arange(4), np.ones(4, np.float16), np.ones(4, ">f8")):
        with pytest.raises(TypeError, match="float32 or float64"):
            largest_magnitude(wrong)
    with pytest.raises((ValueError, BufferError)):
        largest_magnitude(np.ones((4, 4))[:, ::2])


def _planned_models(X, y):
    """Networks with every kind of layer a prediction plan replays: kernel
    calls of their own, blocks of them, and layers replayed through their
    forward (a stand-alone BatchNormalization and activation, dropout)."""
    from sklearn_cnn import (
        Activation,
        AvgPool2D,
        BatchNormalization,
        Dense,
        Dropout,
        GlobalMaxPool2D,
        Sequential,
    )

    layers = (Conv2D(6, activation="identity"), Activation("tanh"),
              Sequential((Conv2D(6), AvgPool2D())), Dense(12, activation="identity"),
              BatchNormalization(), Dropout(0.3), Activation("relu"))
    pooled = (Conv2D(5), GlobalMaxPool2D())
    models = [CNNClassifier((7,), conv_layers=layers, max_iter=2, random_state=0),
              CNNClassifier((), conv_layers=pooled, max_iter=2, random_state=0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return [model.fit(X, y) for model in models] + _fitted_models(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_planned_prediction_is_the_layer_walk_bit_for_bit(dtype, monkeypatch):
    """Batches of up to PLANNED_MAX_SAMPLES replay a recorded pass (its first
    call records it, later calls replay it): predict_proba and transform
    are bitwise those of walking the layers, at 1-3 threads, call after
    call with other rows."""
    from sklearn.datasets import load_digits

    from sklearn_cnn import _network

    X, y = load_digits(return_X_y=True)
    X = X.astype(dtype)
    models = _planned_models(X[:200], y[:200])

    def predictions():
        result = []
        for n_threads in (1, 2, 3):
            with threadpool_limits(n_threads, "openmp"):
                for model in models:
                    for start, n in [(0, 1), (1, 1), (2, 5), (7, 5), (20, 16)]:
                        result.append(model.predict_proba(X[start:start + n]))
                    result.append(model.transform(X[40:43]))
        return result

    planned = predictions()
    for model in models:
        for network in _network_pool._pools[model][next(iter(_network_pool._pools[model]))]:
            plans = network._plans.values()
            assert plans and all(plan for plan in plans)  # all layers planned
    monkeypatch.setattr(_network, "PLANNED_MAX_SAMPLES", 0)
    walked = predictions()
    assert len(planned) == len(walked)
    assert all(np.array_equal(a, b) for a, b in zip(planned, walked))


def test_an_unplannable_layer_is_walked(monkeypatch):
    """A layer whose forward returns a new array each call (not its buffer)
    cannot be replayed: that network walks its layers, with the same
    results."""
    from sklearn.datasets import load_digits

    from sklearn_cnn.layers._activation import ActivationLayer

    X, y = load_digits(return_X_y=True)
    model = _planned_models(X[:200], y[:200])[0]
    expected = [model.predict_proba(X[i:i + 1]) for i in range(3)]
    _network_pool._pools.clear()
    forward = ActivationLayer.forward
    monkeypatch.setattr(ActivationLayer, "forward",
                        lambda self, x, n_threads: forward(self, x, n_threads).copy())
    got = [model.predict_proba(X[i:i + 1]) for i in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))
    (networks,) = _network_pool._pools[model].values()
    assert list(networks[0]._plans.values()) == [False]


def test_plans_are_few_and_forgotten_with_the_buffers():
    """A network keeps at most MAX_PLANS plans, and none past a new
    allocation or binding (their calls hold the old buffers and arrays)."""
    from sklearn.datasets import load_digits

    from sklearn_cnn._network import MAX_PLANS

    X, y = load_digits(return_X_y=True)
    model = _fitted_models(X[:200], y[:200])[2]
    for n in range(1, MAX_PLANS + 3):
        model.predict_proba(X[:n])
    (networks,) = _network_pool._pools[model].values()
    network = networks[0]
    assert len(network._plans) == MAX_PLANS
    assert {key[0] for key in network._plans} == set(range(3, MAX_PLANS + 3))
    (_, n_threads) = next(iter(_network_pool._pools[model]))
    network.allocate(network.batch_size, X.dtype, n_threads, training=False)
    assert not network._plans
    model.predict_proba(X[:1])
    assert network._plans
    parameters = {k: v.copy() for k, v in model.parameters_.items()}
    network.bind(parameters, model.state_)
    assert not network._plans


@pytest.mark.parametrize("conv_layers, hidden", [((Conv2D(4), MaxPool2D()), (8,)),
                                                 ((Conv2D(4),), ()), ((), ())],
                         ids=["hidden", "conv-only", "no-feature-layers"])
def test_transform_takes_the_pooled_network(conv_layers, hidden, monkeypatch, rng):
    """transform counts its layers on the pooled network rather than
    building one per call (which took longer than a one-image transform);
    with no layer before the output layer the features are X itself."""
    X = rng.rand(40, 36).astype(np.float32)
    y = np.arange(40) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = CNNClassifier(hidden, conv_layers=conv_layers, max_iter=2,
                            random_state=0).fit(X, y)
    expected = clf.transform(X[:6])
    builds = []
    build = CNNClassifier._build_network

    def counting_build(self, *args, **kwargs):
        builds.append(1)
        return build(self, *args, **kwargs)

    monkeypatch.setattr(CNNClassifier, "_build_network", counting_build)
    one_at_a_time = np.vstack([clf.transform(X[i:i + 1]) for i in range(6)])
    # One row and six take other kernel paths: the last bits may differ.
    np.testing.assert_allclose(one_at_a_time, expected, rtol=1e-5, atol=1e-6)
    assert not builds
    if not conv_layers and not hidden:
        np.testing.assert_array_equal(expected, X[:6])
    else:
        assert expected.shape[1] == clf.get_feature_names_out().shape[0]


def test_replayed_calls_take_typed_views_of_writeable_float_arrays(rng):
    """A plan's kernel calls get the fused kernel's specialisation and
    typed memoryviews of their writeable, C-contiguous float arrays of 1, 2
    or 4 dimensions (views of the same memory); anything else is passed on
    as it is."""
    from sklearn_cnn._kernels import _activations
    from sklearn_cnn.layers._base import replayable_call

    read_only = rng.rand(3, 4).astype(np.float32)
    read_only.flags.writeable = False
    others = (read_only, rng.rand(4, 6)[:, ::2], rng.rand(2, 2, 2),
              np.arange(6, dtype=np.int32), None, 3)
    for dtype, name in [(np.float32, "float"), (np.float64, "double")]:
        arrays = tuple(rng.rand(*(2,) * ndim).astype(dtype) for ndim in (1, 2, 4))
        kernel, arguments = replayable_call(_activations.add_and_activate,
                                            arrays + others)
        assert kernel is _activations.add_and_activate.__signatures__[name]
        for array, view in zip(arrays, arguments):
            assert type(view) is not np.ndarray
            assert np.asarray(view).base is array or np.shares_memory(view, array)
            np.testing.assert_array_equal(np.asarray(view), array)
        assert all(view is other for view, other in zip(arguments[3:], others))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_plans_replay_with_read_only_parameters(n_threads):
    """Parameters a user made read-only (say, loaded from a memory map) are
    passed to the replayed kernels as arrays: the same predictions."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    for model in _planned_models(X[:200], y[:200]):
        frozen = clone(model)
        for name in ("parameters_", "state_"):
            arrays = {k: v.copy() for k, v in getattr(model, name).items()}
            for array in arrays.values():
                array.flags.writeable = False
            setattr(frozen, name, arrays)
        for attribute, value in vars(model).items():
            if attribute not in ("parameters_", "state_"):
                setattr(frozen, attribute, value)
        with threadpool_limits(n_threads, "openmp"):
            for i in range(3):
                np.testing.assert_array_equal(frozen.predict_proba(X[i:i + 1]),
                                              model.predict_proba(X[i:i + 1]))
