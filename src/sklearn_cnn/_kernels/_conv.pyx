"""2-D convolution kernels: im2col (or Winograd) + GEMM per chunk of samples, NHWC.

Notes
-----
Layout.  Feature maps are NHWC (channels last) and C-contiguous.  Then the
im2col matrix of a *chunk of several samples* is one row-major matrix with a
row per output pixel and a column per (kh, kw, c) tap, and the convolution
of the whole chunk is a single GEMM against the weights stored as
(kh, kw, c, out_channel):

    out[rows, out_c] = cols[rows, taps] @ weights[taps, out_c]

With channels first (NCHW) each sample needs its own thin GEMM; here the
chunk makes the GEMM as fat as we like, and the output lands directly in
NHWC order with no transpose.  Along a row of the input the taps of one
kernel row are contiguous (kw, c), so im2col and col2im copy whole runs.

Parallelism.  ``prange`` runs over chunks of ``samples_per_chunk`` samples
in the order of ``in_turn``, so that two threads get every other chunk: the
last chunk of a batch is often shorter, and a batch of 5 series in chunks
of 2, 2 and 1 gave one of 2 threads 4 series in contiguous blocks, 3 in
turn; each thread has its own im2col buffer (row ``threadid()`` of
``cols``).  BLAS
is called single-threaded inside (the caller limits it).  The chunk size is
chosen by the caller from the layer's shape only, never from the thread
count, and the weight and bias gradients are summed per chunk and then
reduced over chunks in chunk order: the result is bitwise the same for any
number of threads.

One thread.  A parallel region of one thread still costs libgomp about 0.7
us (a team allocated and freed, a futex wake at its closing barrier), so the
forward kernels run their items in a plain loop on one thread: one image's
prediction, alternated in one process on a 2-core AMD EPYC, 0.95x as long
for resnet2d (12 kernels) and FM-LeNet (5), 1-thread regions skipped.

Activation.  The layer's activation is fused: forward applies it to the
GEMM output while it is in cache, backward first turns d loss/d output into
d loss/d pre-activation using the derivative written in terms of the output.

Winograd.  3x3, stride-1, undilated convolutions with enough channels are
given Winograd weights by the caller (``winograd_weights``): their chunks
then run ``_winograd.pxd`` instead of im2col + GEMM, forward, input gradient
and weight gradient (F(2x2, 3x3): 2.25x fewer multiplications; F(4x4, 3x3):
4x, less precise; the weights' shape says which).  Series (maps of height 1)
with kernels of 3-7 taps likewise run ``_winograd1d.pxd``'s F(n + 1 - r, r)
on 8 or 10 points (8 or 10 planes), whose output transform also adds the
bias.  Everything around the convolution of a chunk (epilogue, pooling,
chunking, reduction) is shared.

Max pooling.  A convolution followed by max pooling runs fused
(``conv2d_maxpool_*``): the chunk's convolution output lives only in a
per-thread buffer and is pooled while in cache, so the full-resolution map
is never written to memory.  Backward needs only the pooled values and the
argmax: the gradient reaches the conv output only at the winning positions,
where the activation's output *is* the pooled value.
"""

from cython.parallel cimport prange, threadid
from cython cimport floating
from libc.math cimport sqrt
from libc.stdint cimport uintptr_t
from libc.string cimport memcpy, memset

from ._activations cimport (
    activate,
    add_bias_and_activate,
    multiply_by_derivative,
)
from ._blas cimport gemm_rowmajor
from ._column_sums cimport add_column_sums
from ._conv_geometry cimport ConvGeometry, make_geometry
from ._pool cimport max_pool_rows, sample_winners, unpool_image, winners_pointer
from ._products cimport forward_product, implicit_convolve
from ._typedefs cimport IDENTITY, RELU, intp_t, int32_t
from ._winograd cimport (
    transform_weights,
    weight_grad_from_transformed,
    WinogradScratch,
    winograd_chunk,
    winograd_input_tile,
    winograd_output_tile,
    winograd_plane,
    winograd_positions,
    winograd_scratch,
    winograd_set_wide,
    winograd_shared_scratch,
    winograd_weight_grad_chunk,
)
from ._winograd1d cimport (
    WINOGRAD1D_MAX_KERNEL,
    WINOGRAD1D_MIN_KERNEL,
    WINOGRAD1D_POINTS,
    WINOGRAD1D_TRAINING_POINTS,
    is_series_tile,
    transform_weights_1d,
    weight_grad_from_transformed_1d,
    winograd1d_chunk,
    winograd1d_scratch,
    winograd1d_shared,
    winograd1d_weight_grad_chunk,
)

cdef enum:
    REDUCE_BLOCK = 4096
    # Rows per share of a shared Winograd convolution's epilogue.
    EPILOGUE_ROWS = 64
    # Values per long row of scaled_shifted's grouped rows.
    EPILOGUE_PATTERN = 256

# For Python (layers/_conv.py): the tile arguments that ask for series'
# arrays, by their points (_winograd1d.pxd); 2 and 4 are the 2-D tiles' sides.
WINOGRAD_SERIES_TILE = WINOGRAD1D_POINTS
WINOGRAD_SERIES_TRAINING_TILE = WINOGRAD1D_TRAINING_POINTS

cdef inline intp_t in_turn(intp_t turn, intp_t n_items) noexcept nogil:
    """The item that a static schedule's ``turn`` runs: items 0, 2, 4, ...
    then 1, 3, 5, ...  A static schedule gives the first of two threads the
    first half of the turns, so each thread gets every other item, as
    ``schedule(static, 1)`` would, whose loops took 25.8 KB more machine code.
    The order changes nothing else: each item writes its own outputs."""
    cdef intp_t half = (n_items + 1) // 2
    return 2 * turn if turn < half else 2 * (turn - half) + 1


# The chunk functions below are plain cdef functions, not inline: each is
# called from several kernels (and built for float and double, plain and
# AVX2), and inlined at every call they took the wheel past its 1 MB.
cdef void im2col_chunk(
    const floating* x,      # IN: first sample of the chunk, (n, H, W, C)
    intp_t n_samples, intp_t height, intp_t width, intp_t channels,
    intp_t kernel_h, intp_t kernel_w, intp_t stride_h, intp_t stride_w,
    intp_t pad_top, intp_t pad_left, intp_t dilation_h, intp_t dilation_w,
    intp_t out_h, intp_t out_w,
    floating* cols,         # OUT: (n * out_h * out_w, kernel_h * kernel_w * C)
) noexcept nogil:
    cdef intp_t n, oh, ow, kh, kw, ih, iw, iw0, kw_lo, kw_hi, j
    cdef intp_t run = kernel_w * channels
    cdef const floating* sample
    cdef const floating* src
    cdef floating* dst = cols
    if kernel_h == 1 and kernel_w == 1 and pad_top == 0 and pad_left == 0:
        # A strided 1x1 convolution (a residual shortcut) gathers one pixel
        # per row, always inside the image: no taps to clip.
        for n in range(n_samples):
            sample = x + n * height * width * channels
            for oh in range(out_h):
                for ow in range(out_w):
                    src = sample + (oh * stride_h * width + ow * stride_w) * channels
                    for j in range(channels):
                        dst[j] = src[j]
                    dst += channels
        return
    for n in range(n_samples):
        sample = x + n * height * width * channels
        for oh in range(out_h):
            for ow in range(out_w):
                iw0 = ow * stride_w - pad_left
                # Taps kw in [kw_lo, kw_hi) fall inside the image; both stay
                # within [0, kernel_w] even when the padding exceeds the kernel.
                kw_lo = min(-iw0, kernel_w) if iw0 < 0 else 0
                kw_hi = width - iw0 if iw0 + kernel_w > width else kernel_w
                if kw_hi < kw_lo:
                    kw_hi = kw_lo
                # Plain loops, not memcpy/memset: the runs are often a few
                # values long (one input channel) and a call costs more.
                for kh in range(kernel_h):
                    ih = oh * stride_h - pad_top + kh * dilation_h
                    if ih < 0 or ih >= height:
                        for j in range(run):
                            dst[j] = 0
                    elif dilation_w > 1:
                        # Dilated: the taps of a kernel row are not one run.
                        for kw in range(kernel_w):
                            iw = iw0 + kw * dilation_w
                            src = sample + (ih * width + iw) * channels
                            for j in range(channels):
                                dst[kw * channels + j] = (
                                    src[j] if iw >= 0 and iw < width else 0)
                    else:
                        src = sample + (ih * width + iw0) * channels
                        for j in range(kw_lo * channels):
                            dst[j] = 0
                        for j in range(kw_lo * channels, kw_hi * channels):
                            dst[j] = src[j]
                        for j in range(kw_hi * channels, run):
                            dst[j] = 0
                    dst += run


