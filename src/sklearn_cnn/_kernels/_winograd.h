/* Winograd F(2x2, 3x3): the transforms of a 3x3, stride-1 convolution.
 *
 * A 2x2 block of outputs of a 3x3 convolution (correlation, as CNNs compute
 * it) reads a 4x4 tile d of the input.  Lavin & Gray (2016) write it as
 *
 *     Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, 4x4)
 *
 * with  B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *       G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *       A^T = [1 1 1 0; 0 1 -1 -1].
 * Summed over input channels, the 16 elementwise products become 16 GEMMs
 * (tiles x in-channels) @ (in-channels x out-channels): 16 multiplications
 * per 2x2 outputs instead of 36, 2.25x fewer FLOPs.  The transforms are only
 * additions and halvings, done here with channels innermost (NHWC), where
 * gcc vectorises them without -march flags.
 *
 * Layouts: weights (3, 3, cin, cout); transformed weights 16 planes of
 * (cin, cout), u_plane values apart; a transformed input tile (16, cin); a
 * GEMM output tile (16, cout).  The pointer arguments never overlap: every
 * output position of a tile gets its own row (positions outside the map point to distinct spare rows).
 *
 * The rows of one tile are cin (cout) values apart, which gcc cannot prove
 * to be at least a vector wide: without `GCC ivdep` it leaves these loops
 * scalar ("versioning for alias required"); clang has its own form. */
#ifndef SKLEARN_CNN_WINOGRAD_H
#define SKLEARN_CNN_WINOGRAD_H

#include <stddef.h>

#if defined(__clang__)
#define SKLEARN_CNN_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define SKLEARN_CNN_IVDEP _Pragma("GCC ivdep")
#else
#define SKLEARN_CNN_IVDEP
#endif

/* The transforms (here, in _winograd4.h and _winograd1d.h) are called once
 * per tile, or per channel of the weights, each a loop over channels: kept
 * out of line, so that the kernels that call them from several places hold
 * one copy each (per type and build).  Inlined everywhere, they took the
 * wheel past its 1 MB (1,057 KB; 976 KB out of line, at the same speed). */
#if defined(__GNUC__)
#define SKLEARN_CNN_OUT_OF_LINE static __attribute__((noinline))
#else
#define SKLEARN_CNN_OUT_OF_LINE static
#endif

/* F(4x4)'s float64 weight transforms (and their gradients' way back), which
 * run once per layer and step over cin * cout values, not per tile, and only
 * where a model trains in float64: compiled for size by gcc, 0.5 KB instead
 * of 7 KB each (per build), which keeps the wheel under 1 MB.  (For float32,
 * 64 -> 64 channels took 199 us instead of 41.5 for size: not there.) */
#if defined(__GNUC__) && !defined(__clang__)
#define SKLEARN_CNN_WEIGHT_TRANSFORM_double static __attribute__((noinline, optimize("Os")))
#else
#define SKLEARN_CNN_WEIGHT_TRANSFORM_double SKLEARN_CNN_OUT_OF_LINE
#endif
#define SKLEARN_CNN_WEIGHT_TRANSFORM_float SKLEARN_CNN_OUT_OF_LINE

/* A loop body written once for any channel count and compiled into each
 * function that calls it, some with the count as a constant (_winograd4.h's
 * tile transforms, _batchnorm_blocks.h's block loops). */
#if defined(__GNUC__)
#define SKLEARN_CNN_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define SKLEARN_CNN_ALWAYS_INLINE static inline
#endif

/* The float tile transforms of prediction, F(2x2), 16 channels per
 * instruction, for channel counts that are multiples of 16 on CPUs with
 * AVX-512 (in the AVX2 build only; winograd_wide_float says when).  The
 * same additions in the same order as winograd_input_tile_float and
 * winograd_output_tile_float (which call these), lane by lane: the same
 * bits.  With 16 or 32 channels a tile's loop runs once or twice, and
 * 8-wide the transforms and their pointers took about half of a 16 ->
 * 16-channel layer's time (one 28x28 image, in C: 19.9 of 35-40 us; 12-14
 * us 16-wide). */
#if defined(__AVX2__) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#include "_cpu_features.h"

#define SKLEARN_CNN_AVX512 static __attribute__((target("avx512f"), noinline))

/* Whether the wide transforms may run (tests and benchmarks switch them
 * off to compare): -1 until the CPU was asked. */
