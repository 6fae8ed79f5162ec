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
 * signs that are a coin toss.
 *
 * Channel counts.  Rows of 16 or 32 channels are inner loops of two or four
 * AVX2 vectors, which cost more in loop overhead than in arithmetic: a
 * (100352, 16) float32 map took 0.97 ms forward and 0.78 backward, against
 * 0.53 and 0.48 for the same values in 128 channels.  So each block function
 * is written once as an always-inlined body, and float32 blocks of 16, 32, 64
 * or 128 channels run it compiled with the count as a constant (gcc unrolls
 * the channels and keeps the sums in registers); other counts, and float64
 * (models kept for precision, not speed), run it with the count as given.
 * (AVX2 build only.)  1.6M float32 values, 1 thread, ms forward / backward,
 * before -> after:
 * 16 channels 0.86-0.97 / 0.73-0.78 -> 0.50-0.54 / 0.49-0.53; 32 channels
 * 0.63-0.72 / 0.53-0.68 -> 0.37-0.39 / 0.37; 64 channels 0.51-0.60 /
 * 0.47-0.54 -> 0.40 / 0.37-0.38; 128 channels 0.46-0.53 forward -> 0.39-0.41
 * (256 channels gained nothing: generic).  The same operations on every
 * value in the same order: the same bits.
 *
 * The forward's two block loops (the block's mean and squared deviations,
 * and the normalisation) are here too, for the same reason; they compute
 * what the Cython loops they replace computed, expression for expression. */
#ifndef SKLEARN_CNN_BATCHNORM_BLOCKS_H
#define SKLEARN_CNN_BATCHNORM_BLOCKS_H

#include <stddef.h>

#include "_winograd.h" /* SKLEARN_CNN_IVDEP, SKLEARN_CNN_ALWAYS_INLINE */

#define SKLEARN_CNN_DEFINE_BATCHNORM_BLOCKS(SUFFIX, TYPE)                        \
    /* dy at one value: grad where the recomputed pre-activation              \
     * d * multiplier + offset is positive, else 0 (grad arrives loaded). */    \
    static inline TYPE relu_gradient_##SUFFIX(TYPE grad, TYPE d, TYPE multiplier, \
                                              TYPE offset) {                     \
        return d * multiplier + offset > 0 ? grad : (TYPE)0;                     \
    }                                                                            \
                                                                                 \
    /* sum_dy[c] = Σ dy, sum_dy_centred[c] = Σ dy (x - centre) over the rows. */ \
    SKLEARN_CNN_ALWAYS_INLINE void gradient_sums_body_##SUFFIX(                  \
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
    SKLEARN_CNN_ALWAYS_INLINE void input_gradient_body_##SUFFIX(                 \
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
    }                                                                            \
                                                                                 \
    /* The block's mean and sum of squared deviations from it (see            \
     * _batchnorm.pyx): a rough mean in TYPE, then the deviations from it,     \
     * whose own sum corrects the mean in float64.  sums: (2 channels,). */    \
    SKLEARN_CNN_ALWAYS_INLINE void mean_and_squares_body_##SUFFIX(               \
            const TYPE *restrict x, ptrdiff_t rows, ptrdiff_t channels,          \
            TYPE *restrict sums, double *restrict mean,                          \
            double *restrict squares) {                                          \
        TYPE *restrict rough = sums;                                             \
        TYPE *restrict deviations = sums + channels;                             \
        for (ptrdiff_t c = 0; c < channels; ++c)                                 \
            rough[c] = 0;                                                        \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                   \
            const TYPE *restrict xr = x + r * channels;                          \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t c = 0; c < channels; ++c)                             \
                rough[c] = rough[c] + xr[c];                                     \
        }                                                                        \
        for (ptrdiff_t c = 0; c < channels; ++c) {                               \
            rough[c] = rough[c] / (TYPE)rows;                                    \
            deviations[c] = 0;                                                   \
            squares[c] = 0;                                                      \
        }                                                                        \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                   \
            const TYPE *restrict xr = x + r * channels;                          \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t c = 0; c < channels; ++c) {                           \
                TYPE d = xr[c] - rough[c];                                       \
                deviations[c] = deviations[c] + d;                               \
                squares[c] = squares[c] + d * d;                                 \
            }                                                                    \
        }                                                                        \
        for (ptrdiff_t c = 0; c < channels; ++c) {                               \
            mean[c] = rough[c] + (double)deviations[c] / (double)rows;           \
            squares[c] = squares[c]                                              \
                         - (double)deviations[c] * deviations[c] / (double)rows; \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* out = (x - centre) * multiplier + offset [+ addend] over a block of     \
     * rows; no addend if NULL. */                                              \
    SKLEARN_CNN_ALWAYS_INLINE void normalize_body_##SUFFIX(                      \
            const TYPE *restrict x, ptrdiff_t rows, ptrdiff_t channels,          \
            const TYPE *restrict centre, const TYPE *restrict multiplier,        \
            const TYPE *restrict offset, const TYPE *restrict addend,            \
            TYPE *restrict out) {                                                \
        for (ptrdiff_t r = 0; r < rows; ++r) {                                   \
            const TYPE *restrict xr = x + r * channels;                          \
            TYPE *restrict yr = out + r * channels;                              \
            if (addend == NULL) {                                                \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < channels; ++c)                         \
                    yr[c] = (xr[c] - centre[c]) * multiplier[c] + offset[c];     \
            } else {                                                             \
                const TYPE *restrict ar = addend + r * channels;                 \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < channels; ++c)                         \
                    yr[c] = ((xr[c] - centre[c]) * multiplier[c] + offset[c])    \
                            + ar[c];                                             \
            }                                                                    \
        }                                                                        \
    }                                                                            \

