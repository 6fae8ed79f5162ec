# Winograd F(n + 1 - r, r) for series: 1-D, stride-1, undilated
# convolutions with kernels of r = 3..7 taps over maps of height 1 (NHWC, so
# a series is (n_samples, 1, length, C)), on n = 8 or 10 points.  The
# transforms are in _winograd1d.h, the n GEMMs per chunk here, laid out as
# _winograd.pxd's 2-D ones: forward and input gradient use winograd1d_chunk
# (the input gradient with the kernel turned round), the weight gradient
# winograd1d_weight_grad_chunk.  Called by the conv kernels of _conv.pyx
# inside their prange loops; BLAS on one thread.  A geometry's
# ``winograd_tile`` is the number of points (is_series_tile).

from cython cimport floating
from cython.parallel cimport prange

from ._blas cimport gemm_rowmajor
from ._column_sums cimport add_column_sums
from ._conv_geometry cimport ConvGeometry
from ._products cimport forward_product
from ._typedefs cimport intp_t
from ._winograd cimport WinogradScratch, winograd_plane


cdef extern from "_winograd1d.h":
    ctypedef struct Winograd1dPlan:
        int n, pairs, r, m
    void winograd1d_plan(int n, int r, Winograd1dPlan* plan) noexcept nogil
    void winograd1d_weights_float(const float* w, const Winograd1dPlan* plan,
                                  intp_t cin, intp_t cout, const float* scale,
                                  float* u, intp_t u_plane, intp_t c0,
                                  intp_t c1) noexcept nogil
    void winograd1d_weights_double(const double* w, const Winograd1dPlan* plan,
                                   intp_t cin, intp_t cout, const double* scale,
                                   double* u, intp_t u_plane, intp_t c0,
                                   intp_t c1) noexcept nogil
    void winograd1d_weight_grad_float(const float* du, const Winograd1dPlan* plan,
                                      intp_t cin, intp_t cout, intp_t u_plane,
                                      float* dw, int k) noexcept nogil
    void winograd1d_weight_grad_double(const double* du, const Winograd1dPlan* plan,
                                       intp_t cin, intp_t cout, intp_t u_plane,
                                       double* dw, int k) noexcept nogil
    void winograd1d_input_tile_float(const float** d, intp_t cin, float* v,
                                     intp_t stride,
                                     const Winograd1dPlan* plan) noexcept nogil
    void winograd1d_input_tile_double(const double** d, intp_t cin, double* v,
                                      intp_t stride,
                                      const Winograd1dPlan* plan) noexcept nogil
    void winograd1d_output_tile_float(const float* mm, intp_t stride, intp_t cout,
                                      const float* bias, float** y,
                                      const Winograd1dPlan* plan) noexcept nogil
    void winograd1d_output_tile_double(const double* mm, intp_t stride, intp_t cout,
                                       const double* bias, double** y,
                                       const Winograd1dPlan* plan) noexcept nogil
    void winograd1d_grad_output_tile_float(const float** dy, intp_t cout, float* dm,
                                           intp_t stride,
                                           const Winograd1dPlan* plan) noexcept nogil
    void winograd1d_grad_output_tile_double(const double** dy, intp_t cout,
                                            double* dm, intp_t stride,
                                            const Winograd1dPlan* plan) noexcept nogil


cdef enum:
    # The transforms' points: values of a transformed tile per channel, and
    # the ``winograd_tile`` that asks for them.  Prediction uses 8, training
    # 10 (see layers/_conv.py).
    WINOGRAD1D_POINTS = 8
    WINOGRAD1D_TRAINING_POINTS = 10
    WINOGRAD1D_MAX_POINTS = 10
    # Kernel sizes it takes: n + 1 - r outputs per tile.
    WINOGRAD1D_MIN_KERNEL = 3
    WINOGRAD1D_MAX_KERNEL = 7
    # Input channels per share of the weights' transform.
    CHANNEL_BLOCK = 16


cdef inline bint is_series_tile(int tile) noexcept nogil:
    """Whether a ``winograd_tile`` is a series' (their points, 8 or 10)."""
    return tile == WINOGRAD1D_POINTS or tile == WINOGRAD1D_TRAINING_POINTS