cdef void col2im_chunk(
    const floating* cols,   # IN: (n * out_h * out_w, kernel_h * kernel_w * C)
    intp_t n_samples, intp_t height, intp_t width, intp_t channels,
    intp_t kernel_h, intp_t kernel_w, intp_t stride_h, intp_t stride_w,
    intp_t pad_top, intp_t pad_left, intp_t dilation_h, intp_t dilation_w,
    intp_t out_h, intp_t out_w,
    floating* x,            # OUT: (n, H, W, C), overwritten
) noexcept nogil:
    cdef intp_t n, oh, ow, kh, kw, ih, iw, iw0, kw_lo, kw_hi, j, count
    cdef intp_t run = kernel_w * channels
    cdef floating* sample
    cdef floating* dst
    cdef const floating* src = cols
    memset(x, 0, n_samples * height * width * channels * sizeof(floating))
    for n in range(n_samples):
        sample = x + n * height * width * channels
        for oh in range(out_h):
            for ow in range(out_w):
                iw0 = ow * stride_w - pad_left
                kw_lo = min(-iw0, kernel_w) if iw0 < 0 else 0
                kw_hi = width - iw0 if iw0 + kernel_w > width else kernel_w
                count = (kw_hi - kw_lo) * channels
                for kh in range(kernel_h):
                    ih = oh * stride_h - pad_top + kh * dilation_h
                    if ih >= 0 and ih < height and dilation_w > 1:
                        for kw in range(kernel_w):
                            iw = iw0 + kw * dilation_w
                            if iw >= 0 and iw < width:
                                dst = sample + (ih * width + iw) * channels
                                for j in range(channels):
                                    dst[j] += src[kw * channels + j]
                    elif ih >= 0 and ih < height and count > 0:
                        dst = sample + (ih * width + iw0 + kw_lo) * channels
                        for j in range(count):
                            dst[j] += src[kw_lo * channels + j]
                    src += run


cdef inline void valid_outputs(
    intp_t out_size, intp_t size, intp_t stride, intp_t pad, intp_t tap,
    intp_t* first, intp_t* stop,
) noexcept nogil:
    """Outputs o in [first, stop) read an input o * stride - pad + tap inside
    [0, size); the others read padding."""
    cdef intp_t lo = pad - tap
    first[0] = 0 if lo <= 0 else (lo + stride - 1) // stride
    stop[0] = 0 if size - 1 + pad - tap < 0 else (size - 1 + pad - tap) // stride + 1
    if stop[0] > out_size:
        stop[0] = out_size
    if first[0] > stop[0]:
        first[0] = stop[0]


cdef void im2col_taps_major(
    const floating* x,      # IN: first sample of the chunk, (n, H, W, 1)
    intp_t n_samples, intp_t height, intp_t width,
    intp_t kernel_h, intp_t kernel_w, intp_t stride_h, intp_t stride_w,
    intp_t pad_top, intp_t pad_left, intp_t dilation_h, intp_t dilation_w,
    intp_t out_h, intp_t out_w,
    floating* cols,         # OUT: (kernel_h * kernel_w, n * out_h * out_w)
) noexcept nogil:
    """im2col transposed, for one input channel.

    With a single channel, the row-per-pixel layout has rows of a few values
    and copies them a handful at a time; tap by tap, each output row is one
    long shifted copy of an input row.
    """
    cdef intp_t rows = n_samples * out_h * out_w
    cdef intp_t kh, kw, n, oh, ow, ih, ow_first, ow_stop
    cdef floating* dst
    cdef const floating* src
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            valid_outputs(out_w, width, stride_w, pad_left, kw * dilation_w, &ow_first,
                          &ow_stop)
            dst = cols + (kh * kernel_w + kw) * rows
            for n in range(n_samples):
                for oh in range(out_h):
                    ih = oh * stride_h - pad_top + kh * dilation_h
                    if ih < 0 or ih >= height:
                        for ow in range(out_w):
                            dst[ow] = 0
                    else:
                        src = x + (n * height + ih) * width - pad_left + kw * dilation_w
                        for ow in range(ow_first):
                            dst[ow] = 0
                        if stride_w == 1:  # contiguous: vectorised copy
                            for ow in range(ow_first, ow_stop):
                                dst[ow] = src[ow]
                        else:
                            for ow in range(ow_first, ow_stop):
                                dst[ow] = src[ow * stride_w]
                        for ow in range(ow_stop, out_w):
                            dst[ow] = 0
                    dst += out_w


cdef void col2im_taps_major(
    const floating* cols,   # IN: (kernel_h * kernel_w, n * out_h * out_w)
    intp_t n_samples, intp_t height, intp_t width,
    intp_t kernel_h, intp_t kernel_w, intp_t stride_h, intp_t stride_w,
    intp_t pad_top, intp_t pad_left, intp_t dilation_h, intp_t dilation_w,
    intp_t out_h, intp_t out_w,
    floating* x,            # OUT: (n, H, W, 1), overwritten
) noexcept nogil:
    cdef intp_t rows = n_samples * out_h * out_w
    cdef intp_t kh, kw, n, oh, ow, ih, ow_first, ow_stop
    cdef const floating* src
    cdef floating* dst
    memset(x, 0, n_samples * height * width * sizeof(floating))
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            valid_outputs(out_w, width, stride_w, pad_left, kw * dilation_w, &ow_first,
                          &ow_stop)
            src = cols + (kh * kernel_w + kw) * rows
            for n in range(n_samples):
                for oh in range(out_h):
                    ih = oh * stride_h - pad_top + kh * dilation_h
                    if ih >= 0 and ih < height:
                        dst = x + (n * height + ih) * width - pad_left + kw * dilation_w
                        for ow in range(ow_first, ow_stop):
                            dst[ow * stride_w] += src[ow]
                    src += out_w


cdef void chunk_forward(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* weights, const floating* bias, int activation,
    floating* cols,             # scratch: chunk rows * taps (or Winograd's)
    floating* y,                # OUT: (n_samples * out_h * out_w, OC), activated
    const floating* scale,      # IN: (OC,) multiplier before the bias, or NULL
    const floating* transformed,  # IN: Winograd weights, or NULL: im2col
    const floating* addend,     # IN: like y, added before the activation, or NULL
) noexcept nogil:
    cdef intp_t rows = n_samples * g.out_h * g.out_w
    if transformed != NULL and is_series_tile(g.winograd_tile) and scale == NULL:
        # The series' output transform adds the bias (a folded scale is in
        # the weights): only the activation is left.
        winograd1d_chunk(g, x, n_samples, transformed, bias, cols, y)
        scale = bias = NULL
    else:
        chunk_convolve(g, x, n_samples, weights, cols, y, transformed)
    epilogue_adding(y, rows, g.out_channels, scale, bias, addend, activation)


