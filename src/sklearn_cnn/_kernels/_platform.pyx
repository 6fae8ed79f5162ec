"""What the machine under the compiled kernels provides: the processor's
instruction sets and the OpenMP runtime.

One module for both, not one each: two took 5.2 KB more of the wheel.
"""

cdef extern from "_cpu_features.h":
    int sklearn_cnn_cpu_has_avx2() nogil

cdef extern from "_omp_compat.h":
    int omp_get_max_threads() nogil
    int SKLEARN_CNN_OPENMP_ENABLED

OPENMP_ENABLED = bool(SKLEARN_CNN_OPENMP_ENABLED)


def has_avx2():
    """True if this CPU and operating system run AVX2 instructions."""
    return bool(sklearn_cnn_cpu_has_avx2())


def openmp_max_threads():
    """Return ``omp_get_max_threads()`` of the OpenMP runtime the kernels use.

    This honours ``OMP_NUM_THREADS`` and limits set through threadpoolctl on
    the calling thread. It is 1 when the kernels were built without OpenMP.
    """
    return omp_get_max_threads()


ctypedef int (*blas_count_getter)() noexcept nogil
ctypedef void (*blas_count_setter)(int) noexcept nogil


def exchange_blas_threads(tuple getters, tuple setters, tuple counts):
    """Give BLAS library i ``counts[i]`` threads where it has another count,
    through its own C functions (their addresses in ``getters[i]`` and
    ``setters[i]``: ``int get(void)``, ``void set(int)``); return the counts
    the libraries had.

    Called directly, not through ctypes (which releases and takes back the
    GIL around each call): single_threaded_blas's block took 1.7 us instead
    of 3.1 with two libraries, 0.7 us of it in these calls.
    """
    cdef Py_ssize_t i
    cdef int had
    if len(setters) != len(getters) or len(counts) != len(getters):
        # Indexed below without bounds checks.
        raise ValueError("exchange_blas_threads needs one setter and one count "
                         "per getter")
    previous = []
    for i in range(len(getters)):
        had = (<blas_count_getter> <size_t> getters[i])()
        if had != counts[i]:
            (<blas_count_setter> <size_t> setters[i])(counts[i])
        previous.append(had)
    return tuple(previous)
