# The products of the convolutions' forward pass: y = a @ w, row-major, by
# our own float kernel (_products.h) where it gives the bits of OpenBLAS's
# AVX-512 kernels, else by BLAS.

from cython cimport floating

from ._blas cimport gemm_rowmajor
from ._typedefs cimport intp_t


cdef extern from "_products.h":
    bint own_product_float(intp_t taps, intp_t cout) noexcept nogil
    void product_float(const float* a, intp_t lda, intp_t rows, intp_t taps,
                       const float* w, intp_t cout, float* y, intp_t ldy) noexcept nogil


cdef inline void forward_product(
    const floating* a, intp_t lda, intp_t rows, intp_t taps,
    const floating* w, intp_t cout, floating* y, intp_t ldy,
) noexcept nogil:
    """y (rows x cout, rows ``ldy`` apart) = a (rows x taps, rows ``lda``
    apart) @ w (taps x cout, contiguous)."""
    if floating is float:
        if own_product_float(taps, cout):
            product_float(a, lda, rows, taps, w, cout, y, ldy)
            return
    gemm_rowmajor(c'N', c'N', <int> rows, <int> cout, <int> taps, <floating> 1, a,
                  <int> lda, w, <int> cout, <floating> 0, y, <int> ldy)