cdef void epilogue(
    floating* y, intp_t rows, intp_t width, const floating* scale,
    const floating* bias, int activation,
) noexcept nogil:
    """y = activation(y * scale + bias) over a (rows, width) block; no scale
    or no bias if NULL."""
    cdef intp_t i, o
    if scale != NULL and bias != NULL and (activation == RELU or activation == IDENTITY):
        # The folded BatchNormalization of prediction in one pass over y,
        # not two: (y * scale) + bias, rounded as the two passes round it.
        scaled_shifted(y, rows, width, scale, bias, NULL, activation == RELU)
        return
    if scale != NULL:
        for i in range(rows):
            for o in range(width):
                y[i * width + o] = y[i * width + o] * scale[o]
    cdef floating pattern_bias[EPILOGUE_PATTERN]
    cdef intp_t j = 0, grouped = pattern_groups(rows, width)
    if bias != NULL and grouped > 1:
        # As in scaled_shifted: whole groups of rows as one long row.
        repeat_row(pattern_bias, bias, width)
        add_bias_and_activate(y, grouped, EPILOGUE_PATTERN, pattern_bias, activation)
        j = grouped * EPILOGUE_PATTERN
    if bias != NULL:
        # The rows left (all of them if not grouped).
        add_bias_and_activate(y + j, rows - j // width, width, bias, activation)
    elif activation == RELU:
        for i in range(rows * width):
            y[i] = y[i] if y[i] > 0 else 0
    elif activation != IDENTITY:
        for i in range(rows * width):
            y[i] = activate(y[i], activation)


cdef inline intp_t pattern_groups(intp_t rows, intp_t width) noexcept nogil:
    """Groups of EPILOGUE_PATTERN // width whole rows in ``rows``: 0 unless
    the width divides EPILOGUE_PATTERN (see scaled_shifted)."""
    if width >= EPILOGUE_PATTERN or EPILOGUE_PATTERN % width != 0:
        return 0
    return rows // (EPILOGUE_PATTERN // width)


cdef inline void repeat_row(floating* pattern, const floating* row,
                            intp_t width) noexcept nogil:
    """``row`` (width values) repeated over EPILOGUE_PATTERN values."""
    cdef intp_t j
    for j in range(EPILOGUE_PATTERN // width):
        memcpy(&pattern[j * width], row, width * sizeof(floating))


cdef void scaled_shifted(
    floating* y, intp_t rows, intp_t width, const floating* scale,
    const floating* bias, const floating* addend, bint relu,
) noexcept nogil:
    """y = (((y * scale) + bias) + addend), then max(., 0) if ``relu``; no
    addend if NULL.

    A row of 16 or 32 channels is too short a loop for its vector setup
    (the stem of resnet2d spent 19% of its time here): where the width
    divides EPILOGUE_PATTERN, whole groups of rows run as one long row
    against the scale and bias repeated, the same operation on every
    value."""
    cdef floating pattern_scale[EPILOGUE_PATTERN]
    cdef floating pattern_bias[EPILOGUE_PATTERN]
    cdef intp_t j = 0, grouped = pattern_groups(rows, width)
    if grouped > 1:
        repeat_row(pattern_scale, scale, width)
        repeat_row(pattern_bias, bias, width)
        scaled_shifted_rows(y, grouped, EPILOGUE_PATTERN, pattern_scale, pattern_bias,
                            addend, relu)
        j = grouped * EPILOGUE_PATTERN
    # The rows left (all of them if not grouped).
    scaled_shifted_rows(y + j, rows - j // width, width, scale, bias,
                        NULL if addend == NULL else addend + j, relu)


cdef void scaled_shifted_rows(
    floating* y, intp_t rows, intp_t width, const floating* scale,
    const floating* bias, const floating* addend, bint relu,
) noexcept nogil:
    """scaled_shifted's loops, over rows of ``width`` values.  The ReLU test
    sits outside the loops (vectorised)."""
    cdef intp_t i, o
    cdef floating z
    if addend == NULL and relu:
        for i in range(rows):
            for o in range(width):
                z = y[i * width + o] * scale[o] + bias[o]
                y[i * width + o] = z if z > 0 else 0
    elif addend == NULL:
        for i in range(rows):
            for o in range(width):
                y[i * width + o] = y[i * width + o] * scale[o] + bias[o]
    elif relu:
        for i in range(rows):
            for o in range(width):
                z = (y[i * width + o] * scale[o] + bias[o]) + addend[i * width + o]
                y[i * width + o] = z if z > 0 else 0
    else:
        for i in range(rows):
            for o in range(width):
                y[i * width + o] = ((y[i * width + o] * scale[o] + bias[o])
                                    + addend[i * width + o])


cdef void epilogue_adding(
    floating* y, intp_t rows, intp_t width, const floating* scale,
    const floating* bias, const floating* addend, int activation,
) noexcept nogil:
    """epilogue, with ``addend`` (like y, or NULL) added before the
    activation: a residual block's sum while the block is in cache, rounded
    as the separate sum, ((y * scale) + bias) + addend."""
    cdef intp_t i
    cdef floating ones[EPILOGUE_PATTERN]
    if addend == NULL:
        epilogue(y, rows, width, scale, bias, activation)
        return
    if (bias != NULL and (scale != NULL or width <= EPILOGUE_PATTERN)
            and (activation == RELU or activation == IDENTITY)):
        if scale == NULL:
            # No scale (Winograd's is in its weights): one pass, not three.
            # y * 1 is exact, so the bits are those of adding bias then addend.
            for i in range(width):
                ones[i] = 1
            scale = ones
        scaled_shifted(y, rows, width, scale, bias, addend, activation == RELU)
        return
    epilogue(y, rows, width, scale, bias, IDENTITY)
    for i in range(rows * width):
        y[i] = y[i] + addend[i]
    epilogue(y, rows, width, NULL, NULL, activation)


cdef void chunk_convolve(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* weights,
    floating* cols,             # scratch: chunk rows * taps (or Winograd's)
    floating* y,                # OUT: (n_samples * out_h * out_w, OC), the bare convolution
    const floating* transformed,  # IN: Winograd weights, or NULL: im2col
) noexcept nogil:
    cdef intp_t rows = n_samples * g.out_h * g.out_w
    cdef const floating* chunk_cols = x
    if transformed != NULL and is_series_tile(g.winograd_tile):
        winograd1d_chunk(g, x, n_samples, transformed, NULL, cols, y)
    elif transformed != NULL:
        winograd_chunk(g, x, n_samples, g.winograd_tile, transformed, cols, y)
    elif g.taps_major:
        im2col_taps_major(x, n_samples, g.height, g.width, g.kernel_h, g.kernel_w,
                          g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                          g.dilation_h, g.dilation_w, g.out_h, g.out_w, cols)
        # y = cols^T @ weights
        gemm_rowmajor(c'T', c'N', <int> rows, <int> g.out_channels, <int> g.taps,
                      <floating> 1, cols, <int> rows, weights, <int> g.out_channels,
                      <floating> 0, y, <int> g.out_channels)
    elif not implicit_convolve(g, x, n_samples, weights, y):
        if not g.pointwise:
            im2col_chunk(x, n_samples, g.height, g.width, g.channels, g.kernel_h,
                         g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                         g.dilation_h, g.dilation_w, g.out_h, g.out_w, cols)
            chunk_cols = cols
        forward_product(chunk_cols, g.taps, rows, g.taps, weights, g.out_channels, y,
                        g.out_channels)


cdef void taps_major_backward(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* weights, const floating* dz, floating* weight_partial,
    floating* cols, bint compute_grad_input, floating* grad_input,
) noexcept nogil:
    """chunk_backward for one input channel, with im2col transposed."""
    cdef intp_t rows = n_samples * g.out_h * g.out_w
    im2col_taps_major(x, n_samples, g.height, g.width, g.kernel_h, g.kernel_w,
                      g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                      g.dilation_h, g.dilation_w, g.out_h, g.out_w, cols)
    # weight_partial = cols @ dz : (taps, OC)
    gemm_rowmajor(c'N', c'N', <int> g.taps, <int> g.out_channels, <int> rows,
                  <floating> 1, cols, <int> rows, dz, <int> g.out_channels,
                  <floating> 0, weight_partial, <int> g.out_channels)
    if not compute_grad_input:
        return
    # d cols = weights @ dz^T : (taps, rows), into the free im2col buffer.
    gemm_rowmajor(c'N', c'T', <int> g.taps, <int> rows, <int> g.out_channels,
                  <floating> 1, weights, <int> g.out_channels, dz, <int> g.out_channels,
                  <floating> 0, cols, <int> rows)
    col2im_taps_major(cols, n_samples, g.height, g.width, g.kernel_h, g.kernel_w,
                      g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                      g.dilation_h, g.dilation_w, g.out_h, g.out_w, grad_input)


cdef void chunk_backward(
    ConvGeometry g, const floating* x, intp_t n_samples,
    const floating* weights,
    const floating* dz,         # IN: d loss/d pre-activation, (rows, OC)
    floating* weight_partial,   # OUT: (taps, OC), this chunk's share
    floating* cols,             # scratch: chunk rows * taps
    bint compute_grad_input,
    floating* grad_input,       # OUT: (n_samples, H, W, C) if compute_grad_input
    const floating* transformed_back,  # IN: Winograd weights for d input, or NULL
    bint winograd_grad,         # weight_partial in the Winograd domain (see there)
    double* bias_grad,          # OUT: (OC,) where Winograd's weight gradient sums
                                # it (see winograd_weight_grad_chunk), or NULL
) noexcept nogil:
    cdef intp_t rows = n_samples * g.out_h * g.out_w
    cdef const floating* chunk_cols = x
    cdef ConvGeometry back
    if g.taps_major:
        taps_major_backward(g, x, n_samples, weights, dz, weight_partial, cols,
                            compute_grad_input, grad_input)
        return
    if winograd_grad and is_series_tile(g.winograd_tile):
        winograd1d_weight_grad_chunk(g, x, n_samples, dz, weight_partial, bias_grad,
                                     cols)
    elif winograd_grad:
        winograd_weight_grad_chunk(g, x, n_samples, g.winograd_tile, dz,
                                   weight_partial, bias_grad, cols)
    else:
        if not g.pointwise:
            im2col_chunk(x, n_samples, g.height, g.width, g.channels, g.kernel_h,
                         g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                         g.dilation_h, g.dilation_w, g.out_h, g.out_w, cols)
            chunk_cols = cols
        # weight_partial = cols^T @ dz
        gemm_rowmajor(c'T', c'N', <int> g.taps, <int> g.out_channels, <int> rows,
                      <floating> 1, chunk_cols, <int> g.taps, dz, <int> g.out_channels,
                      <floating> 0, weight_partial, <int> g.out_channels)
    if not compute_grad_input:
        return
    if transformed_back != NULL and is_series_tile(g.winograd_tile):
        # The same for series: the kernel turned round, channels swapped,
        # padded by kernel_w - 1 - pad at the start.
        back = make_geometry(1, g.out_w, g.out_channels, 1, g.width, g.channels,
                             1, g.kernel_w, 1, 1, 0, g.kernel_w - 1 - g.pad_left,
                             1, 1)
        back.winograd_tile = g.winograd_tile
        winograd1d_chunk(back, dz, n_samples, transformed_back, NULL, cols, grad_input)
        return
    if transformed_back != NULL:
        # d input is the 3x3 convolution of dz by the weights turned half a
        # turn, with in and out channels swapped, padded by 2 - pad: Winograd
        # again, into the free im2col buffer's space.
        back = make_geometry(g.out_h, g.out_w, g.out_channels, g.height, g.width,
                             g.channels, 3, 3, 1, 1, 2 - g.pad_top, 2 - g.pad_left,
                             1, 1)
        winograd_chunk(back, dz, n_samples, g.winograd_tile, transformed_back, cols,
                       grad_input)
        return
    if g.pointwise:
        # d input = dz @ weights^T, written straight into grad_input.
        gemm_rowmajor(c'N', c'T', <int> rows, <int> g.taps, <int> g.out_channels,
                      <floating> 1, dz, <int> g.out_channels,
                      weights, <int> g.out_channels, <floating> 0, grad_input,
                      <int> g.taps)
        return
    # The im2col buffer is free again: reuse it for d cols.
    gemm_rowmajor(c'N', c'T', <int> rows, <int> g.taps, <int> g.out_channels,
                  <floating> 1, dz, <int> g.out_channels,
                  weights, <int> g.out_channels, <floating> 0, cols, <int> g.taps)
    col2im_chunk(cols, n_samples, g.height, g.width, g.channels, g.kernel_h,
                 g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                 g.dilation_h, g.dilation_w, g.out_h, g.out_w, grad_input)


cdef void reduce_partials(
    floating[:, ::1] weight_partials, double[:, ::1] bias_partials,
    intp_t n_chunks, floating* flat_grad, intp_t n_weights, floating[::1] grad_bias,
    int n_threads,
) noexcept nogil:
    """Sum the chunks' shares in chunk order: independent of the thread count.
    ``flat_grad`` gets the first ``n_weights`` values of each chunk's row."""
    cdef intp_t out_channels = grad_bias.shape[0]
    cdef intp_t n_blocks = (n_weights + REDUCE_BLOCK - 1) // REDUCE_BLOCK
    cdef intp_t block, e, chunk, o, start, stop
    cdef floating* total_row
    cdef const floating* partial_row
    cdef double total
    for block in prange(n_blocks, schedule="static", num_threads=n_threads):
        # Chunk by chunk over a block of contiguous values (vectorised), not
        # value by value down the chunks (strided: 4x slower with 128
        # chunks); each value is still 0 + chunk 0 + chunk 1 + ... in order.
        start = block * REDUCE_BLOCK
        stop = min(start + REDUCE_BLOCK, n_weights)
        total_row = flat_grad + start
        for e in range(stop - start):
            total_row[e] = 0
        for chunk in range(n_chunks):
            partial_row = &weight_partials[chunk, start]
            for e in range(stop - start):
                total_row[e] = total_row[e] + partial_row[e]
    for o in range(out_channels):
        total = 0
        for chunk in range(n_chunks):
            total = total + bias_partials[chunk, o]
        grad_bias[o] = <floating> total


cdef void finish_weight_grad(
    ConvGeometry g, floating[:, ::1] weight_partials, double[:, ::1] bias_partials,
    intp_t n_chunks, floating[:, ::1] grad_weights, floating[::1] grad_bias,
    floating[:, ::1] winograd_grad, int n_threads,
) noexcept nogil:
    """Reduce the chunks' shares into grad_weights, through the Winograd
    domain (8, 16 or 36 padded planes in ``winograd_grad``) if the chunks
    used it."""
    cdef intp_t cin = g.channels, cout = g.out_channels
    if winograd_grad is None:
        reduce_partials(weight_partials, bias_partials, n_chunks, &grad_weights[0, 0],
                        grad_weights.shape[0] * cout, grad_bias, n_threads)
        return
    reduce_partials(weight_partials, bias_partials, n_chunks, &winograd_grad[0, 0],
                    winograd_grad.shape[0] * winograd_plane(cin, cout), grad_bias,
                    n_threads)
    if is_series_tile(g.winograd_tile):
        weight_grad_from_transformed_1d(&winograd_grad[0, 0], g.winograd_tile,
                                        <int> g.kernel_w, cin,
                                        cout, winograd_plane(cin, cout),
                                        &grad_weights[0, 0], n_threads)
    else:
        weight_grad_from_transformed(g.winograd_tile, &winograd_grad[0, 0], cin, cout,
                                     winograd_plane(cin, cout), &grad_weights[0, 0])


cdef const floating* _scale_pointer(const floating[::1] channel_scale):
    """The optional per-channel multiplier of the forward kernels: with it
    the output is ``activation(conv * scale + bias)``, which is how a
    BatchNormalization after the convolution is folded in at inference
    (``layers/_conv.py``)."""
    if channel_scale is None:
        return NULL
    return &channel_scale[0]


cdef const floating* _winograd_pointer(const floating[:, ::1] transformed):
    """The optional Winograd weights of the forward kernels: given, chunks of
    samples are convolved by Winograd (``winograd_chunk``; F(2x2, 3x3) for
    16 planes, F(4x4, 3x3) for 36, and ``winograd1d_chunk``'s F(n + 1 - r, r)
    for series for 8 or 10, see ``winograd_tile``) instead of im2col + GEMM.  Only
    for stride 1 and no dilation, 3x3 kernels or series' kernels of 3-7
    taps (``check_winograd_geometry``), and the caller's ``cols`` must hold
    ``winograd_scratch_size`` values.  Blocks of one sample (rows or
    columns, see conv2d_forward) convolve by Winograd too when given it;
    the layers give it for series only: one image on 2 threads took 90 us
    by im2col in 8 blocks of rows, 110 by Winograd in 2-8."""
    if transformed is None:
        return NULL
    return &transformed[0, 0]


cdef int winograd_tile(const floating[:, ::1] transformed,
                       const floating[:, ::1] weight_grad=None) except -1:
    """The output tile side (2 or 4) of the 2-D Winograd arrays given to a
    kernel (16 or 36 planes), the points of series' (8 or 10 planes), 0 for
    none; they must agree."""
    cdef int tile = 0, other
    cdef intp_t planes
    for planes in (-1 if transformed is None else transformed.shape[0],
                   -1 if weight_grad is None else weight_grad.shape[0]):
        if planes == -1:
            continue
        if planes != 16 and planes != 36 and not is_series_tile(<int> planes):
            raise ValueError("Winograd arrays must have 8, 10, 16 or 36 planes")
        other = 2 if planes == 16 else 4 if planes == 36 else <int> planes
        if tile != 0 and other != tile:
            raise ValueError("the Winograd arrays of one call must share a tile size")
        tile = other
    return tile


cdef int check_winograd_geometry(ConvGeometry g) except -1:
    """Refuse Winograd arrays for a convolution their transforms do not fit
    (the kernels would read past the maps)."""
    cdef bint plain = (g.stride_h == 1 and g.stride_w == 1 and g.dilation_h == 1
                       and g.dilation_w == 1)
    if is_series_tile(g.winograd_tile):
        if not (plain and g.height == 1 and g.out_h == 1 and g.kernel_h == 1
                and WINOGRAD1D_MIN_KERNEL <= g.kernel_w <= WINOGRAD1D_MAX_KERNEL):
            raise ValueError("series' Winograd arrays need maps of height 1 and "
                             "1 x 3..7 kernels with stride 1 and no dilation")
    elif g.winograd_tile != 0:
        if not (plain and g.kernel_h == 3 and g.kernel_w == 3):
            raise ValueError("2-D Winograd arrays need 3x3 kernels with stride 1 "
                             "and no dilation")
    return 0


def winograd_scratch_size(int samples, int out_h, int out_w, int channels,
                          int out_channels, int tile=2, int kernel_w=3):
    """Values of ``cols`` per thread that ``winograd_chunk`` (and the weight
    gradient's chunk) need, for output tiles of ``tile`` x ``tile``, or
    (``tile=WINOGRAD_SERIES_TILE`` or ``WINOGRAD_SERIES_TRAINING_TILE``, the
    points) that ``winograd1d_chunk`` needs for series
    and kernels of ``kernel_w`` taps."""
    cdef ConvGeometry g = make_geometry(out_h, out_w, channels, out_h, out_w,
                                        out_channels, 3, kernel_w, 1, 1, 1, 1, 1, 1)
    g.winograd_tile = tile
    if is_series_tile(tile):
        if not WINOGRAD1D_MIN_KERNEL <= kernel_w <= WINOGRAD1D_MAX_KERNEL:
            raise ValueError("series' Winograd takes kernels of 3 to 7 taps")
        return winograd1d_scratch(g, samples).size
    if tile not in (2, 4):
        raise ValueError("tile must be 2, 4 or a series' 8 or 10 points")
    return winograd_scratch(g, samples, tile).size


def winograd_weights_shape(int channels, int out_channels, int tile=2):
    """The shape of ``winograd_weights``' output: 16 (tile 2), 36 (tile 4)
    or, for series, 8 or 10 (their points) padded planes."""
    if is_series_tile(tile):
        return (tile, winograd_plane(channels, out_channels))
    if tile not in (2, 4):
        raise ValueError("tile must be 2, 4 or a series' 8 or 10 points")
    return (winograd_positions(tile), winograd_plane(channels, out_channels))


def winograd_weights(
    const floating[:, :, :, ::1] weights,   # IN: (3, 3, C, OC), or (1, r, C, OC)
    floating[:, ::1] transformed,           # OUT: winograd_weights_shape(C, OC)
    const floating[::1] channel_scale=None,  # IN: (OC,) see below
    int n_threads=1,
):
    """Winograd weights, G g G^T per channel pair (``_winograd.h``,
    ``_winograd4.h``): F(2x2, 3x3) or F(4x4, 3x3) as ``transformed`` has 16
    or 36 planes; or G g (``_winograd1d.h``), F(n + 1 - r, r) for a series'
    kernel of r = 3..7 taps, with 8 or 10 planes (the points), on
    ``n_threads`` threads.

    With ``channel_scale`` each output channel's weights are multiplied by
    it (the transform is linear): the forward kernels then need no
    ``channel_scale`` pass over their output.
    """
    cdef const floating* scale = _scale_pointer(channel_scale)
    cdef intp_t cin = weights.shape[2], cout = weights.shape[3]
    # Cheap checks: the C transform reads and writes without bounds.
    cdef int tile = winograd_tile(transformed)
    if is_series_tile(tile) and not (
            weights.shape[0] == 1
            and WINOGRAD1D_MIN_KERNEL <= weights.shape[1] <= WINOGRAD1D_MAX_KERNEL):
        raise ValueError("winograd_weights needs 1 x 3..7 weights for 8 or 10 planes")
    if not is_series_tile(tile) and (weights.shape[0] != 3 or weights.shape[1] != 3):
        raise ValueError("winograd_weights needs 3x3 weights")
    if transformed.shape[1] != winograd_plane(cin, cout):
        raise ValueError("transformed must have winograd_weights_shape's shape")
    if channel_scale is not None and channel_scale.shape[0] != cout:
        raise ValueError("channel_scale needs one value per output channel")
    with nogil:
        if is_series_tile(tile):
            transform_weights_1d(&weights[0, 0, 0, 0], tile, <int> weights.shape[1], cin,
                                 cout, scale, &transformed[0, 0], transformed.shape[1],
                                 n_threads)
        else:
            transform_weights(tile, &weights[0, 0, 0, 0], cin, cout, scale,
                              &transformed[0, 0], transformed.shape[1])


def fold_batchnorm(
    const floating[::1] conv_bias,      # IN: (OC,) the convolution's bias
    const floating[::1] scale,          # IN: (OC,) BatchNormalization's
    const floating[::1] shift,          # IN: (OC,)
    const floating[::1] running_mean,   # IN: (OC,)
    const floating[::1] running_var,    # IN: (OC,)
    double epsilon,
    floating[::1] multiplier,           # OUT: (OC,)
    floating[::1] bias,                 # OUT: (OC,)
):
    """A BatchNormalization folded into the convolution before it:
    ``(conv + conv_bias - mean) * m + shift`` as ``conv * m + bias``, with
    ``m = scale / sqrt(var + epsilon)`` in float64.  The same operations in
    the same types as NumPy's ``scale / np.sqrt(var.astype(float64) + eps)``
    and ``(conv_bias - mean) * m + shift``, so the same bits, in 1.3 us
    where those NumPy calls and the sign check took 5.2 (64 channels).

    Returns True when no multiplier is negative (or NaN): then the epilogue
    commutes with max-pooling (see ``conv2d_maxpool_forward``).
    """
    cdef intp_t c, n = conv_bias.shape[0]
    cdef double m
    cdef bint nonnegative = True
    if not (scale.shape[0] == shift.shape[0] == running_mean.shape[0]
            == running_var.shape[0] == multiplier.shape[0] == bias.shape[0] == n):
        raise ValueError("fold_batchnorm needs one value per channel in every array")
    with nogil:
        for c in range(n):
            m = scale[c] / sqrt(<double>running_var[c] + epsilon)
            # conv_bias - mean in the arrays' type, as NumPy subtracts them.
            bias[c] = <floating>(<floating>(conv_bias[c] - running_mean[c]) * m
                                 + <double>shift[c])
            multiplier[c] = <floating>m
            if not multiplier[c] >= 0:
                nonnegative = False
    return nonnegative


cdef void winograd_image_shared(
    ConvGeometry g, const floating* x, const floating* transformed,
    const floating* scale,      # IN: (OC,) multiplier before the bias, or NULL
    const floating* bias,       # IN: (OC,), or NULL: the bare convolution
    int activation,
    floating* scratch,          # see winograd_shared_scratch
    floating* y,                # OUT: (out_h, out_w, OC)
    int n_threads,
    const floating* addend,     # IN: like y, added before the activation, or NULL
) noexcept nogil:
    """The 2-D Winograd convolution of one image on all threads (predicting
    a few images): they split its tiles' transforms, then the GEMMs, one
    tile position each, so that each thread packs only its positions'
    weights.  Blocks of rows, by im2col or Winograd, made every thread pack
    all the weights for GEMMs a few rows tall.  The same operations on the
    same data as one thread: the same results.  With a bias, each tile's
    outputs get the epilogue while in cache.

    The scratch starts on a 64-byte boundary: each GEMM writes its
    position's ``OC`` columns of every tile's row, next to another thread's
    position, and from a misaligned start the two shared a cache line in
    every row.  One image of resnet2d then took 325 us instead of 175 on 2
    threads, in the processes whose buffers happened to be misaligned."""
    cdef int tile = g.winograd_tile
    cdef WinogradScratch s = winograd_scratch(g, 1, tile)
    cdef intp_t cin = g.channels, cout = g.out_channels
    cdef intp_t positions = s.positions, plane = winograd_plane(cin, cout)
    cdef intp_t per_thread = s.size - s.spare
    cdef floating* products
    cdef floating* zeros
    cdef floating* own
    cdef intp_t j, index, xi, ty, tx, oh, ow
    scratch = <floating*> ((<uintptr_t> scratch + 63) & ~(<uintptr_t> 63))
    products = scratch + s.products
    zeros = scratch + s.zeros
    for j in range(max(cin, cout)):
        zeros[j] = 0
    for index in prange(s.n_tiles, schedule="static", num_threads=n_threads):
        own = scratch + s.spare + threadid() * per_thread
        winograd_input_tile(g, x, 0, index // s.tiles_w, index % s.tiles_w, tile,
                            scratch + index * positions * cin, zeros,
                            own + (s.tmp - s.spare))
    for xi in prange(positions, schedule="static", num_threads=n_threads):
        forward_product(scratch + xi * cin, positions * cin, s.n_tiles, cin,
                        transformed + xi * plane, cout, products + xi * cout,
                        positions * cout)
    for index in prange(s.n_tiles, schedule="static", num_threads=n_threads):
        own = scratch + s.spare + threadid() * per_thread
        ty = index // s.tiles_w
        tx = index % s.tiles_w
        winograd_output_tile(g, products + index * positions * cout, y, 0, ty, tx, tile,
                             own, own + (s.tmp - s.spare))
        if bias != NULL:
            for oh in range(tile * ty, min(tile * ty + tile, g.out_h)):
                ow = tile * tx
                epilogue_adding(y + (oh * g.out_w + ow) * cout, min(tile, g.out_w - ow),
                                cout, scale, bias,
                                NULL if addend == NULL else
                                addend + (oh * g.out_w + ow) * cout, activation)


def set_wide_transforms(int mode):
    """Let prediction's float F(2x2) tile transforms run 16 channels wide
    (AVX-512, see ``_winograd.h``) where the CPU can (mode 1 or True), or not
    (0 or False); returns whether they could before.  On by default; never in
    the baseline build.  Both ways give the same bits.  Mode 2 also fuses
    the chunks of 16 output channels (``winograd_chunk_fused_float``) and
    multiplies the forward pass's chunks of 64k output channels and at most
    384 taps (im2col, Winograd) by ``_products.h``, and those of im2col's
    kernels larger than 1x1 with 32k output channels straight from the
    input (``_implicit.h``), all with the bits of OpenBLAS's AVX-512
    kernels: ``layers._conv`` asks for it where those run.  Mode 3 fuses but
    leaves the products to OpenBLAS, after im2col.  Tests and benchmarks
    switch between modes."""
    return winograd_set_wide(mode)


def winograd_shared_scratch_size(int out_h, int out_w, int channels, int out_channels,
                                 int tile, int n_threads):
    """Values of ``cols`` in all (all threads' rows) that the 2-D Winograd
    convolution of one image on ``n_threads`` threads needs: the few images'
    mode of ``conv2d_forward`` and ``conv2d_maxpool_forward``."""
    cdef ConvGeometry g = make_geometry(out_h, out_w, channels, out_h, out_w,
                                        out_channels, 3, 3, 1, 1, 1, 1, 1, 1)
    if tile not in (2, 4):
        raise ValueError("tile must be 2 or 4")
    return winograd_shared_scratch(g, tile, max(n_threads, 1))


cdef _check_shared_scratch(ConvGeometry g, floating[:, ::1] cols, int n_threads):
    if winograd_shared_scratch(g, g.winograd_tile, n_threads) > \
            cols.shape[0] * cols.shape[1]:
        raise ValueError("cols is too small for one image's shared Winograd")


def conv2d_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    const floating[:, ::1] weights,      # IN: (KH * KW * C, OC)
    const floating[::1] bias,            # IN: (OC,)
    floating[:, :, :, ::1] out,          # OUT: (N, OH, OW, OC), activated
    floating[:, ::1] cols,               # scratch: (n_threads, chunk rows * taps)
    int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_top, int pad_left, int dilation_h, int dilation_w,
    int samples_per_chunk, int activation, int n_threads,
    const floating[::1] channel_scale=None,  # IN: (OC,) see _scale_pointer
    int rows_per_block=0, int columns_per_block=0,
    const floating[:, ::1] winograd_weights=None,  # IN: see _winograd_pointer
    const floating[:, :, :, ::1] addend=None,  # IN: like out, added before the activation
):
    """Convolution + bias (+ addend) + activation.

    Work items are chunks of ``samples_per_chunk`` samples, or, when
    ``rows_per_block`` > 0, blocks of that many output rows of one sample
    (predicting one image: sample chunks would leave threads idle); a block
    is the im2col of the same image with the padding on top shifted by
    ``r0 * stride``, as in ``conv2d_maxpool_forward``.  Maps of one row
    (series) split into blocks of ``columns_per_block`` columns instead,
    contiguous in the output since there is one row (ignored otherwise);
    given series' Winograd weights, those few series are one chunk that all
    threads convolve together (``winograd1d_shared``), in all of ``cols``.
    Given 2-D Winograd weights, each block of rows is a Winograd chunk (the
    caller makes ``rows_per_block`` a multiple of the tile, so that the
    blocks' tiles are the image's), or, for a negative ``rows_per_block``,
    the images are convolved one at a time by all threads
    (``winograd_image_shared``).  (A sign rather than another argument: a
    ``bint`` argument of this kernel and conv2d_maxpool_forward made the
    wheel 5.8 KB larger.)

    ``addend`` is added after the bias, before the activation: a residual
    block's sum fused into its last convolution in prediction, bitwise the
    same as the separate sum.
    """
    cdef intp_t n_samples = x.shape[0]
    cdef intp_t height = x.shape[1], width = x.shape[2], channels = x.shape[3]
    cdef intp_t out_h = out.shape[1], out_w = out.shape[2], out_channels = out.shape[3]
    cdef intp_t image = out_h * out_w * out_channels
    cdef const floating* added = NULL
    if addend is not None:
        if (addend.shape[0] < n_samples or addend.shape[1] != out_h
                or addend.shape[2] != out_w or addend.shape[3] != out_channels):
            raise ValueError("addend must have the shape of out")
        if n_samples > 0:
            added = &addend[0, 0, 0, 0]
    cdef const floating* scale = _scale_pointer(channel_scale)
    cdef const floating* transformed = _winograd_pointer(winograd_weights)
    cdef ConvGeometry g = make_geometry(
        height, width, channels, out_h, out_w, out_channels,
        kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h,
        dilation_w)
    g.winograd_tile = winograd_tile(winograd_weights)
    check_winograd_geometry(g)
    cdef bint share = rows_per_block < 0
    rows_per_block = abs(rows_per_block)
    cdef bint by_columns = columns_per_block > 0 and out_h == 1
    cdef bint by_rows = rows_per_block > 0 and not by_columns
    cdef intp_t n_blocks = 1
    if by_rows:
        n_blocks = (out_h + rows_per_block - 1) // rows_per_block
    elif by_columns:
        n_blocks = (out_w + columns_per_block - 1) // columns_per_block
    cdef intp_t n_items = n_samples * n_blocks if by_rows or by_columns else \
        (n_samples + samples_per_chunk - 1) // samples_per_chunk
    cdef intp_t item, turn, start, stop, n
    if n_samples == 0:
        return
    # The shared series' convolution adds the bias in its output transform
    # unless a scale comes first (a folded one is in the weights): the
    # epilogue then applies the activation alone.
    cdef const floating* transform_bias = &bias[0] if scale == NULL else <floating*> NULL
    cdef const floating* epilogue_bias = &bias[0] if scale != NULL else <floating*> NULL
    if by_columns and is_series_tile(g.winograd_tile):
        if winograd1d_scratch(g, n_samples).size > cols.shape[0] * cols.shape[1]:
            raise ValueError("cols is too small for these series' Winograd")
        with nogil:
            winograd1d_shared(g, &x[0, 0, 0, 0], n_samples, transformed, transform_bias,
                              &cols[0, 0], &out[0, 0, 0, 0], n_threads)
            n_items = (n_samples * out_w + EPILOGUE_ROWS - 1) // EPILOGUE_ROWS
            if activation == IDENTITY and scale == NULL and added == NULL:
                n_items = 0
            for item in prange(n_items, schedule="static", num_threads=n_threads):
                start = item * EPILOGUE_ROWS
                stop = min(start + EPILOGUE_ROWS, n_samples * out_w)
                epilogue_adding(&out[0, 0, 0, 0] + start * out_channels, stop - start,
                                out_channels, scale, epilogue_bias,
                                NULL if added == NULL else added + start * out_channels,
                                activation)
        return
    if share and by_rows and transformed != NULL and not is_series_tile(g.winograd_tile):
        _check_shared_scratch(g, cols, n_threads)
        with nogil:
            for n in range(n_samples):
                winograd_image_shared(g, &x[n, 0, 0, 0], transformed, scale, &bias[0],
                                      activation, &cols[0, 0], &out[n, 0, 0, 0],
                                      n_threads,
                                      NULL if added == NULL else added + n * image)
        return
    with nogil:
        if n_threads == 1:
            # See "One thread" in the module notes.
            for item in range(n_items):
                forward_item(&g, item, rows_per_block if by_rows else 0,
                             columns_per_block if by_columns else 0, n_blocks,
                             samples_per_chunk, n_samples, &x[0, 0, 0, 0],
                             &weights[0, 0], &bias[0], activation, &cols[0, 0],
                             &out[0, 0, 0, 0], scale, transformed, added)
        else:
            for turn in prange(n_items, schedule="static", num_threads=n_threads):
                forward_item(&g, in_turn(turn, n_items),
                             rows_per_block if by_rows else 0,
                             columns_per_block if by_columns else 0, n_blocks,
                             samples_per_chunk, n_samples, &x[0, 0, 0, 0],
                             &weights[0, 0], &bias[0], activation,
                             &cols[threadid(), 0], &out[0, 0, 0, 0], scale,
                             transformed, added)


cdef void forward_item(
    const ConvGeometry* g, intp_t item, intp_t block_rows, intp_t block_columns,
    intp_t n_blocks, intp_t samples_per_chunk, intp_t n_samples, const floating* x,
    const floating* weights, const floating* bias, int activation, floating* cols,
    floating* out, const floating* scale, const floating* transformed,
    const floating* added,
) noexcept nogil:
    """Work item ``item`` of conv2d_forward: a block of ``block_rows`` output
    rows (or ``block_columns`` columns) of one sample, or with neither a
    chunk of ``samples_per_chunk`` samples; ``cols`` is this thread's."""
    cdef intp_t in_image = g.height * g.width * g.channels
    cdef intp_t row = g.out_w * g.out_channels, image = g.out_h * row
    cdef intp_t n, start, stop
    cdef ConvGeometry block
    if block_rows or block_columns:
        n = item // n_blocks
        start = (item % n_blocks) * (block_rows + block_columns)
        if block_rows:
            stop = min(start + block_rows, g.out_h)
            block = make_geometry(g.height, g.width, g.channels, stop - start,
                                  g.out_w, g.out_channels, g.kernel_h, g.kernel_w,
                                  g.stride_h, g.stride_w,
                                  g.pad_top - start * g.stride_h, g.pad_left,
                                  g.dilation_h, g.dilation_w)
            start = start * row  # the block's first output value
        else:
            stop = min(start + block_columns, g.out_w)
            block = make_geometry(g.height, g.width, g.channels, 1, stop - start,
                                  g.out_channels, g.kernel_h, g.kernel_w,
                                  g.stride_h, g.stride_w, g.pad_top,
                                  g.pad_left - start * g.stride_w,
                                  g.dilation_h, g.dilation_w)
            start = start * g.out_channels
        # Winograd weights, if given (they may carry the scale), convolve
        # the block too.
        block.winograd_tile = g.winograd_tile
        start += n * image
        chunk_forward(block, x + n * in_image, 1, weights, bias, activation, cols,
                      out + start, scale, transformed,
                      NULL if added == NULL else added + start)
    else:
        start = item * samples_per_chunk
        stop = min(start + samples_per_chunk, n_samples)
        chunk_forward(g[0], x + start * in_image, stop - start, weights, bias,
                      activation, cols, out + start * image, scale, transformed,
                      NULL if added == NULL else added + start * image)


def conv2d_backward(
    const floating[:, :, :, ::1] x,        # IN: (N, H, W, C), forward input
    const floating[:, ::1] weights,        # IN: (taps, OC)
    const floating[:, :, :, ::1] output,   # IN: (N, OH, OW, OC), forward output
    floating[:, :, :, ::1] grad_output,    # IN/OUT: d/d output; becomes d/d pre-activation
    floating[:, :, :, ::1] grad_input,     # OUT: (N, H, W, C) if compute_grad_input
    floating[:, ::1] grad_weights,         # OUT: (taps, OC)
    floating[::1] grad_bias,               # OUT: (OC,)
    floating[:, ::1] weight_partials,      # scratch: (n_chunks, taps * OC)
    double[:, ::1] bias_partials,          # scratch: (n_chunks, OC)
    floating[:, ::1] cols,                 # scratch: (n_threads, chunk rows * taps)
    int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_top, int pad_left, int dilation_h, int dilation_w,
    int samples_per_chunk, int activation, bint compute_grad_input,
    int n_threads,
    const floating[:, ::1] winograd_back_weights=None,  # IN: see below
    floating[:, ::1] winograd_weight_grad=None,       # scratch: see below
):
    """Gradients of a fused conv + bias + activation layer.

    With ``winograd_back_weights`` (``winograd_weights`` of the weights
    turned half a turn, channels swapped: ``weights[::-1, ::-1]`` with its
    last two axes swapped; 3x3 kernels or series, stride 1, no dilation)
    the input gradient is computed by Winograd;
    ``cols`` must then also hold ``winograd_scratch_size(samples_per_chunk,
    H, W, OC, C)`` values.  With ``winograd_weight_grad``
    (``winograd_weights_shape(C, OC)``; same conditions) the weight
    gradient is computed in the Winograd domain too (no im2col), and
    ``weight_partials`` must have as many columns as it has values.  Both
    arrays use the same tile (8, 10, 16 or 36 planes); ``cols`` then holds
    ``winograd_scratch_size(..., tile)`` values.

    The weight and bias gradients are sums over the batch (not means): the
    loss kernel already scaled d loss/d output.
    """
    cdef intp_t n_samples = x.shape[0]
    cdef ConvGeometry g = make_geometry(
        x.shape[1], x.shape[2], x.shape[3], output.shape[1], output.shape[2],
        output.shape[3], kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left,
        dilation_h, dilation_w)
    cdef intp_t pixels = g.out_h * g.out_w, out_channels = g.out_channels
    cdef intp_t n_chunks = (n_samples + samples_per_chunk - 1) // samples_per_chunk
    cdef intp_t chunk, turn, start, stop, rows, o
    cdef const floating* y
    cdef floating* dz
    cdef double* bias_acc
    cdef floating* input_grad
    cdef const floating* transformed_back = _winograd_pointer(winograd_back_weights)
    g.winograd_tile = winograd_tile(winograd_back_weights, winograd_weight_grad)
    check_winograd_geometry(g)
    # Winograd's weight gradient sums the bias gradient too.
    cdef bint winograd_sums = winograd_weight_grad is not None and not g.taps_major
    if n_samples == 0:
        grad_weights[:, :] = 0
        grad_bias[:] = 0
        return
    with nogil:
        for turn in prange(n_chunks, schedule="static", num_threads=n_threads):
            chunk = in_turn(turn, n_chunks)
            start = chunk * samples_per_chunk
            stop = min(start + samples_per_chunk, n_samples)
            rows = (stop - start) * pixels
            y = &output[start, 0, 0, 0]
            dz = &grad_output[start, 0, 0, 0]
            bias_acc = &bias_partials[chunk, 0]
            multiply_by_derivative(dz, y, rows * out_channels, activation)
            if not winograd_sums:
                for o in range(out_channels):
                    bias_acc[o] = 0
                add_column_sums(dz, rows, out_channels, out_channels, bias_acc)
            input_grad = &grad_input[start, 0, 0, 0] if compute_grad_input else NULL
            chunk_backward(g, &x[start, 0, 0, 0], stop - start, &weights[0, 0], dz,
                           &weight_partials[chunk, 0], &cols[threadid(), 0],
                           compute_grad_input, input_grad, transformed_back,
                           winograd_weight_grad is not None,
                           bias_acc if winograd_sums else NULL)
        finish_weight_grad(g, weight_partials, bias_partials, n_chunks, grad_weights,
                           grad_bias, winograd_weight_grad, n_threads)


def conv2d_maxpool_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    const floating[:, ::1] weights,      # IN: (taps, OC)
    const floating[::1] bias,            # IN: (OC,)
    floating[:, :, :, ::1] pooled,       # OUT: (N, PH, PW, OC)
    int32_t[:, :, :, ::1] argmax,        # OUT: (N, PH, PW, OC), index oh * OW + ow; or None
    floating[:, ::1] cols,               # scratch: (n_threads, chunk rows * taps)
    floating[:, ::1] conv_out,           # scratch: (n_threads, chunk rows * OC)
    int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_top, int pad_left, int dilation_h, int dilation_w, int out_h, int out_w,
    int pool_h, int pool_w, int pool_stride_h, int pool_stride_w,
    int samples_per_chunk, int pooled_rows_per_block, int activation, int n_threads,
    const floating[::1] channel_scale=None,  # IN: (OC,) see _scale_pointer
    const floating[:, ::1] winograd_weights=None,  # IN: see _winograd_pointer
    bint pool_first=False,
):
    """Convolution + bias + activation + max pooling; see the module notes.

    With ``pool_first`` the epilogue (scale, bias, activation) runs on the
    pooled values, a quarter of them for 2x2 windows.  That is exact only
    where the epilogue is non-decreasing in the convolution's output (no
    scale or one >= 0, ReLU or identity: float rounding is monotonic too, so
    the max of the images is the image of the max); the caller checks, and
    uses it in prediction only (``argmax`` then indexes the bare maxima).
    Prediction needs no ``argmax`` at all: None keeps only the maxima.

    Work items are chunks of ``samples_per_chunk`` samples, or, when
    ``pooled_rows_per_block`` > 0, blocks of that many pooled rows of one
    sample: with fewer samples than threads (one image to predict), sample
    chunks would leave threads idle.  A block computes the conv rows its
    windows read (rows shared by overlapping windows of two blocks, twice):
    rows [r0, r1) of the image are the im2col of the same image with the
    padding on top shifted by r0 * stride.  Both sizes come from the shape,
    so results do not depend on the thread count.  Given 2-D Winograd
    weights, a block's conv rows are a Winograd chunk (the caller makes them
    start on the image's tiles), or, for a negative ``pooled_rows_per_block``,
    the images are convolved one at a time by all threads
    (``winograd_image_shared``) into ``conv_out`` and then pooled in blocks of
    ``-pooled_rows_per_block`` rows (see conv2d_forward).
    """
    cdef intp_t n_samples = x.shape[0]
    cdef intp_t height = x.shape[1], width = x.shape[2], channels = x.shape[3]
    cdef ConvGeometry g = make_geometry(
        height, width, channels, out_h, out_w, pooled.shape[3],
        kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h,
        dilation_w)
    cdef intp_t pooled_h = pooled.shape[1], pooled_w = pooled.shape[2]
    cdef intp_t image = g.out_h * g.out_w * g.out_channels
    cdef bint share = pooled_rows_per_block < 0
    pooled_rows_per_block = abs(pooled_rows_per_block)
    cdef bint by_rows = pooled_rows_per_block > 0
    cdef intp_t n_blocks = (pooled_h + pooled_rows_per_block - 1) // pooled_rows_per_block \
        if by_rows else 1
    cdef intp_t n_items = n_samples * n_blocks if by_rows else \
        (n_samples + samples_per_chunk - 1) // samples_per_chunk
    cdef intp_t item, turn, n, ph_start, ph_stop
    cdef floating* y
    cdef const floating* scale = _scale_pointer(channel_scale)
    cdef const floating* transformed = _winograd_pointer(winograd_weights)
    cdef intp_t pooled_image = pooled_h * pooled_w * g.out_channels
    cdef int32_t* winners
    g.winograd_tile = winograd_tile(winograd_weights)
    check_winograd_geometry(g)
    if n_samples == 0:
        return
    winners = winners_pointer(argmax, n_samples, pooled_image)
    if share and by_rows and transformed != NULL and not is_series_tile(g.winograd_tile):
        _check_shared_scratch(g, cols, n_threads)
        if conv_out.shape[0] * conv_out.shape[1] < image:
            raise ValueError("conv_out is too small for one image")
        y = &conv_out[0, 0]
        with nogil:
            for n in range(n_samples):
                winograd_image_shared(g, &x[n, 0, 0, 0], transformed, scale,
                                      NULL if pool_first else &bias[0], activation,
                                      &cols[0, 0], y, n_threads, NULL)
                for item in prange(n_blocks, schedule="static", num_threads=n_threads):
                    ph_start = item * pooled_rows_per_block
                    ph_stop = min(ph_start + pooled_rows_per_block, pooled_h)
                    max_pool_rows(y, out_w, g.out_channels, pool_h, pool_w,
                                  pool_stride_h, pool_stride_w, pooled_w, ph_start,
                                  ph_stop, 0, &pooled[n, 0, 0, 0],
                                  sample_winners(winners, n, pooled_image))
                    if pool_first:
                        epilogue(&pooled[n, ph_start, 0, 0],
                                 (ph_stop - ph_start) * pooled_w, g.out_channels, scale,
                                 &bias[0], activation)
        return
    cdef PoolGeometry windows
    windows.pool_h, windows.pool_w = pool_h, pool_w
    windows.stride_h, windows.stride_w = pool_stride_h, pool_stride_w
    windows.pooled_h, windows.pooled_w = pooled_h, pooled_w
    with nogil:
        if n_threads == 1:
            # See "One thread" in the module notes.
            for item in range(n_items):
                maxpool_item(&g, &windows, item, pooled_rows_per_block, n_blocks,
                             samples_per_chunk, n_samples, &x[0, 0, 0, 0],
                             &weights[0, 0], &bias[0], activation, &cols[0, 0],
                             &conv_out[0, 0], &pooled[0, 0, 0, 0], winners, scale,
                             transformed, pool_first)
        else:
            for turn in prange(n_items, schedule="static", num_threads=n_threads):
                maxpool_item(&g, &windows, in_turn(turn, n_items),
                             pooled_rows_per_block, n_blocks, samples_per_chunk,
                             n_samples, &x[0, 0, 0, 0], &weights[0, 0], &bias[0],
                             activation, &cols[threadid(), 0],
                             &conv_out[threadid(), 0], &pooled[0, 0, 0, 0], winners,
                             scale, transformed, pool_first)


