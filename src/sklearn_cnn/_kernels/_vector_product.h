/* One row times a matrix by our own AVX-512 kernel, with the bits of
 * OpenBLAS's SGEMV where that runs its AVX-512 kernels: the product of a
 * dense layer for one sample (_dense.pyx's one_row_forward).
 *
 *     y (n) = x (k) @ b (k x n, row-major, rows ldb apart)
 *
 * OpenBLAS's SGEMV ("N" on b read column-major, sgemv_n_4.c) adds b's rows
 * in groups of 8, then one group of 4, 2 and 1 for the rest: each group is
 * one chain of FMAs from zero, then added to y.  That holds for every output
 * when n is a multiple of 16 (otherwise a prologue sums the first outputs
 * in two chains) and k > 48 (up to 48 rows a kernel of another order runs);
 * so does this, and the results are the same bits (scanned in C against
 * SciPy's OpenBLAS 0.3.30, and by tests/test_dense_loss_optim_kernels.py).
 *
 * Why not OpenBLAS: its kernel loads and stores y around every group of 8
 * rows, 8 wide; here the 128 outputs of a tile stay in 8 registers of 16,
 * and only b is read.  In C, one thread, b in cache, 2-core Xeon (model
 * 207): FM-LeNet's 3136 -> 128 layer split in two parts of 1568 rows 6.6
 * against 10.5 us, 784 x 128 3.7 against 6.7 us. */
#ifndef SKLEARN_CNN_VECTOR_PRODUCT_H
#define SKLEARN_CNN_VECTOR_PRODUCT_H

#include <stddef.h>

/* OpenBLAS sums in another order up to this many rows. */
#define SKLEARN_CNN_VECTOR_PRODUCT_MIN_ROWS 49

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>

#include "_cpu_features.h"

/* Whether the kernel may stand in for OpenBLAS's (set_own_vector_products:
 * only where OpenBLAS multiplies with its AVX-512 kernels). */
static int sklearn_cnn_own_vector_products = 0;

static inline int set_own_vector_products(int on) {
    sklearn_cnn_own_vector_products = on && sklearn_cnn_cpu_has_avx512f();
    return sklearn_cnn_own_vector_products;
}

static inline int own_vector_product_float(ptrdiff_t k, ptrdiff_t n) {
    return sklearn_cnn_own_vector_products && n % 16 == 0 &&
           k >= SKLEARN_CNN_VECTOR_PRODUCT_MIN_ROWS;
}

/* Row t of b times x[t], added to the ``NJ`` chains of 16 outputs. */
static inline __attribute__((always_inline, target("avx512f"))) void vector_row(
        int NJ, ptrdiff_t t, const float *x, const float *b, ptrdiff_t ldb,
        __m512 *part) {
    const __m512 xt = _mm512_set1_ps(x[t]);
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j)
        part[j] = _mm512_fmadd_ps(_mm512_loadu_ps(b + t * ldb + 16 * j), xt, part[j]);
}

/* 8 rows from row i (or ``group`` < 8 in a loop kept rolled, for the last
 * rows), one chain from zero, added to the ``NJ`` accumulators of 16
 * outputs (a constant where it is called). */
static inline __attribute__((always_inline, target("avx512f"))) void vector_group(
        int NJ, ptrdiff_t i, ptrdiff_t group, const float *x, const float *b,
        ptrdiff_t ldb, __m512 *acc) {
    __m512 part[8];
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j)
        part[j] = _mm512_setzero_ps();
    if (group == 8) {
#pragma GCC unroll 8
        for (ptrdiff_t t = i; t < i + 8; ++t)
            vector_row(NJ, t, x, b, ldb, part);
    } else {
#pragma GCC unroll 1
        for (ptrdiff_t t = i; t < i + group; ++t)
            vector_row(NJ, t, x, b, ldb, part);
    }
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j)
        acc[j] = _mm512_add_ps(acc[j], part[j]);
}

/* A tile of 16 * NJ outputs. */
static inline __attribute__((always_inline, target("avx512f"))) void vector_tile(
        int NJ, ptrdiff_t k, const float *x, const float *b, ptrdiff_t ldb, float *y) {
    __m512 acc[8];
    ptrdiff_t i = 0;
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j)
        acc[j] = _mm512_setzero_ps();
    for (; i + 8 <= k; i += 8)
        vector_group(NJ, i, 8, x, b, ldb, acc);
    /* the last rows: groups of 4, 2 and 1, as OpenBLAS takes them */
#pragma GCC unroll 1
    for (ptrdiff_t group = 4; group > 0; group /= 2) {
        if ((k - i) & group) {
            vector_group(NJ, i, group, x, b, ldb, acc);
            i += group;
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j)
        _mm512_storeu_ps(y + 16 * j, acc[j]);
}

/* Tiles of 128 outputs, then of 64 and 16. */
static __attribute__((target("avx512f"), noinline)) void vector_product_float(
        ptrdiff_t k, ptrdiff_t n, const float *x, const float *b, ptrdiff_t ldb,
        float *y) {
    ptrdiff_t f = 0;
    for (; f + 128 <= n; f += 128)
        vector_tile(8, k, x, b + f, ldb, y + f);
    if ((n - f) & 64) {
        vector_tile(4, k, x, b + f, ldb, y + f);
        f += 64;
    }
    for (; f < n; f += 16)
        vector_tile(1, k, x, b + f, ldb, y + f);
}

#else
/* Never: not x86-64, or a compiler without GCC's intrinsics and targets. */
static inline int set_own_vector_products(int on) {
    (void)on;
    return 0;
}
static inline int own_vector_product_float(ptrdiff_t k, ptrdiff_t n) {
    (void)k; (void)n;
    return 0;
}
static inline void vector_product_float(ptrdiff_t k, ptrdiff_t n, const float *x,
                                        const float *b, ptrdiff_t ldb, float *y) {
    (void)k; (void)n; (void)x; (void)b; (void)ldb; (void)y;
}
#endif

#endif
