"""What the BLAS library under the kernels does well.

OpenBLAS built for AVX-512 cores (its SkylakeX, Cooperlake and
SapphireRapids targets) multiplies small matrices with kernels that pack
nothing; larger products pack both operands first.  On this project's 2-core
AMD EPYC host (Zen 5), resnet2d's two stride-2 convolutions (16 -> 32 and
32 -> 64 channels) predicted batches of 12 images in 10.5-10.7 and 8.7-8.9 us
per image with one sample per product (M * N * K = 0.9M multiply-adds),
against 12.5-12.8 and 11.0-11.1 with three (1 thread; the whole forward
102-105 -> 97-99 us), while with its Haswell kernels
(``OPENBLAS_CORETYPE=Haswell``), which have no such path, one sample was 1-4
us slower per layer.  The answer depends on the libraries loaded, never on
the thread count, so results stay the same at every count.
"""

from functools import lru_cache

from threadpoolctl import threadpool_info

# OpenBLAS targets (as openblas_get_corename() spells them) with
# small-matrix SGEMM/DGEMM kernels.
_SMALL_MATRIX_TARGETS = {"skylakex", "cooperlake", "sapphirerapids"}

# Prediction's im2col products stay at or under this many multiply-adds
# where those kernels exist (one sample of the stride-2 layers above).
SMALL_GEMM_MULTIPLY_ADDS = 1_000_000


@lru_cache(maxsize=1)
def has_small_matrix_kernels():
    """True if every BLAS library loaded is an OpenBLAS with small-matrix
    kernels (read once: the libraries do not change in a process)."""
    import scipy.linalg.cython_blas  # noqa: F401 - the BLAS the kernels call

    try:
        libraries = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    except Exception:  # an introspection failure only costs this tuning
        return False
    return bool(libraries) and all(
        lib["internal_api"] == "openblas"
        and str(lib.get("architecture", "")).lower() in _SMALL_MATRIX_TARGETS
        for lib in libraries)
