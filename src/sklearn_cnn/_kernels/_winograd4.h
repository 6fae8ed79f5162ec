/* Winograd F(4x4, 3x3): the transforms of a 3x3, stride-1 convolution in
 * tiles of 4x4 outputs, each reading a 6x6 tile of the input.  Same
 * formula as F(2x2, 3x3) in _winograd.h, Y = A^T [(G g G^T) * (B^T d B)] A,
 * with Lavin & Gray's (2016) matrices for the points 0, 1, -1, 2, -2, inf:
 *
 *   B^T = [4  0 -5  0 1 0;   G = [ 1/4     0    0  ;   A^T = [1 1  1 1  1 0;
 *          0 -4 -4  1 1 0;        -1/6  -1/6  -1/6 ;          0 1 -1 2 -2 0;
 *          0  4 -4 -1 1 0;        -1/6   1/6  -1/6 ;          0 1  1 4  4 0;
 *          0 -2 -1  2 1 0;         1/24  1/12  1/6 ;          0 1 -1 8 -8 1]
 *          0  2 -1 -2 1 0;         1/24 -1/12  1/6 ;
 *          0  4  0 -5 0 1]         0     0     1   ]
 *
 * 36 multiplications per 16 outputs instead of 144 (4x fewer; F(2x2, 3x3):
 * 2.25x), and the transformed tiles, which the GEMMs read and write, hold
 * 2.25 values per output instead of 4.  The price is precision: float32
 * outputs carry errors about 10x F(2x2)'s (still ~1e-6 of their size on
 * average), which is why only training uses it (layers/_conv.py).
 *
 * Each 2-D transform is two passes of a 1-D one (rows, then columns)
 * through a small scratch tile `tmp` that stays in L1; every pass reads and
 * writes at most six rows of channels through restrict pointers, so gcc
 * vectorises it (see SKLEARN_CNN_IVDEP in _winograd.h). */
#ifndef SKLEARN_CNN_WINOGRAD4_H
#define SKLEARN_CNN_WINOGRAD4_H

#include <stddef.h>

#include "_winograd.h"