cdef inline Winograd1dPlan plan_of(ConvGeometry g) noexcept nogil:
    """The transform's coefficients for g's points and kernel."""
    cdef Winograd1dPlan plan
    winograd1d_plan(g.winograd_tile, <int> g.kernel_w, &plan)
    return plan


cdef inline intp_t winograd1d_point_stride(intp_t n_tiles, intp_t width) noexcept nogil:
    """Values between the planes (one per point) of a chunk's n_tiles
    transformed tiles of ``width`` channels: padded as winograd_plane is,
    against 4K aliasing between the planes."""
    return n_tiles * width + 16


cdef inline WinogradScratch winograd1d_scratch(ConvGeometry g,
                                               intp_t n_samples) noexcept nogil:
    """The scratch layout of a chunk of n_samples output series: the
    transformed input tiles at 0, n planes of (tiles, C), then the GEMM
    outputs or transformed output gradients, n planes of (tiles, OC), a row
    of zeros (max(C, OC)) and spare rows for outputs past the series' end
    (m - 1 per sample, of OC values); ``size`` values in all.  Plane by
    plane (point-major), each point's GEMM reads and writes contiguous rows:
    with the points of a tile side by side instead, rows 8 x 128 float32
    apart (4 KiB) made the weight gradient's GEMMs 30% slower."""
    cdef WinogradScratch s
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef int n = g.winograd_tile, m = n + 1 - <int> g.kernel_w
    s.tiles_h = 1
    s.tiles_w = (g.out_w + m - 1) // m
    s.n_tiles = n_samples * s.tiles_w
    s.positions = n
    s.products = s.positions * winograd1d_point_stride(s.n_tiles, cin)
    s.zeros = s.products + s.positions * winograd1d_point_stride(s.n_tiles, cout)
    s.spare = s.zeros + max(cin, cout)
    s.size = s.spare + n_samples * (m - 1) * cout
    s.tmp = s.size  # no transform tile (F(4x4)'s, in 2-D)
    return s


cdef struct SeriesChunk:
    # What one chunk's transforms and GEMMs need (winograd1d_chunk, _shared,
    # _weight_grad_chunk): the transform, the scratch layout, the values
    # between the weights' planes and between the planes of the transformed
    # inputs (v) and of the GEMM outputs (m).
    Winograd1dPlan plan
    WinogradScratch s
    intp_t plane, v_stride, m_stride


cdef inline SeriesChunk series_chunk(ConvGeometry g, intp_t n_samples) noexcept nogil:
    cdef SeriesChunk k
    k.plan = plan_of(g)
    k.s = winograd1d_scratch(g, n_samples)
    k.plane = winograd_plane(g.channels, g.out_channels)
    k.v_stride = winograd1d_point_stride(k.s.n_tiles, g.channels)
    k.m_stride = winograd1d_point_stride(k.s.n_tiles, g.out_channels)
    return k


cdef inline void winograd1d_input_tile(
    ConvGeometry g, const Winograd1dPlan* plan, const floating* x, intp_t index,
    intp_t tiles_w,
    floating* v,            # OUT: tile ``index``'s rows of the n planes of (tiles, C)
    intp_t stride,          # values between the planes
    const floating* zeros,  # IN: (C,) zeros
) noexcept nogil:
    """B^T d for the n inputs that output tile ``index`` of the chunk (tile
    index % tiles_w of sample index // tiles_w) reads, zeros past either end."""
    cdef intp_t n = index // tiles_w, t = index % tiles_w, cin = g.channels
    cdef const floating* d[WINOGRAD1D_MAX_POINTS]
    cdef intp_t j, iw
    for j in range(plan.n):
        iw = plan.m * t + j - g.pad_left
        if iw >= 0 and iw < g.width:
            d[j] = x + (n * g.width + iw) * cin
        else:
            d[j] = zeros
    if floating is float:
        winograd1d_input_tile_float(d, cin, v + index * cin, stride, plan)
    else:
        winograd1d_input_tile_double(d, cin, v + index * cin, stride, plan)


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


