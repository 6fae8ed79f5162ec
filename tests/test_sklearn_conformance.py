"""scikit-learn's estimator checks, with nothing expected to fail or skip.

SCIPY_ARRAY_API=1 (set in conftest.py before scipy is imported) and pandas in
the test extras make every check run: none is skipped for a missing
dependency.
"""

import inspect

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from sklearn_cnn import CNNClassifier, CNNRegressor

# Empty on purpose: a failing check is a bug to fix, not to list here.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [CNNClassifier(), CNNRegressor()],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [CNNClassifier(), CNNRegressor()],
                         ids=["classifier", "regressor"])
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


def test_scipy_array_api_is_on():
    # Without it some checks are skipped; the suite must run them all.
    import os

    assert os.environ.get("SCIPY_ARRAY_API") == "1"


class TestPrivateSklearnHelpers:
    """We use a few private scikit-learn helpers; fail loudly when they change."""

    def test_fit_context_validates_parameters(self):
        from sklearn.base import _fit_context  # noqa: F401
        from sklearn.utils._param_validation import InvalidParameterError

        with pytest.raises(InvalidParameterError, match="'alpha' parameter"):
            CNNClassifier(alpha=-1.0).fit(np.zeros((4, 4)), [0, 1, 0, 1])

    def test_param_validation_classes(self):
        from numbers import Integral, Real

        from sklearn.utils._param_validation import Interval, Options, StrOptions

        assert Interval(Integral, 1, None, closed="left").is_satisfied_by(3)
        assert not Interval(Integral, 1, None, closed="left").is_satisfied_by(0)
        assert StrOptions({"a"}).is_satisfied_by("a")
        assert Options(Real, {np.inf}).is_satisfied_by(np.inf)

    def test_sample_weight_helper(self):
        from sklearn.utils.validation import _check_sample_weight

        weights = _check_sample_weight(None, np.zeros((3, 2)), dtype=np.float64)
        np.testing.assert_array_equal(weights, np.ones(3))
        assert "dtype" in inspect.signature(_check_sample_weight).parameters