static int sklearn_cnn_winograd_wide = -1;

static inline int winograd_wide_float(ptrdiff_t channels) {
    if (sklearn_cnn_winograd_wide < 0)
        sklearn_cnn_winograd_wide = sklearn_cnn_cpu_has_avx512f();
    return sklearn_cnn_winograd_wide && channels % 16 == 0;
}

/* Whether the fused chunks (_winograd4.h) may run: only where asked (mode
 * 2), i.e. where OpenBLAS multiplies with its AVX-512 kernels, whose bits
 * they give (its Haswell kernels sum in another order). */
static int sklearn_cnn_winograd_fused = 0;
/* Likewise for the forward products of _products.h and _implicit.h (mode 2
 * only). */
static int sklearn_cnn_own_products = 0;

/* mode 0: 8 wide; 1: 16 wide where the CPU can; 2: also the fused chunks
 * and our own forward products; 3: the fused chunks but OpenBLAS's products
 * (for tests and benchmarks). */
static inline int winograd_set_wide(int mode) {
    /* -1 (not asked yet) means on wherever the CPU can */
    int previous = sklearn_cnn_winograd_wide != 0;
    sklearn_cnn_winograd_wide = mode != 0 && sklearn_cnn_cpu_has_avx512f();
    sklearn_cnn_winograd_fused = mode >= 2;
    sklearn_cnn_own_products = mode == 2;
    return previous && sklearn_cnn_cpu_has_avx512f();
}

SKLEARN_CNN_AVX512 void winograd_input_tile_wide_float(
        const float *const *d, ptrdiff_t cin, float *restrict v) {
    for (ptrdiff_t c = 0; c < cin; c += 16) {
        __m512 r[16], t[16];
        for (int k = 0; k < 16; ++k)
            r[k] = _mm512_loadu_ps(d[k] + c);
        for (int j = 0; j < 4; ++j) {  /* rows: t = B^T d, column j */
            t[j] = _mm512_sub_ps(r[j], r[8 + j]);
            t[4 + j] = _mm512_add_ps(r[4 + j], r[8 + j]);
            t[8 + j] = _mm512_sub_ps(r[8 + j], r[4 + j]);
            t[12 + j] = _mm512_sub_ps(r[4 + j], r[12 + j]);
        }
        for (int i = 0; i < 4; ++i) {  /* columns: v = t B, row i */
            const __m512 *row = t + 4 * i;
            _mm512_storeu_ps(v + (4 * i) * cin + c, _mm512_sub_ps(row[0], row[2]));
            _mm512_storeu_ps(v + (4 * i + 1) * cin + c, _mm512_add_ps(row[1], row[2]));
            _mm512_storeu_ps(v + (4 * i + 2) * cin + c, _mm512_sub_ps(row[2], row[1]));
            _mm512_storeu_ps(v + (4 * i + 3) * cin + c, _mm512_sub_ps(row[1], row[3]));
        }
    }
}

SKLEARN_CNN_AVX512 void winograd_output_tile_wide_float(
        const float *restrict m, ptrdiff_t cout, float *restrict y00,
        float *restrict y01, float *restrict y10, float *restrict y11) {
    for (ptrdiff_t o = 0; o < cout; o += 16) {
        __m512 s0[4], s1[4];
        for (int j = 0; j < 4; ++j) {
            __m512 m0 = _mm512_loadu_ps(m + j * cout + o);
            __m512 m1 = _mm512_loadu_ps(m + (4 + j) * cout + o);
            __m512 m2 = _mm512_loadu_ps(m + (8 + j) * cout + o);
            __m512 m3 = _mm512_loadu_ps(m + (12 + j) * cout + o);
            s0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        _mm512_storeu_ps(y00 + o, _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]));
        _mm512_storeu_ps(y01 + o, _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]));
        _mm512_storeu_ps(y10 + o, _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]));
        _mm512_storeu_ps(y11 + o, _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]));
    }
}

/* The float transforms below hand channel counts that are multiples of 16
 * to these. */
#define SKLEARN_CNN_WIDE_INPUT_TILE_float(d, cin, v)                             \
    if (winograd_wide_float(cin)) {                                              \
        winograd_input_tile_wide_float(d, cin, v);                               \
        return;                                                                  \
    }
