/* The inner loops of max pooling, in C so that gcc vectorises them.
 *
 * Cython turns a conditional expression into if/else statements, which gcc
 * did not vectorise: pooling then cost more than the convolution before it.
 * gcc -O3 vectorises this form (checked with -fopt-info-vec, SSE2, no -march):
 * loads into locals, `a > b ? a : b` for the maximum (exactly SIMD max), and
 * the index chosen with an integer mask rather than a second select, which it
 * refused as "control flow in loop".
 * Ties keep the earlier position: only a strictly larger value wins. */
#ifndef SKLEARN_CNN_POOL_SIMD_H
#define SKLEARN_CNN_POOL_SIMD_H

#include <stddef.h>
#include <stdint.h>

#define SKLEARN_CNN_DEFINE_RUNNING_MAX(NAME, TYPE)                              \
    static inline void NAME(const TYPE *restrict src, TYPE *restrict best,      \
                            int32_t *restrict where, int32_t position,          \
                            ptrdiff_t n) {                                      \
        for (ptrdiff_t c = 0; c < n; ++c) {                                     \
            TYPE value = src[c];                                                \
            TYPE current = best[c];                                             \
            int32_t previous = where[c];                                        \
            int32_t take = -(int32_t)(value > current);                         \
            best[c] = value > current ? value : current;                        \
            where[c] = (position & take) | (previous & ~take);                  \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_RUNNING_MAX(running_max_float, float)
SKLEARN_CNN_DEFINE_RUNNING_MAX(running_max_double, double)

/* The same maximum without the positions, for prediction: the select with
 * the index doubled the pooling's cost in a single-image prediction. */
#define SKLEARN_CNN_DEFINE_RUNNING_MAX_ONLY(NAME, TYPE)                         \
    static inline void NAME(const TYPE *restrict src, TYPE *restrict best,      \
                            ptrdiff_t n) {                                      \
        for (ptrdiff_t c = 0; c < n; ++c) {                                     \
            TYPE value = src[c];                                                \
            TYPE current = best[c];                                             \
            best[c] = value > current ? value : current;                        \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_RUNNING_MAX_ONLY(running_max_only_float, float)
SKLEARN_CNN_DEFINE_RUNNING_MAX_ONLY(running_max_only_double, double)

/* A 2x2 window's maximum in one pass, for prediction: the same comparisons
 * in the same order as a running maximum over (0, 0), (0, 1), (1, 0), (1, 1)
 * (so the same values, NaN and signed zeros included), with one store per
 * channel instead of four. */
#define SKLEARN_CNN_DEFINE_WINDOW_MAX_2X2(NAME, TYPE)                           \
    static inline void NAME(const TYPE *restrict top, const TYPE *restrict bottom, \
                            ptrdiff_t step, TYPE *restrict best, ptrdiff_t n) { \
        for (ptrdiff_t c = 0; c < n; ++c) {                                     \
            TYPE current = top[c];                                              \
            TYPE value = top[c + step];                                         \
            current = value > current ? value : current;                        \
            value = bottom[c];                                                  \
            current = value > current ? value : current;                        \
            value = bottom[c + step];                                           \
            best[c] = value > current ? value : current;                        \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_WINDOW_MAX_2X2(window_max_2x2_float, float)
SKLEARN_CNN_DEFINE_WINDOW_MAX_2X2(window_max_2x2_double, double)

/* The same with the winners' positions (training): ``position`` is the
 * window's first, ``row`` what the next row adds to it.  Ties keep the
 * earlier position, as in running_max. */
#define SKLEARN_CNN_DEFINE_WINDOW_ARGMAX_2X2(NAME, TYPE)                        \
    static inline void NAME(const TYPE *restrict top, const TYPE *restrict bottom, \
                            ptrdiff_t step, TYPE *restrict best,                \
                            int32_t *restrict where, int32_t position,          \
                            int32_t row, ptrdiff_t n) {                         \
        for (ptrdiff_t c = 0; c < n; ++c) {                                     \
            TYPE current = top[c];                                              \
            int32_t winner = position;                                          \
            TYPE value = top[c + step];                                         \
            int32_t take = -(int32_t)(value > current);                         \
            current = value > current ? value : current;                        \
            winner = ((position + 1) & take) | (winner & ~take);                \
            value = bottom[c];                                                  \
            take = -(int32_t)(value > current);                                 \
            current = value > current ? value : current;                        \
            winner = ((position + row) & take) | (winner & ~take);              \
            value = bottom[c + step];                                           \
            take = -(int32_t)(value > current);                                 \
            best[c] = value > current ? value : current;                        \
            where[c] = ((position + row + 1) & take) | (winner & ~take);        \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_WINDOW_ARGMAX_2X2(window_argmax_2x2_float, float)
SKLEARN_CNN_DEFINE_WINDOW_ARGMAX_2X2(window_argmax_2x2_double, double)

/* Backward of non-overlapping max pooling, one window position at a time:
 * dst[c] gets delta[c] where this position won channel c, else 0.  Every
 * position of the map is written once, so no zeroing pass and no scatter
 * (whose load-add-store chains cost more than the GEMMs of the first layer). */
#define SKLEARN_CNN_DEFINE_UNPOOL(NAME, TYPE)                                   \
    static inline void NAME(const TYPE *restrict delta,                         \
                            const int32_t *restrict where, int32_t position,    \
                            TYPE *restrict dst, ptrdiff_t n) {                  \
        for (ptrdiff_t c = 0; c < n; ++c) {                                     \
            TYPE value = delta[c];                                              \
            dst[c] = where[c] == position ? value : (TYPE)0;                    \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_UNPOOL(unpool_float, float)
SKLEARN_CNN_DEFINE_UNPOOL(unpool_double, double)

#endif
