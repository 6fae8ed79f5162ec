"""2-D convolution kernels: im2col + one GEMM per chunk of samples, NHWC.

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

Parallelism.  ``prange`` runs over chunks of ``samples_per_chunk`` samples;
each thread has its own im2col buffer (row ``threadid()`` of ``cols``).  BLAS
is called single-threaded inside (the caller limits it).  The chunk size is
chosen by the caller from the layer's shape only, never from the thread
count, and the weight and bias gradients are summed per chunk and then
reduced over chunks in chunk order: the result is bitwise the same for any
number of threads.

Activation.  The layer's activation is fused: forward applies it to the
GEMM output while it is in cache, backward first turns d loss/d output into
d loss/d pre-activation using the derivative written in terms of the output.
"""

from cython.parallel cimport prange, threadid
from cython cimport floating
from libc.string cimport memcpy, memset

from ._activations cimport activate, derivative_from_output
from ._blas cimport gemm_rowmajor
from ._typedefs cimport intp_t

cdef enum:
    REDUCE_BLOCK = 4096


cdef inline void im2col_chunk(
    const floating* x,      # IN: first sample of the chunk, (n, H, W, C)
    intp_t n_samples, intp_t height, intp_t width, intp_t channels,
    intp_t kernel_h, intp_t kernel_w, intp_t stride_h, intp_t stride_w,
    intp_t pad_top, intp_t pad_left, intp_t out_h, intp_t out_w,
    floating* cols,         # OUT: (n * out_h * out_w, kernel_h * kernel_w * C)
) noexcept nogil:
    cdef intp_t n, oh, ow, kh, ih, iw0, kw_lo, kw_hi
    cdef intp_t run = kernel_w * channels
    cdef const floating* sample
    cdef floating* dst = cols
    for n in range(n_samples):
        sample = x + n * height * width * channels
        for oh in range(out_h):
            for ow in range(out_w):
                iw0 = ow * stride_w - pad_left
                # Taps kw in [kw_lo, kw_hi) fall inside the image.
                kw_lo = -iw0 if iw0 < 0 else 0
                kw_hi = width - iw0 if iw0 + kernel_w > width else kernel_w
                if kw_hi < kw_lo:
                    kw_hi = kw_lo
                for kh in range(kernel_h):
                    ih = oh * stride_h - pad_top + kh
                    if ih < 0 or ih >= height:
                        memset(dst, 0, run * sizeof(floating))
                    else:
                        if kw_lo > 0:
                            memset(dst, 0, kw_lo * channels * sizeof(floating))
                        if kw_hi > kw_lo:
                            memcpy(dst + kw_lo * channels,
                                   sample + (ih * width + iw0 + kw_lo) * channels,
                                   (kw_hi - kw_lo) * channels * sizeof(floating))
                        if kw_hi < kernel_w:
                            memset(dst + kw_hi * channels, 0,
                                   (kernel_w - kw_hi) * channels * sizeof(floating))
                    dst += run


cdef inline void col2im_chunk(
    const floating* cols,   # IN: (n * out_h * out_w, kernel_h * kernel_w * C)
    intp_t n_samples, intp_t height, intp_t width, intp_t channels,
    intp_t kernel_h, intp_t kernel_w, intp_t stride_h, intp_t stride_w,
    intp_t pad_top, intp_t pad_left, intp_t out_h, intp_t out_w,
    floating* x,            # OUT: (n, H, W, C), overwritten
) noexcept nogil:
    cdef intp_t n, oh, ow, kh, ih, iw0, kw_lo, kw_hi, j, count
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
                kw_lo = -iw0 if iw0 < 0 else 0
                kw_hi = width - iw0 if iw0 + kernel_w > width else kernel_w
                count = (kw_hi - kw_lo) * channels
                for kh in range(kernel_h):
                    ih = oh * stride_h - pad_top + kh
                    if ih >= 0 and ih < height and count > 0:
                        dst = sample + (ih * width + iw0 + kw_lo) * channels
                        for j in range(count):
                            dst[j] += src[kw_lo * channels + j]
                    src += run