#define SKLEARN_CNN_DEFINE_WINOGRAD4(SUFFIX, TYPE)                               \
    /* out[k * stride + c] = (B^T x)[k] for the six rows x0..x5 of n values. */ \
    static inline void winograd4_bt_##SUFFIX(                                    \
            const TYPE *restrict x0, const TYPE *restrict x1,                    \
            const TYPE *restrict x2, const TYPE *restrict x3,                    \
            const TYPE *restrict x4, const TYPE *restrict x5,                    \
            TYPE *restrict out, ptrdiff_t stride, ptrdiff_t n) {                 \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t c = 0; c < n; ++c) {                                      \
            TYPE a = x4[c] - 4 * x2[c], b = x3[c] - 4 * x1[c];                   \
            TYPE p = x4[c] - x2[c], q = 2 * (x3[c] - x1[c]);                     \
            out[c] = 4 * x0[c] - 5 * x2[c] + x4[c];                              \
            out[stride + c] = a + b;                                             \
            out[2 * stride + c] = a - b;                                         \
            out[3 * stride + c] = p + q;                                         \
            out[4 * stride + c] = p - q;                                         \
            out[5 * stride + c] = 4 * x1[c] - 5 * x3[c] + x5[c];                 \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* (A^T x)[k] for the six rows x0..x5 into the four rows y0..y3. */         \
    static inline void winograd4_at_##SUFFIX(                                    \
            const TYPE *restrict x0, const TYPE *restrict x1,                    \
            const TYPE *restrict x2, const TYPE *restrict x3,                    \
            const TYPE *restrict x4, const TYPE *restrict x5,                    \
            TYPE *restrict y0, TYPE *restrict y1, TYPE *restrict y2,             \
            TYPE *restrict y3, ptrdiff_t n) {                                    \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t c = 0; c < n; ++c) {                                      \
            TYPE a = x1[c] + x2[c], b = x1[c] - x2[c];                           \
            TYPE p = x3[c] + x4[c], q = x3[c] - x4[c];                           \
            y0[c] = x0[c] + a + p;                                               \
            y1[c] = b + 2 * q;                                                   \
            y2[c] = a + 4 * p;                                                   \
            y3[c] = b + 8 * q + x5[c];                                           \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* out[i * stride + c] = (A y)[i] for the four rows y0..y3 (A = (A^T)^T):  \
     * the gradient's way back through A^T. */                                  \
    static inline void winograd4_a_##SUFFIX(                                     \
            const TYPE *restrict y0, const TYPE *restrict y1,                    \
            const TYPE *restrict y2, const TYPE *restrict y3,                    \
            TYPE *restrict out, ptrdiff_t stride, ptrdiff_t n) {                 \
        SKLEARN_CNN_IVDEP                                                        \
        for (ptrdiff_t c = 0; c < n; ++c) {                                      \
            TYPE e = y0[c] + y2[c], f = y1[c] + y3[c];                           \
            TYPE g = y0[c] + 4 * y2[c], h = 2 * y1[c] + 8 * y3[c];               \
            out[c] = y0[c];                                                      \
            out[stride + c] = e + f;                                             \
            out[2 * stride + c] = e - f;                                         \
            out[3 * stride + c] = g + h;                                         \
            out[4 * stride + c] = g - h;                                         \
            out[5 * stride + c] = y3[c];                                         \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* v = B^T d B: d[6 * i + j] holds the cin channels of tile position       \
     * (i, j), or zeros; v is (36, cin); tmp (36, cin) scratch. */              \
    SKLEARN_CNN_ALWAYS_INLINE void input_tile_body_##SUFFIX(                     \
            const TYPE *const *d, ptrdiff_t cin, TYPE *restrict v,               \
            TYPE *restrict tmp) {                                                \
        /* Rows: tmp[6 i + l] = (d[i] B)[l]. */                                  \
        for (int i = 0; i < 6; ++i)                                              \
            winograd4_bt_##SUFFIX(d[6 * i], d[6 * i + 1], d[6 * i + 2],          \
                                  d[6 * i + 3], d[6 * i + 4], d[6 * i + 5],      \
                                  tmp + 6 * i * cin, cin, cin);                  \
        /* Columns: v[6 k + l] = (B^T tmp[., l])[k]. */                          \
        for (int l = 0; l < 6; ++l) {                                            \
            const TYPE *t = tmp + l * cin;                                       \
            winograd4_bt_##SUFFIX(t, t + 6 * cin, t + 12 * cin, t + 18 * cin,    \
                                  t + 24 * cin, t + 30 * cin, v + l * cin,       \
                                  6 * cin, cin);                                 \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* The 4x4 outputs A^T m A of one tile, m (36, cout), into the rows        \
     * y[4 * i + j]; tmp (24, cout) scratch. */                                 \
    SKLEARN_CNN_ALWAYS_INLINE void output_tile_body_##SUFFIX(                    \
            const TYPE *restrict m, ptrdiff_t cout, TYPE *const *y,              \
            TYPE *restrict tmp) {                                                \
        /* Columns: tmp[6 k + l] = (A^T m[., l])[k]. */                          \
        for (int l = 0; l < 6; ++l) {                                            \
            const TYPE *col = m + l * cout;                                      \
            winograd4_at_##SUFFIX(col, col + 6 * cout, col + 12 * cout,          \
                                  col + 18 * cout, col + 24 * cout,              \
                                  col + 30 * cout, tmp + l * cout,               \
                                  tmp + (6 + l) * cout, tmp + (12 + l) * cout,   \
                                  tmp + (18 + l) * cout, cout);                  \
        }                                                                        \
        /* Rows: y[4 k + j] = (tmp[k] A)[j]. */                                  \
        for (int k = 0; k < 4; ++k) {                                            \
            const TYPE *row = tmp + 6 * k * cout;                                \
            winograd4_at_##SUFFIX(row, row + cout, row + 2 * cout,               \
                                  row + 3 * cout, row + 4 * cout,                \
                                  row + 5 * cout, y[4 * k], y[4 * k + 1],        \
                                  y[4 * k + 2], y[4 * k + 3], cout);             \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* dm = A dy A^T: the 6x6 image of a tile's 4x4 output gradient, dy[4 i +  \
     * j] (zeros outside the map); dm (36, cout); tmp (24, cout) scratch. */   \
    SKLEARN_CNN_ALWAYS_INLINE void grad_output_tile_body_##SUFFIX(                \
            const TYPE *const *dy, ptrdiff_t cout, TYPE *restrict dm,            \
            TYPE *restrict tmp) {                                                \
        /* Columns: tmp[4 i + j] = (A dy[., j])[i]. */                           \
        for (int j = 0; j < 4; ++j)                                              \
            winograd4_a_##SUFFIX(dy[j], dy[4 + j], dy[8 + j], dy[12 + j],        \
                                 tmp + j * cout, 4 * cout, cout);                \
        /* Rows: dm[6 i + l] = (tmp[i] A^T)[l]. */                               \
        for (int i = 0; i < 6; ++i) {                                            \
            const TYPE *row = tmp + 4 * i * cout;                                \
            winograd4_a_##SUFFIX(row, row + cout, row + 2 * cout,                \
                                 row + 3 * cout, dm + 6 * i * cout, cout, cout); \
        }                                                                        \
    }                                                                            \
                                                                                 \
    /* u = G g G^T for every (in, out) channel pair, times scale[o] unless   \
     * scale is NULL (winograd_scale_planes); u's 36 planes lie u_plane       \
     * values apart. */                                                         \
    SKLEARN_CNN_WEIGHT_TRANSFORM_##SUFFIX void winograd4_weights_##SUFFIX(       \
            const TYPE *restrict w, ptrdiff_t cin, ptrdiff_t cout,               \
            const TYPE *restrict scale, TYPE *restrict u, ptrdiff_t u_plane) {   \
        const ptrdiff_t plane = cin * cout;                                      \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            const TYPE *g = w + c * cout;                                        \
            TYPE *dst = u + c * cout;                                            \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o) {                               \
                TYPE t[6][3];                                                    \
                for (int j = 0; j < 3; ++j) {                                    \
                    TYPE g0 = g[j * plane + o], g1 = g[(3 + j) * plane + o];     \
                    TYPE g2 = g[(6 + j) * plane + o];                            \
                    t[0][j] = g0 / 4;                                            \
                    t[1][j] = -(g0 + g1 + g2) / 6;                               \
                    t[2][j] = -(g0 - g1 + g2) / 6;                               \
                    t[3][j] = g0 / 24 + g1 / 12 + g2 / 6;                        \
                    t[4][j] = g0 / 24 - g1 / 12 + g2 / 6;                        \
                    t[5][j] = g2;                                                \
                }                                                                \
                for (int i = 0; i < 6; ++i) {                                    \
                    TYPE g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];               \
                    TYPE *row = dst + 6 * i * u_plane + o;                       \
                    row[0] = g0 / 4;                                             \
                    row[u_plane] = -(g0 + g1 + g2) / 6;                          \
                    row[2 * u_plane] = -(g0 - g1 + g2) / 6;                      \
                    row[3 * u_plane] = g0 / 24 + g1 / 12 + g2 / 6;               \
                    row[4 * u_plane] = g0 / 24 - g1 / 12 + g2 / 6;               \
                    row[5 * u_plane] = g2;                                       \
                }                                                                \
            }                                                                    \
        }                                                                        \
        if (scale != NULL)                                                       \
            winograd_scale_planes_##SUFFIX(u, 36, u_plane, 0, cin, cout, scale); \
    }                                                                            \
                                                                                 \
    /* dw = G^T du G for every channel pair: du's 36 planes (cin, cout) lie    \
     * u_plane values apart, dw is (3, 3, cin, cout). */                        \
    SKLEARN_CNN_WEIGHT_TRANSFORM_##SUFFIX void winograd4_weight_grad_##SUFFIX(   \
            const TYPE *restrict du, ptrdiff_t cin, ptrdiff_t cout,              \
            ptrdiff_t u_plane, TYPE *restrict dw) {                              \
        const ptrdiff_t plane = cin * cout;                                      \
        for (ptrdiff_t c = 0; c < cin; ++c) {                                    \
            const TYPE *src = du + c * cout;                                     \
            TYPE *dst = dw + c * cout;                                           \
            SKLEARN_CNN_IVDEP                                                    \
            for (ptrdiff_t o = 0; o < cout; ++o) {                               \
                TYPE s[3][6];                                                    \
                /* Rows: s = G^T du (3 x 6). */                                  \
                for (int j = 0; j < 6; ++j) {                                    \
                    TYPE u0 = src[j * u_plane + o];                              \
                    TYPE u1 = src[(6 + j) * u_plane + o];                        \
                    TYPE u2 = src[(12 + j) * u_plane + o];                       \
                    TYPE u3 = src[(18 + j) * u_plane + o];                       \
                    TYPE u4 = src[(24 + j) * u_plane + o];                       \
                    TYPE u5 = src[(30 + j) * u_plane + o];                       \
                    s[0][j] = u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24;           \
                    s[1][j] = (u2 - u1) / 6 + (u3 - u4) / 12;                    \
                    s[2][j] = (u3 + u4 - u1 - u2) / 6 + u5;                      \
                }                                                                \
                /* Columns: dw = s G (3 x 3). */                                 \
                for (int i = 0; i < 3; ++i) {                                    \
                    TYPE u0 = s[i][0], u1 = s[i][1], u2 = s[i][2];               \
                    TYPE u3 = s[i][3], u4 = s[i][4], u5 = s[i][5];               \
                    dst[(3 * i) * plane + o] =                                   \
                        u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24;                 \
                    dst[(3 * i + 1) * plane + o] = (u2 - u1) / 6 + (u3 - u4) / 12; \
                    dst[(3 * i + 2) * plane + o] = (u3 + u4 - u1 - u2) / 6 + u5; \
                }                                                                \
            }                                                                    \
        }                                                                        \
    }

