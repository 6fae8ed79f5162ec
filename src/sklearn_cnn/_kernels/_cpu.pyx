"""What the processor running the kernels can do."""

cdef extern from "_cpu_features.h":
    int sklearn_cnn_cpu_has_avx2() nogil


def has_avx2():
    """True if this CPU and operating system run AVX2 instructions."""
    return bool(sklearn_cnn_cpu_has_avx2())
