# Winograd F(2x2, 3x3) for 3x3, stride-1, undilated convolutions of a chunk
# of samples (NHWC): the transforms are in _winograd.h (C, where gcc
# vectorises them), the 16 GEMMs per chunk here.  Forward and input gradient
# use winograd_chunk (the input gradient with the weights turned half a
# turn), the weight gradient winograd_weight_grad_chunk.  Called by the
# conv kernels of _conv.pyx inside their prange loops; BLAS on one thread.

from cython cimport floating

from ._blas cimport gemm_rowmajor
from ._conv_geometry cimport ConvGeometry
from ._typedefs cimport intp_t


cdef extern from "_winograd.h":
    void winograd_weights_float(const float* w, intp_t cin, intp_t cout,
                                const float* scale, float* u,
                                intp_t u_plane) noexcept nogil
    void winograd_weights_double(const double* w, intp_t cin, intp_t cout,
                                 const double* scale, double* u,
                                 intp_t u_plane) noexcept nogil
    void winograd_input_tile_float(const float** d, intp_t cin,
                                   float* v) noexcept nogil
    void winograd_input_tile_double(const double** d, intp_t cin,
                                    double* v) noexcept nogil
    void winograd_output_tile_float(const float* m, intp_t cout, float* y00,
                                    float* y01, float* y10,
                                    float* y11) noexcept nogil
    void winograd_output_tile_double(const double* m, intp_t cout, double* y00,
                                     double* y01, double* y10,
                                     double* y11) noexcept nogil
    void winograd_grad_output_tile_float(const float* dy00, const float* dy01,
                                         const float* dy10, const float* dy11,
                                         intp_t cout, float* dm) noexcept nogil
    void winograd_grad_output_tile_double(const double* dy00, const double* dy01,
                                          const double* dy10, const double* dy11,
                                          intp_t cout, double* dm) noexcept nogil
    void winograd_weight_grad_float(const float* du, intp_t cin, intp_t cout,
                                    intp_t u_plane, float* dw) noexcept nogil
    void winograd_weight_grad_double(const double* du, intp_t cin, intp_t cout,
                                     intp_t u_plane, double* dw) noexcept nogil


cdef inline intp_t winograd_plane(intp_t cin, intp_t cout) noexcept nogil:
    """Values between the 16 planes (cin x cout) of the Winograd weights.

    Padded past cin * cout: planes a multiple of 4 KiB apart (32 x 64
    float32) made the transform's stores and next loads alias (4K aliasing),
    18 us instead of 2.4 for 32 -> 64 channels (measured in C).
    """
    return cin * cout + 16


cdef inline void winograd_transform_input(
    ConvGeometry g, const floating* x, intp_t n_samples,
    floating* v,        # OUT: (tiles, 16, C), the tiles of the output in order
    floating* zeros,    # scratch: (C,), zeroed here
) noexcept nogil:
    """B^T d B for every 4x4 input tile of the chunk's 2x2 output tiles."""
    cdef intp_t tiles_h = (g.out_h + 1) // 2, tiles_w = (g.out_w + 1) // 2
    cdef intp_t cin = g.channels
    cdef const floating* d[16]
    cdef intp_t n, ty, tx, i, j, ih, iw, tile = 0
    for j in range(cin):
        zeros[j] = 0
    for n in range(n_samples):
        for ty in range(tiles_h):
            for tx in range(tiles_w):
                for i in range(4):
                    ih = 2 * ty + i - g.pad_top
                    for j in range(4):
                        iw = 2 * tx + j - g.pad_left
                        if ih >= 0 and ih < g.height and iw >= 0 and iw < g.width:
                            d[4 * i + j] = x + ((n * g.height + ih) * g.width + iw) * cin
                        else:
                            d[4 * i + j] = zeros
                if floating is float:
                    winograd_input_tile_float(d, cin, v + tile * 16 * cin)
                else:
                    winograd_input_tile_double(d, cin, v + tile * 16 * cin)
                tile = tile + 1


cdef inline void output_tile_rows(
    ConvGeometry g, floating* y, intp_t n, intp_t ty, intp_t tx,
    floating* outside, intp_t outside_step,
    floating** rows,    # OUT: 4 rows of OC values, y00, y01, y10, y11
) noexcept nogil:
    """The rows of ``y`` (n, out_h, out_w, OC) holding the 2x2 outputs of tile
    (ty, tx) of sample n; a position past the map's bottom or right edge
    (odd sizes) gets ``outside + (i - 1) * outside_step`` instead (the
    tile's first position is always inside)."""
    cdef intp_t i, oh, ow
    for i in range(4):
        oh = 2 * ty + i // 2
        ow = 2 * tx + i % 2
        if oh < g.out_h and ow < g.out_w:
            rows[i] = y + ((n * g.out_h + oh) * g.out_w + ow) * g.out_channels
        else:
            rows[i] = outside + (i - 1) * outside_step