SKLEARN_CNN_DEFINE_WINOGRAD4(float, float)
SKLEARN_CNN_DEFINE_WINOGRAD4(double, double)

/* The tile transforms _winograd.pxd calls.  In the AVX2 build, float32 tiles
 * of 16 or 32 channels run the bodies compiled with the count as a
 * constant, each in its own function: rows of two or four vectors, which the
 * generic loops spent more on loop overhead than on arithmetic.  resnet2d's
 * 16 -> 16-channel layer at 28x28, batch 128, training, 1 thread: forward
 * 3.08-3.64 -> 2.47-2.79 ms, backward 5.97-6.56 -> 4.79-5.38 ms; 32 -> 32 at
 * 14x14, backward 3.34-3.58 -> 2.85-3.23 ms; 64 channels gained nothing
 * (generic).  The same operations in the same order: the same bits.  Other
 * counts, float64 and the baseline build run the generic bodies. */
#define SKLEARN_CNN_DEFINE_WINOGRAD4_FIXED(SUFFIX, TYPE, COUNT)                  \
    SKLEARN_CNN_OUT_OF_LINE void input_tile_##COUNT##_##SUFFIX(                  \
            const TYPE *const *d, TYPE *restrict v, TYPE *restrict tmp) {        \
        input_tile_body_##SUFFIX(d, COUNT, v, tmp);                              \
    }                                                                            \
    SKLEARN_CNN_OUT_OF_LINE void output_tile_##COUNT##_##SUFFIX(                 \
            const TYPE *restrict m, TYPE *const *y, TYPE *restrict tmp) {        \
        output_tile_body_##SUFFIX(m, COUNT, y, tmp);                             \
    }                                                                            \
    SKLEARN_CNN_OUT_OF_LINE void grad_output_tile_##COUNT##_##SUFFIX(            \
            const TYPE *const *dy, TYPE *restrict dm, TYPE *restrict tmp) {      \
        grad_output_tile_body_##SUFFIX(dy, COUNT, dm, tmp);                      \
    }

