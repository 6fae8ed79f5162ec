# _batchnorm built for AVX2: see _conv_avx2.pyx.
include "_batchnorm.pyx"
