"""How many threads the kernels use, and keeping BLAS out of their way.

The OpenMP thread count is resolved once per fit or predict call, as
scikit-learn does: ``omp_get_max_threads()`` (which honours
``OMP_NUM_THREADS`` and threadpoolctl limits) capped by the CPUs this process
may use (affinity, cgroup quotas).  The kernels call single-threaded BLAS
from inside their own ``prange`` loops, so BLAS must be held to one thread
while they run, else both pools fight over the cores.
"""

import os
import threading
from functools import lru_cache

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

from ._kernels._openmp import openmp_max_threads

_blas_libraries = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = []


@lru_cache(maxsize=1)
def _usable_cpus():
    # joblib reads affinity and cgroup quota files: ~80 us, more than a
    # single-image prediction should spend.  The answer is fixed for the
    # life of the process, so it is read once.
    return cpu_count(only_physical_cores=False)


# GNU libgomp is not fork-safe: a child forked while the parent's OpenMP
# threads exist believes it still has them and can hang in its first parallel
# region.  A forked child therefore runs the kernels on one thread (a team of
# one never touches the inherited pool).  spawn, forkserver and loky children
# start afresh and use all their threads.
_parallel_used = False
_forked_child = False


def _mark_forked_child():
    global _forked_child
    _forked_child = _parallel_used


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def effective_n_threads():
    """Number of OpenMP threads the kernels will use in this call."""
    global _parallel_used
    if _forked_child:
        return 1
    n_threads = max(1, min(openmp_max_threads(), _usable_cpus()))
    if n_threads > 1:
        _parallel_used = True
    return n_threads


def _blas_lib_controllers():
    # Found once, after the kernels imported scipy's BLAS: inspecting the
    # loaded libraries costs far more than setting a thread count.
    global _blas_libraries
    if _blas_libraries is None:
        _blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libraries


class _SingleThreadedBlas:
    """The context of ``single_threaded_blas``: one shared, reusable
    instance (a class rather than a generator: about 1 us less per call)."""

    def __enter__(self):
        global _blas_users, _blas_saved
        with _blas_lock:
            if _blas_users == 0:
                # Libraries already at one thread (the user limited them) are
                # left alone: a set costs 0.5 us, a get 0.3.
                _blas_saved = [(lib, n_threads) for lib in _blas_lib_controllers()
                               if (n_threads := lib.get_num_threads()) != 1]
                for lib, _ in _blas_saved:
                    lib.set_num_threads(1)
            _blas_users += 1
        return self

    def __exit__(self, *exc_info):
        global _blas_users
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for lib, n_threads in _blas_saved:
                    lib.set_num_threads(n_threads)
        return False


_SINGLE_THREADED_BLAS = _SingleThreadedBlas()


def single_threaded_blas():
    """Hold every BLAS library to one thread inside the ``with`` block.

    Reference-counted under a lock, so that concurrent or nested calls (fit
    and predict from several Python threads) neither restore the user's
    setting while a kernel still runs nor leave BLAS stuck at one thread.
    Talking to threadpoolctl's library controllers directly costs 3.7 us
    per block with two OpenBLAS libraries (1.4 us when they already run one
    thread) instead of ~35 us for ``ThreadpoolController.limit``.
    """
    return _SINGLE_THREADED_BLAS
