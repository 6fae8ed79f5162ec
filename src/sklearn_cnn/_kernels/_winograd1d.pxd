# Winograd F(9 - r, r) for series: 1-D, stride-1, undilated convolutions
# with kernels of r = 3..7 taps over maps of height 1 (NHWC, so a series is
# (n, 1, length, C)).  The transforms are in _winograd1d.h, the 8 GEMMs per
# chunk here, laid out as _winograd.pxd's 2-D ones: forward and input
# gradient use winograd1d_chunk (the input gradient with the kernel turned
# round), the weight gradient winograd1d_weight_grad_chunk.  Called by the
# conv kernels of _conv.pyx inside their prange loops; BLAS on one thread.

from cython cimport floating
from cython.parallel cimport prange

from ._blas cimport gemm_rowmajor
from ._conv_geometry cimport ConvGeometry
from ._typedefs cimport intp_t
from ._winograd cimport WinogradScratch, winograd_plane


cdef extern from "_winograd1d.h":
    void winograd1d_weights_float(const float* w, int r, intp_t cin, intp_t cout,
                                  const float* scale, float* u, intp_t u_plane,
                                  int reverse, intp_t c0, intp_t c1) noexcept nogil
    void winograd1d_weights_double(const double* w, int r, intp_t cin, intp_t cout,
                                   const double* scale, double* u, intp_t u_plane,
                                   int reverse, intp_t c0, intp_t c1) noexcept nogil
    void winograd1d_weight_grad_float(const float* du, int r, intp_t cin, intp_t cout,
                                      intp_t u_plane, float* dw, int k) noexcept nogil
    void winograd1d_weight_grad_double(const double* du, int r, intp_t cin,
                                       intp_t cout, intp_t u_plane, double* dw,
                                       int k) noexcept nogil
    void winograd1d_input_tile_float(const float** d, intp_t cin, float* v,
                                     intp_t stride) noexcept nogil
    void winograd1d_input_tile_double(const double** d, intp_t cin, double* v,
                                      intp_t stride) noexcept nogil
    void winograd1d_output_tile_float(const float* mm, intp_t stride, int m,
                                      intp_t cout, float** y) noexcept nogil
    void winograd1d_output_tile_double(const double* mm, intp_t stride, int m,
                                       intp_t cout, double** y) noexcept nogil
    void winograd1d_grad_output_tile_float(const float** dy, int m, intp_t cout,
                                           float* dm, intp_t stride) noexcept nogil
    void winograd1d_grad_output_tile_double(const double** dy, int m, intp_t cout,
                                            double* dm, intp_t stride) noexcept nogil


cdef enum:
    # The transform's points: values of a transformed tile per channel.
    WINOGRAD1D_POINTS = 8
    # Kernel sizes it takes: 9 - r outputs per tile, at least 2.
    WINOGRAD1D_MIN_KERNEL = 3
    WINOGRAD1D_MAX_KERNEL = 7
    # Input channels per share of the weights' transform.
    CHANNEL_BLOCK = 16


cdef inline int winograd1d_outputs(intp_t kernel_w) noexcept nogil:
    """Outputs per tile of a kernel of kernel_w taps: 8 - kernel_w + 1."""
    return <int> (WINOGRAD1D_POINTS + 1 - kernel_w)


cdef inline intp_t winograd1d_point_stride(intp_t n_tiles, intp_t width) noexcept nogil:
    """Values between the 8 planes (one per point) of a chunk's n_tiles
    transformed tiles of ``width`` channels: padded as winograd_plane is,
    against 4K aliasing between the planes."""
    return n_tiles * width + 16


