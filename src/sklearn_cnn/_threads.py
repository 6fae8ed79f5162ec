"""How many threads the kernels use, and keeping BLAS out of their way.

The OpenMP thread count is resolved once per fit or predict call, as
scikit-learn does: ``omp_get_max_threads()`` (which honours
``OMP_NUM_THREADS`` and threadpoolctl limits) capped by the CPUs this process
may use (affinity, cgroup quotas).  The kernels call single-threaded BLAS
from inside their own ``prange`` loops, so BLAS must be held to one thread
while they run, else both pools fight over the cores.
"""

from contextlib import contextmanager

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

from ._kernels._openmp import openmp_max_threads

_controller = None


def effective_n_threads():
    """Number of OpenMP threads the kernels will use in this call."""
    return max(1, min(openmp_max_threads(), cpu_count(only_physical_cores=False)))


def _blas_controller():
    # Built lazily, after the kernels imported scipy's BLAS, and cached:
    # inspecting the loaded libraries costs far more than applying a limit.
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


@contextmanager
def single_threaded_blas():
    """Hold every BLAS library to one thread inside the block."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield
