/* Column sums of a (rows, cols) block whose rows lie ``stride`` values
 * apart, into float64 accumulators: the bias gradient of a convolution's
 * chunk (stride = cols), or of its Winograd tiles (one row per tile).
 *
 * Written in Cython, the loop `acc[c] += x[r * cols + c]` stayed scalar
 * (Python's -fno-strict-aliasing lets the double accumulators alias the
 * float values), and with `restrict` gcc vectorised it but still loaded and
 * stored every accumulator once per row.  Here blocks of columns are summed
 * down all the rows in registers (fixed-size local arrays, fully unrolled),
 * then the remaining columns the plain way.  Each column is
 * still summed row by row in order: the sums are bitwise those of the
 * scalar loop. */
#ifndef SKLEARN_CNN_COLUMN_SUMS_H
#define SKLEARN_CNN_COLUMN_SUMS_H

#include <stddef.h>

#include "_winograd.h" /* SKLEARN_CNN_OUT_OF_LINE: one copy per module, not
                          one per call site (the wheel's 1 MB) */

/* acc[c0 .. c0 + WIDTH) += the columns' sums, in registers. */
#define SKLEARN_CNN_DEFINE_COLUMN_BLOCK_SUMS(NAME, TYPE, WIDTH)                 \
    SKLEARN_CNN_OUT_OF_LINE void NAME(const TYPE *restrict x, ptrdiff_t rows,   \
                                      ptrdiff_t stride, double *restrict acc) { \
        double block[WIDTH];                                                    \
        for (int k = 0; k < WIDTH; ++k)                                         \
            block[k] = acc[k];                                                  \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                  \
            const TYPE *restrict row = x + r * stride;                          \
            for (int k = 0; k < WIDTH; ++k)                                     \
                block[k] += (double)row[k];                                     \
        }                                                                       \
        for (int k = 0; k < WIDTH; ++k)                                         \
            acc[k] = block[k];                                                  \
    }

/* Blocks of 32 columns (8 AVX2 accumulators: one add per accumulator and
 * row is then not bound by the add's latency), then of 16, then the rest. */
#define SKLEARN_CNN_DEFINE_ADD_COLUMN_SUMS(NAME, TYPE)                          \
    SKLEARN_CNN_DEFINE_COLUMN_BLOCK_SUMS(NAME##_32, TYPE, 32)                   \
    SKLEARN_CNN_DEFINE_COLUMN_BLOCK_SUMS(NAME##_16, TYPE, 16)                   \
    SKLEARN_CNN_OUT_OF_LINE void NAME(const TYPE *restrict x, ptrdiff_t rows,   \
                                      ptrdiff_t cols, ptrdiff_t stride,         \
                                      double *restrict acc) {                   \
        ptrdiff_t c0 = 0;                                                       \
        for (; c0 + 32 <= cols; c0 += 32)                                       \
            NAME##_32(x + c0, rows, stride, acc + c0);                          \
        for (; c0 + 16 <= cols; c0 += 16)                                       \
            NAME##_16(x + c0, rows, stride, acc + c0);                          \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                  \
            const TYPE *restrict row = x + r * stride;                          \
            for (ptrdiff_t c = c0; c < cols; ++c)                               \
                acc[c] += (double)row[c];                                       \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_ADD_COLUMN_SUMS(add_column_sums_float, float)
SKLEARN_CNN_DEFINE_ADD_COLUMN_SUMS(add_column_sums_double, double)

#endif