/* The bodies for COUNT channels, a constant, each its own function (inlined
 * into one function, five counts left gcc's unrolling budgets short: the
 * 16-channel forward went from 0.61 back to 0.81 ms). */
#define SKLEARN_CNN_DEFINE_BATCHNORM_FIXED(SUFFIX, TYPE, COUNT)                  \
    SKLEARN_CNN_OUT_OF_LINE void gradient_sums_##COUNT##_##SUFFIX(               \
            const TYPE *x, const TYPE *grad, ptrdiff_t rows, const TYPE *centre, \
            const TYPE *multiplier, const TYPE *offset, int relu, TYPE *sum_dy,  \
            TYPE *sum_dy_centred) {                                              \
        gradient_sums_body_##SUFFIX(x, grad, rows, COUNT, centre, multiplier,    \
                                    offset, relu, sum_dy, sum_dy_centred);       \
    }                                                                            \
    SKLEARN_CNN_OUT_OF_LINE void input_gradient_##COUNT##_##SUFFIX(              \
            const TYPE *x, const TYPE *grad, ptrdiff_t rows, const TYPE *centre, \
            const TYPE *multiplier, const TYPE *offset, int relu,                \
            const TYPE *coefficients, TYPE *grad_input) {                        \
        input_gradient_body_##SUFFIX(x, grad, rows, COUNT, centre, multiplier,   \
                                     offset, relu, coefficients, grad_input);    \
    }                                                                            \
    SKLEARN_CNN_OUT_OF_LINE void mean_and_squares_##COUNT##_##SUFFIX(            \
            const TYPE *x, ptrdiff_t rows, TYPE *sums, double *mean,             \
            double *squares) {                                                   \
        mean_and_squares_body_##SUFFIX(x, rows, COUNT, sums, mean, squares);     \
    }                                                                            \
    SKLEARN_CNN_OUT_OF_LINE void normalize_##COUNT##_##SUFFIX(                   \
            const TYPE *x, ptrdiff_t rows, const TYPE *centre,                   \
            const TYPE *multiplier, const TYPE *offset, const TYPE *addend,      \
            TYPE *out) {                                                         \
        normalize_body_##SUFFIX(x, rows, COUNT, centre, multiplier, offset,      \
                                addend, out);                                    \
    }

SKLEARN_CNN_DEFINE_BATCHNORM_BLOCKS(float, float)
SKLEARN_CNN_DEFINE_BATCHNORM_BLOCKS(double, double)

#if defined(__AVX2__)
/* CALL(COUNT) for the counts with their own functions, else GENERIC.  Only
 * in the AVX2 build, which every CPU with AVX2 runs: the baseline build
 * (older CPUs) stays generic, 5 KB smaller in the wheel, with the same bits. */
#define SKLEARN_CNN_BY_CHANNELS(CHANNELS, CALL, GENERIC)                         \
    switch (CHANNELS) {                                                          \
        case 16: CALL(16); break;                                                \
        case 32: CALL(32); break;                                                \
        case 64: CALL(64); break;                                                \
        case 128: CALL(128); break;                                              \
        default: GENERIC;                                                        \
    }

SKLEARN_CNN_DEFINE_BATCHNORM_FIXED(float, float, 16)
SKLEARN_CNN_DEFINE_BATCHNORM_FIXED(float, float, 32)
SKLEARN_CNN_DEFINE_BATCHNORM_FIXED(float, float, 64)
SKLEARN_CNN_DEFINE_BATCHNORM_FIXED(float, float, 128)
#else
#define SKLEARN_CNN_BY_CHANNELS(CHANNELS, CALL, GENERIC) { GENERIC; }
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define SKLEARN_CNN_ANY_COUNT static __attribute__((noinline, noclone))
#else
#define SKLEARN_CNN_ANY_COUNT SKLEARN_CNN_OUT_OF_LINE
#endif

/* The backward bodies for a channel count gcc may not know: other counts,
 * and 16 channels without ReLU, because gcc 12 compiled the 16-channel
 * constant version of that path into shuffles across rows (1.33 ms backward
 * on 1.6M values instead of 0.59).  noclone: else gcc's constant propagation
 * clones the function for the 16 it is called with. */
