# Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3, stride-1, undilated
# convolutions of a chunk of samples (NHWC): the transforms are in
# _winograd.h and _winograd4.h (C, where gcc vectorises them), the 16 (36)
# GEMMs per chunk here.  ``tile`` (2 or 4) is the side of a tile of outputs;
# a tile reads an input tile of side ``tile + 2``.  Forward and input gradient
# use winograd_chunk (the input gradient with the weights turned half a
# turn), the weight gradient winograd_weight_grad_chunk.  Called by the
# conv kernels of _conv.pyx inside their prange loops; BLAS on one thread.

from cython cimport floating

from ._column_sums cimport add_column_sums
from ._conv_geometry cimport ConvGeometry
from ._products cimport forward_product, transposed_product
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
    # Whether the float transforms may run 16 channels wide, and (mode 2) the
    # chunks of 16 output channels fused (_winograd.h, _winograd4.h).
    bint winograd_set_wide(int mode) noexcept nogil


cdef extern from "_winograd4.h":
    void winograd4_weights_float(const float* w, intp_t cin, intp_t cout,
                                 const float* scale, float* u,
                                 intp_t u_plane) noexcept nogil
    void winograd4_weights_double(const double* w, intp_t cin, intp_t cout,
                                  const double* scale, double* u,
                                  intp_t u_plane) noexcept nogil
    void winograd4_input_tile_float(const float** d, intp_t cin, float* v,
                                    float* tmp) noexcept nogil
    void winograd4_input_tile_double(const double** d, intp_t cin, double* v,
                                     double* tmp) noexcept nogil
    void winograd4_output_tile_float(const float* m, intp_t cout, float** y,
                                     float* tmp) noexcept nogil
    void winograd4_output_tile_double(const double* m, intp_t cout, double** y,
                                      double* tmp) noexcept nogil
    void winograd4_grad_output_tile_float(const float** dy, intp_t cout, float* dm,
                                          float* tmp) noexcept nogil
    void winograd4_grad_output_tile_double(const double** dy, intp_t cout,
                                           double* dm, double* tmp) noexcept nogil
    # Chunks with 16 output channels, fused (_winograd4.h).
    bint winograd_fused_float(intp_t cin, intp_t cout) noexcept nogil
    void winograd_chunk_fused_float(
        const float* x, intp_t n_samples, intp_t height, intp_t width, intp_t cin,
        intp_t pad_top, intp_t pad_left, intp_t out_h, intp_t out_w, int tile,
        const float* u, intp_t plane, const float* zeros, float* spare, float* v,
        float* m, float* tmp, float* y) noexcept nogil
    void winograd4_weight_grad_float(const float* du, intp_t cin, intp_t cout,
                                     intp_t u_plane, float* dw) noexcept nogil
    void winograd4_weight_grad_double(const double* du, intp_t cin, intp_t cout,
                                      intp_t u_plane, double* dw) noexcept nogil


cdef inline intp_t winograd_plane(intp_t cin, intp_t cout) noexcept nogil:
    """Values between the 16 planes (cin x cout) of the Winograd weights.

    Padded past cin * cout: planes a multiple of 4 KiB apart (32 x 64
    float32) made the transform's stores and next loads alias (4K aliasing),
    18 us instead of 2.4 for 32 -> 64 channels (measured in C).
    """
    return cin * cout + 16


cdef inline intp_t winograd_positions(int tile) noexcept nogil:
    """Values of a transformed tile per channel: (tile + 2)²."""
    return (tile + 2) * (tile + 2)


cdef struct WinogradScratch:
    # Where winograd_chunk and winograd_weight_grad_chunk keep their data in
    # the caller's scratch, offsets in values: the transformed input tiles
    # (tiles, positions, C) at 0, then the GEMM outputs or transformed output
    # gradients (tiles, positions, OC), a row of zeros (max(C, OC)), spare
    # rows for outputs past the map's edge (tile² - 1, OC) and F(4x4)'s
    # transform tile (36, max(C, OC)); ``size`` values in all.
    intp_t tiles_h, tiles_w, n_tiles, positions
    intp_t products, zeros, spare, tmp, size