#if defined(__AVX2__)
SKLEARN_CNN_DEFINE_WINOGRAD4_FIXED(float, float, 16)
SKLEARN_CNN_DEFINE_WINOGRAD4_FIXED(float, float, 32)
/* NAME_COUNT_float(ARGS) for the specialised counts, else GENERIC. */
#define SKLEARN_CNN_BY_COUNT(CHANNELS, NAME, GENERIC, ...)                       \
    switch (CHANNELS) {                                                          \
        case 16: NAME##_16_float(__VA_ARGS__); break;                            \
        case 32: NAME##_32_float(__VA_ARGS__); break;                            \
        default: GENERIC;                                                        \
    }
#else
#define SKLEARN_CNN_BY_COUNT(CHANNELS, NAME, GENERIC, ...) { GENERIC; }
#endif

#if defined(SKLEARN_CNN_AVX512)
/* F(4x4)'s float tile transforms 16 channels per instruction, for channel
 * counts that are multiples of 16 on CPUs with AVX-512 (winograd_wide_float
 * says when), as F(2x2)'s in _winograd.h: the same operations in the same
 * order as winograd4_bt, _at and _a above, lane by lane, so the same bits.
 * A tile's 36 intermediate vectors stay in registers and on the stack
 * instead of going through ``tmp``.  resnet2d's 16 -> 16 layer at 28x28,
 * the fused forward of 128 images in C (1 thread): 0.73-0.81x the 8-wide
 * time; its layers in training (batch 128, 1 thread, alternated in one
 * process): forward 0.84-0.95x, backward 0.86-0.95x; a whole resnet2d
 * epoch 0.943x on 1 thread, 0.98x on 2. */