#define SKLEARN_CNN_WIDE_OUTPUT_TILE_float(m, cout, y00, y01, y10, y11)          \
    if (winograd_wide_float(cout)) {                                             \
        winograd_output_tile_wide_float(m, cout, y00, y01, y10, y11);            \
        return;                                                                  \
    }
#else
/* The baseline build: never wide. */
static inline int winograd_set_wide(int mode) { (void)mode; return 0; }
#define SKLEARN_CNN_WIDE_INPUT_TILE_float(d, cin, v)
#define SKLEARN_CNN_WIDE_OUTPUT_TILE_float(m, cout, y00, y01, y10, y11)
#endif
#define SKLEARN_CNN_WIDE_INPUT_TILE_double(d, cin, v)
#define SKLEARN_CNN_WIDE_OUTPUT_TILE_double(m, cout, y00, y01, y10, y11)

#define SKLEARN_CNN_DEFINE_WINOGRAD(SUFFIX, TYPE)                                \
    /* Planes [0, planes) of transformed weights u, rows of input channels    \
     * [c0, c1), times scale[o]: a folded BatchNormalization's multiplier,     \
     * applied after the transform, by every transform here, in _winograd4.h  \
     * and in _winograd1d.h.  Inside a transform's loop, a ``scale == NULL ?  \
     * 1 : scale[o]`` became masked loads from NULL, which AMD CPUs serve      \
     * through slow assists (F(4x4)'s 64 -> 64 channels: 58 us without a      \
     * scale, 16 with one); same bits either way, x * s being s * x. */       \
    static inline void winograd_scale_planes_##SUFFIX(                          \
            TYPE *restrict u, int planes, ptrdiff_t u_plane, ptrdiff_t c0,       \
            ptrdiff_t c1, ptrdiff_t cout, const TYPE *restrict scale) {          \
        for (int k = 0; k < planes; ++k)                                         \
            for (ptrdiff_t c = c0; c < c1; ++c) {                                \
                TYPE *restrict row = u + k * u_plane + c * cout;                 \
                for (ptrdiff_t o = 0; o < cout; ++o)                             \
                    row[o] *= scale[o];                                          \
            }                                                                    \
    }                                                                            \
                                                                                 \
    /* u = G g G^T for every (in, out) channel pair, times scale[o] unless   \
     * scale is NULL (a folded BatchNormalization's multiplier).  u's 16       \
     * planes lie u_plane >= cin * cout values apart: see winograd_plane. */   \
    SKLEARN_CNN_OUT_OF_LINE void winograd_weights_##SUFFIX(                     \
            const TYPE *restrict w, ptrdiff_t cin, ptrdiff_t cout,               \
            const TYPE *restrict scale, TYPE *restrict u, ptrdiff_t u_plane) {   \
        const ptrdiff_t plane = cin * cout;                                      \
        const TYPE half = (TYPE)0.5;                                             \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            const TYPE *g = w + c * cout;                                        \
            TYPE *dst = u + c * cout;                                            \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o) {                               \
                TYPE t[4][3];                                                    \
                for (int j = 0; j < 3; ++j) {                                    \
                    TYPE g0 = g[j * plane + o];                                  \
                    TYPE g1 = g[(3 + j) * plane + o];                            \
                    TYPE g2 = g[(6 + j) * plane + o];                            \
                    t[0][j] = g0;                                                \
                    t[1][j] = (g0 + g1 + g2) * half;                             \
                    t[2][j] = (g0 - g1 + g2) * half;                             \
                    t[3][j] = g2;                                                \
                }                                                                \
                for (int i = 0; i < 4; ++i) {                                    \
                    dst[(4 * i) * u_plane + o] = t[i][0];                        \
                    dst[(4 * i + 1) * u_plane + o] =                             \
                        (t[i][0] + t[i][1] + t[i][2]) * half;                    \
                    dst[(4 * i + 2) * u_plane + o] =                             \
                        (t[i][0] - t[i][1] + t[i][2]) * half;                    \
                    dst[(4 * i + 3) * u_plane + o] = t[i][2];                    \
                }                                                                \
            }                                                                    \
        }                                                                        \
        if (scale != NULL)                                                       \
            winograd_scale_planes_##SUFFIX(u, 16, u_plane, 0, cin, cout, scale); \
    }                                                                            \
                                                                                 \
    /* v = B^T d B; d[4 * i + j] holds the cin channels of tile position         \
     * (i, j), or zeros where the position is padding.  The 16 rows are read    \
     * through restrict locals: through d[k] itself gcc does not vectorise. */  \
    SKLEARN_CNN_OUT_OF_LINE void winograd_input_tile_##SUFFIX(                  \
            const TYPE *const *d, ptrdiff_t cin, TYPE *restrict v) {             \
        SKLEARN_CNN_WIDE_INPUT_TILE_##SUFFIX(d, cin, v)                          \
        const TYPE *restrict d00 = d[0], *restrict d01 = d[1];                   \
        const TYPE *restrict d02 = d[2], *restrict d03 = d[3];                   \
        const TYPE *restrict d10 = d[4], *restrict d11 = d[5];                   \
        const TYPE *restrict d12 = d[6], *restrict d13 = d[7];                   \
        const TYPE *restrict d20 = d[8], *restrict d21 = d[9];                   \
        const TYPE *restrict d22 = d[10], *restrict d23 = d[11];                 \
        const TYPE *restrict d30 = d[12], *restrict d31 = d[13];                 \
        const TYPE *restrict d32 = d[14], *restrict d33 = d[15];                 \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            /* Rows: t = B^T d, column by column. */                             \
            TYPE t00 = d00[c] - d20[c], t01 = d01[c] - d21[c];                   \
            TYPE t02 = d02[c] - d22[c], t03 = d03[c] - d23[c];                   \
            TYPE t10 = d10[c] + d20[c], t11 = d11[c] + d21[c];                   \
            TYPE t12 = d12[c] + d22[c], t13 = d13[c] + d23[c];                   \
            TYPE t20 = d20[c] - d10[c], t21 = d21[c] - d11[c];                   \
            TYPE t22 = d22[c] - d12[c], t23 = d23[c] - d13[c];                   \
            TYPE t30 = d10[c] - d30[c], t31 = d11[c] - d31[c];                   \
            TYPE t32 = d12[c] - d32[c], t33 = d13[c] - d33[c];                   \
            /* Columns: v = t B. */                                              \
            v[0 * cin + c] = t00 - t02; v[cin + c] = t01 + t02;          \
            v[2 * cin + c] = t02 - t01; v[3 * cin + c] = t01 - t03;                                \
            v[4 * cin + c] = t10 - t12; v[5 * cin + c] = t11 + t12;                                \
            v[6 * cin + c] = t12 - t11; v[7 * cin + c] = t11 - t13;                                \
            v[8 * cin + c] = t20 - t22; v[9 * cin + c] = t21 + t22;                                \
            v[10 * cin + c] = t22 - t21; v[11 * cin + c] = t21 - t23;                              \
            v[12 * cin + c] = t30 - t32; v[13 * cin + c] = t31 + t32;                              \
            v[14 * cin + c] = t32 - t31; v[15 * cin + c] = t31 - t33;                              \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* The 2x2 outputs A^T m A of one tile: y00, y01 (first row), y10, y11. */   \
    SKLEARN_CNN_OUT_OF_LINE void winograd_output_tile_##SUFFIX(                 \
            const TYPE *restrict m, ptrdiff_t cout, TYPE *restrict y00,          \
            TYPE *restrict y01, TYPE *restrict y10, TYPE *restrict y11) {        \
        SKLEARN_CNN_WIDE_OUTPUT_TILE_##SUFFIX(m, cout, y00, y01, y10, y11)       \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t o = 0; o < cout; ++o) {                                   \
            TYPE s[2][4];                                                        \
            for (int j = 0; j < 4; ++j) {                                        \
                TYPE m0 = m[j * cout + o], m1 = m[(4 + j) * cout + o];           \
                TYPE m2 = m[(8 + j) * cout + o], m3 = m[(12 + j) * cout + o];    \
                s[0][j] = m0 + m1 + m2;                                          \
                s[1][j] = m1 - m2 - m3;                                          \
            }                                                                    \
            y00[o] = s[0][0] + s[0][1] + s[0][2];                                \
            y01[o] = s[0][1] - s[0][2] - s[0][3];                                \
            y10[o] = s[1][0] + s[1][1] + s[1][2];                                \
            y11[o] = s[1][1] - s[1][2] - s[1][3];                                \
        }                                                                        \
    }