cdef inline WinogradScratch winograd_scratch(ConvGeometry g, intp_t n_samples,
                                             int tile) noexcept nogil:
    """The scratch layout of a chunk of n_samples output maps."""
    cdef WinogradScratch s
    cdef intp_t cin = g.channels, cout = g.out_channels, widest = max(cin, cout)
    s.tiles_h = (g.out_h + tile - 1) // tile
    s.tiles_w = (g.out_w + tile - 1) // tile
    s.n_tiles = n_samples * s.tiles_h * s.tiles_w
    s.positions = winograd_positions(tile)
    s.products = s.positions * s.n_tiles * cin
    s.zeros = s.products + s.positions * s.n_tiles * cout
    s.spare = s.zeros + widest
    s.tmp = s.spare + (tile * tile - 1) * cout
    s.size = s.tmp + (36 * widest if tile == 4 else 0)
    return s


cdef inline void winograd_input_tile(
    ConvGeometry g, const floating* x, intp_t n, intp_t ty, intp_t tx, int tile,
    floating* v,            # OUT: (positions, C), the transformed tile
    const floating* zeros,  # IN: (C,) zeros, read where the tile leaves the input
    floating* tmp,          # scratch: (36, C) for tile 4
) noexcept nogil:
    """B^T d B for the input tile of output tile (ty, tx) of sample n."""
    cdef intp_t side = tile + 2, cin = g.channels
    cdef const floating* d[36]
    cdef intp_t i, j, ih, iw
    for i in range(side):
        ih = tile * ty + i - g.pad_top
        for j in range(side):
            iw = tile * tx + j - g.pad_left
            if ih >= 0 and ih < g.height and iw >= 0 and iw < g.width:
                d[side * i + j] = x + ((n * g.height + ih) * g.width + iw) * cin
            else:
                d[side * i + j] = zeros
    if tile == 4:
        if floating is float:
            winograd4_input_tile_float(d, cin, v, tmp)
        else:
            winograd4_input_tile_double(d, cin, v, tmp)
    elif floating is float:
        winograd_input_tile_float(d, cin, v)
    else:
        winograd_input_tile_double(d, cin, v)


cdef inline void winograd_transform_input(
    ConvGeometry g, const floating* x, intp_t n_samples, int tile,
    floating* v,        # OUT: (tiles, positions, C), the tiles of the output in order
    floating* zeros,    # scratch: (C,), zeroed here
    floating* tmp,      # scratch: (36, C) for tile 4
) noexcept nogil:
    """B^T d B for every input tile of the chunk's output tiles."""
    cdef intp_t tiles_h = (g.out_h + tile - 1) // tile
    cdef intp_t tiles_w = (g.out_w + tile - 1) // tile
    cdef intp_t positions = winograd_positions(tile), cin = g.channels
    cdef intp_t n, ty, tx, j, index = 0
    for j in range(cin):
        zeros[j] = 0
    for n in range(n_samples):
        for ty in range(tiles_h):
            for tx in range(tiles_w):
                winograd_input_tile(g, x, n, ty, tx, tile, v + index * positions * cin,
                                    zeros, tmp)
                index = index + 1


cdef inline void output_tile_rows(
    ConvGeometry g, floating* y, intp_t n, intp_t ty, intp_t tx, int tile,
    floating* outside, intp_t outside_step,
    floating** rows,    # OUT: tile² rows of OC values, row-major over the tile
) noexcept nogil:
    """The rows of ``y`` (n, out_h, out_w, OC) holding the outputs of tile
    (ty, tx) of sample n; a position past the map's bottom or right edge
    (odd sizes) gets ``outside + (i - 1) * outside_step`` instead (the
    tile's first position is always inside)."""
    cdef intp_t i, oh, ow
    for i in range(tile * tile):
        oh = tile * ty + i // tile
        ow = tile * tx + i % tile
        if oh < g.out_h and ow < g.out_w:
            rows[i] = y + ((n * g.out_h + oh) * g.out_w + ow) * g.out_channels
        else:
            rows[i] = outside + (i - 1) * outside_step


