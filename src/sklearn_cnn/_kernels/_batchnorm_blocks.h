/* BatchNormalization's backward over one block of rows (rows, channels),
 * for _batchnorm.pyx.  In C for restrict: with seven pointers in the loop,
 * gcc gave up proving they do not overlap and kept the sums in memory,
 * scalar (32 ms instead of 2.1 for a (100352, 32) float32 map).
 *
 * With `relu`, dy = grad where the forward's pre-activation
 * (x - centre) * multiplier + offset (recomputed with the forward's very
 * operations, so the same signs) is positive, else 0; otherwise dy = grad.
 * grad is loaded before the test (relu_gradient takes it as an argument):
 * a load inside the condition (or the mask as a product with the test) is
 * control flow to gcc 12, which then leaves the loop scalar and branchy, on
 * signs that are a coin toss. */
#ifndef SKLEARN_CNN_BATCHNORM_BLOCKS_H
#define SKLEARN_CNN_BATCHNORM_BLOCKS_H

#include <stddef.h>

#include "_winograd.h" /* SKLEARN_CNN_IVDEP */

#define SKLEARN_CNN_DEFINE_BATCHNORM_BLOCKS(SUFFIX, TYPE)                        \
    /* dy at one value: grad where the recomputed pre-activation              \
     * d * multiplier + offset is positive, else 0 (grad arrives loaded). */    \
    static inline TYPE relu_gradient_##SUFFIX(TYPE grad, TYPE d, TYPE multiplier, \
                                              TYPE offset) {                     \
        return d * multiplier + offset > 0 ? grad : (TYPE)0;                     \
    }                                                                            \
                                                                                 \
    /* sum_dy[c] = Σ dy, sum_dy_centred[c] = Σ dy (x - centre) over the rows. */ \
    static inline void batchnorm_gradient_sums_##SUFFIX(                         \
            const TYPE *restrict x, const TYPE *restrict grad, ptrdiff_t rows,   \
            ptrdiff_t channels, const TYPE *restrict centre,                     \
            const TYPE *restrict multiplier, const TYPE *restrict offset,        \
            int relu, TYPE *restrict sum_dy, TYPE *restrict sum_dy_centred) {    \
        for (ptrdiff_t c = 0; c < channels; ++c) {                               \
            sum_dy[c] = 0;                                                       \
            sum_dy_centred[c] = 0;                                               \
        }                                                                        \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                   \
            const TYPE *restrict xr = x + r * channels;                          \
            const TYPE *restrict gr = grad + r * channels;                       \
            if (relu) {                                                          \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < channels; ++c) {                       \
                    TYPE d = xr[c] - centre[c];                                  \
                    TYPE g = relu_gradient_##SUFFIX(gr[c], d, multiplier[c], offset[c]); \
                    sum_dy[c] += g;                                              \
                    sum_dy_centred[c] += g * d;                                  \
                }                                                                \
            } else {                                                             \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < channels; ++c) {                       \
                    sum_dy[c] += gr[c];                                          \
                    sum_dy_centred[c] += gr[c] * (xr[c] - centre[c]);            \
                }                                                                \
            }                                                                    \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* dx = a dy + b (x - centre) + k, with a, b, k the rows of coefficients. */ \
    static inline void batchnorm_input_gradient_##SUFFIX(                        \
            const TYPE *restrict x, const TYPE *restrict grad, ptrdiff_t rows,   \
            ptrdiff_t channels, const TYPE *restrict centre,                     \
            const TYPE *restrict multiplier, const TYPE *restrict offset,        \
            int relu, const TYPE *restrict coefficients,                         \
            TYPE *restrict grad_input) {                                         \
        const TYPE *restrict a = coefficients;                                   \
        const TYPE *restrict b = coefficients + channels;                        \
        const TYPE *restrict k = coefficients + 2 * channels;                    \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                   \
            const TYPE *restrict xr = x + r * channels;                          \
            const TYPE *restrict gr = grad + r * channels;                       \
            TYPE *restrict out = grad_input + r * channels;                      \
            if (relu) {                                                          \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < channels; ++c) {                       \
                    TYPE d = xr[c] - centre[c];                                  \
                    TYPE g = relu_gradient_##SUFFIX(gr[c], d, multiplier[c], offset[c]); \
                    out[c] = a[c] * g + b[c] * d + k[c];                         \
                }                                                                \
            } else {                                                             \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < channels; ++c)                         \
                    out[c] = a[c] * gr[c] + b[c] * (xr[c] - centre[c]) + k[c];   \
            }                                                                    \
        }                                                                        \
    }

SKLEARN_CNN_DEFINE_BATCHNORM_BLOCKS(float, float)
SKLEARN_CNN_DEFINE_BATCHNORM_BLOCKS(double, double)

#endif
