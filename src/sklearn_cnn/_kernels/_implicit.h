/* Convolutions without im2col: the forward product of a 2-D convolution
 * read straight from its NHWC input, where our own products run
 * (_products.h: mode 2 of winograd_set_wide, OpenBLAS on its AVX-512
 * kernels).
 *
 *     y (rows x cout) = im2col(x) (rows x taps) @ w (taps x cout)
 *
 * im2col's row of an output pixel is kernel_h runs of kernel_w * channels
 * values, each a run of the input itself (NHWC, undilated along the width)
 * unless it reads padding.  Each block of output pixels takes one pointer
 * per pixel and kernel row: into the input, to a run of zeros (a row of
 * padding), or to that run assembled with its zeros (a pixel at the left
 * or right edge).  The taps are summed in im2col's order, in one chain of
 * FMAs from the first tap's product, as _products.h and OpenBLAS's AVX-512
 * kernels do: the same bits as im2col and either product.
 *
 * Why: a stride-2 layer's im2col is 2.25 times its input (3x3 taps over a
 * quarter of the pixels), written and read again.  In C, one thread, a
 * 2-core Xeon (model 207), 12 Fashion-MNIST-sized images: 28x28x16 -> 32
 * filters, 3x3, stride 2 (resnet2d's), 191-206 us against 288-324 by
 * im2col and OpenBLAS (im2col alone 66-104) and 220-243 by im2col and a
 * 12 x 32 kernel; 14x14x32 -> 64, 152-204 against 160-214 by im2col and
 * _products.h; 3 to 10 channels to 32 filters 0.62-0.96x of im2col and
 * OpenBLAS, to 64 filters 0.92-1.05x of im2col and _products.h.  In
 * resnet2d (batches of 12, alternated in one process) the two stride-2
 * layers took 0.90-0.93x as long.  1x1 kernels stay with im2col, a plain
 * gather there: their 16 and 32 taps took 1.23-1.66x as long here.
 * The blocks are _products.h's product_block, which reads each row's taps
 * through such pointers: 6 pixels x 64 outputs, and 12 x 32 for the last
 * 32 outputs of a multiple of 32. */
#ifndef SKLEARN_CNN_IMPLICIT_H
#define SKLEARN_CNN_IMPLICIT_H

#include <stddef.h>
#include <string.h>

#include "_products.h"

/* Kernel rows, for the block's run pointers on the stack. */
#define SKLEARN_CNN_IMPLICIT_MAX_KERNEL_H 8

/* One copy of implicit_runs, not one per constant count (2.5 KB less). */
#if defined(__GNUC__) && !defined(__clang__)
#define SKLEARN_CNN_IMPLICIT_ONE_COPY static __attribute__((noinline, noclone))
#else
#define SKLEARN_CNN_IMPLICIT_ONE_COPY SKLEARN_CNN_OUT_OF_LINE
#endif

/* A chunk of NHWC images and the convolution's geometry (pad_top may be
 * negative: a block of rows further down an image). */
typedef struct {
    const float *x;
    ptrdiff_t height, width, channels, kernel_h, kernel_w;
    ptrdiff_t stride_h, stride_w, pad_top, pad_left, dilation_h;
    ptrdiff_t out_h, out_w;
} ImplicitInput;

#if defined(SKLEARN_CNN_AVX512)

/* Whether a convolution's forward product runs here.  A multiple of 64
 * filters needs 64 taps or more: with fewer, the pointers cost about what
 * im2col does before _products.h (an RGB layer of 27 taps to 64 filters:
 * 1.05x in C, 0.99-1.06x in a network). */
static inline int implicit_product_float(ptrdiff_t taps, ptrdiff_t cout, ptrdiff_t kernel_h,
                                         ptrdiff_t kernel_w, ptrdiff_t dilation_w) {
    return sklearn_cnn_own_products && sklearn_cnn_winograd_wide > 0 &&
           cout % 32 == 0 && (cout % 64 != 0 || taps >= 64) &&
           taps <= SKLEARN_CNN_PRODUCT_MAX_TAPS && kernel_h * kernel_w > 1 &&
           kernel_h <= SKLEARN_CNN_IMPLICIT_MAX_KERNEL_H && dilation_w == 1;
}

/* The output pixel whose runs come next: sample, row and column. */
typedef struct {
    ptrdiff_t n, oh, ow;
} ImplicitCursor;

/* The run pointers of the next ``count`` output pixels from ``at`` (which
 * moves past them): runs[r * kernel_h + kh].  ``edge`` holds count *
 * kernel_h runs.  No division per pixel: at 3 per pixel they took about
 * half the time of a 12-pixel block of 144 taps. */