cdef inline void winograd_weight_grad_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples, int tile,
    const floating* dz,     # IN: d loss/d pre-activation, (rows, OC)
    floating* du,           # OUT: d loss/d transformed weights, padded planes
    double* bias_grad,      # OUT: (OC,) this chunk's bias gradient, or NULL
    floating* scratch,      # see winograd_scratch_size
) noexcept nogil:
    """This chunk's share of the weight gradient in the Winograd domain:
    du[xi] = V[xi]^T @ (A dY A^T)[xi] over the chunk's tiles (one GEMM per
    position xi), with V the forward's transformed input;
    ``winograd_weight_grad`` maps the sum over chunks back to the 3x3
    weights.  No im2col at all.  The bias gradient comes with it: A's row
    at the point 1 is all ones, so position (1, 1) of each transformed tile
    is the sum of the tile's output gradients; summed over the tiles, it is
    the sum of dz over its rows, read 4 (F(2x2)) or 16 (F(4x4)) times
    less."""
    cdef WinogradScratch s = winograd_scratch(g, n_samples, tile)
    cdef intp_t n_tiles = s.n_tiles, positions = s.positions
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    # Position (1, 1): the points are 0, 1, -1, (2, -2,) infinity.
    cdef intp_t ones = tile + 3
    cdef floating* v = scratch
    cdef floating* dm = scratch + s.products
    cdef floating* zeros = scratch + s.zeros
    cdef floating* tmp = scratch + s.tmp
    cdef floating* dy[16]
    cdef intp_t n, ty, tx, i, xi, index = 0
    winograd_transform_input(g, x, n_samples, tile, v, zeros, tmp)
    for i in range(cout):
        zeros[i] = 0
    for n in range(n_samples):
        for ty in range(s.tiles_h):
            for tx in range(s.tiles_w):
                # Read only: outside the map, all read the zeros.
                output_tile_rows(g, <floating*> dz, n, ty, tx, tile, zeros, 0, dy)
                if tile == 4:
                    if floating is float:
                        winograd4_grad_output_tile_float(
                            <const float**> dy, cout, dm + index * positions * cout, tmp)
                    else:
                        winograd4_grad_output_tile_double(
                            <const double**> dy, cout, dm + index * positions * cout,
                            tmp)
                elif floating is float:
                    winograd_grad_output_tile_float(dy[0], dy[1], dy[2], dy[3], cout,
                                                    dm + index * positions * cout)
                else:
                    winograd_grad_output_tile_double(dy[0], dy[1], dy[2], dy[3], cout,
                                                     dm + index * positions * cout)
                index = index + 1
    if bias_grad != NULL:
        for i in range(cout):
            bias_grad[i] = 0
        add_column_sums(dm + ones * cout, n_tiles, cout, positions * cout, bias_grad)
    for xi in range(positions):
        transposed_product(v + xi * cin, positions * cin, n_tiles, cin, dm + xi * cout,
                           positions * cout, cout, du + xi * plane, cout)


cdef inline void winograd_output_tile(
    ConvGeometry g, const floating* m, floating* y, intp_t n, intp_t ty, intp_t tx,
    int tile,
    floating* spare,    # scratch: (tile² - 1, OC), outputs past the map's edge
    floating* tmp,      # scratch: (36, OC) for tile 4
) noexcept nogil:
    """A^T m A for output tile (ty, tx) of sample n: its GEMM outputs ``m``
    (positions, OC) transformed back into ``y`` (n, out_h, out_w, OC)."""
    cdef intp_t cout = g.out_channels
    cdef floating* outs[16]
    # Written: outside the map, each to its own spare row.
    output_tile_rows(g, y, n, ty, tx, tile, spare, cout, outs)
    if tile == 4:
        if floating is float:
            winograd4_output_tile_float(m, cout, outs, tmp)
        else:
            winograd4_output_tile_double(m, cout, outs, tmp)
    elif floating is float:
        winograd_output_tile_float(m, cout, outs[0], outs[1], outs[2], outs[3])
    else:
        winograd_output_tile_double(m, cout, outs[0], outs[1], outs[2], outs[3])