cdef struct PoolGeometry:
    intp_t pool_h, pool_w, stride_h, stride_w, pooled_h, pooled_w


cdef void maxpool_item(
    const ConvGeometry* g, const PoolGeometry* p, intp_t item, intp_t block_rows,
    intp_t n_blocks, intp_t samples_per_chunk, intp_t n_samples, const floating* x,
    const floating* weights, const floating* bias, int activation, floating* cols,
    floating* y, floating* pooled, int32_t* winners, const floating* scale,
    const floating* transformed, bint pool_first,
) noexcept nogil:
    """Work item ``item`` of conv2d_maxpool_forward: a block of ``block_rows``
    pooled rows of one sample, or without them a chunk of
    ``samples_per_chunk`` samples; ``cols`` and ``y`` are this thread's."""
    cdef intp_t in_image = g.height * g.width * g.channels
    cdef intp_t image = g.out_h * g.out_w * g.out_channels
    cdef intp_t pooled_row = p.pooled_w * g.out_channels
    cdef intp_t pooled_image = p.pooled_h * pooled_row
    cdef intp_t n, start, stop, row_start, row_stop
    cdef ConvGeometry block
    if block_rows:
        n = item // n_blocks
        start = (item % n_blocks) * block_rows
        stop = min(start + block_rows, p.pooled_h)
        row_start = start * p.stride_h
        row_stop = min((stop - 1) * p.stride_h + p.pool_h, g.out_h)
        block = make_geometry(g.height, g.width, g.channels, row_stop - row_start,
                              g.out_w, g.out_channels, g.kernel_h, g.kernel_w,
                              g.stride_h, g.stride_w,
                              g.pad_top - row_start * g.stride_h, g.pad_left,
                              g.dilation_h, g.dilation_w)
        # As in conv2d_forward: given Winograd weights convolve it.
        block.winograd_tile = g.winograd_tile
        if pool_first:
            chunk_convolve(block, x + n * in_image, 1, weights, cols, y, transformed)
        else:
            chunk_forward(block, x + n * in_image, 1, weights, bias, activation, cols,
                          y, scale, transformed, NULL)
        max_pool_rows(y, g.out_w, g.out_channels, p.pool_h, p.pool_w, p.stride_h,
                      p.stride_w, p.pooled_w, start, stop, row_start,
                      pooled + n * pooled_image,
                      sample_winners(winners, n, pooled_image))
        if pool_first:
            epilogue(pooled + n * pooled_image + start * pooled_row,
                     (stop - start) * p.pooled_w, g.out_channels, scale, bias,
                     activation)
    else:
        start = item * samples_per_chunk
        stop = min(start + samples_per_chunk, n_samples)
        if pool_first:
            chunk_convolve(g[0], x + start * in_image, stop - start, weights, cols, y,
                           transformed)
        else:
            chunk_forward(g[0], x + start * in_image, stop - start, weights, bias,
                          activation, cols, y, scale, transformed, NULL)
        for n in range(start, stop):
            max_pool_rows(y + (n - start) * image, g.out_w, g.out_channels, p.pool_h,
                          p.pool_w, p.stride_h, p.stride_w, p.pooled_w, 0, p.pooled_h,
                          0, pooled + n * pooled_image,
                          sample_winners(winners, n, pooled_image))
        if pool_first:
            epilogue(pooled + start * pooled_image,
                     (stop - start) * p.pooled_h * p.pooled_w, g.out_channels, scale,
                     bias, activation)


