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