cdef inline void winograd_weight_grad_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* dz,     # IN: d loss/d pre-activation, (rows, OC)
    floating* du,           # OUT: d loss/d transformed weights, 16 padded planes
    floating* scratch,      # see winograd_scratch_size
) noexcept nogil:
    """This chunk's share of the weight gradient in the Winograd domain:
    du[xi] = V[xi]^T @ (A dY A^T)[xi] over the chunk's tiles (16 GEMMs), with
    V the forward's transformed input; ``winograd_weight_grad`` maps the sum
    over chunks back to the 3x3 weights.  No im2col at all."""
    cdef intp_t tiles_h = (g.out_h + 1) // 2, tiles_w = (g.out_w + 1) // 2
    cdef intp_t n_tiles = n_samples * tiles_h * tiles_w
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    cdef floating* v = scratch                       # (tiles, 16, C)
    cdef floating* dm = v + 16 * n_tiles * cin       # (tiles, 16, OC)
    cdef floating* zeros = dm + 16 * n_tiles * cout  # (max(C, OC),)
    cdef floating* dy[4]
    cdef intp_t n, ty, tx, i, xi, tile = 0
    winograd_transform_input(g, x, n_samples, v, zeros)
    for i in range(cout):
        zeros[i] = 0
    for n in range(n_samples):
        for ty in range(tiles_h):
            for tx in range(tiles_w):
                # Read only: outside the map, all four read the zeros.
                output_tile_rows(g, <floating*> dz, n, ty, tx, zeros, 0, dy)
                if floating is float:
                    winograd_grad_output_tile_float(dy[0], dy[1], dy[2], dy[3], cout,
                                                    dm + tile * 16 * cout)
                else:
                    winograd_grad_output_tile_double(dy[0], dy[1], dy[2], dy[3], cout,
                                                     dm + tile * 16 * cout)
                tile = tile + 1
    for xi in range(16):
        gemm_rowmajor(c'T', c'N', <int> cin, <int> cout, <int> n_tiles, <floating> 1,
                      v + xi * cin, <int> (16 * cin), dm + xi * cout, <int> (16 * cout),
                      <floating> 0, du + xi * plane, <int> cout)


cdef inline void winograd_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* transformed,  # IN: from winograd_weights, (16, plane)
    floating* scratch,            # see winograd_scratch_size
    floating* y,                  # OUT: (n_samples * out_h * out_w, OC)
) noexcept nogil:
    """The 3x3, stride-1 convolution of a chunk by Winograd F(2x2, 3x3)
    (``_winograd.h``): transform every 4x4 input tile, 16 GEMMs over all the
    chunk's tiles at once, transform back.  Any padding, odd sizes included:
    tile positions outside the input read zeros, outputs outside the map go
    to spare rows."""
    cdef intp_t tiles_h = (g.out_h + 1) // 2, tiles_w = (g.out_w + 1) // 2
    cdef intp_t n_tiles = n_samples * tiles_h * tiles_w
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    cdef floating* v = scratch                       # (tiles, 16, C)
    cdef floating* m = v + 16 * n_tiles * cin        # (tiles, 16, OC)
    cdef floating* zeros = m + 16 * n_tiles * cout   # (C,)
    cdef floating* spare = zeros + cin               # (3, OC)
    cdef floating* outs[4]
    cdef intp_t n, ty, tx, xi, tile = 0
    winograd_transform_input(g, x, n_samples, v, zeros)
    for xi in range(16):
        gemm_rowmajor(c'N', c'N', <int> n_tiles, <int> cout, <int> cin, <floating> 1,
                      v + xi * cin, <int> (16 * cin), transformed + xi * plane,
                      <int> cout, <floating> 0, m + xi * cout, <int> (16 * cout))
    tile = 0
    for n in range(n_samples):
        for ty in range(tiles_h):
            for tx in range(tiles_w):
                # Written: outside the map, each to its own spare row.
                output_tile_rows(g, y, n, ty, tx, spare, cout, outs)
                if floating is float:
                    winograd_output_tile_float(m + tile * 16 * cout, cout, outs[0],
                                               outs[1], outs[2], outs[3])
                else:
                    winograd_output_tile_double(m + tile * 16 * cout, cout, outs[0],
                                                outs[1], outs[2], outs[3])
                tile = tile + 1