cdef inline WinogradScratch winograd1d_scratch(ConvGeometry g,
                                               intp_t n_samples) noexcept nogil:
    """The scratch layout of a chunk of n_samples output series: the
    transformed input tiles at 0, 8 planes of (tiles, C), then the GEMM
    outputs or transformed output gradients, 8 planes of (tiles, OC), a row
    of zeros (max(C, OC)) and spare rows for outputs past the series' end
    (m - 1 per sample, of OC values); ``size`` values in all.  Plane by plane (point-major), each
    point's GEMM reads and writes contiguous rows: with the 8 points of a
    tile side by side instead, rows 8 x 128 float32 apart (4 KiB) made the
    weight gradient's GEMMs 30% slower."""
    cdef WinogradScratch s
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef int m = winograd1d_outputs(g.kernel_w)
    s.tiles_h = 1
    s.tiles_w = (g.out_w + m - 1) // m
    s.n_tiles = n_samples * s.tiles_w
    s.positions = WINOGRAD1D_POINTS
    s.products = s.positions * winograd1d_point_stride(s.n_tiles, cin)
    s.zeros = s.products + s.positions * winograd1d_point_stride(s.n_tiles, cout)
    s.spare = s.zeros + max(cin, cout)
    s.tmp = s.spare + n_samples * (m - 1) * cout
    s.size = s.tmp
    return s


cdef inline void winograd1d_input_tile(
    ConvGeometry g, const floating* x, intp_t index, intp_t tiles_w,
    floating* v,            # OUT: tile ``index``'s rows of the 8 planes of (tiles, C)
    intp_t stride,          # values between the planes
    const floating* zeros,  # IN: (C,) zeros
) noexcept nogil:
    """B^T d for the 8 inputs that output tile ``index`` of the chunk (tile
    index % tiles_w of sample index // tiles_w) reads, zeros past either end."""
    cdef int m = winograd1d_outputs(g.kernel_w)
    cdef intp_t n = index // tiles_w, t = index % tiles_w, cin = g.channels
    cdef const floating* d[8]
    cdef intp_t j, iw
    for j in range(WINOGRAD1D_POINTS):
        iw = m * t + j - g.pad_left
        if iw >= 0 and iw < g.width:
            d[j] = x + (n * g.width + iw) * cin
        else:
            d[j] = zeros
    if floating is float:
        winograd1d_input_tile_float(d, cin, v + index * cin, stride)
    else:
        winograd1d_input_tile_double(d, cin, v + index * cin, stride)


cdef inline void winograd1d_output_tile(
    ConvGeometry g, const floating* products, intp_t index, intp_t tiles_w,
    intp_t stride,          # values between the planes of products
    floating* y,            # OUT: (n_samples * out_w, OC)
    floating* spare,        # scratch: (m - 1) rows of OC values per sample
) noexcept nogil:
    """A^T M for output tile ``index`` of the chunk into its rows of ``y``;
    steps past the series' end go to the sample's own spare rows."""
    cdef int m = winograd1d_outputs(g.kernel_w)
    cdef intp_t n = index // tiles_w, cout = g.out_channels
    cdef floating* outs[6]
    output_tile_steps(g, y, n, index % tiles_w, m, spare + n * (m - 1) * cout, cout,
                      outs)
    if floating is float:
        winograd1d_output_tile_float(products + index * cout, stride, m, cout, outs)
    else:
        winograd1d_output_tile_double(products + index * cout, stride, m, cout, outs)


cdef inline void winograd1d_transform_input(
    ConvGeometry g, const floating* x, intp_t n_samples,
    floating* v,        # OUT: 8 planes of (tiles, C), the output's tiles in order
    floating* zeros,    # scratch: (C,), zeroed here
) noexcept nogil:
    """B^T d for the 8 inputs each output tile reads (zeros past either end)."""
    cdef int m = winograd1d_outputs(g.kernel_w)
    cdef intp_t tiles_w = (g.out_w + m - 1) // m
    cdef intp_t stride = winograd1d_point_stride(n_samples * tiles_w, g.channels)
    cdef intp_t j, index
    for j in range(g.channels):
        zeros[j] = 0
    for index in range(n_samples * tiles_w):
        winograd1d_input_tile(g, x, index, tiles_w, v, stride, zeros)


