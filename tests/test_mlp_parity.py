"""MLPClassifier parity and what MLP users asked for: behaviour, not just presence."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline

import sklearn_cnn._base as base_module
from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

SMALL = dict(conv_layers=(Conv2D(8), MaxPool2D()), hidden_layer_sizes=(32,),
             batch_size=32, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16).astype(np.float32), y, test_size=0.3,
                            stratify=y, random_state=0)


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


def test_fitted_attributes_are_mlps(digits):
    X_train, _, y_train, _ = digits
    clf = quiet(CNNClassifier(max_iter=2, **SMALL).fit, X_train, y_train)
    mlp = quiet(MLPClassifier(max_iter=2).fit, X_train, y_train)
    fitted = {name for name in vars(mlp) if name.endswith("_") and not name.startswith("_")}
    missing = {name for name in fitted if not hasattr(clf, name)}
    assert not missing, missing


def test_convergence_warning_at_max_iter(digits):
    X_train, _, y_train, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        CNNClassifier(max_iter=2, **SMALL).fit(X_train, y_train)


def test_tol_stops_before_max_iter(digits):
    X_train, _, y_train, _ = digits
    clf = CNNClassifier(max_iter=200, tol=10.0, n_iter_no_change=2, **SMALL)
    clf.fit(X_train, y_train)
    mlp = MLPClassifier(max_iter=200, tol=10.0, n_iter_no_change=2).fit(X_train, y_train)
    # With a huge tol only the first epoch improves; three more without
    # improvement exceed n_iter_no_change=2: stop after 4, as MLPClassifier.
    assert clf.n_iter_ == mlp.n_iter_ == 4


@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
def test_sgd_schedules_learn(learning_rate, digits):
    X_train, X_test, y_train, y_test = digits
    clf = quiet(CNNClassifier(solver="sgd", learning_rate=learning_rate,
                              learning_rate_init=0.05, max_iter=10, **SMALL).fit,
                X_train, y_train)
    assert clf.score(X_test, y_test) > 0.9


def test_sgd_invscaling_follows_mlps_formula(digits):
    X_train, _, y_train, _ = digits
    clf = quiet(CNNClassifier(solver="sgd", learning_rate="invscaling", power_t=0.5,
                              learning_rate_init=0.05, max_iter=3, **SMALL).fit,
                X_train, y_train)
    # MLPClassifier's formula, applied at every step: the last step of the
    # last epoch started after all but its batch of the samples seen.
    n_batches = -(-X_train.shape[0] // SMALL.get("batch_size", 200))
    last_batch = X_train.shape[0] // n_batches
    seen_before_last_step = clf.t_ - last_batch
    assert clf._optimizer.learning_rate.current == pytest.approx(
        0.05 / (seen_before_last_step + 1) ** 0.5)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_adaptive_schedule_divides_learning_rate(digits):
    X_train, _, y_train, _ = digits
    clf = CNNClassifier(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                        tol=10.0, n_iter_no_change=1, max_iter=5, **SMALL)
    quiet(clf.fit, X_train, y_train)
    assert clf._optimizer.learning_rate.current < 0.1


def test_warm_start_continues(digits):
    X_train, _, y_train, _ = digits
    clf = quiet(CNNClassifier(max_iter=2, warm_start=True, **SMALL).fit, X_train, y_train)
    first_loss = clf.loss_
    quiet(clf.fit, X_train, y_train)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert clf.loss_ < first_loss


def test_partial_fit_over_three_chunks_matches_fit(digits):
    X_train, X_test, y_train, y_test = digits
    full = quiet(CNNClassifier(max_iter=10, **SMALL).fit, X_train, y_train)
    streamed = CNNClassifier(**SMALL)
    chunks = np.array_split(np.arange(len(X_train)), 3)
    for _ in range(10):
        for chunk in chunks:
            streamed.partial_fit(X_train[chunk], y_train[chunk], classes=np.arange(10))
    # Stated margin: within 2 points of accuracy of the single fit.
    assert streamed.score(X_test, y_test) >= full.score(X_test, y_test) - 0.02
    assert streamed.n_iter_ == 30


def test_partial_fit_rejects_bad_calls(digits):
    X_train, _, y_train, _ = digits
    clf = CNNClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train, y_train)
    clf.partial_fit(X_train[y_train < 5], y_train[y_train < 5], classes=np.arange(5))
    with pytest.raises(ValueError, match=r"labels \[5, 6, 7, 8, 9\] not among"):
        clf.partial_fit(X_train, y_train)
    with pytest.raises(ValueError, match="X has 63 features"):
        clf.partial_fit(X_train[:, :63], y_train)
    with pytest.raises(ValueError, match="early_stopping"):
        CNNClassifier(early_stopping=True).partial_fit(X_train, y_train,
                                                       classes=np.arange(10))
    with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
        CNNClassifier(class_weight="balanced").partial_fit(X_train, y_train,
                                                           classes=np.arange(10))


def test_sample_weight_shifts_the_decision(rng):
    X = rng.standard_normal((400, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.standard_normal(400) > 0).astype(int)
    params = dict(conv_layers=(), hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    plain = quiet(CNNClassifier(**params).fit, X, y)
    weights = np.where(y == 1, 20.0, 1.0)
    heavy = quiet(CNNClassifier(**params).fit, X, y, sample_weight=weights)
    assert (heavy.predict(X) == 1).mean() > (plain.predict(X) == 1).mean() + 0.05
    # Same weights through partial_fit work too.
    streamed = CNNClassifier(**params)
    streamed.partial_fit(X, y, classes=[0, 1], sample_weight=weights)
    assert streamed.n_iter_ == 1


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 10.0}])
def test_class_weight_changes_the_decision_on_imbalanced_data(class_weight, rng):
    n = 600
    X = rng.standard_normal((n, 6)).astype(np.float32)
    y = (X[:, 0] > 1.3).astype(int)  # about 10% positives
    X[:, 0] += 0.7 * rng.standard_normal(n)  # overlap, so the prior matters
    params = dict(conv_layers=(), hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    plain = quiet(CNNClassifier(**params).fit, X, y)
    weighted = quiet(CNNClassifier(class_weight=class_weight, **params).fit, X, y)
    recall = lambda clf: (clf.predict(X)[y == 1] == 1).mean()  # noqa: E731
    assert recall(weighted) > recall(plain) + 0.1


def test_dropout_regularises_and_is_off_at_predict(digits):
    X_train, X_test, y_train, y_test = digits
    plain = quiet(CNNClassifier(max_iter=8, **SMALL).fit, X_train, y_train)
    dropped = quiet(CNNClassifier(max_iter=8, dropout=0.5, **SMALL).fit, X_train, y_train)
    # Training with dropout differs, but the model still learns.
    assert not np.array_equal(plain.coefs_[-1], dropped.coefs_[-1])
    assert dropped.score(X_test, y_test) > 0.9
    # Predictions are deterministic: no dropout outside training.
    np.testing.assert_array_equal(dropped.predict_proba(X_test),
                                  dropped.predict_proba(X_test))
    again = quiet(CNNClassifier(max_iter=8, dropout=0.5, **SMALL).fit, X_train, y_train)
    np.testing.assert_array_equal(again.coefs_[-1], dropped.coefs_[-1])


def test_keyboard_interrupt_stops_cleanly(digits, monkeypatch):
    X_train, X_test, y_train, _ = digits
    real_to_nhwc = base_module.to_nhwc
    calls = {"n": 0}

    def interrupt_on_tenth_batch(*args):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real_to_nhwc(*args)

    monkeypatch.setattr(base_module, "to_nhwc", interrupt_on_tenth_batch)
    clf = CNNClassifier(max_iter=50, **SMALL)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X_train, y_train)
    monkeypatch.setattr(base_module, "to_nhwc", real_to_nhwc)
    assert clf.predict(X_test).shape == (len(X_test),)
    assert all(np.isfinite(c).all() for c in clf.coefs_)


@pytest.mark.parametrize("n_hidden", [(32,), ()])
def test_transform_gives_penultimate_features(n_hidden, digits):
    X_train, X_test, y_train, y_test = digits
    clf = quiet(CNNClassifier(conv_layers=(Conv2D(8), MaxPool2D()),
                              hidden_layer_sizes=n_hidden, max_iter=5, dropout=0.3,
                              random_state=0).fit, X_train, y_train)
    features = clf.transform(X_test)
    width = n_hidden[0] if n_hidden else 4 * 4 * 8
    assert features.shape == (len(X_test), width) and features.dtype == np.float32
    names = clf.get_feature_names_out()
    assert len(names) == width and names[0] == "cnnclassifier0"
    # The output layer applied to the features gives the logits.
    logits = features @ clf.coefs_[-1] + clf.intercepts_[-1]
    np.testing.assert_allclose(logits.argmax(1), clf.predict(X_test))


def test_transform_feeds_another_estimator_in_a_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(CNNClassifier(max_iter=8, **SMALL),
                         LogisticRegression(max_iter=500))
    quiet(pipe.fit, X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.95
    assert len(pipe[:-1].get_feature_names_out()) == 32


def test_validation_loss_curve_next_to_scores(digits):
    X_train, _, y_train, _ = digits
    clf = quiet(CNNClassifier(max_iter=6, early_stopping=True, **SMALL).fit,
                X_train, y_train)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_
    assert clf.validation_loss_curve_[-1] < clf.validation_loss_curve_[0]
    assert all(0 <= s <= 1 for s in clf.validation_scores_)
