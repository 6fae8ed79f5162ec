# The products of the convolutions' forward pass: y = a @ w, row-major, by
# our own float kernel (_products.h) where it gives the bits of OpenBLAS's
# AVX-512 kernels, else by BLAS; the same product straight from an NHWC
# input, without im2col (_implicit.h); and Winograd's weight-gradient
# product y = a^T @ b, likewise.

from cython cimport floating

from ._blas cimport gemm_rowmajor
from ._conv_geometry cimport ConvGeometry
from ._typedefs cimport intp_t


cdef extern from "_products.h":
    bint own_product_float(intp_t taps, intp_t cout) noexcept nogil
    void product_float(const float* a, intp_t lda, intp_t rows, intp_t taps,
                       const float* w, intp_t cout, float* y, intp_t ldy) noexcept nogil
    bint own_product_tn_float(intp_t n, intp_t cout) noexcept nogil
    void product_tn_float(const float* a, intp_t lda, intp_t n, intp_t cin,
                          const float* b, intp_t ldb, intp_t cout, float* y,
                          intp_t ldy) noexcept nogil


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


cdef inline void transposed_product(
    const floating* a, intp_t lda, intp_t n, intp_t cin,
    const floating* b, intp_t ldb, intp_t cout, floating* y, intp_t ldy,
) noexcept nogil:
    """y (cin x cout, rows ``ldy`` apart) = a^T @ b, summed over the ``n``
    rows of a (n x cin, rows ``lda`` apart) and b (n x cout, ``ldb``)."""
    if floating is float:
        if own_product_tn_float(n, cout):
            product_tn_float(a, lda, n, cin, b, ldb, cout, y, ldy)
            return
    gemm_rowmajor(c'T', c'N', <int> cin, <int> cout, <int> n, <floating> 1, a,
                  <int> lda, b, <int> ldb, <floating> 0, y, <int> ldy)


cdef extern from "_implicit.h":
    ctypedef struct ImplicitInput:
        const float* x
        intp_t height, width, channels, kernel_h, kernel_w
        intp_t stride_h, stride_w, pad_top, pad_left, dilation_h
        intp_t out_h, out_w
    bint implicit_product_float(intp_t taps, intp_t cout, intp_t kernel_h,
                                intp_t kernel_w, intp_t dilation_w) noexcept nogil
    void implicit_convolve_float(const ImplicitInput* input, intp_t n_samples,
                                 const float* w, intp_t cout, float* y) noexcept nogil


cdef inline bint implicit_convolve(
    ConvGeometry g, const floating* x, intp_t n_samples, const floating* w,
    floating* y,
) noexcept nogil:
    """y = im2col(x) @ w without im2col where our own products run (float,
    see _implicit.h); False, with nothing done, elsewhere."""
    cdef ImplicitInput source
    if floating is double:
        return False
    else:
        if not implicit_product_float(g.taps, g.out_channels, g.kernel_h,
                                      g.kernel_w, g.dilation_w):
            return False
        source.x = x
        source.height, source.width, source.channels = g.height, g.width, g.channels
        source.kernel_h, source.kernel_w = g.kernel_h, g.kernel_w
        source.stride_h, source.stride_w = g.stride_h, g.stride_w
        source.pad_top, source.pad_left = g.pad_top, g.pad_left
        source.dilation_h = g.dilation_h
        source.out_h, source.out_w = g.out_h, g.out_w
        implicit_convolve_float(&source, n_samples, w, g.out_channels, y)
        return True