cdef inline void output_tile_steps(
    ConvGeometry g, floating* y, intp_t n, intp_t t, int m,
    floating* outside, intp_t outside_step,
    floating** rows,    # OUT: m rows of OC values
) noexcept nogil:
    """The rows of ``y`` (n, out_w, OC) holding the outputs of tile t of
    sample n; a step past the series' end gets ``outside + (i - 1) *
    outside_step`` instead (a tile's first step is always inside)."""
    cdef intp_t i, ow
    for i in range(m):
        ow = m * t + i
        if ow < g.out_w:
            rows[i] = y + (n * g.out_w + ow) * g.out_channels
        else:
            rows[i] = outside + (i - 1) * outside_step


cdef inline void winograd1d_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* transformed,  # IN: from winograd_weights, (8, plane)
    bint transposed,              # planes (OC, C) instead of (C, OC)
    floating* scratch,            # see winograd1d_scratch
    floating* y,                  # OUT: (n_samples * out_w, OC)
) noexcept nogil:
    """The convolution of a chunk of series by Winograd F(9 - r, r):
    transform every input tile, one GEMM per point over all the chunk's
    tiles at once, transform back.  Any padding: tile inputs outside the
    series read zeros, outputs past its end go to spare rows.  With
    ``transposed`` the GEMMs read the weights' planes transposed: the input
    gradient's convolution uses the forward weights' transform (taps
    reversed) with no copy that swaps the channels."""
    cdef WinogradScratch s = winograd1d_scratch(g, n_samples)
    cdef intp_t n_tiles = s.n_tiles, positions = s.positions
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    cdef intp_t v_stride = winograd1d_point_stride(n_tiles, cin)
    cdef intp_t m_stride = winograd1d_point_stride(n_tiles, cout)
    cdef floating* v = scratch
    cdef floating* products = scratch + s.products
    cdef intp_t xi, index
    winograd1d_transform_input(g, x, n_samples, v, scratch + s.zeros)
    for xi in range(positions):
        gemm_rowmajor(c'N', c'T' if transposed else c'N', <int> n_tiles, <int> cout,
                      <int> cin, <floating> 1, v + xi * v_stride, <int> cin,
                      transformed + xi * plane, <int> (cin if transposed else cout),
                      <floating> 0, products + xi * m_stride, <int> cout)
    for index in range(n_tiles):
        winograd1d_output_tile(g, products, index, s.tiles_w, m_stride, y,
                               scratch + s.spare)


cdef inline void winograd1d_shared(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* transformed,  # IN: from winograd_weights, (8, plane)
    floating* scratch,            # see winograd1d_scratch
    floating* y,                  # OUT: (n_samples * out_w, OC)
    int n_threads,
) noexcept nogil:
    """winograd1d_chunk's convolution of a few series as one chunk on all
    threads: the tiles' transforms split between them, and the 8 GEMMs, one
    point each (so that each thread packs only its own points' weights;
    blocks of columns had every thread pack all 8 planes).  The same
    operations on the same data as one thread: the same results."""
    cdef WinogradScratch s = winograd1d_scratch(g, n_samples)
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    cdef intp_t v_stride = winograd1d_point_stride(s.n_tiles, cin)
    cdef intp_t m_stride = winograd1d_point_stride(s.n_tiles, cout)
    cdef floating* products = scratch + s.products
    cdef intp_t j, index, xi
    for j in range(cin):
        scratch[s.zeros + j] = 0
    for index in prange(s.n_tiles, schedule="static", num_threads=n_threads):
        winograd1d_input_tile(g, x, index, s.tiles_w, scratch, v_stride,
                              scratch + s.zeros)
    for xi in prange(WINOGRAD1D_POINTS, schedule="static", num_threads=n_threads):
        gemm_rowmajor(c'N', c'N', <int> s.n_tiles, <int> cout, <int> cin, <floating> 1,
                      scratch + xi * v_stride, <int> cin, transformed + xi * plane,
                      <int> cout, <floating> 0, products + xi * m_stride, <int> cout)
    for index in prange(s.n_tiles, schedule="static", num_threads=n_threads):
        winograd1d_output_tile(g, products, index, s.tiles_w, m_stride, y,
                               scratch + s.spare)


