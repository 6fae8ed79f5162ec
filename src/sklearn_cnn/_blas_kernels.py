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


@lru_cache(maxsize=1)
def use_own_products():
    """Where OpenBLAS multiplies with its AVX-512 kernels, let our own
    kernels stand in for some of its products, with its bits, so that the
    other paths (the baseline build, other BLAS) agree.  Once per process,
    at the first allocation of a layer that may use them (the BLAS
    libraries do not change).

    - The convolutions (mode 2 of ``set_wide_transforms``): Winograd's chunks
      of 16 output channels run fused (transforms and products per group of
      tiles, in L1; ``_winograd4.h``): resnet2d's predict_proba, fused
      against not (medians of 16 alternated rounds, two runs), 0.88-0.90x on
      2,000 images and 0.93-0.94x on one, 1 thread; 0.90x and 0.94-0.95x on
      2; its 16 -> 16 layer in training, forward and backward at batch 128,
      0.94x on 1 thread, 0.97x on 2.  The forward products of 64k output
      channels go to ``_products.h``: the FCN's predict_proba on 242 series
      0.90x on 1 thread, 0.97x on 2.  im2col's rows of 32k output channels
      are read straight from the input (``_implicit.h``): resnet2d's
      stride-2 layers 0.90-0.93x.
    - One sample through a dense layer (``_vector_product.h``), unless
      SKLEARN_CNN_KERNELS=baseline asks for none of our vector code:
      FM-LeNet's 3136 -> 128 layer in one-image predict_proba, alternated in
      one process (11 rounds, 2-core Xeon), 0.885x the time of OpenBLAS's
      SGEMV on 1 thread, 0.771x on 2 (each thread's part of the weights
      stays in its core's cache); the whole call 0.960x and 0.941x.
    """
    if not has_small_matrix_kernels():
        return
    from ._kernels import _dense, avx2_enabled, load

    load("_conv").set_wide_transforms(2)
    if avx2_enabled():
        _dense.set_own_vector_products(True)