def conv2d_maxpool_backward(
    const floating[:, :, :, ::1] x,            # IN: (N, H, W, C), forward input
    const floating[:, ::1] weights,            # IN: (taps, OC)
    const floating[:, :, :, ::1] pooled,       # IN: (N, PH, PW, OC), forward output
    const int32_t[:, :, :, ::1] argmax,        # IN: from the forward pass
    floating[:, :, :, ::1] grad_pooled,        # IN/OUT: d/d pooled; becomes d/d pre-activation
    floating[:, :, :, ::1] grad_input,         # OUT: (N, H, W, C) if compute_grad_input
    floating[:, ::1] grad_weights,             # OUT: (taps, OC)
    floating[::1] grad_bias,                   # OUT: (OC,)
    floating[:, ::1] weight_partials,          # scratch: (n_chunks, taps * OC)
    double[:, ::1] bias_partials,              # scratch: (n_chunks, OC)
    floating[:, ::1] cols,                     # scratch: (n_threads, chunk rows * taps)
    floating[:, ::1] conv_grad,                # scratch: (n_threads, chunk rows * OC)
    int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_top, int pad_left, int dilation_h, int dilation_w, int out_h, int out_w,
    int pool_h, int pool_w, int pool_stride_h, int pool_stride_w,
    int samples_per_chunk, int activation, bint compute_grad_input,
    int n_threads,
    const floating[:, ::1] winograd_back_weights=None,  # IN: see conv2d_backward
    floating[:, ::1] winograd_weight_grad=None,       # scratch: see conv2d_backward
):
    """Gradients of the fused conv + activation + max-pool layer."""
    cdef intp_t n_samples = x.shape[0]
    cdef ConvGeometry g = make_geometry(
        x.shape[1], x.shape[2], x.shape[3], out_h, out_w, pooled.shape[3],
        kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h,
        dilation_w)
    cdef intp_t out_channels = g.out_channels
    cdef intp_t pixels = g.out_h * g.out_w
    cdef intp_t pooled_h = pooled.shape[1], pooled_w = pooled.shape[2]
    cdef intp_t pooled_positions = pooled_h * pooled_w
    cdef intp_t n_chunks = (n_samples + samples_per_chunk - 1) // samples_per_chunk
    cdef bint disjoint = pool_stride_h == pool_h and pool_stride_w == pool_w
    cdef intp_t chunk, turn, start, stop, n, e, o
    cdef floating* dz
    cdef floating* dz_sample
    cdef floating* delta
    cdef const int32_t* where
    cdef double* bias_acc
    cdef floating* input_grad
    cdef const floating* transformed_back = _winograd_pointer(winograd_back_weights)
    g.winograd_tile = winograd_tile(winograd_back_weights, winograd_weight_grad)
    check_winograd_geometry(g)
    if n_samples == 0:
        grad_weights[:, :] = 0
        grad_bias[:] = 0
        return
    with nogil:
        for turn in prange(n_chunks, schedule="static", num_threads=n_threads):
            chunk = in_turn(turn, n_chunks)
            start = chunk * samples_per_chunk
            stop = min(start + samples_per_chunk, n_samples)
            dz = &conv_grad[threadid(), 0]
            bias_acc = &bias_partials[chunk, 0]
            for o in range(out_channels):
                bias_acc[o] = 0
            if not disjoint:
                memset(dz, 0, (stop - start) * pixels * out_channels * sizeof(floating))
            for n in range(start, stop):
                dz_sample = dz + (n - start) * pixels * out_channels
                delta = &grad_pooled[n, 0, 0, 0]
                where = &argmax[n, 0, 0, 0]
                # d pooled -> d pre-activation at the winners: the activation's
                # output there *is* the pooled value.
                multiply_by_derivative(delta, &pooled[n, 0, 0, 0],
                                       pooled_positions * out_channels, activation)
                add_column_sums(delta, pooled_positions, out_channels, out_channels,
                                bias_acc)
                if disjoint:
                    unpool_image(delta, where, g.out_h, g.out_w, out_channels,
                                 pool_h, pool_w, pooled_h, pooled_w, dz_sample)
                else:
                    # Overlapping windows: a position may win several times.
                    for e in range(pooled_positions * out_channels):
                        dz_sample[where[e] * out_channels + e % out_channels] += delta[e]
            input_grad = &grad_input[start, 0, 0, 0] if compute_grad_input else NULL
            chunk_backward(g, &x[start, 0, 0, 0], stop - start, &weights[0, 0], dz,
                           &weight_partials[chunk, 0], &cols[threadid(), 0],
                           compute_grad_input, input_grad, transformed_back,
                           winograd_weight_grad is not None, NULL)
        finish_weight_grad(g, weight_partials, bias_partials, n_chunks, grad_weights,
                           grad_bias, winograd_weight_grad, n_threads)
