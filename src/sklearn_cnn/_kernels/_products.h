/* Our own float product for the convolutions' forward pass, standing in
 * for OpenBLAS's SGEMM where that runs its AVX-512 kernels, with their bits.
 *
 *     y (rows x cout, rows ldy apart) = a (rows x taps, rows lda apart)
 *                                       @ w (taps x cout)
 *
 * all row-major, cout a multiple of 64: im2col's products, and those of
 * Winograd's tile positions (2-D and series).  OpenBLAS's AVX-512 kernels
 * (small and packed) sum each output in one chain of FMAs over the taps,
 * from the first tap's product, while the taps fit in one of its blocks of
 * depth; so does this, and the results are the same bits (scanned against
 * SciPy's OpenBLAS 0.3.30 for 1 to 6000 rows, 1 to 400 taps and 16 to 512
 * outputs: all equal; from 500 taps on OpenBLAS starts a second chain).
 *
 * Why not OpenBLAS: for a chunk of a few images its small-matrix kernels
 * read the weights unpacked at every output row, its packed ones pack them
 * again at every call.  Here blocks of 6 rows x 64 outputs keep 24
 * accumulators in registers, and each tap's weights are loaded once per
 * block.  In C, one thread, a 2-core Xeon (model 207), against OpenBLAS:
 * 196 rows x 288 taps x 64 (an im2col layer from 32 to 64 channels on a
 * 14x14 map) 0.64-0.82x, 49 x 288 x 64 (resnet2d's stride-2 layer)
 * 0.86-0.96x, the FCN's 100 x 128 x 256 0.70x.  With 16 outputs it was
 * slower (1.03-1.33x), with 32 (blocks of 8 rows x 32) slower in the
 * networks (1.06-1.15x): those stay with OpenBLAS after im2col (but see
 * _implicit.h, which needs no im2col). */
#ifndef SKLEARN_CNN_PRODUCTS_H
#define SKLEARN_CNN_PRODUCTS_H

#include <stddef.h>

#include "_winograd.h"

/* OpenBLAS's first block of depth holds at least this many taps. */
#define SKLEARN_CNN_PRODUCT_MAX_TAPS 384

#if defined(SKLEARN_CNN_AVX512)

/* Where the product may stand in for OpenBLAS's: mode 2 of
 * winograd_set_wide, which layers/_conv.py asks for only where OpenBLAS
 * multiplies with its AVX-512 kernels (has_small_matrix_kernels). */
static inline int own_product_float(ptrdiff_t taps, ptrdiff_t cout) {
    return sklearn_cnn_own_products && sklearn_cnn_winograd_wide > 0 &&
           cout % 64 == 0 && taps <= SKLEARN_CNN_PRODUCT_MAX_TAPS;
}

/* Rows of a block: 6 by 64 outputs, 12 by 32 (24 accumulators each). */
#define SKLEARN_CNN_PRODUCT_MAX_ROWS 12

/* One block of ``R`` rows by ``16 * NJ`` outputs (constants where it is
 * called: the accumulators live in registers).  Row r's taps are
 * ``kernel_h`` runs of ``run`` values, at rows[r * kernel_h + kh]: one run
 * for a row of a matrix, one per kernel row for a pixel of _implicit.h. */
static inline __attribute__((always_inline, target("avx512f"))) void product_block(
        int R, int NJ, const float *const *rows, ptrdiff_t kernel_h, ptrdiff_t run,
        const float *w, ptrdiff_t cout, float *y, ptrdiff_t ldy) {
    __m512 acc[SKLEARN_CNN_PRODUCT_MAX_ROWS][4], wk[4];
    const float *row[SKLEARN_CNN_PRODUCT_MAX_ROWS];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
        row[r] = rows[r * kernel_h];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; ++j)
        wk[j] = _mm512_loadu_ps(w + 16 * j);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
        const __m512 ar = _mm512_set1_ps(row[r][0]);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; ++j)
            acc[r][j] = _mm512_mul_ps(ar, wk[j]);
    }
    ptrdiff_t k = 1;
    for (ptrdiff_t kh = 0; kh < kernel_h; ++kh, k = 0) {
        const float *wh = w + kh * run * cout;
        if (kh > 0) {
            for (int r = 0; r < R; ++r)
                row[r] = rows[r * kernel_h + kh];
        }
        for (; k < run; ++k) {
#pragma GCC unroll 4
            for (int j = 0; j < NJ; ++j)
                wk[j] = _mm512_loadu_ps(wh + k * cout + 16 * j);
#pragma GCC unroll 12
            for (int r = 0; r < R; ++r) {
                const __m512 ar = _mm512_set1_ps(row[r][k]);
#pragma GCC unroll 4
                for (int j = 0; j < NJ; ++j)
                    acc[r][j] = _mm512_fmadd_ps(ar, wk[j], acc[r][j]);
            }
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < NJ; ++j)
            _mm512_storeu_ps(y + r * ldy + 16 * j, acc[r][j]);
}