static inline __attribute__((always_inline, target("avx512f"))) void winograd4_bt_wide(
        __m512 x0, __m512 x1, __m512 x2, __m512 x3, __m512 x4, __m512 x5,
        __m512 *out, int stride) {
    const __m512 two = _mm512_set1_ps(2), four = _mm512_set1_ps(4);
    const __m512 five = _mm512_set1_ps(5);
    __m512 a = _mm512_sub_ps(x4, _mm512_mul_ps(four, x2));
    __m512 b = _mm512_sub_ps(x3, _mm512_mul_ps(four, x1));
    __m512 p = _mm512_sub_ps(x4, x2);
    __m512 q = _mm512_mul_ps(two, _mm512_sub_ps(x3, x1));
    out[0] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(four, x0),
                                         _mm512_mul_ps(five, x2)), x4);
    out[stride] = _mm512_add_ps(a, b);
    out[2 * stride] = _mm512_sub_ps(a, b);
    out[3 * stride] = _mm512_add_ps(p, q);
    out[4 * stride] = _mm512_sub_ps(p, q);
    out[5 * stride] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(four, x1),
                                                  _mm512_mul_ps(five, x3)), x5);
}

static inline __attribute__((always_inline, target("avx512f"))) void winograd4_at_wide(
        __m512 x0, __m512 x1, __m512 x2, __m512 x3, __m512 x4, __m512 x5,
        __m512 *y, int stride) {
    const __m512 two = _mm512_set1_ps(2), four = _mm512_set1_ps(4);
    const __m512 eight = _mm512_set1_ps(8);
    __m512 a = _mm512_add_ps(x1, x2), b = _mm512_sub_ps(x1, x2);
    __m512 p = _mm512_add_ps(x3, x4), q = _mm512_sub_ps(x3, x4);
    y[0] = _mm512_add_ps(_mm512_add_ps(x0, a), p);
    y[stride] = _mm512_add_ps(b, _mm512_mul_ps(two, q));
    y[2 * stride] = _mm512_add_ps(a, _mm512_mul_ps(four, p));
    y[3 * stride] = _mm512_add_ps(_mm512_add_ps(b, _mm512_mul_ps(eight, q)), x5);
}

static inline __attribute__((always_inline, target("avx512f"))) void winograd4_a_wide(
        __m512 y0, __m512 y1, __m512 y2, __m512 y3, __m512 *out, int stride) {
    const __m512 two = _mm512_set1_ps(2), four = _mm512_set1_ps(4);
    const __m512 eight = _mm512_set1_ps(8);
    __m512 e = _mm512_add_ps(y0, y2), f = _mm512_add_ps(y1, y3);
    __m512 g = _mm512_add_ps(y0, _mm512_mul_ps(four, y2));
    __m512 h = _mm512_add_ps(_mm512_mul_ps(two, y1), _mm512_mul_ps(eight, y3));
    out[0] = y0;
    out[stride] = _mm512_add_ps(e, f);
    out[2 * stride] = _mm512_sub_ps(e, f);
    out[3 * stride] = _mm512_add_ps(g, h);
    out[4 * stride] = _mm512_sub_ps(g, h);
    out[5 * stride] = y3;
}

SKLEARN_CNN_AVX512 void winograd4_input_tile_wide_float(
        const float *const *d, ptrdiff_t cin, float *restrict v) {
    for (ptrdiff_t c = 0; c < cin; c += 16) {
        __m512 t[36], r[6];
        for (int i = 0; i < 6; ++i)  /* rows: t[6 i + l] = (d[i] B)[l] */
            winograd4_bt_wide(
                _mm512_loadu_ps(d[6 * i] + c), _mm512_loadu_ps(d[6 * i + 1] + c),
                _mm512_loadu_ps(d[6 * i + 2] + c), _mm512_loadu_ps(d[6 * i + 3] + c),
                _mm512_loadu_ps(d[6 * i + 4] + c), _mm512_loadu_ps(d[6 * i + 5] + c),
                t + 6 * i, 1);
        for (int l = 0; l < 6; ++l) {  /* columns: v[6 k + l] = (B^T t[., l])[k] */
            winograd4_bt_wide(t[l], t[6 + l], t[12 + l], t[18 + l], t[24 + l],
                              t[30 + l], r, 1);
            for (int k = 0; k < 6; ++k)
                _mm512_storeu_ps(v + (6 * k + l) * cin + c, r[k]);
        }
    }
}