cdef inline void winograd1d_weight_grad_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* dz,     # IN: d loss/d pre-activation, (n_samples * out_w, OC)
    floating* du,           # OUT: d loss/d transformed weights, 8 padded planes
    floating* scratch,      # see winograd1d_scratch
) noexcept nogil:
    """This chunk's share of the weight gradient in the Winograd domain:
    du[xi] = V[xi]^T @ (A dy)[xi] over the chunk's tiles (one GEMM per
    point), V the forward's transformed input; ``winograd1d_weight_grad``
    maps the sum over chunks back to the kernel's taps."""
    cdef WinogradScratch s = winograd1d_scratch(g, n_samples)
    cdef intp_t n_tiles = s.n_tiles, positions = s.positions
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t plane = winograd_plane(cin, cout)
    cdef int m = winograd1d_outputs(g.kernel_w)
    cdef intp_t v_stride = winograd1d_point_stride(n_tiles, cin)
    cdef intp_t m_stride = winograd1d_point_stride(n_tiles, cout)
    cdef floating* v = scratch
    cdef floating* dm = scratch + s.products
    cdef floating* zeros = scratch + s.zeros
    cdef floating* dy[6]
    cdef intp_t n, t, i, xi, index = 0
    winograd1d_transform_input(g, x, n_samples, v, zeros)
    for i in range(cout):
        zeros[i] = 0
    for n in range(n_samples):
        for t in range(s.tiles_w):
            # Read only: past the series' end, all read the zeros.
            output_tile_steps(g, <floating*> dz, n, t, m, zeros, 0, dy)
            if floating is float:
                winograd1d_grad_output_tile_float(<const float**> dy, m, cout,
                                                  dm + index * cout, m_stride)
            else:
                winograd1d_grad_output_tile_double(<const double**> dy, m, cout,
                                                   dm + index * cout, m_stride)
            index = index + 1
    for xi in range(positions):
        gemm_rowmajor(c'T', c'N', <int> cin, <int> cout, <int> n_tiles, <floating> 1,
                      v + xi * v_stride, <int> cin, dm + xi * m_stride, <int> cout,
                      <floating> 0, du + xi * plane, <int> cout)


cdef inline void transform_weights_1d(
    const floating* w, int r, intp_t cin, intp_t cout, const floating* scale,
    floating* u, intp_t u_plane, bint reverse, int n_threads,
) noexcept nogil:
    """u = G g (times scale) for F(9 - r, r), float or double, in blocks of
    input channels shared by the threads; ``reverse`` takes the taps last to
    first."""
    cdef intp_t block, n_blocks = (cin + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    for block in prange(n_blocks, schedule="static", num_threads=n_threads):
        if floating is float:
            winograd1d_weights_float(w, r, cin, cout, scale, u, u_plane, reverse,
                                     block * CHANNEL_BLOCK,
                                     min(cin, (block + 1) * CHANNEL_BLOCK))
        else:
            winograd1d_weights_double(w, r, cin, cout, scale, u, u_plane, reverse,
                                      block * CHANNEL_BLOCK,
                                      min(cin, (block + 1) * CHANNEL_BLOCK))


cdef inline void weight_grad_from_transformed_1d(
    const floating* du, int r, intp_t cin, intp_t cout, intp_t u_plane,
    floating* dw, int n_threads,
) noexcept nogil:
    """dw = G^T du for F(9 - r, r), float or double, a tap per thread at a
    time."""
    cdef int k
    for k in prange(r, schedule="static", num_threads=n_threads):
        if floating is float:
            winograd1d_weight_grad_float(du, r, cin, cout, u_plane, dw, k)
        else:
            winograd1d_weight_grad_double(du, r, cin, cout, u_plane, dw, k)