/* A block of ``R`` rows of a matrix, ``lda`` apart. */
static inline __attribute__((always_inline, target("avx512f"))) void product_matrix_block(
        int R, const float *a, ptrdiff_t lda, ptrdiff_t taps, const float *w,
        ptrdiff_t cout, float *y, ptrdiff_t ldy) {
    const float *rows[6];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
        rows[r] = a + r * lda;
    product_block(R, 4, rows, 1, taps, w, cout, y, ldy);
}

/* Blocks of 6 rows (24 accumulators), then of 2 and 1: a block of one row
 * has 4 chains of FMAs, too few to hide their latency, and with 1-5 rows
 * left (a few images' Winograd tiles) single rows took 1.36x OpenBLAS's
 * time. */
SKLEARN_CNN_AVX512 void product_float(const float *a, ptrdiff_t lda, ptrdiff_t rows,
                                      ptrdiff_t taps, const float *w, ptrdiff_t cout,
                                      float *y, ptrdiff_t ldy) {
    for (ptrdiff_t f = 0; f < cout; f += 64) {
        ptrdiff_t r = 0;
        for (; r + 6 <= rows; r += 6)
            product_matrix_block(6, a + r * lda, lda, taps, w + f, cout, y + r * ldy + f, ldy);
        for (; r + 2 <= rows; r += 2)
            product_matrix_block(2, a + r * lda, lda, taps, w + f, cout, y + r * ldy + f, ldy);
        for (; r < rows; ++r)
            product_matrix_block(1, a + r * lda, lda, taps, w + f, cout, y + r * ldy + f, ldy);
    }
}

/* The transposed product of Winograd's weight gradient, one per tile
 * position, also in OpenBLAS's stead and with its bits:
 *
 *     y (cin x cout, rows ldy apart) = a^T @ b,  a (n x cin, rows lda apart),
 *                                                b (n x cout, rows ldb apart)
 *
 * summed over the n tiles of a chunk.  OpenBLAS's AVX-512 kernels (small
 * and packed) sum each output in one chain of FMAs over the tiles, from the
 * first tile's product, while the tiles fit in one of its blocks of depth;
 * so does this (scanned against SciPy's OpenBLAS 0.3.30 in C: 1 to 384
 * tiles, 1 to 128 inputs, 16 to 128 outputs, Winograd's strides: all
 * equal; past 384 tiles, from 500 on, it starts a second chain for some
 * shapes).  Blocks of 16 rows x 16 outputs or 12 x 32 keep their
 * accumulators in registers and read each tile's row of ``a`` once per
 * block.  36 positions' products in C, 1 thread: 16 x 16 with 294 tiles
 * (resnet2d's 16 -> 16 layer, chunks of 6 images) 0.83-0.87x OpenBLAS's
 * time; 32 x 32 (160 tiles) and 64 x 64 (80) the same time.  That layer's
 * backward in training: 0.97x. */
static inline int own_product_tn_float(ptrdiff_t n, ptrdiff_t cout) {
    /* n > 0: the blocks read the first tile's rows before their loop. */
    return sklearn_cnn_own_products && sklearn_cnn_winograd_wide > 0 &&
           cout % 16 == 0 && n > 0 && n <= SKLEARN_CNN_PRODUCT_MAX_TAPS;
}