SKLEARN_CNN_ANY_COUNT void gradient_sums_any_float(
        const float *x, const float *grad, ptrdiff_t rows, ptrdiff_t channels,
        const float *centre, const float *multiplier, const float *offset, int relu,
        float *sum_dy, float *sum_dy_centred) {
    gradient_sums_body_float(x, grad, rows, channels, centre, multiplier, offset, relu,
                             sum_dy, sum_dy_centred);
}

SKLEARN_CNN_ANY_COUNT void input_gradient_any_float(
        const float *x, const float *grad, ptrdiff_t rows, ptrdiff_t channels,
        const float *centre, const float *multiplier, const float *offset, int relu,
        const float *coefficients, float *grad_input) {
    input_gradient_body_float(x, grad, rows, channels, centre, multiplier, offset,
                              relu, coefficients, grad_input);
}

/* The functions _batchnorm.pyx calls: float32 by channel count, float64
 * (models kept for precision, not speed) always generic. */
static void batchnorm_gradient_sums_float(
        const float *x, const float *grad, ptrdiff_t rows, ptrdiff_t channels,
        const float *centre, const float *multiplier, const float *offset, int relu,
        float *sum_dy, float *sum_dy_centred) {
#define SKLEARN_CNN_CALL(COUNT) gradient_sums_##COUNT##_float(                  \
        x, grad, rows, centre, multiplier, offset, relu, sum_dy, sum_dy_centred)
    /* 16 channels without ReLU: the generic loops (see above). */
    SKLEARN_CNN_BY_CHANNELS(channels == 16 && !relu ? 0 : channels, SKLEARN_CNN_CALL,
                            gradient_sums_any_float(
        x, grad, rows, channels, centre, multiplier, offset, relu, sum_dy,
        sum_dy_centred))
#undef SKLEARN_CNN_CALL
}

static void batchnorm_input_gradient_float(
        const float *x, const float *grad, ptrdiff_t rows, ptrdiff_t channels,
        const float *centre, const float *multiplier, const float *offset, int relu,
        const float *coefficients, float *grad_input) {
#define SKLEARN_CNN_CALL(COUNT) input_gradient_##COUNT##_float(                 \
        x, grad, rows, centre, multiplier, offset, relu, coefficients, grad_input)
    /* 16 channels without ReLU: the generic loops (see above). */
    SKLEARN_CNN_BY_CHANNELS(channels == 16 && !relu ? 0 : channels, SKLEARN_CNN_CALL,
                            input_gradient_any_float(
        x, grad, rows, channels, centre, multiplier, offset, relu, coefficients,
        grad_input))
#undef SKLEARN_CNN_CALL
}

static void batchnorm_mean_and_squares_float(
        const float *x, ptrdiff_t rows, ptrdiff_t channels, float *sums,
        double *mean, double *squares) {
#define SKLEARN_CNN_CALL(COUNT) mean_and_squares_##COUNT##_float(               \
        x, rows, sums, mean, squares)
    SKLEARN_CNN_BY_CHANNELS(channels, SKLEARN_CNN_CALL, mean_and_squares_body_float(
        x, rows, channels, sums, mean, squares))
#undef SKLEARN_CNN_CALL
}

static void batchnorm_normalize_float(
        const float *x, ptrdiff_t rows, ptrdiff_t channels, const float *centre,
        const float *multiplier, const float *offset, const float *addend,
        float *out) {
#define SKLEARN_CNN_CALL(COUNT) normalize_##COUNT##_float(                      \
        x, rows, centre, multiplier, offset, addend, out)
    SKLEARN_CNN_BY_CHANNELS(channels, SKLEARN_CNN_CALL, normalize_body_float(
        x, rows, channels, centre, multiplier, offset, addend, out))
#undef SKLEARN_CNN_CALL
}

static void batchnorm_gradient_sums_double(
        const double *x, const double *grad, ptrdiff_t rows, ptrdiff_t channels,
        const double *centre, const double *multiplier, const double *offset,
        int relu, double *sum_dy, double *sum_dy_centred) {
    gradient_sums_body_double(x, grad, rows, channels, centre, multiplier, offset,
                              relu, sum_dy, sum_dy_centred);
}

static void batchnorm_input_gradient_double(
        const double *x, const double *grad, ptrdiff_t rows, ptrdiff_t channels,
        const double *centre, const double *multiplier, const double *offset,
        int relu, const double *coefficients, double *grad_input) {
    input_gradient_body_double(x, grad, rows, channels, centre, multiplier, offset,
                               relu, coefficients, grad_input);
}

static void batchnorm_mean_and_squares_double(
        const double *x, ptrdiff_t rows, ptrdiff_t channels, double *sums,
        double *mean, double *squares) {
    mean_and_squares_body_double(x, rows, channels, sums, mean, squares);
}

static void batchnorm_normalize_double(
        const double *x, ptrdiff_t rows, ptrdiff_t channels, const double *centre,
        const double *multiplier, const double *offset, const double *addend,
        double *out) {
    normalize_body_double(x, rows, channels, centre, multiplier, offset, addend, out);
}

#endif
