import os

# Before scipy is imported anywhere: scikit-learn's array-API checks need it,
# and without it they are skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from hypothesis import settings

# Fuzzing budgets: "ci" (default) stays within the suite's time budget;
# HYPOTHESIS_PROFILE=long runs far more cases.
settings.register_profile("ci", max_examples=150, derandomize=True)
settings.register_profile("long", max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from sklearn_cnn._threads import single_threaded_blas


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    """Run kernel tests with 1 and with 2 OpenMP threads."""
    return request.param


@pytest.fixture(autouse=True)
def _blas_one_thread():
    # The kernels call BLAS from inside prange: hold it to one thread, as fit does.
    with single_threaded_blas():
        yield

