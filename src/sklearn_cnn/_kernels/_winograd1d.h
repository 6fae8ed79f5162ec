/* Winograd F(m, r) for series: the transforms of a 1-D, stride-1,
 * undilated convolution with a kernel of r taps, in tiles of m = n + 1 - r
 * outputs that each read n inputs, for n = 8 or 10 points.
 *
 * Toom-Cook (Lavin & Gray, 2016) on the points 0, +-p for the pairs p of
 * PAIRS (1, 2, 1/2 for 8 points; and 3/2 for 10) and infinity:
 *
 *     y = A^T [ (G g) * (B^T d) ]          (* elementwise, n values)
 *
 * in the order 0, p1, -p1, p2, -p2, ..., infinity.  A^T (m x n) holds the
 * powers p^i of the finite points and 1 at (m - 1, infinity); G (n x r)
 * holds p^k / f(p), f(p) being the product of p - q over the other finite
 * points q, and 1 at (infinity, r - 1).  With these, B^T follows from
 * R(y) = prod over the pairs of (y - p^2) and Q_p(y) = R(y) / (y - p^2):
 *
 *     (B^T d)[0]   = sum_k R_k d[2k]          (B^T d)[inf] = sum_k R_k d[2k+1]
 *     (B^T d)[+-p] = sum_k Q_p,k d[2k+2]  +-  p sum_k Q_p,k d[2k+1]
 *
 * (8 points: the rows -1 0 21/4 0 -21/4 0 1 0; 0 1 1 -17/4 -17/4 1 1 0;
 * ...).  Summed over input channels, the n products are n GEMMs (tiles x
 * in-channels) @ (in-channels x out-channels): n multiplications per m
 * outputs instead of m * r.  8 points: 2.25x fewer for r = 3 (F(6, 3)),
 * 2.5x for 4 and 5, 1.75x for 7; float32 errors about twice im2col's (on
 * random 128 -> 64-channel tiles against float64: mean 9e-7 of the outputs'
 * mean size, 4e-7 for im2col).  10 points (training only): 2.4x for r = 3,
 * 3x for 5 (F(6, 5)), errors about 4x the 8 points' (mean 3.3e-6).
 *
 * Layouts (channels innermost, as NHWC series are): weights (r, cin, cout);
 * transformed weights n planes of (cin, cout), u_plane values apart; the n
 * rows of a transformed input tile (cin values) or of a GEMM output tile
 * (cout values) lie ``stride`` values apart, in planes of all a chunk's
 * tiles.  Pointer arguments never overlap (see SKLEARN_CNN_IVDEP in
 * _winograd.h). */
#ifndef SKLEARN_CNN_WINOGRAD1D_H
#define SKLEARN_CNN_WINOGRAD1D_H

#include <stddef.h>

#include "_winograd.h"

#define SKLEARN_CNN_WINOGRAD1D_MAX_POINTS 10
#define SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS 4

/* The coefficients of one transform: n points, r taps. */
typedef struct {
    int n, pairs, r, m;
    double p[SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS];
    /* G, row-major (n x r); its first column holds 1 / f(p). */
    double g[SKLEARN_CNN_WINOGRAD1D_MAX_POINTS * SKLEARN_CNN_WINOGRAD1D_MAX_POINTS];
    double even[SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS + 1];   /* R, ascending powers */
    double q[SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS][SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS];
} Winograd1dPlan;

/* ascending coefficients of prod over roots y0 of (y - y0), into c. */
static inline void winograd1d_poly(const double *roots, int count, double *c) {
    c[0] = 1.;
    for (int i = 0; i < count; ++i) {
        c[i + 1] = c[i];
        for (int k = i; k > 0; --k)
            c[k] = c[k - 1] - roots[i] * c[k];
        c[0] = -roots[i] * c[0];
    }
}

/* The plan of F(n + 1 - r, r) on n = 8 or 10 points. */
static inline void winograd1d_plan(int n, int r, Winograd1dPlan *plan) {
    static const double pairs[SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS] = {1., 2., .5, 1.5};
    double point[SKLEARN_CNN_WINOGRAD1D_MAX_POINTS - 1];
    double squares[SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS];
    plan->n = n;
    plan->pairs = (n - 2) / 2;
    plan->r = r;
    plan->m = n + 1 - r;
    point[0] = 0.;
    for (int j = 0; j < plan->pairs; ++j) {
        plan->p[j] = pairs[j];
        squares[j] = pairs[j] * pairs[j];
        point[1 + 2 * j] = pairs[j];
        point[2 + 2 * j] = -pairs[j];
    }
    for (int j = 0; j < n - 1; ++j) {
        double f = 1., power = 1.;
        for (int l = 0; l < n - 1; ++l)
            if (l != j) f *= point[j] - point[l];
        for (int k = 0; k < r; ++k) {
            plan->g[j * r + k] = power / f;
            power *= point[j];
        }
    }
    for (int k = 0; k < r; ++k)
        plan->g[(n - 1) * r + k] = k == r - 1 ? 1. : 0.;
    winograd1d_poly(squares, plan->pairs, plan->even);
    for (int j = 0; j < plan->pairs; ++j) {
        double others[SKLEARN_CNN_WINOGRAD1D_MAX_PAIRS];
        int count = 0;
        for (int l = 0; l < plan->pairs; ++l)
            if (l != j) others[count++] = squares[l];
        winograd1d_poly(others, count, plan->q[j]);
    }
}

