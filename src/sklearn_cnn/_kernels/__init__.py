"""Compiled kernels: stateless ``noexcept nogil`` functions over typed memoryviews.

Every kernel trusts its caller: shapes, strides and indices are validated in
Python (``sklearn_cnn._network``) before any kernel runs.

The hot modules (``AVX2_KERNELS``) are built twice on x86-64: for the
baseline instruction set that every x86-64 CPU runs (SSE2), and with
``-mavx2``.  :func:`load` returns the AVX2 build where the CPU has AVX2:
gcc vectorises the Winograd transforms, BatchNorm and pooling loops over
twice as many channels at once, and the ``vgg()`` training step got 12%
faster (68 -> 60 ms at batch 128, 1 thread; an AVX-512 build was no faster).
No FMA is enabled, so both builds round alike: results are bitwise the
same, which tests/test_kernel_builds.py checks.  On CPUs with AVX-512 the
AVX2 build also runs prediction's float F(2x2) Winograd transforms 16
channels wide (``_winograd.h``; the same additions, the same bits), which
took 2-9% off one resnet2d image.  Set
``SKLEARN_CNN_KERNELS=baseline`` to use the baseline build everywhere.
"""

import importlib
import os

AVX2_KERNELS = ("_conv", "_batchnorm")


def avx2_enabled():
    """True if :func:`load` picks the AVX2 builds: the CPU has AVX2 and
    ``SKLEARN_CNN_KERNELS`` is not ``baseline``."""
    from ._platform import has_avx2

    if os.environ.get("SKLEARN_CNN_KERNELS", "").strip().lower() == "baseline":
        return False
    return has_avx2()


def load(name):
    """The kernel module ``name`` (e.g. ``"_conv"``) in the build this CPU
    runs best: its AVX2 build if there is one and :func:`avx2_enabled`."""
    if name in AVX2_KERNELS and avx2_enabled():
        try:
            return importlib.import_module(f"{__name__}.{name}_avx2")
        except ImportError:  # built without it: not x86-64, or no gcc/clang
            pass
    return importlib.import_module(f"{__name__}.{name}")