cdef inline intp_t winograd_shared_scratch(ConvGeometry g, int tile,
                                           int n_threads) noexcept nogil:
    """Values of scratch that ``_conv``'s shared convolution of one sample
    needs: winograd_scratch's for one sample, with spare rows and F(4x4)'s
    transform tile for each thread, and 16 values to align it to 64 bytes."""
    cdef WinogradScratch s = winograd_scratch(g, 1, tile)
    return s.spare + n_threads * (s.size - s.spare) + 16


cdef inline void winograd_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples, int tile,
    const floating* transformed,  # IN: from winograd_weights, (positions, plane)
    floating* scratch,            # see winograd_scratch_size
    floating* y,                  # OUT: (n_samples * out_h * out_w, OC)
) noexcept nogil:
    """The 3x3, stride-1 convolution of a chunk by Winograd F(2x2, 3x3) or
    F(4x4, 3x3): transform every input tile, one GEMM per tile position over
    all the chunk's tiles at once, transform back.  Any padding, odd sizes
    included: tile positions outside the input read zeros, outputs outside
    the map go to spare rows."""
    cdef WinogradScratch s = winograd_scratch(g, n_samples, tile)
    cdef intp_t n_tiles = s.n_tiles, positions = s.positions
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    cdef floating* v = scratch
    cdef floating* m = scratch + s.products
    cdef floating* zeros = scratch + s.zeros
    cdef floating* spare = scratch + s.spare
    cdef floating* tmp = scratch + s.tmp
    cdef intp_t n, ty, tx, xi, c, index = 0
    if floating is float:
        if winograd_fused_float(cin, cout):
            for c in range(cin):
                zeros[c] = 0
            winograd_chunk_fused_float(x, n_samples, g.height, g.width, cin, g.pad_top,
                                       g.pad_left, g.out_h, g.out_w, tile, transformed,
                                       plane, zeros, spare, v, m, tmp, y)
            return
    winograd_transform_input(g, x, n_samples, tile, v, zeros, tmp)
    for xi in range(positions):
        forward_product(v + xi * cin, positions * cin, n_tiles, cin,
                        transformed + xi * plane, cout, m + xi * cout, positions * cout)
    for n in range(n_samples):
        for ty in range(s.tiles_h):
            for tx in range(s.tiles_w):
                winograd_output_tile(g, m + index * positions * cout, y, n, ty, tx, tile,
                                     spare, tmp)
                index = index + 1


cdef inline void transform_weights(
    int tile, const floating* w, intp_t cin, intp_t cout, const floating* scale,
    floating* u, intp_t u_plane,
) noexcept nogil:
    """u = G g G^T (times scale) for F(tile x tile, 3x3), float or double."""
    if tile == 4:
        if floating is float:
            winograd4_weights_float(w, cin, cout, scale, u, u_plane)
        else:
            winograd4_weights_double(w, cin, cout, scale, u, u_plane)
    elif floating is float:
        winograd_weights_float(w, cin, cout, scale, u, u_plane)
    else:
        winograd_weights_double(w, cin, cout, scale, u, u_plane)


cdef inline void weight_grad_from_transformed(
    int tile, const floating* du, intp_t cin, intp_t cout, intp_t u_plane,
    floating* dw,
) noexcept nogil:
    """dw = G^T du G for F(tile x tile, 3x3), float or double."""
    if tile == 4:
        if floating is float:
            winograd4_weight_grad_float(du, cin, cout, u_plane, dw)
        else:
            winograd4_weight_grad_double(du, cin, cout, u_plane, dw)
    elif floating is float:
        winograd_weight_grad_float(du, cin, cout, u_plane, dw)
    else:
        winograd_weight_grad_double(du, cin, cout, u_plane, dw)
