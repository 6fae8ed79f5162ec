"""Pooling kernels on NHWC feature maps: max, average and global average.

Notes
-----
Windows never leave the image (no padding): the caller checks that
``(out - 1) * stride + pool <= size`` along both axes.

Max pooling keeps, for every output value, the flat spatial index
``ih * W + iw`` of the input that won, so backward is a scatter.  The
running maximum is kept with selects rather than branches, and the channel
loop is innermost and contiguous: gcc vectorises it (a branchy version was
several times slower than the convolution feeding it).  Ties keep the first
position in row-major window order.

``prange`` runs over (sample, output row) pairs so that a single image still
spreads over the threads; in backward, windows of one sample may overlap
(stride < pool) so it runs over samples, each thread owning whole samples.
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.string cimport memset

from ._typedefs cimport intp_t, int32_t


def max_pool2d_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    floating[:, :, :, ::1] out,          # OUT: (N, OH, OW, C)
    int32_t[:, :, :, ::1] argmax,        # OUT: (N, OH, OW, C) flat index ih * W + iw, or None
    int pool_h, int pool_w, int stride_h, int stride_w, int n_threads,
):
    """Max pooling; without ``argmax`` (None: prediction) only the maxima."""
    cdef intp_t n_samples = x.shape[0], width = x.shape[2], channels = x.shape[3]
    cdef intp_t out_h = out.shape[1], out_w = out.shape[2]
    cdef intp_t image = out_h * out_w * channels
    cdef intp_t row, n, oh
    cdef int32_t* winners
    if n_samples == 0:
        return
    winners = winners_pointer(argmax, n_samples, image)
    with nogil:
        for row in prange(n_samples * out_h, schedule="static", num_threads=n_threads):
            n = row // out_h
            oh = row % out_h
            max_pool_rows(&x[n, 0, 0, 0], width, channels, pool_h, pool_w,
                          stride_h, stride_w, out_w, oh, oh + 1, 0,
                          &out[n, 0, 0, 0], sample_winners(winners, n, image))


def max_pool2d_backward(
    const floating[:, :, :, ::1] grad_output,   # IN: (N, OH, OW, C)
    const int32_t[:, :, :, ::1] argmax,         # IN: from the forward pass
    floating[:, :, :, ::1] grad_input,          # OUT: (N, H, W, C)
    int n_threads,
):
    cdef intp_t n_samples = grad_input.shape[0]
    cdef intp_t image = grad_input.shape[1] * grad_input.shape[2] * grad_input.shape[3]
    cdef intp_t channels = grad_input.shape[3]
    cdef intp_t positions = grad_output.shape[1] * grad_output.shape[2]
    cdef intp_t n, p, c
    cdef floating* dx
    cdef const floating* dy
    cdef const int32_t* where
    with nogil:
        for n in prange(n_samples, schedule="static", num_threads=n_threads):
            dx = &grad_input[n, 0, 0, 0]
            memset(dx, 0, image * sizeof(floating))
            dy = &grad_output[n, 0, 0, 0]
            where = &argmax[n, 0, 0, 0]
            for p in range(positions):
                for c in range(channels):
                    dx[where[p * channels + c] * channels + c] += dy[p * channels + c]


def avg_pool2d_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    floating[:, :, :, ::1] out,          # OUT: (N, OH, OW, C)
    int pool_h, int pool_w, int stride_h, int stride_w, int n_threads,
):
    cdef intp_t n_samples = x.shape[0], channels = x.shape[3]
    cdef intp_t out_h = out.shape[1], out_w = out.shape[2]
    cdef intp_t row, n, oh, ow, kh, kw, c
    cdef floating scale = <floating> 1 / (pool_h * pool_w)
    cdef const floating* src
    cdef floating* dst
    with nogil:
        for row in prange(n_samples * out_h, schedule="static", num_threads=n_threads):
            n = row // out_h
            oh = row % out_h
            for ow in range(out_w):
                dst = &out[n, oh, ow, 0]
                for c in range(channels):
                    dst[c] = 0
                for kh in range(pool_h):
                    for kw in range(pool_w):
                        src = &x[n, oh * stride_h + kh, ow * stride_w + kw, 0]
                        for c in range(channels):
                            dst[c] += src[c]
                for c in range(channels):
                    dst[c] *= scale


def avg_pool2d_backward(
    const floating[:, :, :, ::1] grad_output,   # IN: (N, OH, OW, C)
    floating[:, :, :, ::1] grad_input,          # OUT: (N, H, W, C)
    int pool_h, int pool_w, int stride_h, int stride_w, int n_threads,
):
    cdef intp_t n_samples = grad_input.shape[0], channels = grad_input.shape[3]
    cdef intp_t image = grad_input.shape[1] * grad_input.shape[2] * channels
    cdef intp_t out_h = grad_output.shape[1], out_w = grad_output.shape[2]
    cdef intp_t n, oh, ow, kh, kw, c
    cdef floating scale = <floating> 1 / (pool_h * pool_w)
    cdef const floating* src
    cdef floating* dst
    with nogil:
        for n in prange(n_samples, schedule="static", num_threads=n_threads):
            memset(&grad_input[n, 0, 0, 0], 0, image * sizeof(floating))
            for oh in range(out_h):
                for ow in range(out_w):
                    src = &grad_output[n, oh, ow, 0]
                    for kh in range(pool_h):
                        for kw in range(pool_w):
                            dst = &grad_input[n, oh * stride_h + kh, ow * stride_w + kw, 0]
                            for c in range(channels):
                                dst[c] += src[c] * scale


def global_avg_pool2d_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    floating[:, ::1] out,                # OUT: (N, C)
    int n_threads,
):
    cdef intp_t n_samples = x.shape[0], channels = x.shape[3]
    cdef intp_t positions = x.shape[1] * x.shape[2]
    cdef intp_t n
    if n_samples == 0:
        return
    with nogil:
        # No team for one thread or one image: a team of one cost 0.7 us in
        # libgomp, of two more.
        if n_threads == 1 or n_samples == 1:
            for n in range(n_samples):
                average_image(&x[n, 0, 0, 0], positions, channels, &out[n, 0])
        else:
            for n in prange(n_samples, schedule="static",
                            num_threads=min(n_threads, n_samples)):
                average_image(&x[n, 0, 0, 0], positions, channels, &out[n, 0])


cdef inline void average_image(const floating* x, intp_t positions, intp_t channels,
                               floating* out) noexcept nogil:
    """The mean over ``positions`` of each of the ``channels`` of one image."""
    cdef intp_t p, c
    cdef floating scale = <floating> 1 / positions
    for c in range(channels):
        out[c] = 0
    for p in range(positions):
        for c in range(channels):
            out[c] += x[p * channels + c]
    for c in range(channels):
        out[c] *= scale


def global_avg_pool2d_backward(
    const floating[:, ::1] grad_output,      # IN: (N, C)
    floating[:, :, :, ::1] grad_input,       # OUT: (N, H, W, C)
    int n_threads,
):
    cdef intp_t n_samples = grad_input.shape[0], channels = grad_input.shape[3]
    cdef intp_t positions = grad_input.shape[1] * grad_input.shape[2]
    cdef intp_t n, p, c
    cdef floating scale = <floating> 1 / positions
    cdef floating* dst
    with nogil:
        for n in prange(n_samples, schedule="static", num_threads=n_threads):
            dst = &grad_input[n, 0, 0, 0]
            for p in range(positions):
                for c in range(channels):
                    dst[p * channels + c] = grad_output[n, c] * scale


def global_max_pool2d_forward(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    floating[:, ::1] out,                # OUT: (N, C)
    int32_t[:, ::1] argmax,              # OUT: (N, C) flat position h * W + w
    int n_threads,
):
    """Ties keep the first position in row-major order, as max pooling does."""
    cdef intp_t n_samples = x.shape[0], channels = x.shape[3]
    cdef intp_t positions = x.shape[1] * x.shape[2]
    cdef intp_t n, p, c
    cdef const floating* src
    with nogil:
        # No more threads than samples: one image's pooling is one item.
        for n in prange(n_samples, schedule="static",
                        num_threads=min(n_threads, n_samples)):
            src = &x[n, 0, 0, 0]
            for c in range(channels):
                out[n, c] = src[c]
                argmax[n, c] = 0
            for p in range(1, positions):
                for c in range(channels):
                    if src[p * channels + c] > out[n, c]:
                        out[n, c] = src[p * channels + c]
                        argmax[n, c] = <int32_t> p


def global_max_pool2d_backward(
    const floating[:, ::1] grad_output,      # IN: (N, C)
    const int32_t[:, ::1] argmax,            # IN: (N, C)
    floating[:, :, :, ::1] grad_input,       # OUT: (N, H, W, C)
    int n_threads,
):
    cdef intp_t n_samples = grad_input.shape[0], channels = grad_input.shape[3]
    cdef intp_t positions = grad_input.shape[1] * grad_input.shape[2]
    cdef intp_t n, c
    cdef floating* dst
    with nogil:
        for n in prange(n_samples, schedule="static", num_threads=n_threads):
            dst = &grad_input[n, 0, 0, 0]
            memset(dst, 0, positions * channels * sizeof(floating))
            for c in range(channels):
                dst[argmax[n, c] * channels + c] = grad_output[n, c]