SKLEARN_CNN_AVX512 void winograd4_output_tile_wide_float(
        const float *restrict m, ptrdiff_t cout, float *const *y) {
    for (ptrdiff_t o = 0; o < cout; o += 16) {
        __m512 t[24], r[4];
        for (int l = 0; l < 6; ++l) {  /* columns: t[6 k + l] = (A^T m[., l])[k] */
            const float *col = m + l * cout + o;
            winograd4_at_wide(_mm512_loadu_ps(col), _mm512_loadu_ps(col + 6 * cout),
                              _mm512_loadu_ps(col + 12 * cout),
                              _mm512_loadu_ps(col + 18 * cout),
                              _mm512_loadu_ps(col + 24 * cout),
                              _mm512_loadu_ps(col + 30 * cout), t + l, 6);
        }
        for (int k = 0; k < 4; ++k) {  /* rows: y[4 k + j] = (t[k] A)[j] */
            const __m512 *row = t + 6 * k;
            winograd4_at_wide(row[0], row[1], row[2], row[3], row[4], row[5], r, 1);
            for (int j = 0; j < 4; ++j)
                _mm512_storeu_ps(y[4 * k + j] + o, r[j]);
        }
    }
}

SKLEARN_CNN_AVX512 void winograd4_grad_output_tile_wide_float(
        const float *const *dy, ptrdiff_t cout, float *restrict dm) {
    for (ptrdiff_t o = 0; o < cout; o += 16) {
        __m512 t[24], r[6];
        for (int j = 0; j < 4; ++j)  /* columns: t[4 i + j] = (A dy[., j])[i] */
            winograd4_a_wide(_mm512_loadu_ps(dy[j] + o), _mm512_loadu_ps(dy[4 + j] + o),
                             _mm512_loadu_ps(dy[8 + j] + o),
                             _mm512_loadu_ps(dy[12 + j] + o), t + j, 4);
        for (int i = 0; i < 6; ++i) {  /* rows: dm[6 i + l] = (t[i] A^T)[l] */
            const __m512 *row = t + 4 * i;
            winograd4_a_wide(row[0], row[1], row[2], row[3], r, 1);
            for (int l = 0; l < 6; ++l)
                _mm512_storeu_ps(dm + (6 * i + l) * cout + o, r[l]);
        }
    }
}

#define SKLEARN_CNN_WIDE4(CHANNELS, CALL)                                        \
    if (winograd_wide_float(CHANNELS)) {                                         \
        CALL;                                                                    \
        return;                                                                  \
    }
#else
#define SKLEARN_CNN_WIDE4(CHANNELS, CALL)
#endif

SKLEARN_CNN_OUT_OF_LINE void winograd4_input_tile_float(
        const float *const *d, ptrdiff_t cin, float *restrict v, float *restrict tmp) {
    SKLEARN_CNN_WIDE4(cin, winograd4_input_tile_wide_float(d, cin, v))
    SKLEARN_CNN_BY_COUNT(cin, input_tile, input_tile_body_float(d, cin, v, tmp),
                         d, v, tmp)
}

SKLEARN_CNN_OUT_OF_LINE void winograd4_output_tile_float(
        const float *restrict m, ptrdiff_t cout, float *const *y, float *restrict tmp) {
    SKLEARN_CNN_WIDE4(cout, winograd4_output_tile_wide_float(m, cout, y))
    SKLEARN_CNN_BY_COUNT(cout, output_tile, output_tile_body_float(m, cout, y, tmp),
                         m, y, tmp)
}

SKLEARN_CNN_OUT_OF_LINE void winograd4_grad_output_tile_float(
        const float *const *dy, ptrdiff_t cout, float *restrict dm,
        float *restrict tmp) {
    SKLEARN_CNN_WIDE4(cout, winograd4_grad_output_tile_wide_float(dy, cout, dm))
    SKLEARN_CNN_BY_COUNT(cout, grad_output_tile,
                         grad_output_tile_body_float(dy, cout, dm, tmp), dy, dm, tmp)
}

SKLEARN_CNN_OUT_OF_LINE void winograd4_input_tile_double(
        const double *const *d, ptrdiff_t cin, double *restrict v,
        double *restrict tmp) {
    input_tile_body_double(d, cin, v, tmp);
}

SKLEARN_CNN_OUT_OF_LINE void winograd4_output_tile_double(
        const double *restrict m, ptrdiff_t cout, double *const *y,
        double *restrict tmp) {
    output_tile_body_double(m, cout, y, tmp);
}

SKLEARN_CNN_OUT_OF_LINE void winograd4_grad_output_tile_double(
        const double *const *dy, ptrdiff_t cout, double *restrict dm,
        double *restrict tmp) {
    grad_output_tile_body_double(dy, cout, dm, tmp);
}

