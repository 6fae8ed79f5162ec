/* Winograd F(m, r) for series: the transforms of a 1-D, stride-1,
 * undilated convolution with a kernel of r = 3..7 taps, in tiles of
 * m = 9 - r outputs that each read 8 inputs.
 *
 * Toom-Cook (Lavin & Gray, 2016) on the eight points
 * 0, 1, -1, 2, -2, 1/2, -1/2 and infinity:
 *
 *     y = A^T [ (G g) * (B^T d) ]          (* elementwise, 8 values)
 *
 * The points fix B^T (8 x 8) for every r, below.  A^T (m x 8) holds the
 * powers p^i of the finite points, and 1 at (m - 1, infinity); G (8 x r)
 * holds p^k / f(p), f(p) being the product of p - q over the other finite
 * points q, and 1 at (infinity, r - 1).  Summed over input channels, the 8
 * products are 8 GEMMs (tiles x in-channels) @ (in-channels x
 * out-channels): 8 multiplications per m outputs instead of m * r, 2.25x
 * fewer for r = 3 (F(6, 3)), 2.5x for r = 4 and 5, 2.25x for 6, 1.75x for
 * 7.  Float32 outputs carry about twice im2col's rounding error (measured on
 * random 128 -> 64-channel tiles against float64: mean 9e-7 of the outputs'
 * mean size, 4e-7 for im2col).
 *
 *     B^T = [-1    0  21/4     0  -21/4     0  1  0;
 *             0    1     1 -17/4  -17/4     1  1  0;
 *             0   -1     1  17/4  -17/4    -1  1  0;
 *             0  1/2   1/4  -5/2   -5/4     2  1  0;
 *             0 -1/2   1/4   5/2   -5/4    -2  1  0;
 *             0    2     4  -5/2     -5   1/2  1  0;
 *             0   -2     4   5/2     -5  -1/2  1  0;
 *             0   -1     0  21/4      0 -21/4  0  1]
 *
 * Layouts (channels innermost, as NHWC series are): weights (r, cin, cout);
 * transformed weights 8 planes of (cin, cout), u_plane values apart; the 8
 * rows of a transformed input tile (cin values) or of a GEMM output tile
 * (cout values) lie ``stride`` values apart, in planes of all a chunk's
 * tiles.  Pointer arguments never overlap (see SKLEARN_CNN_IVDEP in
 * _winograd.h). */
#ifndef SKLEARN_CNN_WINOGRAD1D_H
#define SKLEARN_CNN_WINOGRAD1D_H

#include <stddef.h>

#include "_winograd.h"

#define SKLEARN_CNN_WINOGRAD1D_POINTS 8

/* G (8 x r, row-major) for kernels of r taps, in double. */
static inline void winograd1d_g(int r, double *g) {
    static const double points[7] = {0., 1., -1., 2., -2., 0.5, -0.5};
    for (int j = 0; j < 7; ++j) {
        double f = 1., power = 1.;
        for (int l = 0; l < 7; ++l)
            if (l != j) f *= points[j] - points[l];
        for (int k = 0; k < r; ++k) {
            g[j * r + k] = power / f;
            power *= points[j];
        }
    }
    for (int k = 0; k < r; ++k)
        g[7 * r + k] = k == r - 1 ? 1. : 0.;
}