def conv2d_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    const floating[:, ::1] weights,      # IN: (KH * KW * C, OC)
    const floating[::1] bias,            # IN: (OC,)
    floating[:, :, :, ::1] out,          # OUT: (N, OH, OW, OC), activated
    floating[:, ::1] cols,               # scratch: (n_threads, chunk rows * taps)
    int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_top, int pad_left,
    int samples_per_chunk, int activation, int n_threads,
):
    cdef intp_t n_samples = x.shape[0], height = x.shape[1]
    cdef intp_t width = x.shape[2], channels = x.shape[3]
    cdef intp_t out_h = out.shape[1], out_w = out.shape[2]
    cdef intp_t out_channels = out.shape[3]
    cdef intp_t taps = kernel_h * kernel_w * channels
    cdef intp_t pixels = out_h * out_w
    cdef intp_t n_chunks = (n_samples + samples_per_chunk - 1) // samples_per_chunk
    # A 1x1, stride-1, unpadded convolution is a plain GEMM on the input.
    cdef bint pointwise = (kernel_h == 1 and kernel_w == 1 and stride_h == 1
                           and stride_w == 1 and pad_top == 0 and pad_left == 0)
    cdef intp_t chunk, start, stop, rows, i, o
    cdef const floating* chunk_cols
    cdef floating* y
    if n_samples == 0:
        return
    with nogil:
        for chunk in prange(n_chunks, schedule="static", num_threads=n_threads):
            start = chunk * samples_per_chunk
            stop = min(start + samples_per_chunk, n_samples)
            rows = (stop - start) * pixels
            if pointwise:
                chunk_cols = &x[start, 0, 0, 0]
            else:
                im2col_chunk(&x[start, 0, 0, 0], stop - start, height, width,
                             channels, kernel_h, kernel_w, stride_h, stride_w,
                             pad_top, pad_left, out_h, out_w, &cols[threadid(), 0])
                chunk_cols = &cols[threadid(), 0]
            y = &out[start, 0, 0, 0]
            gemm_rowmajor(c'N', c'N', <int> rows, <int> out_channels, <int> taps,
                          <floating> 1, chunk_cols, <int> taps,
                          &weights[0, 0], <int> out_channels,
                          <floating> 0, y, <int> out_channels)
            for i in range(rows):
                for o in range(out_channels):
                    y[i * out_channels + o] = activate(
                        y[i * out_channels + o] + bias[o], activation)


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
    int pad_top, int pad_left,
    int samples_per_chunk, int activation, bint compute_grad_input,
    int n_threads,
):
    """Gradients of a fused conv + bias + activation layer.

    The weight and bias gradients are sums over the batch (not means): the
    loss kernel already scaled d loss/d output.
    """
    cdef intp_t n_samples = x.shape[0], height = x.shape[1]
    cdef intp_t width = x.shape[2], channels = x.shape[3]
    cdef intp_t out_h = output.shape[1], out_w = output.shape[2]
    cdef intp_t out_channels = output.shape[3]
    cdef intp_t taps = kernel_h * kernel_w * channels
    cdef intp_t pixels = out_h * out_w
    cdef intp_t n_chunks = (n_samples + samples_per_chunk - 1) // samples_per_chunk
    cdef intp_t n_weights = taps * out_channels
    cdef intp_t n_blocks = (n_weights + REDUCE_BLOCK - 1) // REDUCE_BLOCK
    cdef bint pointwise = (kernel_h == 1 and kernel_w == 1 and stride_h == 1
                           and stride_w == 1 and pad_top == 0 and pad_left == 0)
    cdef intp_t chunk, start, stop, rows, i, o, block, e, e_stop
    cdef const floating* chunk_cols
    cdef const floating* y
    cdef floating* dz
    cdef floating* buffer
    cdef double* bias_acc
    cdef double total
    cdef floating weight_total
    if n_samples == 0:
        grad_weights[:, :] = 0
        grad_bias[:] = 0
        return
    with nogil:
        for chunk in prange(n_chunks, schedule="static", num_threads=n_threads):
            start = chunk * samples_per_chunk
            stop = min(start + samples_per_chunk, n_samples)
            rows = (stop - start) * pixels
            y = &output[start, 0, 0, 0]
            dz = &grad_output[start, 0, 0, 0]
            bias_acc = &bias_partials[chunk, 0]
            for o in range(out_channels):
                bias_acc[o] = 0
            for i in range(rows):
                for o in range(out_channels):
                    dz[i * out_channels + o] = dz[i * out_channels + o] * \
                        derivative_from_output(y[i * out_channels + o], activation)
                    bias_acc[o] += dz[i * out_channels + o]
            buffer = &cols[threadid(), 0]
            if pointwise:
                chunk_cols = &x[start, 0, 0, 0]
            else:
                im2col_chunk(&x[start, 0, 0, 0], stop - start, height, width,
                             channels, kernel_h, kernel_w, stride_h, stride_w,
                             pad_top, pad_left, out_h, out_w, buffer)
                chunk_cols = buffer
            # weight_partials[chunk] = cols^T @ dz : (taps, OC)
            gemm_rowmajor(c'T', c'N', <int> taps, <int> out_channels, <int> rows,
                          <floating> 1, chunk_cols, <int> taps,
                          dz, <int> out_channels,
                          <floating> 0, &weight_partials[chunk, 0], <int> out_channels)
            if compute_grad_input:
                if pointwise:
                    # d input = dz @ weights^T, written straight into grad_input.
                    gemm_rowmajor(c'N', c'T', <int> rows, <int> taps,
                                  <int> out_channels, <floating> 1,
                                  dz, <int> out_channels,
                                  &weights[0, 0], <int> out_channels,
                                  <floating> 0, &grad_input[start, 0, 0, 0], <int> taps)
                else:
                    # The im2col buffer is free again: reuse it for d cols.
                    gemm_rowmajor(c'N', c'T', <int> rows, <int> taps,
                                  <int> out_channels, <floating> 1,
                                  dz, <int> out_channels,
                                  &weights[0, 0], <int> out_channels,
                                  <floating> 0, buffer, <int> taps)
                    col2im_chunk(buffer, stop - start, height, width, channels,
                                 kernel_h, kernel_w, stride_h, stride_w,
                                 pad_top, pad_left, out_h, out_w,
                                 &grad_input[start, 0, 0, 0])

        # Fixed-order reduction over chunks: independent of the thread count.
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            e_stop = min((block + 1) * REDUCE_BLOCK, n_weights)
            for e in range(block * REDUCE_BLOCK, e_stop):
                weight_total = 0
                for chunk in range(n_chunks):
                    weight_total = weight_total + weight_partials[chunk, e]
                grad_weights[e // out_channels, e % out_channels] = weight_total
        for o in range(out_channels):
            total = 0
            for chunk in range(n_chunks):
                total = total + bias_partials[chunk, o]
            grad_bias[o] = <floating> total