/* One block of ``R`` rows (inputs) by ``16 * NJ`` outputs (constants where
 * it is called).  product_block's loop with each input's values ``lda``
 * apart; written out rather than shared with it (a step argument there), which
 * gave the same bits and speed but a wheel 4.9 KB larger (997,405 bytes). */
static inline __attribute__((always_inline, target("avx512f"))) void product_tn_block(
        int R, int NJ, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
        ptrdiff_t n, float *y, ptrdiff_t ldy) {
    __m512 acc[16][2], bk[2];
#pragma GCC unroll 2
    for (int j = 0; j < NJ; ++j)
        bk[j] = _mm512_loadu_ps(b + 16 * j);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 2
        for (int j = 0; j < NJ; ++j)
            acc[r][j] = _mm512_mul_ps(ar, bk[j]);
    }
    for (ptrdiff_t k = 1; k < n; ++k) {
        const float *ak = a + k * lda;
#pragma GCC unroll 2
        for (int j = 0; j < NJ; ++j)
            bk[j] = _mm512_loadu_ps(b + k * ldb + 16 * j);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            const __m512 ar = _mm512_set1_ps(ak[r]);
#pragma GCC unroll 2
            for (int j = 0; j < NJ; ++j)
                acc[r][j] = _mm512_fmadd_ps(ar, bk[j], acc[r][j]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int j = 0; j < NJ; ++j)
            _mm512_storeu_ps(y + r * ldy + 16 * j, acc[r][j]);
}

/* Blocks of 16 rows by 16 outputs, or of 12 by 32 (where cout allows):
 * 16 or 24 accumulators; then blocks of 4 rows and single rows. */
SKLEARN_CNN_AVX512 void product_tn_float(const float *a, ptrdiff_t lda, ptrdiff_t n,
                                         ptrdiff_t cin, const float *b, ptrdiff_t ldb,
                                         ptrdiff_t cout, float *y, ptrdiff_t ldy) {
    ptrdiff_t f = 0;
    for (; f + 32 <= cout; f += 32) {
        ptrdiff_t r = 0;
        for (; r + 12 <= cin; r += 12)
            product_tn_block(12, 2, a + r, lda, b + f, ldb, n, y + r * ldy + f, ldy);
        for (; r + 4 <= cin; r += 4)
            product_tn_block(4, 2, a + r, lda, b + f, ldb, n, y + r * ldy + f, ldy);
        for (; r < cin; ++r)
            product_tn_block(1, 2, a + r, lda, b + f, ldb, n, y + r * ldy + f, ldy);
    }
    for (; f < cout; f += 16) {
        ptrdiff_t r = 0;
        for (; r + 16 <= cin; r += 16)
            product_tn_block(16, 1, a + r, lda, b + f, ldb, n, y + r * ldy + f, ldy);
        for (; r + 4 <= cin; r += 4)
            product_tn_block(4, 1, a + r, lda, b + f, ldb, n, y + r * ldy + f, ldy);
        for (; r < cin; ++r)
            product_tn_block(1, 1, a + r, lda, b + f, ldb, n, y + r * ldy + f, ldy);
    }
}

#else
/* Never: the baseline build, or no AVX-512 intrinsics. */
static inline int own_product_tn_float(ptrdiff_t n, ptrdiff_t cout) {
    (void)n; (void)cout;
    return 0;
}
static inline void product_tn_float(const float *a, ptrdiff_t lda, ptrdiff_t n,
                                    ptrdiff_t cin, const float *b, ptrdiff_t ldb,
                                    ptrdiff_t cout, float *y, ptrdiff_t ldy) {
    (void)a; (void)lda; (void)n; (void)cin; (void)b; (void)ldb; (void)cout; (void)y;
    (void)ldy;
}
static inline int own_product_float(ptrdiff_t taps, ptrdiff_t cout) {
    (void)taps; (void)cout;
    return 0;
}
static inline void product_float(const float *a, ptrdiff_t lda, ptrdiff_t rows,
                                 ptrdiff_t taps, const float *w, ptrdiff_t cout,
                                 float *y, ptrdiff_t ldy) {
    (void)a; (void)lda; (void)rows; (void)taps; (void)w; (void)cout; (void)y;
    (void)ldy;
}
#endif

#endif
