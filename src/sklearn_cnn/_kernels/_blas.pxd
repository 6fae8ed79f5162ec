# Row-major GEMM and GEMV on top of scipy's Fortran (column-major) BLAS.
#
# C[m, n] = alpha * op(A) @ op(B) + beta * C, all matrices row-major with the
# given leading dimensions.  A row-major matrix is the transpose of the same
# memory read column-major, so the row-major product C = A B is computed as
# the column-major product C^T = B^T A^T: swap the operands and the sizes m
# and n, keep the transpose flags.
#
# Called from inside prange: the caller must hold BLAS to one thread.

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv


cdef inline void gemm_rowmajor(
    char trans_a, char trans_b, int m, int n, int k,
    floating alpha, const floating* a, int lda,
    const floating* b, int ldb,
    floating beta, floating* c, int ldc,
) noexcept nogil:
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <float*> b, &ldb,
              <float*> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <double*> b, &ldb,
              <double*> a, &lda, &beta, c, &ldc)


cdef inline void vector_times_rowmajor(
    int k, int n, const floating* x, const floating* b, int ldb, floating* y,
) noexcept nogil:
    """y[n] = x[k] @ B[k, n] for row-major B: a GEMV on B read column-major
    (B^T, n x k)."""
    cdef char no_trans = c'N'
    cdef int one = 1
    cdef floating alpha = 1, beta = 0
    if n <= 0:
        return
    if floating is float:
        sgemv(&no_trans, &n, &k, &alpha, <float*> b, &ldb, <float*> x, &one, &beta, y,
              &one)
    else:
        dgemv(&no_trans, &n, &k, &alpha, <double*> b, &ldb, <double*> x, &one, &beta,
              y, &one)