SKLEARN_CNN_IMPLICIT_ONE_COPY void implicit_runs(
        const ImplicitInput *in, ImplicitCursor *at, int count,
        const float *zeros, float *edge, const float **runs) {
    const ptrdiff_t run = in->kernel_w * in->channels;
    const ptrdiff_t sample_size = in->height * in->width * in->channels;
    for (int r = 0; r < count; ++r) {
        const float *sample = in->x + at->n * sample_size;
        const ptrdiff_t iw0 = at->ow * in->stride_w - in->pad_left;
        /* Taps kw in [kw_lo, kw_hi) fall inside the image (as im2col_chunk). */
        ptrdiff_t kw_lo = iw0 < 0 ? (-iw0 < in->kernel_w ? -iw0 : in->kernel_w) : 0;
        ptrdiff_t kw_hi = iw0 + in->kernel_w > in->width ? in->width - iw0 : in->kernel_w;
        if (kw_hi < kw_lo)
            kw_hi = kw_lo;
        for (ptrdiff_t kh = 0; kh < in->kernel_h; ++kh) {
            const ptrdiff_t ih = at->oh * in->stride_h - in->pad_top + kh * in->dilation_h;
            const ptrdiff_t slot = r * in->kernel_h + kh;
            if (ih < 0 || ih >= in->height) {
                runs[slot] = zeros;
            } else if (kw_lo == 0 && kw_hi == in->kernel_w) {
                runs[slot] = sample + (ih * in->width + iw0) * in->channels;
            } else {
                const float *line = sample + ih * in->width * in->channels;
                float *dst = edge + slot * run;
                ptrdiff_t j = 0;
                for (; j < kw_lo * in->channels; ++j)
                    dst[j] = 0.f;
                for (; j < kw_hi * in->channels; ++j)
                    dst[j] = line[iw0 * in->channels + j];
                for (; j < run; ++j)
                    dst[j] = 0.f;
                runs[slot] = dst;
            }
        }
        if (++at->ow == in->out_w) {
            at->ow = 0;
            if (++at->oh == in->out_h) {
                at->oh = 0;
                ++at->n;
            }
        }
    }
}

#define SKLEARN_CNN_IMPLICIT_BLOCK(R, NJ)                                       \
    do {                                                                        \
        implicit_runs(in, &at, R, zeros, edge, runs);                           \
        product_block(R, NJ, runs, in->kernel_h, run, w + f, cout,              \
                      y + p * cout + f, cout);                                  \
    } while (0)

/* Every pixel from the first: blocks of R, then of 2 and 1, by 16 * NJ
 * outputs (constants: the accumulators live in registers). */
#define SKLEARN_CNN_IMPLICIT_PIXELS(R, NJ)                                      \
    do {                                                                        \
        at.n = at.oh = at.ow = 0;                                               \
        for (p = 0; p + R <= pixels; p += R)                                    \
            SKLEARN_CNN_IMPLICIT_BLOCK(R, NJ);                                  \
        for (; p + 2 <= pixels; p += 2)                                         \
            SKLEARN_CNN_IMPLICIT_BLOCK(2, NJ);                                  \
        for (; p < pixels; ++p)                                                 \
            SKLEARN_CNN_IMPLICIT_BLOCK(1, NJ);                                  \
    } while (0)

/* y (n_samples * out_h * out_w x cout) = im2col(x) @ w, for cout a
 * multiple of 32 and at most SKLEARN_CNN_PRODUCT_MAX_TAPS taps (see
 * implicit_product_float).  Blocks of 6 pixels, then of 2 and 1, by 64
 * outputs; of 12, 2 and 1 by the last 32. */
SKLEARN_CNN_AVX512 void implicit_convolve_float(const ImplicitInput *in,
                                                ptrdiff_t n_samples, const float *w,
                                                ptrdiff_t cout, float *y) {
    float zeros[SKLEARN_CNN_PRODUCT_MAX_TAPS];
    float edge[SKLEARN_CNN_PRODUCT_MAX_ROWS * SKLEARN_CNN_PRODUCT_MAX_TAPS];
    const float *runs[SKLEARN_CNN_PRODUCT_MAX_ROWS * SKLEARN_CNN_IMPLICIT_MAX_KERNEL_H];
    const ptrdiff_t run = in->kernel_w * in->channels;
    const ptrdiff_t pixels = n_samples * in->out_h * in->out_w;
    ptrdiff_t f = 0, p;
    ImplicitCursor at;
    memset(zeros, 0, run * sizeof(float));
    for (; f + 64 <= cout; f += 64)
        SKLEARN_CNN_IMPLICIT_PIXELS(6, 4);
    if (f < cout)
        SKLEARN_CNN_IMPLICIT_PIXELS(12, 2);
}

#undef SKLEARN_CNN_IMPLICIT_PIXELS
#undef SKLEARN_CNN_IMPLICIT_BLOCK

#else
/* Never: the baseline build, or no AVX-512 intrinsics. */
static inline int implicit_product_float(ptrdiff_t taps, ptrdiff_t cout, ptrdiff_t kernel_h,
                                         ptrdiff_t kernel_w, ptrdiff_t dilation_w) {
    (void)taps; (void)cout; (void)kernel_h; (void)kernel_w; (void)dilation_w;
    return 0;
}
static inline void implicit_convolve_float(const ImplicitInput *in, ptrdiff_t n_samples,
                                           const float *w, ptrdiff_t cout, float *y) {
    (void)in; (void)n_samples; (void)w; (void)cout; (void)y;
}
#endif

#endif