/* The input and output tiles' transforms for K pairs of points (see
 * winograd1d_input_tile and winograd1d_output_tile). */
#define SKLEARN_CNN_DEFINE_WINOGRAD1D_TILES(SUFFIX, TYPE, K)                     \
    SKLEARN_CNN_OUT_OF_LINE void winograd1d_input_tile##K##_##SUFFIX(           \
            const TYPE **d, ptrdiff_t cin, TYPE *restrict v, ptrdiff_t stride,   \
            const Winograd1dPlan *plan) {                                        \
        const TYPE *x[2 * K + 2];                                                \
        TYPE even[K + 1], q[K][K], p[K];                                         \
        for (int t = 0; t < 2 * K + 2; ++t)                                      \
            x[t] = d[t];                                                         \
        for (int k = 0; k <= K; ++k)                                             \
            even[k] = (TYPE)plan->even[k];                                       \
        for (int j = 0; j < K; ++j) {                                            \
            p[j] = (TYPE)plan->p[j];                                             \
            for (int k = 0; k < K; ++k)                                          \
                q[j][k] = (TYPE)plan->q[j][k];                                   \
        }                                                                        \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            TYPE zero = 0, infinity = 0;                                         \
            for (int k = 0; k <= K; ++k) {                                       \
                zero += even[k] * x[2 * k][c];                                   \
                infinity += even[k] * x[2 * k + 1][c];                           \
            }                                                                    \
            v[c] = zero;                                                         \
            v[(2 * K + 1) * stride + c] = infinity;                              \
            for (int j = 0; j < K; ++j) {                                        \
                TYPE a = 0, b = 0;                                               \
                for (int k = 0; k < K; ++k) {                                    \
                    a += q[j][k] * x[2 * k + 2][c];                              \
                    b += q[j][k] * x[2 * k + 1][c];                              \
                }                                                                \
                b *= p[j];                                                       \
                v[(1 + 2 * j) * stride + c] = a + b;                             \
                v[(2 + 2 * j) * stride + c] = a - b;                             \
            }                                                                    \
        }                                                                        \
    }                                                                            \
                                                                                 \
    SKLEARN_CNN_OUT_OF_LINE void winograd1d_output_tile##K##_##SUFFIX(          \
            const TYPE *restrict mm, ptrdiff_t stride, ptrdiff_t cout,           \
            const TYPE *restrict bias, TYPE **y, const Winograd1dPlan *plan) {   \
        const int m = plan->m;                                                   \
        const TYPE *restrict first = mm, *restrict last = mm + (2 * K + 1) * stride; \
        for (int i = 0; i < m; ++i) {                                            \
            TYPE *restrict out = y[i];                                           \
            TYPE power[K];                                                       \
            const TYPE sign = i % 2 ? -1 : 1;                                    \
            /* The points 0 and infinity reach the first and last outputs     \
             * only; the loops take no branch (as masked loads, gcc's         \
             * branches were slow). */                                          \
            const TYPE *restrict ends = i == 0 ? first : last;                   \
            for (int j = 0; j < K; ++j) {                                        \
                power[j] = 1;                                                    \
                for (int e = 0; e < i; ++e)                                      \
                    power[j] *= (TYPE)plan->p[j];                                \
            }                                                                    \
            if (i == 0 || i == m - 1) {                                          \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < cout; ++c) {                           \
                    TYPE total = bias[c] + ends[c];                              \
                    for (int j = 0; j < K; ++j)                                  \
                        total += power[j] * (mm[(1 + 2 * j) * stride + c]        \
                                             + sign * mm[(2 + 2 * j) * stride + c]); \
                    out[c] = total;                                              \
                }                                                                \
            } else {                                                             \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t c = 0; c < cout; ++c) {                           \
                    TYPE total = bias[c];                                        \
                    for (int j = 0; j < K; ++j)                                  \
                        total += power[j] * (mm[(1 + 2 * j) * stride + c]        \
                                             + sign * mm[(2 + 2 * j) * stride + c]); \
                    out[c] = total;                                              \
                }                                                                \
            }                                                                    \
        }                                                                        \
    }