#if defined(SKLEARN_CNN_AVX512)
/* A chunk of prediction's F(2x2, 3x3) or training's F(4x4, 3x3) with 16
 * output channels and a multiple of 16 input channels, fused: groups of
 * FUSED_GROUP tiles go through the input transform, the tile positions'
 * products by the transformed weights and the output transform while in L1,
 * instead of each step over the whole chunk through L2 (one GEMM per
 * position: OpenBLAS multiplies products 16 wide and 16 deep at 53-118
 * GFLOP/s on a 2-core Xeon, bound by moving their operands).  Each output's product is one
 * chain of FMAs over the input channels in order, as OpenBLAS's AVX-512
 * kernels compute it: the same bits, which the tests check.  resnet2d's
 * 16 -> 16 layers, the whole predict_proba in one process, fused against
 * not (medians of 16 alternated rounds): 0.88-0.90x on 2,000 images,
 * 0.93-0.95x on one, on 1 and 2 threads.  With 32 or 64 output channels, two or four blocks of
 * 16 columns, it was 1.13-1.37x slower (resnet2d, one image; FM-LeNet),
 * where OpenBLAS runs near its peak: 16 only.
 * u: the positions' (cin, 16) weights, ``plane`` values apart; zeros: cin
 * zeros, read outside the input; spare: tile² - 1 rows of 16, written past
 * the map's edge; v (FUSED_GROUP * positions * cin), m (FUSED_GROUP *
 * positions * 16) and, for F(4x4), tmp (36 * cin) scratch. */
#define SKLEARN_CNN_FUSED_GROUP 8

static inline int winograd_fused_float(ptrdiff_t cin, ptrdiff_t cout) {
    return sklearn_cnn_winograd_fused && cout == 16 && winograd_wide_float(cin);
}

/* A tile of a chunk: sample, tile row, tile column. */
typedef struct {
    ptrdiff_t n, ty, tx;
} FusedTile;

static inline void next_fused_tile(FusedTile *at, ptrdiff_t tiles_h, ptrdiff_t tiles_w) {
    if (++at->tx == tiles_w) {
        at->tx = 0;
        if (++at->ty == tiles_h) {
            at->ty = 0;
            ++at->n;
        }
    }
}