#define SKLEARN_CNN_DEFINE_WINOGRAD1D(SUFFIX, TYPE)                              \
    /* Planes xi of u = G g for every (in, out) channel pair, times scale[o]  \
     * unless scale is NULL (a folded BatchNormalization's multiplier); w is   \
     * (r, cin, cout), u's 8 planes lie u_plane >= cin * cout values apart.    \
     * With ``reverse`` the taps are taken last to first (the input           \
     * gradient's kernel). */                                                   \
    static inline void winograd1d_weights_##SUFFIX(                             \
            const TYPE *restrict w, int r, ptrdiff_t cin, ptrdiff_t cout,        \
            const TYPE *restrict scale, TYPE *restrict u, ptrdiff_t u_plane,     \
            int reverse, int xi) {                                               \
        double g[8 * 7];                                                         \
        const ptrdiff_t plane = cin * cout;                                      \
        winograd1d_g(r, g);                                                      \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            TYPE *restrict dst = u + xi * u_plane + c * cout;                    \
            for (ptrdiff_t o = 0; o < cout; ++o)                                 \
                dst[o] = 0;                                                      \
            for (int k = 0; k < r; ++k) {                                        \
                const TYPE coefficient = (TYPE)g[xi * r + k];                    \
                const TYPE *restrict src =                                       \
                    w + (reverse ? r - 1 - k : k) * plane + c * cout;            \
                for (ptrdiff_t o = 0; o < cout; ++o)                             \
                    dst[o] += coefficient * src[o];                              \
            }                                                                    \
            if (scale != NULL)                                                   \
                for (ptrdiff_t o = 0; o < cout; ++o)                             \
                    dst[o] *= scale[o];                                          \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* Tap k of dw = G^T du for every channel pair: du's 8 planes (cin, cout) \
     * lie u_plane values apart, dw is (r, cin, cout). */                       \
    static inline void winograd1d_weight_grad_##SUFFIX(                         \
            const TYPE *restrict du, int r, ptrdiff_t cin, ptrdiff_t cout,       \
            ptrdiff_t u_plane, TYPE *restrict dw, int k) {                       \
        double g[8 * 7];                                                         \
        const ptrdiff_t plane = cin * cout;                                      \
        TYPE *restrict dst = dw + k * plane;                                     \
        winograd1d_g(r, g);                                                      \
        for (ptrdiff_t e = 0; e < plane; ++e)                                    \
            dst[e] = 0;                                                          \
        for (int xi = 0; xi < 8; ++xi) {                                         \
            const TYPE coefficient = (TYPE)g[xi * r + k];                        \
            const TYPE *restrict src = du + xi * u_plane;                        \
            for (ptrdiff_t e = 0; e < plane; ++e)                                \
                dst[e] += coefficient * src[e];                                  \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* v[xi * stride + c] = (B^T d)[xi] for the 8 input rows d[0..7] of cin    \
     * values (pointers to a row of zeros where the tile leaves the series). */ \
    static inline void winograd1d_input_tile_##SUFFIX(                          \
            const TYPE **d, ptrdiff_t cin, TYPE *restrict v, ptrdiff_t stride) { \
        const TYPE *restrict d0 = d[0], *restrict d1 = d[1];                     \
        const TYPE *restrict d2 = d[2], *restrict d3 = d[3];                     \
        const TYPE *restrict d4 = d[4], *restrict d5 = d[5];                     \
        const TYPE *restrict d6 = d[6], *restrict d7 = d[7];                     \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            TYPE a = d2[c] + d6[c] - (TYPE)4.25 * d4[c];                         \
            TYPE b = d1[c] + d5[c] - (TYPE)4.25 * d3[c];                         \
            TYPE p = (TYPE)0.25 * d2[c] - (TYPE)1.25 * d4[c] + d6[c];            \
            TYPE q = (TYPE)0.5 * d1[c] - (TYPE)2.5 * d3[c] + 2 * d5[c];          \
            TYPE s = 4 * d2[c] - 5 * d4[c] + d6[c];                              \
            TYPE t = 2 * d1[c] - (TYPE)2.5 * d3[c] + (TYPE)0.5 * d5[c];          \
            v[c] = d6[c] - d0[c] + (TYPE)5.25 * (d2[c] - d4[c]);                 \
            v[stride + c] = a + b;                                                  \
            v[2 * stride + c] = a - b;                                              \
            v[3 * stride + c] = p + q;                                              \
            v[4 * stride + c] = p - q;                                              \
            v[5 * stride + c] = s + t;                                              \
            v[6 * stride + c] = s - t;                                              \
            v[7 * stride + c] = d7[c] - d1[c] + (TYPE)5.25 * (d3[c] - d5[c]);       \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* y[i] = (A^T mm)[i] for the m = 9 - r rows y[0..m-1] of cout values,     \
     * from the 8 rows of a GEMM output tile, mm[xi * stride + c]. */           \
    static inline void winograd1d_output_tile_##SUFFIX(                         \
            const TYPE *restrict mm, ptrdiff_t stride, int m, ptrdiff_t cout,    \
            TYPE **y) {                                                          \
        const TYPE *restrict m0 = mm, *restrict m1 = mm + stride;                \
        const TYPE *restrict m2 = mm + 2 * stride;                               \
        const TYPE *restrict m3 = mm + 3 * stride;                               \
        const TYPE *restrict m4 = mm + 4 * stride;                               \
        const TYPE *restrict m5 = mm + 5 * stride;                               \
        const TYPE *restrict m6 = mm + 6 * stride;                               \
        const TYPE *restrict m7 = mm + 7 * stride;                               \
        TYPE two = 1, half = 1;                                                  \
        for (int i = 0; i < m; ++i) {                                            \
            TYPE *restrict out = y[i];                                           \
            const TYPE sign = i % 2 ? -1 : 1, last = i == m - 1;                 \
            const TYPE first = i == 0;                                           \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t c = 0; c < cout; ++c)                                 \
                out[c] = first * m0[c] + (m1[c] + sign * m2[c])                  \
                         + two * (m3[c] + sign * m4[c])                          \
                         + half * (m5[c] + sign * m6[c]) + last * m7[c];         \
            two *= 2;                                                            \
            half *= (TYPE)0.5;                                                   \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* dm = A dy: the gradient's way back through the output transform, from  \
     * the m rows dy[0..m-1] of cout values into the 8 rows                   \
     * dm[xi * stride + c]. */                                                  \
    static inline void winograd1d_grad_output_tile_##SUFFIX(                    \
            const TYPE **dy, int m, ptrdiff_t cout, TYPE *restrict dm,           \
            ptrdiff_t stride) {                                                  \
        TYPE two = 1, half = 1;                                                  \
        for (ptrdiff_t c = 0; c < cout; ++c) {                                   \
            dm[c] = dy[0][c];                                                    \
            dm[7 * stride + c] = dy[m - 1][c];                                     \
        }                                                                        \
        for (int xi = 1; xi < 7; ++xi)                                           \
            for (ptrdiff_t c = 0; c < cout; ++c)                                 \
                dm[xi * stride + c] = 0;                                           \
        for (int i = 0; i < m; ++i) {                                            \
            const TYPE *restrict row = dy[i];                                    \
            const TYPE sign = i % 2 ? -1 : 1;                                    \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t c = 0; c < cout; ++c) {                               \
                TYPE value = row[c];                                             \
                dm[stride + c] += value;                                           \
                dm[2 * stride + c] += sign * value;                                \
                dm[3 * stride + c] += two * value;                                 \
                dm[4 * stride + c] += sign * two * value;                          \
                dm[5 * stride + c] += half * value;                                \
                dm[6 * stride + c] += sign * half * value;                         \
            }                                                                    \
            two *= 2;                                                            \
            half *= (TYPE)0.5;                                                   \
        }                                                                        \
    }

SKLEARN_CNN_DEFINE_WINOGRAD1D(float, float)
SKLEARN_CNN_DEFINE_WINOGRAD1D(double, double)

#endif
