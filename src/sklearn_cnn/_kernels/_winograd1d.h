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
    /* winograd1d_weights for input channel c, unscaled; f: 1 / f(p). */      \
    static inline void winograd1d_weights_channel_##SUFFIX(                     \
            const TYPE *restrict w, int r, ptrdiff_t cin, ptrdiff_t cout,        \
            TYPE *restrict u, ptrdiff_t u_plane, int reverse, ptrdiff_t c,       \
            const TYPE *f) {                                                     \
        const TYPE *restrict first = w + ((reverse ? r - 1 : 0) * cin + c) * cout; \
        const TYPE *restrict last = w + ((reverse ? 0 : r - 1) * cin + c) * cout; \
        TYPE *restrict u0 = u + c * cout, *restrict u1 = u0 + u_plane;           \
        TYPE *restrict u2 = u1 + u_plane, *restrict u3 = u2 + u_plane;           \
        TYPE *restrict u4 = u3 + u_plane, *restrict u5 = u4 + u_plane;           \
        TYPE *restrict u6 = u5 + u_plane, *restrict u7 = u6 + u_plane;           \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t o = 0; o < cout; ++o)                                     \
            u1[o] = u2[o] = u3[o] = u4[o] = u5[o] = u6[o] = 0;                   \
        for (int k = 0; k < r; ++k) {                                            \
            const TYPE *restrict src =                                           \
                w + ((reverse ? r - 1 - k : k) * cin + c) * cout;                \
            const TYPE two = (TYPE)(1 << k), half = (TYPE)1 / two;               \
            TYPE *restrict one_row = k % 2 ? u2 : u1;                            \
            TYPE *restrict two_row = k % 2 ? u4 : u3;                            \
            TYPE *restrict half_row = k % 2 ? u6 : u5;                           \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o) {                               \
                one_row[o] += src[o];                                            \
                two_row[o] += two * src[o];                                      \
                half_row[o] += half * src[o];                                    \
            }                                                                    \
        }                                                                        \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t o = 0; o < cout; ++o) {                                   \
            const TYPE e1 = u1[o], o1 = u2[o], e2 = u3[o], o2 = u4[o];           \
            const TYPE e3 = u5[o], o3 = u6[o];                                   \
            u0[o] = f[0] * first[o];                                             \
            u1[o] = f[1] * (e1 + o1);                                            \
            u2[o] = f[2] * (e1 - o1);                                            \
            u3[o] = f[3] * (e2 + o2);                                            \
            u4[o] = f[4] * (e2 - o2);                                            \
            u5[o] = f[5] * (e3 + o3);                                            \
            u6[o] = f[6] * (e3 - o3);                                            \
            u7[o] = last[o];                                                     \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* u = G g for input channels [c0, c1) and every output channel, times  \
     * scale[o] unless scale is NULL (a folded BatchNormalization's            \
     * multiplier); w is (r, cin, cout), u's 8 planes lie u_plane >= cin *     \
     * cout values apart.  With ``reverse`` the taps are taken last to first   \
     * (the input gradient's kernel).  The rows of the points p and -p share  \
     * the sums of even and odd powers of p (E +- O), gathered first in those  \
     * rows: one pass over each tap, half the multiplications of G g. */       \
    static inline void winograd1d_weights_##SUFFIX(                             \
            const TYPE *restrict w, int r, ptrdiff_t cin, ptrdiff_t cout,        \
            const TYPE *restrict scale, TYPE *restrict u, ptrdiff_t u_plane,     \
            int reverse, ptrdiff_t c0, ptrdiff_t c1) {                           \
        double g[8 * 7];                                                         \
        TYPE f[7];                                                               \
        winograd1d_g(r, g);                                                      \
        /* g[j * r] = 1 / f(p_j): the finite points' scales. */                 \
        for (int j = 0; j < 7; ++j)                                              \
            f[j] = (TYPE)g[j * r];                                               \
        for (ptrdiff_t c = c0; c < c1; ++c)                                      \
            winograd1d_weights_channel_##SUFFIX(w, r, cin, cout, u, u_plane,     \
                                                reverse, c, f);                  \
        /* The scale in a pass of its own: see winograd4_weights. */            \
        if (scale != NULL)                                                       \
            for (int xi = 0; xi < 8; ++xi)                                       \
                for (ptrdiff_t c = c0; c < c1; ++c) {                            \
                    TYPE *restrict row = u + xi * u_plane + c * cout;            \
                    for (ptrdiff_t o = 0; o < cout; ++o)                         \
                        row[o] *= scale[o];                                      \
                }                                                                \
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
