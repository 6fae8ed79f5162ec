# _conv built for AVX2: setup.py compiles this same source with -mavx2 (x86-64,
# gcc or clang), and _kernels/__init__.py loads it on CPUs that have AVX2.
# No FMA, no other change: results are bitwise the same as the baseline
# build's (tests/test_kernel_builds.py).
include "_conv.pyx"
