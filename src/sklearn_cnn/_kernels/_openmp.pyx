"""What the compiled kernels know about OpenMP."""

cdef extern from "_omp_compat.h":
    int omp_get_max_threads() nogil
    int SKLEARN_CNN_OPENMP_ENABLED

OPENMP_ENABLED = bool(SKLEARN_CNN_OPENMP_ENABLED)


def openmp_max_threads():
    """Return ``omp_get_max_threads()`` of the OpenMP runtime the kernels use.

    This honours ``OMP_NUM_THREADS`` and limits set through threadpoolctl on
    the calling thread. It is 1 when the kernels were built without OpenMP.
    """
    return omp_get_max_threads()