#define SKLEARN_CNN_DEFINE_WINOGRAD1D(SUFFIX, TYPE)                              \
    /* winograd1d_weights for input channel c, unscaled: the rows of +-p are  \
     * first the sums of even and odd powers of p over the taps (E, O), then \
     * (E +- O) / f(+-p): one pass over each tap. */                            \
    SKLEARN_CNN_OUT_OF_LINE void winograd1d_weights_channel_##SUFFIX(           \
            const TYPE *restrict w, const Winograd1dPlan *plan, ptrdiff_t cin,   \
            ptrdiff_t cout, TYPE *restrict u, ptrdiff_t u_plane, ptrdiff_t c) {  \
        const int r = plan->r, n = plan->n;                                      \
        const TYPE *restrict first = w + c * cout;                               \
        const TYPE *restrict last = w + ((r - 1) * cin + c) * cout;              \
        TYPE *restrict u0 = u + c * cout;                                        \
        TYPE *restrict infinity = u0 + (n - 1) * u_plane;                        \
        for (int j = 0; j < plan->pairs; ++j) {                                  \
            TYPE *restrict even = u0 + (1 + 2 * j) * u_plane;                    \
            TYPE *restrict odd = u0 + (2 + 2 * j) * u_plane;                     \
            TYPE power = 1;                                                      \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o)                                 \
                even[o] = odd[o] = 0;                                            \
            for (int k = 0; k < r; ++k) {                                        \
                const TYPE *restrict src = w + (k * cin + c) * cout;             \
                TYPE *restrict row = k % 2 ? odd : even;                         \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t o = 0; o < cout; ++o)                             \
                    row[o] += power * src[o];                                    \
                power *= (TYPE)plan->p[j];                                       \
            }                                                                    \
            {                                                                    \
                const TYPE plus = (TYPE)plan->g[(1 + 2 * j) * r];                \
                const TYPE minus = (TYPE)plan->g[(2 + 2 * j) * r];               \
                SKLEARN_CNN_IVDEP                                                \
                for (ptrdiff_t o = 0; o < cout; ++o) {                           \
                    const TYPE e = even[o], d = odd[o];                          \
                    even[o] = plus * (e + d);                                    \
                    odd[o] = minus * (e - d);                                    \
                }                                                                \
            }                                                                    \
        }                                                                        \
        {                                                                        \
            const TYPE zero = (TYPE)plan->g[0];                                  \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o) {                               \
                u0[o] = zero * first[o];                                         \
                infinity[o] = last[o];                                           \
            }                                                                    \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* u = G g for input channels [c0, c1) and every output channel, times  \
     * scale[o] unless scale is NULL (a folded BatchNormalization's            \
     * multiplier); w is (r, cin, cout), u's n planes lie u_plane >= cin *     \
     * cout values apart. */                                                    \
    SKLEARN_CNN_OUT_OF_LINE void winograd1d_weights_##SUFFIX(                   \
            const TYPE *restrict w, const Winograd1dPlan *plan, ptrdiff_t cin,   \
            ptrdiff_t cout, const TYPE *restrict scale, TYPE *restrict u,        \
            ptrdiff_t u_plane, ptrdiff_t c0, ptrdiff_t c1) {                     \
        for (ptrdiff_t c = c0; c < c1; ++c)                                      \
            winograd1d_weights_channel_##SUFFIX(w, plan, cin, cout, u, u_plane,  \
                                                c);                              \
        if (scale != NULL)                                                       \
            winograd_scale_planes_##SUFFIX(u, plan->n, u_plane, c0, c1, cout,    \
                                           scale);                               \
    }                                                                            \
                                                                                 \
    /* Tap k of dw = G^T du for every channel pair: du's n planes (cin, cout) \
     * lie u_plane values apart, dw is (r, cin, cout). */                       \
    SKLEARN_CNN_OUT_OF_LINE void winograd1d_weight_grad_##SUFFIX(               \
            const TYPE *restrict du, const Winograd1dPlan *plan, ptrdiff_t cin,  \
            ptrdiff_t cout, ptrdiff_t u_plane, TYPE *restrict dw, int k) {       \
        const ptrdiff_t plane = cin * cout;                                      \
        TYPE *restrict dst = dw + k * plane;                                     \
        for (ptrdiff_t e = 0; e < plane; ++e)                                    \
            dst[e] = 0;                                                          \
        for (int xi = 0; xi < plan->n; ++xi) {                                   \
            const TYPE coefficient = (TYPE)plan->g[xi * plan->r + k];            \
            const TYPE *restrict src = du + xi * u_plane;                        \
            for (ptrdiff_t e = 0; e < plane; ++e)                                \
                dst[e] += coefficient * src[e];                                  \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* v[xi * stride + c] = (B^T d)[xi] for the n input rows d[0..n-1] of cin  \
     * values (pointers to a row of zeros where the tile leaves the series),  \
     * in one pass over the channels: the pairs' count is a constant of each  \
     * instance (3 for 8 points, 4 for 10), so that gcc unrolls the sums and  \
     * vectorises over the channels. */                                         \
    static inline void winograd1d_input_tile_##SUFFIX(                          \
            const TYPE **d, ptrdiff_t cin, TYPE *restrict v, ptrdiff_t stride,   \
            const Winograd1dPlan *plan) {                                        \
        if (plan->pairs == 3)                                                    \
            winograd1d_input_tile3_##SUFFIX(d, cin, v, stride, plan);            \
        else                                                                     \
            winograd1d_input_tile4_##SUFFIX(d, cin, v, stride, plan);            \
    }                                                                            \
                                                                                 \
    /* y[i] = bias + (A^T mm)[i] for the m rows y[0..m-1] of cout values, from \
     * the n rows of a GEMM output tile, mm[xi * stride + c]: one pass per    \
     * output row (the pairs' count is a constant of each instance, as        \
     * above); the bias is a row of cout values (zeros for none). */            \
    static inline void winograd1d_output_tile_##SUFFIX(                         \
            const TYPE *restrict mm, ptrdiff_t stride, ptrdiff_t cout,           \
            const TYPE *restrict bias, TYPE **y, const Winograd1dPlan *plan) {   \
        if (plan->pairs == 3)                                                    \
            winograd1d_output_tile3_##SUFFIX(mm, stride, cout, bias, y, plan);   \
        else                                                                     \
            winograd1d_output_tile4_##SUFFIX(mm, stride, cout, bias, y, plan);   \
    }                                                                            \
                                                                                 \
    /* dm = A dy: the gradient's way back through the output transform, from  \
     * the m rows dy[0..m-1] of cout values into the n rows                   \
     * dm[xi * stride + c]. */                                                  \
    SKLEARN_CNN_OUT_OF_LINE void winograd1d_grad_output_tile_##SUFFIX(          \
            const TYPE **dy, ptrdiff_t cout, TYPE *restrict dm, ptrdiff_t stride, \
            const Winograd1dPlan *plan) {                                        \
        const int m = plan->m, n = plan->n;                                      \
        {                                                                        \
            const TYPE *restrict first = dy[0], *restrict last = dy[m - 1];      \
            TYPE *restrict infinity = dm + (n - 1) * stride;                     \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t c = 0; c < cout; ++c) {                               \
                dm[c] = first[c];                                                \
                infinity[c] = last[c];                                           \
            }                                                                    \
        }                                                                        \
        for (int j = 0; j < plan->pairs; ++j) {                                  \
            TYPE *restrict plus = dm + (1 + 2 * j) * stride;                     \
            TYPE *restrict minus = dm + (2 + 2 * j) * stride;                    \
            TYPE power = 1;                                                      \
            for (int i = 0; i < m; ++i) {                                        \
                const TYPE *restrict row = dy[i];                                \
                const TYPE signed_power = i % 2 ? -power : power;                \
                if (i == 0) {                                                    \
                    SKLEARN_CNN_IVDEP                                            \
                    for (ptrdiff_t c = 0; c < cout; ++c)                         \
                        plus[c] = minus[c] = row[c];                             \
                } else {                                                         \
                    SKLEARN_CNN_IVDEP                                            \
                    for (ptrdiff_t c = 0; c < cout; ++c) {                       \
                        plus[c] += power * row[c];                               \
                        minus[c] += signed_power * row[c];                       \
                    }                                                            \
                }                                                                \
                power *= (TYPE)plan->p[j];                                       \
            }                                                                    \
        }                                                                        \
    }

SKLEARN_CNN_DEFINE_WINOGRAD1D_TILES(float, float, 3)
SKLEARN_CNN_DEFINE_WINOGRAD1D_TILES(float, float, 4)
SKLEARN_CNN_DEFINE_WINOGRAD1D_TILES(double, double, 3)
SKLEARN_CNN_DEFINE_WINOGRAD1D_TILES(double, double, 4)
SKLEARN_CNN_DEFINE_WINOGRAD1D(float, float)
SKLEARN_CNN_DEFINE_WINOGRAD1D(double, double)

#endif