cdef inline void winograd1d_output_tile(
    ConvGeometry g, const Winograd1dPlan* plan, const floating* products,
    intp_t index, intp_t tiles_w,
    intp_t stride,          # values between the planes of products
    const floating* bias,   # IN: (OC,) added to every output (zeros for none)
    floating* y,            # OUT: (n_samples * out_w, OC)
    floating* spare,        # scratch: (m - 1) rows of OC values per sample
) noexcept nogil:
    """bias + A^T M for output tile ``index`` of the chunk into its rows of
    ``y``; steps past the series' end go to the sample's own spare rows."""
    cdef intp_t n = index // tiles_w, cout = g.out_channels
    cdef floating* outs[WINOGRAD1D_MAX_POINTS]
    output_tile_steps(g, y, n, index % tiles_w, plan.m,
                      spare + n * (plan.m - 1) * cout, cout, outs)
    if floating is float:
        winograd1d_output_tile_float(products + index * cout, stride, cout, bias, outs,
                                     plan)
    else:
        winograd1d_output_tile_double(products + index * cout, stride, cout, bias,
                                      outs, plan)


cdef inline void winograd1d_transform_input(
    ConvGeometry g, const Winograd1dPlan* plan, const floating* x, intp_t n_samples,
    floating* v,        # OUT: n planes of (tiles, C), the output's tiles in order
    floating* zeros,    # scratch: (max(C, OC),), zeroed here
) noexcept nogil:
    """B^T d for the n inputs each output tile reads (zeros past either end)."""
    cdef intp_t tiles_w = (g.out_w + plan.m - 1) // plan.m
    cdef intp_t stride = winograd1d_point_stride(n_samples * tiles_w, g.channels)
    cdef intp_t j, index
    for j in range(max(g.channels, g.out_channels)):
        zeros[j] = 0
    for index in range(n_samples * tiles_w):
        winograd1d_input_tile(g, plan, x, index, tiles_w, v, stride, zeros)


cdef inline void winograd1d_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* transformed,  # IN: from winograd_weights, (n, plane)
    const floating* bias,         # IN: (OC,) added to the outputs, or NULL
    floating* scratch,            # see winograd1d_scratch
    floating* y,                  # OUT: (n_samples * out_w, OC)
) noexcept nogil:
    """The convolution of a chunk of series by Winograd F(n + 1 - r, r):
    transform every input tile, one GEMM per point over all the chunk's
    tiles at once, transform back.  Any padding: tile inputs outside the
    series read zeros, outputs past its end go to spare rows."""
    cdef SeriesChunk k = series_chunk(g, n_samples)
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef floating* products = scratch + k.s.products
    cdef intp_t xi, index
    winograd1d_transform_input(g, &k.plan, x, n_samples, scratch, scratch + k.s.zeros)
    for xi in range(k.plan.n):
        forward_product(scratch + xi * k.v_stride, cin, k.s.n_tiles, cin,
                        transformed + xi * k.plane, cout, products + xi * k.m_stride,
                        cout)
    for index in range(k.s.n_tiles):
        winograd1d_output_tile(g, &k.plan, products, index, k.s.tiles_w, k.m_stride,
                               bias if bias != NULL else scratch + k.s.zeros, y,
                               scratch + k.s.spare)


cdef inline void winograd1d_shared(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* transformed,  # IN: from winograd_weights, (n, plane)
    const floating* bias,         # IN: (OC,) added to the outputs, or NULL
    floating* scratch,            # see winograd1d_scratch
    floating* y,                  # OUT: (n_samples * out_w, OC)
    int n_threads,
) noexcept nogil:
    """winograd1d_chunk's convolution of a few series as one chunk on all
    threads: the tiles' transforms split between them, and the GEMMs, one
    point each (so that each thread packs only its own points' weights;
    blocks of columns had every thread pack all the planes).  The same
    operations on the same data as one thread: the same results."""
    cdef SeriesChunk k = series_chunk(g, n_samples)
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef floating* products = scratch + k.s.products
    cdef floating* zeros = scratch + k.s.zeros
    cdef intp_t j, index, xi
    for j in range(max(cin, cout)):
        zeros[j] = 0
    for index in prange(k.s.n_tiles, schedule="static", num_threads=n_threads):
        winograd1d_input_tile(g, &k.plan, x, index, k.s.tiles_w, scratch, k.v_stride,
                              zeros)
    for xi in prange(k.plan.n, schedule="static", num_threads=n_threads):
        forward_product(scratch + xi * k.v_stride, cin, k.s.n_tiles, cin,
                        transformed + xi * k.plane, cout, products + xi * k.m_stride,
                        cout)
    for index in prange(k.s.n_tiles, schedule="static", num_threads=n_threads):
        winograd1d_output_tile(g, &k.plan, products, index, k.s.tiles_w, k.m_stride,
                               bias if bias != NULL else zeros, y, scratch + k.s.spare)


