"""How many threads the kernels use, and keeping BLAS out of their way.

The OpenMP thread count is resolved once per fit or predict call, as
scikit-learn does: ``omp_get_max_threads()`` (which honours
``OMP_NUM_THREADS`` and threadpoolctl limits) capped by the CPUs this process
may use (affinity, cgroup quotas).  The kernels call single-threaded BLAS
from inside their own ``prange`` loops, so BLAS must be held to one thread
while they run, else both pools fight over the cores.
"""

import ctypes
import os
import threading
from functools import lru_cache

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

from ._kernels._platform import exchange_blas_threads, openmp_max_threads

_blas_libraries = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = ((), [])


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


def _native_thread_count_functions(lib):
    """The addresses of ``(get, set)``, one BLAS library's own C functions
    for its thread count, or None.

    For OpenBLAS on pthreads (the NumPy and SciPy wheels' BLAS) the kernel
    module calls them directly (``exchange_blas_threads``).  threadpoolctl's
    methods wrap each call in Python (symbol lookup, which Python thread
    owns the library): with them a block cost 10 us on a 2-core Xeon,
    through ctypes 3 us, called from compiled code 1.7 us.  Any other
    library, or a threadpoolctl without the symbol lookup, goes through
    threadpoolctl's methods (which for OpenMP builds set the calling
    thread's count only).
    """
    if lib.internal_api != "openblas" or getattr(lib, "threading_layer", None) != "pthreads":
        return None
    try:
        functions = [lib._get_symbol(f"openblas_{verb}_num_threads")
                     for verb in ("get", "set")]
    except AttributeError:
        return None
    if None in functions:
        return None
    return tuple(ctypes.cast(function, ctypes.c_void_p).value for function in functions)


def _blas_thread_counts():
    """``(getters, setters, ones, others)``: the addresses of the OpenBLAS
    libraries' own functions, as many 1s, and the ``(get, set)`` methods of
    any other library."""
    # Every BLAS library, not only SciPy's, which the kernels call: NumPy's
    # wheel brings its own OpenBLAS, and NumPy products between the kernels'
    # calls in fit (the L2 penalty's dot products, say) would wake its
    # threads, which then spin against the kernels' OpenMP threads.  Holding
    # SciPy's alone made one fit in scikit-learn's
    # check_regressor_data_not_an_array take 24 s instead of 5 (2 cores),
    # for 1.5-3% off a single-image prediction.
    # Found once, after the kernels imported scipy's BLAS: inspecting the
    # loaded libraries costs far more than setting a thread count.
    global _blas_libraries
    if _blas_libraries is None:
        native, others = [], []
        for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
            functions = _native_thread_count_functions(lib)
            if functions is None:
                others.append((lib.get_num_threads, lib.set_num_threads))
            else:
                native.append(functions)
        getters = tuple(get for get, _ in native)
        _blas_libraries = (getters, tuple(set_ for _, set_ in native),
                           (1,) * len(getters), others)
    return _blas_libraries


class _SingleThreadedBlas:
    """The context of ``single_threaded_blas``: one shared, reusable
    instance (a class rather than a generator: about 1 us less per call)."""

    def __enter__(self):
        global _blas_users, _blas_saved
        with _blas_lock:
            if _blas_users == 0:
                getters, setters, ones, others = _blas_thread_counts()
                # Libraries already at one thread (the user limited them)
                # are left alone.
                _blas_saved = (exchange_blas_threads(getters, setters, ones),
                               [(set_, n_threads) for get, set_ in others
                                if (n_threads := get()) != 1])
                for set_, _ in _blas_saved[1]:
                    set_(1)
            _blas_users += 1
        return self

    def __exit__(self, *exc_info):
        global _blas_users
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                getters, setters, _, _ = _blas_thread_counts()
                exchange_blas_threads(getters, setters, _blas_saved[0])
                for set_, n_threads in _blas_saved[1]:
                    set_(n_threads)
        return False


_SINGLE_THREADED_BLAS = _SingleThreadedBlas()


def single_threaded_blas():
    """Hold every BLAS library to one thread inside the ``with`` block.

    Reference-counted under a lock, so that concurrent or nested calls (fit
    and predict from several Python threads) neither restore the user's
    setting while a kernel still runs nor leave BLAS stuck at one thread.
    Calling the libraries' own functions from compiled code (see
    ``_native_thread_count_functions``) costs about 1.7 us per block with two
    OpenBLAS libraries, against 10 us through threadpoolctl's library
    controllers and ~35 us for ``ThreadpoolController.limit``.
    """
    return _SINGLE_THREADED_BLAS