SKLEARN_CNN_AVX512 void winograd_chunk_fused_float(
        const float *x, ptrdiff_t n_samples, ptrdiff_t height, ptrdiff_t width,
        ptrdiff_t cin, ptrdiff_t pad_top, ptrdiff_t pad_left, ptrdiff_t out_h,
        ptrdiff_t out_w, int tile, const float *restrict u, ptrdiff_t plane,
        const float *zeros, float *spare, float *restrict v, float *restrict m,
        float *restrict tmp, float *y) {
    const int side = tile + 2, positions = side * side;
    const ptrdiff_t tiles_h = (out_h + tile - 1) / tile, tiles_w = (out_w + tile - 1) / tile;
    const ptrdiff_t n_tiles = n_samples * tiles_h * tiles_w;
    /* The group's first tile (sample, tile row, tile column), moved on tile
     * by tile: two 64-bit divisions per tile on each side held about 12% of
     * this kernel's perf samples (resnet2d, one image).  Without them that
     * image's forward took 0.977x as long on 1 thread, 0.986x on 2, a batch
     * of 12 0.971x and 0.980x (alternated, 21 rounds); training's F(4x4)
     * layers, 4x fewer tiles, the same time. */
    FusedTile group = {0, 0, 0};
    for (ptrdiff_t first = 0; first < n_tiles; first += SKLEARN_CNN_FUSED_GROUP) {
        const int count = n_tiles - first < SKLEARN_CNN_FUSED_GROUP
                              ? (int)(n_tiles - first) : SKLEARN_CNN_FUSED_GROUP;
        FusedTile at = group;
        for (int t = 0; t < count; ++t, next_fused_tile(&at, tiles_h, tiles_w)) {
            const ptrdiff_t n = at.n, ty = at.ty, tx = at.tx;
            const float *d[36];
            for (int i = 0; i < side; ++i) {
                const ptrdiff_t ih = tile * ty + i - pad_top;
                for (int j = 0; j < side; ++j) {
                    const ptrdiff_t iw = tile * tx + j - pad_left;
                    d[side * i + j] = ih >= 0 && ih < height && iw >= 0 && iw < width
                                          ? x + ((n * height + ih) * width + iw) * cin
                                          : zeros;
                }
            }
            if (tile == 4)
                winograd4_input_tile_float(d, cin, v + t * 36 * cin, tmp);
            else
                winograd_input_tile_wide_float(d, cin, v + t * 16 * cin);
        }
        for (int xi = 0; xi < positions; ++xi) {
            const float *w = u + xi * plane;
            const float *a = v + xi * cin;
            const ptrdiff_t a_step = positions * cin;  /* from tile to tile */
            float *out = m + xi * 16;
            if (count == SKLEARN_CNN_FUSED_GROUP) {
                /* Eight accumulators in registers (named: an array of them
                 * went through the stack at each step). */
                __m512 row = _mm512_loadu_ps(w);
#define SKLEARN_CNN_FIRST(T) \
                __m512 acc##T = _mm512_mul_ps(_mm512_set1_ps(a[T * a_step]), row)
                SKLEARN_CNN_FIRST(0); SKLEARN_CNN_FIRST(1); SKLEARN_CNN_FIRST(2);
                SKLEARN_CNN_FIRST(3); SKLEARN_CNN_FIRST(4); SKLEARN_CNN_FIRST(5);
                SKLEARN_CNN_FIRST(6); SKLEARN_CNN_FIRST(7);
#undef SKLEARN_CNN_FIRST
                for (ptrdiff_t c = 1; c < cin; ++c) {
                    row = _mm512_loadu_ps(w + c * 16);
#define SKLEARN_CNN_STEP(T) \
                    acc##T = _mm512_fmadd_ps(_mm512_set1_ps(a[T * a_step + c]), row, acc##T)
                    SKLEARN_CNN_STEP(0); SKLEARN_CNN_STEP(1); SKLEARN_CNN_STEP(2);
                    SKLEARN_CNN_STEP(3); SKLEARN_CNN_STEP(4); SKLEARN_CNN_STEP(5);
                    SKLEARN_CNN_STEP(6); SKLEARN_CNN_STEP(7);
#undef SKLEARN_CNN_STEP
                }
#define SKLEARN_CNN_STORE(T) _mm512_storeu_ps(out + T * positions * 16, acc##T)
                SKLEARN_CNN_STORE(0); SKLEARN_CNN_STORE(1); SKLEARN_CNN_STORE(2);
                SKLEARN_CNN_STORE(3); SKLEARN_CNN_STORE(4); SKLEARN_CNN_STORE(5);
                SKLEARN_CNN_STORE(6); SKLEARN_CNN_STORE(7);
#undef SKLEARN_CNN_STORE
                continue;
            }
            for (int t = 0; t < count; ++t) {
                __m512 acc = _mm512_mul_ps(_mm512_set1_ps(a[t * a_step]),
                                           _mm512_loadu_ps(w));
                for (ptrdiff_t c = 1; c < cin; ++c)
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(a[t * a_step + c]),
                                          _mm512_loadu_ps(w + c * 16), acc);
                _mm512_storeu_ps(out + t * positions * 16, acc);
            }
        }
        at = group;
        for (int t = 0; t < count; ++t, next_fused_tile(&at, tiles_h, tiles_w)) {
            const ptrdiff_t n = at.n, oh = tile * at.ty, ow = tile * at.tx;
            float *rows[16];
            /* Past the bottom or right edge (odd sizes): a spare row each. */
            for (int i = 0; i < tile; ++i)
                for (int j = 0; j < tile; ++j)
                    rows[tile * i + j] =
                        oh + i < out_h && ow + j < out_w
                            ? y + ((n * out_h + oh + i) * out_w + ow + j) * 16
                            : spare + (tile * i + j - 1) * 16;
            if (tile == 4)
                winograd4_output_tile_float(m + t * 36 * 16, 16, rows, tmp);
            else
                winograd_output_tile_wide_float(m + t * 16 * 16, 16, rows[0], rows[1],
                                                rows[2], rows[3]);
        }
        group = at;
    }
}
#else
/* Never fused: the baseline build, or no AVX-512 intrinsics. */
static inline int winograd_fused_float(ptrdiff_t cin, ptrdiff_t cout) {
    (void)cin; (void)cout;
    return 0;
}
static inline void winograd_chunk_fused_float(
        const float *x, ptrdiff_t n_samples, ptrdiff_t height, ptrdiff_t width,
        ptrdiff_t cin, ptrdiff_t pad_top, ptrdiff_t pad_left, ptrdiff_t out_h,
        ptrdiff_t out_w, int tile, const float *u, ptrdiff_t plane, const float *zeros,
        float *spare, float *v, float *m, float *tmp, float *y) {
    (void)x; (void)n_samples; (void)height; (void)width; (void)cin; (void)pad_top;
    (void)pad_left; (void)out_h; (void)out_w; (void)tile; (void)u; (void)plane;
    (void)zeros; (void)spare; (void)v; (void)m; (void)tmp; (void)y;
}
#endif

#endif