/* The weight gradient, by the same transforms (Y = A^T (U * V) A):
 *     dL/dU = V * (A dY A^T)  summed over tiles (16 GEMMs),
 *     dL/dg = G^T (dL/dU) G. */
#define SKLEARN_CNN_DEFINE_WINOGRAD_GRAD(SUFFIX, TYPE)                           \
    /* dm = A dy A^T: the 4x4 image of a tile's 2x2 output gradient; dy00,    \
     * dy01 (first row), dy10, dy11 point to zeros outside the map. */          \
    SKLEARN_CNN_OUT_OF_LINE void winograd_grad_output_tile_##SUFFIX(            \
            const TYPE *restrict dy00, const TYPE *restrict dy01,                \
            const TYPE *restrict dy10, const TYPE *restrict dy11,                \
            ptrdiff_t cout, TYPE *restrict dm) {                                 \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t o = 0; o < cout; ++o) {                                   \
            TYPE a = dy00[o], b = dy01[o], c = dy10[o], d = dy11[o];             \
            /* Rows of A dy (4 x 2): (a, b), (a + c, b + d), (a - c, b - d),     \
             * (-c, -d); each row (p, q) becomes (p, p + q, p - q, -q). */       \
            TYPE p1 = a + c, q1 = b + d, p2 = a - c, q2 = b - d;                 \
            dm[o] = a;                                                           \
            dm[cout + o] = a + b;                                                \
            dm[2 * cout + o] = a - b;                                            \
            dm[3 * cout + o] = -b;                                               \
            dm[4 * cout + o] = p1;                                               \
            dm[5 * cout + o] = p1 + q1;                                          \
            dm[6 * cout + o] = p1 - q1;                                          \
            dm[7 * cout + o] = -q1;                                              \
            dm[8 * cout + o] = p2;                                               \
            dm[9 * cout + o] = p2 + q2;                                          \
            dm[10 * cout + o] = p2 - q2;                                         \
            dm[11 * cout + o] = -q2;                                             \
            dm[12 * cout + o] = -c;                                              \
            dm[13 * cout + o] = -c - d;                                          \
            dm[14 * cout + o] = d - c;                                           \
            dm[15 * cout + o] = d;                                               \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* dw = G^T du G for every channel pair: du's 16 planes (cin, cout) lie    \
     * u_plane values apart, dw is (3, 3, cin, cout). */                        \
    SKLEARN_CNN_OUT_OF_LINE void winograd_weight_grad_##SUFFIX(                 \
            const TYPE *restrict du, ptrdiff_t cin, ptrdiff_t cout,              \
            ptrdiff_t u_plane, TYPE *restrict dw) {                              \
        const ptrdiff_t plane = cin * cout;                                      \
        const TYPE half = (TYPE)0.5;                                             \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            const TYPE *src = du + c * cout;                                     \
            TYPE *dst = dw + c * cout;                                           \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o) {                               \
                TYPE s[3][4];                                                    \
                /* Rows: s = G^T du (3 x 4), G^T = [1 1/2 1/2 0;                \
                 * 0 1/2 -1/2 0; 0 1/2 1/2 1]. */                                \
                for (int j = 0; j < 4; ++j) {                                    \
                    TYPE u0 = src[j * u_plane + o];                              \
                    TYPE u1 = src[(4 + j) * u_plane + o];                        \
                    TYPE u2 = src[(8 + j) * u_plane + o];                        \
                    TYPE u3 = src[(12 + j) * u_plane + o];                       \
                    s[0][j] = u0 + (u1 + u2) * half;                             \
                    s[1][j] = (u1 - u2) * half;                                  \
                    s[2][j] = (u1 + u2) * half + u3;                             \
                }                                                                \
                /* Columns: dw = s G (3 x 3). */                                 \
                for (int i = 0; i < 3; ++i) {                                    \
                    dst[(3 * i) * plane + o] =                                   \
                        s[i][0] + (s[i][1] + s[i][2]) * half;                    \
                    dst[(3 * i + 1) * plane + o] = (s[i][1] - s[i][2]) * half;   \
                    dst[(3 * i + 2) * plane + o] =                               \
                        (s[i][1] + s[i][2]) * half + s[i][3];                    \
                }                                                                \
            }                                                                    \
        }                                                                        \
    }

SKLEARN_CNN_DEFINE_WINOGRAD(float, float)
SKLEARN_CNN_DEFINE_WINOGRAD(double, double)
SKLEARN_CNN_DEFINE_WINOGRAD_GRAD(float, float)
SKLEARN_CNN_DEFINE_WINOGRAD_GRAD(double, double)

#endif
