"""Schedules, AdamW, label smoothing, augmentation and test-time augmentation."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_cnn import CNNClassifier, CNNRegressor, Conv1D, Conv2D, GlobalAvgPool1D, MaxPool2D
from sklearn_cnn._kernels import _augment, _loss
from sklearn_cnn.augmentation import (
    Jitter,
    RandomFlip,
    RandomScaling,
    RandomTranslation,
    check_augment,
)
from sklearn_cnn.schedules import CosineDecay, LearningRate, LinearDecay, ReduceOnPlateau

SMALL = dict(conv_layers=(Conv2D(6), MaxPool2D()), hidden_layer_sizes=(16,),
             batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:500] / 16).astype(np.float32), y[:500]


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


# ----------------------------------------------------------------- schedules


def rates(schedule, n_epochs=4, n_batches=5, learning_rate_init=0.1, max_iter=4):
    rate = LearningRate(schedule, learning_rate_init, max_iter, 0.5)
    return np.array([rate.step_rate(epoch + b / n_batches, 1 / n_batches, 0)
                     for epoch in range(n_epochs) for b in range(n_batches)])


def test_cosine_and_linear_decay_follow_their_formulas():
    # Warm-up over one epoch of 5 steps: 0.02, 0.04, ..., 0.1 (step ends).
    for spec, shape in ((CosineDecay(warmup_epochs=1),
                         lambda f: 0.5 * (1 + np.cos(np.pi * f))),
                        (LinearDecay(warmup_epochs=1, final_fraction=0.1),
                         lambda f: 0.1 + 0.9 * (1 - f))):
        got = rates(spec)
        np.testing.assert_allclose(got[:5], 0.1 * np.arange(1, 6) / 5)
        # Then over the remaining 3 epochs, positioned at each step's start.
        done = (np.arange(5, 20) / 5 - 1) / 3
        np.testing.assert_allclose(got[5:], 0.1 * shape(done), rtol=1e-12)
    # Without warm-up the first step runs at the full rate; beyond max_iter
    # (partial_fit) the final rate stays.
    assert rates(CosineDecay())[0] == 0.1
    assert rates(LinearDecay(final_fraction=0.2), n_epochs=6)[-1] == pytest.approx(0.02)


def test_schedule_applies_per_step_to_adam(digits):
    X, y = digits
    constant = quiet(CNNClassifier(max_iter=3, **SMALL).fit, X, y)
    cosine = quiet(CNNClassifier(max_iter=3, learning_rate="cosine", **SMALL).fit, X, y)
    # The last step of the 10 per epoch starts 29/30 into the horizon.
    assert cosine._optimizer.learning_rate.current == pytest.approx(
        0.001 * 0.5 * (1 + np.cos(np.pi * 29 / 30)))
    assert constant._optimizer.learning_rate.current == 0.001
    assert not np.array_equal(constant.coefs_[0], cosine.coefs_[0])


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
def test_reduce_on_plateau_reduces_for_every_solver(solver, digits):
    X, y = digits
    # tol=10: no epoch after the first counts as an improvement, so the rate
    # halves after epochs 3, 5, 7, ... down to the floor.
    clf = CNNClassifier(max_iter=7, solver=solver, tol=10.0, n_iter_no_change=50,
                        learning_rate=ReduceOnPlateau(patience=2, min_learning_rate=3e-4),
                        **SMALL)
    quiet(clf.fit, X, y)
    assert clf.n_iter_ == 7
    assert clf._optimizer.learning_rate.current == pytest.approx(3e-4)
    clf.set_params(max_iter=5)
    quiet(clf.fit, X, y)  # epochs 4 and 5 ran at the rate halved once
    assert clf._optimizer.learning_rate.current == pytest.approx(0.001 / 2)


def test_adaptive_applies_to_adam_too(digits):
    X, y = digits
    clf = quiet(CNNClassifier(max_iter=6, learning_rate="adaptive", tol=10.0,
                              n_iter_no_change=1, **SMALL).fit, X, y)
    assert clf.n_iter_ == 6
    assert clf._optimizer.learning_rate.current == pytest.approx(0.001 / 5**2)


def test_schedules_are_plain_data_and_grid_searchable(digits):
    X, y = digits
    clf = CNNClassifier(learning_rate=CosineDecay(warmup_epochs=1),
                        augment=(RandomTranslation(1), RandomFlip()))
    params = clf.get_params()
    assert params["learning_rate__warmup_epochs"] == 1
    assert params["augment__0__max_shift"] == 1
    assert params["augment__1"] == RandomFlip()
    assert clone(clf).get_params()["learning_rate"] == CosineDecay(warmup_epochs=1)
    assert pickle.loads(pickle.dumps(clf.learning_rate)) == clf.learning_rate
    assert repr(clf.learning_rate) == "CosineDecay(warmup_epochs=1)"
    clf.set_params(learning_rate__final_fraction=0.1, augment__0__padding="reflect")
    assert clf.learning_rate == CosineDecay(warmup_epochs=1, final_fraction=0.1)
    assert clf.augment[0] == RandomTranslation(1, padding="reflect")
    # A shorthand string becomes its specification when a field is set.
    clf.set_params(learning_rate="linear", learning_rate__warmup_epochs=0.5)
    assert clf.learning_rate == LinearDecay(warmup_epochs=0.5)
    search = GridSearchCV(
        CNNClassifier(max_iter=2, learning_rate=CosineDecay(), augment=(Jitter(),),
                      **SMALL),
        {"learning_rate__warmup_epochs": [0, 1], "augment__0__sigma": [0.01, 0.1]},
        cv=2)
    quiet(search.fit, X, y)
    assert set(search.cv_results_["param_learning_rate__warmup_epochs"]) == {0, 1}
    assert search.best_estimator_.augment[0].sigma in (0.01, 0.1)


@pytest.mark.parametrize("params, error, match", [
    (dict(learning_rate=CosineDecay(warmup_epochs=5), max_iter=5), ValueError,
     "shorter warm-up"),
    (dict(learning_rate=ReduceOnPlateau(patience=10), n_iter_no_change=10), ValueError,
     "n_iter_no_change above patience"),
    (dict(augment=(RandomTranslation(8),)), ValueError, "smaller than 8"),
    (dict(augment=(RandomFlip(), RandomFlip())), ValueError, "more than once"),
    (dict(augment=("flip",)), TypeError, "tuple of augmentations"),
    (dict(label_smoothing=1.0), ValueError, "label_smoothing"),
    (dict(solver="adamx"), ValueError, "solver"),
    (dict(learning_rate="cosine_decay"), ValueError, "learning_rate"),
    (dict(weight_init="he"), ValueError, "weight_init"),
])
def test_bad_recipe_settings_are_refused_before_training(params, error, match, digits):
    X, y = digits
    clf = CNNClassifier(**{**SMALL, **params})
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "parameters_")


@pytest.mark.parametrize("make, match", [
    (lambda: RandomTranslation(-1), ">= 1"),
    (lambda: RandomTranslation(1.5), "must be an int"),
    (lambda: RandomTranslation(1, padding="wrap"), "'zero' or 'reflect'"),
    (lambda: RandomScaling(1.2, 1.1), "high"),
    (lambda: RandomScaling(0, 1), "low"),
    (lambda: Jitter(-0.1), "sigma"),
    (lambda: CosineDecay(warmup_epochs=-1), "warmup_epochs"),
    (lambda: LinearDecay(final_fraction=1.5), "final_fraction"),
    (lambda: ReduceOnPlateau(factor=1.0), "factor"),
    (lambda: ReduceOnPlateau(patience=0), "patience"),
])
def test_bad_specifications_are_refused_when_written(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_augmentations_that_do_not_fit_the_input_are_refused():
    series = (1, 1, 50)
    with pytest.raises(ValueError, match="for images"):
        check_augment((RandomFlip(),), series, spatial_dims=1)
    with pytest.raises(ValueError, match="series of length 50"):
        check_augment((RandomTranslation(50),), series, spatial_dims=1)
    assert check_augment((RandomTranslation(49),), series, spatial_dims=1) is not None
    with pytest.raises(ValueError, match="1x1 images"):
        check_augment((RandomTranslation(1),), (3, 1, 1), spatial_dims=2)
    with pytest.raises(ValueError, match="2 pixels wide"):
        check_augment((RandomFlip(),), (1, 5, 1), spatial_dims=2)
    # Scaling and noise apply to any input, a single feature included.
    assert check_augment((RandomScaling(), Jitter()), (1, 1, 1), 2) is not None


def test_test_time_augmentation_refused_for_series():
    X = np.random.RandomState(0).standard_normal((20, 30))
    clf = CNNClassifier(conv_layers=(Conv1D(4, 3), GlobalAvgPool1D()),
                        test_time_augmentation=True, max_iter=1)
    with pytest.raises(ValueError, match="time reversal"):
        clf.fit(X, np.arange(20) % 2)


# ----------------------------------------------------------------- AdamW


def test_adamw_decays_weights_apart_from_the_gradient(digits):
    """One step of AdamW is one step of Adam (no penalty) plus a shrink of
    the weights by rate * alpha; biases are not decayed."""
    X, y = digits
    params = dict(SMALL, batch_size=500, learning_rate_init=0.01)
    adam = CNNClassifier(solver="adam", alpha=0.0, **params)
    adamw = CNNClassifier(solver="adamw", alpha=0.3, **params)
    for clf in (adam, adamw):
        clf.partial_fit(X, y, classes=np.arange(10))  # one batch: one step
    # The initial weights: the same seed draws them first.
    initial, _ = adam._build_network(10, adam.image_shape_).init_parameters(
        np.random.RandomState(0), np.float32)
    for name, p0 in initial.items():
        expected = adam.parameters_[name].astype(np.float64)
        if name.endswith(".weights"):
            expected = expected - 0.01 * 0.3 * p0
        np.testing.assert_allclose(adamw.parameters_[name], expected, rtol=1e-5,
                                   atol=1e-7, err_msg=name)
        assert not np.array_equal(adamw.parameters_[name], p0)
    # No penalty term in AdamW's loss, as in PyTorch.
    assert adamw.loss_ == pytest.approx(adam.loss_, rel=1e-6)


def test_adamw_without_decay_is_adam(digits):
    X, y = digits
    adam = quiet(CNNClassifier(solver="adam", alpha=0.0, max_iter=2, **SMALL).fit, X, y)
    adamw = quiet(CNNClassifier(solver="adamw", alpha=0.0, max_iter=2, **SMALL).fit, X, y)
    for a, b in zip(adam.coefs_ + adam.intercepts_, adamw.coefs_ + adamw.intercepts_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------- initialisation


@pytest.mark.parametrize("scheme", ["auto", "glorot", "pytorch"])
def test_weight_init_draws_from_its_documented_bounds(scheme):
    clf = CNNClassifier((300,), conv_layers=(Conv2D(16), MaxPool2D()),
                        weight_init=scheme)
    network = clf._build_network(10, (1, 12, 12))
    parameters, _ = network.init_parameters(np.random.RandomState(0), np.float64)
    for name, array in parameters.items():
        weights = parameters[name.rsplit(".", 1)[0] + ".weights"]
        *taps, n_outputs = weights.shape  # (kh, kw, channels) or (n_inputs,)
        fan_in = int(np.prod(taps))
        fan_out = int(np.prod(taps[:-1])) * n_outputs
        relu = not name.startswith("output")
        bound = {"auto": np.sqrt(6 / fan_in) if relu else np.sqrt(6 / (fan_in + fan_out)),
                 "glorot": np.sqrt(6 / (fan_in + fan_out)),
                 "pytorch": 1 / np.sqrt(fan_in)}[scheme]
        if name.endswith(".bias") and scheme != "pytorch":
            assert not array.any(), name
            continue
        largest = np.abs(array).max()
        assert largest <= bound, name
        if array.size >= 100:  # the bound is reached, not just respected
            assert largest > 0.95 * bound, name


def test_every_weight_init_trains_clones_and_draws_its_own_start(digits):
    X, y = digits
    fitted = {scheme: quiet(CNNClassifier(max_iter=20, weight_init=scheme, **SMALL).fit,
                            X, y)
              for scheme in ("auto", "glorot", "pytorch")}
    for scheme, clf in fitted.items():
        assert clf.score(X, y) > 0.85, scheme
        assert clone(clf).get_params()["weight_init"] == scheme
    assert not np.array_equal(fitted["auto"].coefs_[0], fitted["pytorch"].coefs_[0])


# --------------------------------------------------------- label smoothing


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_sigmoid_cross_entropy_with_smoothing_by_finite_differences(smoothing, rng):
    logits = rng.standard_normal((4, 3)) * 3
    targets = (rng.rand(4, 3) < 0.5).astype(np.float64)
    weights = np.full(4, 0.25)

    def loss(z):
        out = np.empty(4)
        _loss.sigmoid_cross_entropy(z.copy(), targets, weights, out, smoothing, 1)
        return out.sum()

    grad = logits.copy()
    _loss.sigmoid_cross_entropy(grad, targets, weights, np.empty(4), smoothing, 1)
    smoothed = targets * (1 - smoothing) + smoothing / 2
    expected = (weights[:, None] * (np.logaddexp(0, logits) - smoothed * logits)).sum()
    assert loss(logits) == pytest.approx(expected, rel=1e-12)
    numeric = np.empty_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric[i] = (loss(up) - loss(down)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_label_smoothing_makes_predictions_less_confident(digits):
    X, y = digits
    params = dict(SMALL, max_iter=15, learning_rate_init=0.01)
    plain = quiet(CNNClassifier(**params).fit, X, y)
    smooth = quiet(CNNClassifier(label_smoothing=0.2, **params).fit, X, y)
    # The smoothed loss is minimal at p = 0.82 for the true class.
    assert plain.predict_proba(X).max(axis=1).mean() > 0.9
    assert smooth.predict_proba(X).max(axis=1).mean() < 0.85
    assert smooth.score(X, y) > 0.95
    # The smoothed loss is bounded below by the entropy of the smoothed target.
    q = np.full(10, 0.02)
    q[0] += 0.8
    assert smooth.loss_ > -(q * np.log(q)).sum()


def test_label_smoothing_is_only_for_classifiers():
    assert "label_smoothing" not in CNNRegressor().get_params()


# ------------------------------------------------------------ augmentation


def augment_reference(x, shift_y, shift_x, flip, scale, noise, sigma, reflect):
    """NumPy oracle: pad, crop, mirror, scale, add noise (NHWC batches)."""
    n, height, width, _ = x.shape
    mode = "reflect" if reflect else "constant"
    pad = max(height, width) - 1
    out = np.empty(x.shape, dtype=np.float64)
    for i in range(n):
        image = x[i, :, ::-1] if flip[i] else x[i]
        padded = np.pad(image.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)),
                        mode=mode)
        crop = padded[pad - shift_y[i]:pad - shift_y[i] + height,
                      pad - shift_x[i]:pad - shift_x[i] + width]
        out[i] = crop * scale[i]
    return out + sigma * noise if noise is not None else out


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_augment_kernel_matches_numpy_oracle(reflect, dtype, rng, n_threads):
    n, height, width, channels = 9, 5, 7, 3
    x = rng.standard_normal((n, height, width, channels)).astype(dtype)
    shift_y = rng.randint(-(height - 1), height, n).astype(np.int32)
    shift_x = rng.randint(-(width - 1), width, n).astype(np.int32)
    flip = (rng.rand(n) < 0.5).astype(np.uint8)
    scale = rng.uniform(0.5, 2, n)
    noise = rng.standard_normal(x.shape).astype(dtype)
    for sigma, add_noise in ((0.0, False), (0.3, True)):
        out = np.empty_like(x)
        _augment.augment_batch(x, out, shift_y, shift_x, flip, scale, noise, sigma,
                               add_noise, reflect, n_threads)
        expected = augment_reference(x, shift_y, shift_x, flip, scale,
                                     noise if add_noise else None, sigma, reflect)
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_augmentation_touches_training_batches_only(digits, monkeypatch):
    """Each epoch augments exactly the training samples (not the
    early-stopping split); predict and transform never augment."""
    from sklearn_cnn.augmentation import Augmenter

    X, y = digits
    seen = []
    original = Augmenter.__call__

    def recording(self, x, rng, n_threads):
        seen.append(x.shape[0])
        return original(self, x, rng, n_threads)

    monkeypatch.setattr(Augmenter, "__call__", recording)
    clf = CNNClassifier(max_iter=2, early_stopping=True, validation_fraction=0.2,
                        augment=(RandomTranslation(2), Jitter(0.5)), **SMALL)
    quiet(clf.fit, X, y)
    assert sum(seen) == clf.n_iter_ * 400
    seen.clear()
    first = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict_proba(X), first)
    clf.transform(X)
    assert seen == []


def test_augmentation_changes_training_and_is_reproducible(digits):
    X, y = digits
    plain = quiet(CNNClassifier(max_iter=2, **SMALL).fit, X, y)
    params = dict(max_iter=2, augment=(RandomTranslation(1), RandomScaling()), **SMALL)
    first = quiet(CNNClassifier(**params).fit, X, y)
    again = quiet(CNNClassifier(**params).fit, X, y)
    assert not np.array_equal(plain.coefs_[0], first.coefs_[0])
    for a, b in zip(first.coefs_, again.coefs_):
        np.testing.assert_array_equal(a, b)


def test_series_augmentation_shifts_along_time_only(rng):
    augmenter = check_augment((RandomTranslation(3),), (2, 1, 40), spatial_dims=1)
    x = rng.standard_normal((50, 1, 40, 2)).astype(np.float32)
    out = augmenter(x, np.random.RandomState(0), 1)
    # Every output series is its input shifted along time by at most 3.
    for i in range(50):
        assert any(np.array_equal(out[i, 0, 3:-3], x[i, 0, 3 - s:37 - s])
                   for s in range(-3, 4))


# ---------------------------------------------------- test-time augmentation


def test_test_time_augmentation_averages_each_image_with_its_mirror(digits):
    X, y = digits
    clf = quiet(CNNClassifier(max_iter=2, **SMALL).fit, X, y)
    mirrored = X.reshape(-1, 8, 8)[:, :, ::-1].reshape(len(X), -1)
    log_p = clf.predict_log_proba(X).astype(np.float64)
    log_p_mirror = clf.predict_log_proba(mirrored).astype(np.float64)
    expected = softmax(0.5 * (log_p + log_p_mirror), axis=1)
    clf.set_params(test_time_augmentation=True)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[expected.argmax(1)])
    # transform is the features of the images as given.
    np.testing.assert_array_equal(
        clf.transform(X), clf.set_params(test_time_augmentation=False).transform(X))
