# The bias gradient's column sums (_column_sums.h), for the conv kernels of
# _conv.pyx and the Winograd weight gradients of _winograd.pxd and
# _winograd1d.pxd.

from cython cimport floating

from ._typedefs cimport intp_t


cdef extern from "_column_sums.h":
    void add_column_sums_float(const float* x, intp_t rows, intp_t cols, intp_t stride,
                               double* acc) noexcept nogil
    void add_column_sums_double(const double* x, intp_t rows, intp_t cols,
                                intp_t stride, double* acc) noexcept nogil


cdef inline void add_column_sums(const floating* x, intp_t rows, intp_t cols,
                                 intp_t stride, double* acc) noexcept nogil:
    """acc[c] += the sum of column c of the (rows, cols) x whose rows lie
    ``stride`` values apart, row by row in order (see _column_sums.h)."""
    if floating is float:
        add_column_sums_float(x, rows, cols, stride, acc)
    else:
        add_column_sums_double(x, rows, cols, stride, acc)