cdef inline void winograd1d_weight_grad_chunk(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* dz,     # IN: d loss/d pre-activation, (n_samples * out_w, OC)
    floating* du,           # OUT: d loss/d transformed weights, n padded planes
    double* bias_grad,      # OUT: (OC,) this chunk's bias gradient, or NULL
    floating* scratch,      # see winograd1d_scratch
) noexcept nogil:
    """This chunk's share of the weight gradient in the Winograd domain:
    du[xi] = V[xi]^T @ (A dy)[xi] over the chunk's tiles (one GEMM per
    point), V the forward's transformed input; ``winograd1d_weight_grad``
    maps the sum over chunks back to the kernel's taps.  The bias gradient
    comes with it: (A dy) at the point 1 is the sum of each tile's outputs
    (1^i = 1), so the sum of that plane over the tiles is the sum of dz
    over its rows, read m times less."""
    cdef SeriesChunk k = series_chunk(g, n_samples)
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef floating* dm = scratch + k.s.products
    cdef floating* zeros = scratch + k.s.zeros
    cdef floating* dy[WINOGRAD1D_MAX_POINTS]
    cdef intp_t n, t, i, xi, index = 0
    winograd1d_transform_input(g, &k.plan, x, n_samples, scratch, zeros)
    for n in range(n_samples):
        for t in range(k.s.tiles_w):
            # Read only: past the series' end, all read the zeros.
            output_tile_steps(g, <floating*> dz, n, t, k.plan.m, zeros, 0, dy)
            if floating is float:
                winograd1d_grad_output_tile_float(<const float**> dy, cout,
                                                  dm + index * cout, k.m_stride,
                                                  &k.plan)
            else:
                winograd1d_grad_output_tile_double(<const double**> dy, cout,
                                                   dm + index * cout, k.m_stride,
                                                   &k.plan)
            index = index + 1
    for xi in range(k.plan.n):
        gemm_rowmajor(c'T', c'N', <int> cin, <int> cout, <int> k.s.n_tiles,
                      <floating> 1, scratch + xi * k.v_stride, <int> cin,
                      dm + xi * k.m_stride, <int> cout, <floating> 0,
                      du + xi * k.plane, <int> cout)
    if bias_grad == NULL:
        return
    for i in range(cout):
        bias_grad[i] = 0
    add_column_sums(dm + k.m_stride, k.s.n_tiles, cout, cout, bias_grad)


cdef inline void transform_weights_1d(
    const floating* w, int points, int r, intp_t cin, intp_t cout,
    const floating* scale, floating* u, intp_t u_plane, int n_threads,
) noexcept nogil:
    """u = G g (times scale) for F(points + 1 - r, r), float or double, in
    blocks of input channels shared by the threads."""
    cdef Winograd1dPlan plan
    cdef intp_t block, n_blocks = (cin + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    winograd1d_plan(points, r, &plan)
    for block in prange(n_blocks, schedule="static", num_threads=n_threads):
        if floating is float:
            winograd1d_weights_float(w, &plan, cin, cout, scale, u, u_plane,
                                     block * CHANNEL_BLOCK,
                                     min(cin, (block + 1) * CHANNEL_BLOCK))
        else:
            winograd1d_weights_double(w, &plan, cin, cout, scale, u, u_plane,
                                      block * CHANNEL_BLOCK,
                                      min(cin, (block + 1) * CHANNEL_BLOCK))


cdef inline void weight_grad_from_transformed_1d(
    const floating* du, int points, int r, intp_t cin, intp_t cout, intp_t u_plane,
    floating* dw, int n_threads,
) noexcept nogil:
    """dw = G^T du for F(points + 1 - r, r), float or double, a tap per
    thread at a time."""
    cdef Winograd1dPlan plan
    cdef int k
    winograd1d_plan(points, r, &plan)
    for k in prange(r, schedule="static", num_threads=n_threads):
        if floating is float:
            winograd1d_weight_grad_float(du, &plan, cin, cout, u_plane, dw, k)
        else:
            winograd1d_weight_grad_double(du, &plan, cin, cout, u_plane, dw, k)
