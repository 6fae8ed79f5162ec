"""scikit-learn's estimator checks, with nothing expected to fail or skip.

SCIPY_ARRAY_API=1 (set in conftest.py before scipy is imported) and pandas in
the test extras make every check run: none is skipped for a missing
dependency.
"""

import inspect

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from sklearn_cnn import CNNClassifier

# Empty on purpose: a failing check is a bug to fix, not to list here.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [CNNClassifier()],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_param_validation():
    check_param_validation("CNNClassifier", CNNClassifier())


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

    def test_partial_fit_and_sample_weight_helpers(self):
        from sklearn.utils.multiclass import _check_partial_fit_first_call
        from sklearn.utils.validation import _check_sample_weight

        class Holder:
            pass

        holder = Holder()
        assert _check_partial_fit_first_call(holder, [0, 1]) is True
        np.testing.assert_array_equal(holder.classes_, [0, 1])
        assert _check_partial_fit_first_call(holder, None) is False
        weights = _check_sample_weight(None, np.zeros((3, 2)), dtype=np.float64)
        np.testing.assert_array_equal(weights, np.ones(3))
        assert "dtype" in inspect.signature(_check_sample_weight).parameters
