"""sample_weight reaches fit through scikit-learn's metadata routing."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from sklearn_cnn import CNNClassifier, CNNRegressor, Conv2D


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield


def make(estimator_class):
    return estimator_class((6,), conv_layers=(Conv2D(3),), max_iter=3, random_state=0)


@pytest.mark.parametrize("estimator_class", [CNNClassifier, CNNRegressor])
def test_cross_validate_routes_sample_weight_to_fit(estimator_class, routing, rng):
    X = rng.rand(60, 16)
    y = (X[:, 0] > 0.5).astype(int)
    weights = rng.rand(60) * (rng.rand(60) > 0.3)
    estimator = (make(estimator_class).set_fit_request(sample_weight=True)
                 .set_score_request(sample_weight=True))
    cv = KFold(2)
    routed = cross_validate(estimator, X, y, cv=cv, params={"sample_weight": weights},
                            return_estimator=True)
    for (train, test), fitted, score in zip(cv.split(X), routed["estimator"],
                                            routed["test_score"]):
        by_hand = make(estimator_class).fit(X[train], y[train],
                                            sample_weight=weights[train])
        for name, array in by_hand.parameters_.items():
            np.testing.assert_array_equal(fitted.parameters_[name], array)
        # The score is weighted too.
        assert score == by_hand.score(X[test], y[test], sample_weight=weights[test])
    unweighted = cross_validate(make(estimator_class), X, y, cv=cv,
                                return_estimator=True)
    assert not np.array_equal(unweighted["estimator"][0].parameters_["output.weights"],
                              routed["estimator"][0].parameters_["output.weights"])


def test_grid_search_routes_sample_weight_to_fit(routing, rng):
    X = rng.rand(60, 16)
    y = (X[:, 0] > 0.5).astype(int)
    weights = rng.rand(60)
    search = GridSearchCV(make(CNNClassifier).set_fit_request(sample_weight=True)
                          .set_score_request(sample_weight=True),
                          {"conv_layers__0__filters": [2, 3]}, cv=2)
    search.fit(X, y, sample_weight=weights)
    by_hand = make(CNNClassifier).set_params(**search.best_params_).fit(
        X, y, sample_weight=weights)
    np.testing.assert_array_equal(search.best_estimator_.predict_proba(X),
                                  by_hand.predict_proba(X))


def test_unrequested_sample_weight_is_an_error_with_routing(routing, rng):
    X, y = rng.rand(20, 16), np.arange(20) % 2
    with pytest.raises(ValueError, match="sample_weight"):
        cross_validate(make(CNNClassifier), X, y, cv=2,
                       params={"sample_weight": np.ones(20)})
