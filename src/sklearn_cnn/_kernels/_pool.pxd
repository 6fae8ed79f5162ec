# Max pooling of one image, shared by the pooling kernels and the fused
# conv + activation + max-pool kernel.

from cython cimport floating
from libc.string cimport memset
from ._typedefs cimport intp_t, int32_t

cdef extern from "_pool_simd.h":
    void running_max_float(const float* src, float* best, int32_t* where,
                           int32_t position, intp_t n) noexcept nogil
    void running_max_double(const double* src, double* best, int32_t* where,
                            int32_t position, intp_t n) noexcept nogil
    void running_max_only_float(const float* src, float* best, intp_t n) noexcept nogil
    void running_max_only_double(const double* src, double* best,
                                 intp_t n) noexcept nogil
    void window_max_2x2_float(const float* top, const float* bottom, intp_t step,
                              float* best, intp_t n) noexcept nogil
    void window_max_2x2_double(const double* top, const double* bottom, intp_t step,
                               double* best, intp_t n) noexcept nogil
    void window_argmax_2x2_float(const float* top, const float* bottom, intp_t step,
                                 float* best, int32_t* where, int32_t position,
                                 int32_t row, intp_t n) noexcept nogil
    void window_argmax_2x2_double(const double* top, const double* bottom,
                                  intp_t step, double* best, int32_t* where,
                                  int32_t position, int32_t row, intp_t n) noexcept nogil
    void unpool_float(const float* delta, const int32_t* where, int32_t position,
                      float* dst, intp_t n) noexcept nogil
    void unpool_double(const double* delta, const int32_t* where, int32_t position,
                       double* dst, intp_t n) noexcept nogil


cdef inline int32_t* winners_pointer(int32_t[:, :, :, ::1] argmax, intp_t n_samples,
                                     intp_t image) except? NULL:
    """The data of ``argmax`` for n_samples (> 0) pooled maps of ``image``
    values each, checked; NULL for None (prediction keeps no winners)."""
    if argmax is None:
        return NULL
    if argmax.shape[0] < n_samples or \
            argmax.shape[1] * argmax.shape[2] * argmax.shape[3] != image:
        raise ValueError("argmax does not match the pooled maps")
    return &argmax[0, 0, 0, 0]


cdef inline int32_t* sample_winners(int32_t* winners, intp_t n,
                                    intp_t image) noexcept nogil:
    """Sample n's map in ``winners_pointer``'s data, or NULL without one."""
    return NULL if winners == NULL else winners + n * image


cdef inline void max_pool_rows(
    const floating* x,          # IN: one image, (H, W, C)
    intp_t width, intp_t channels,
    intp_t pool_h, intp_t pool_w, intp_t stride_h, intp_t stride_w,
    intp_t out_w, intp_t oh_start, intp_t oh_stop, intp_t first_row,
    floating* out,              # OUT: the image's pooled map, (OH, OW, C)
    int32_t* argmax,            # OUT: same shape, flat input index ih * W + iw; or NULL
) noexcept nogil:
    """Pool output rows [oh_start, oh_stop); ties keep the first position.

    ``x`` holds the image from input row ``first_row`` on (0: all of it);
    argmax indices count from the image's first row all the same.  Without
    ``argmax`` (prediction) only the maxima are kept: the same values.

    The contiguous channel loop is innermost and lives in C
    (``_pool_simd.h``), where gcc vectorises it.
    """
    cdef intp_t oh, ow, kh, kw, c, ih, iw
    cdef int32_t position
    cdef const floating* src
    cdef floating* best
    cdef int32_t* where
    for oh in range(oh_start, oh_stop):
        for ow in range(out_w):
            best = out + (oh * out_w + ow) * channels
            ih = oh * stride_h
            iw = ow * stride_w
            src = x + ((ih - first_row) * width + iw) * channels
            where = NULL if argmax == NULL else argmax + (oh * out_w + ow) * channels
            position = <int32_t> (ih * width + iw)
            if pool_h == 2 and pool_w == 2:
                # The common window in one pass (see _pool_simd.h).
                if where == NULL:
                    if floating is float:
                        window_max_2x2_float(src, src + width * channels, channels,
                                             best, channels)
                    else:
                        window_max_2x2_double(src, src + width * channels, channels,
                                              best, channels)
                elif floating is float:
                    window_argmax_2x2_float(src, src + width * channels, channels, best,
                                            where, position, <int32_t> width, channels)
                else:
                    window_argmax_2x2_double(src, src + width * channels, channels, best,
                                             where, position, <int32_t> width, channels)
                continue
            for c in range(channels):
                best[c] = src[c]
            if argmax == NULL:
                for kh in range(pool_h):
                    for kw in range(pool_w):
                        if kh == 0 and kw == 0:
                            continue
                        src = x + ((ih + kh - first_row) * width + iw + kw) * channels
                        if floating is float:
                            running_max_only_float(src, best, channels)
                        else:
                            running_max_only_double(src, best, channels)
                continue
            for c in range(channels):
                where[c] = position
            for kh in range(pool_h):
                for kw in range(pool_w):
                    if kh == 0 and kw == 0:
                        continue
                    src = x + ((ih + kh - first_row) * width + iw + kw) * channels
                    position = <int32_t> ((ih + kh) * width + iw + kw)
                    if floating is float:
                        running_max_float(src, best, where, position, channels)
                    else:
                        running_max_double(src, best, where, position, channels)


cdef inline void unpool_image(
    const floating* delta,      # IN: (PH, PW, C) gradient of the pooled map
    const int32_t* argmax,      # IN: (PH, PW, C) winners, index oh * W + iw
    intp_t height, intp_t width, intp_t channels,
    intp_t pool_h, intp_t pool_w, intp_t out_h, intp_t out_w,
    floating* dst,              # OUT: (H, W, C), fully written
) noexcept nogil:
    """Backward of max pooling with stride == pool size (windows disjoint)."""
    cdef intp_t ph, pw, kh, kw, row, col
    cdef intp_t covered_w = out_w * pool_w
    cdef const floating* cell_delta
    cdef const int32_t* cell_where
    for ph in range(out_h):
        for kh in range(pool_h):
            row = ph * pool_h + kh
            for pw in range(out_w):
                cell_delta = delta + (ph * out_w + pw) * channels
                cell_where = argmax + (ph * out_w + pw) * channels
                for kw in range(pool_w):
                    col = pw * pool_w + kw
                    if floating is float:
                        unpool_float(cell_delta, cell_where, <int32_t> (row * width + col),
                                     dst + (row * width + col) * channels, channels)
                    else:
                        unpool_double(cell_delta, cell_where,
                                      <int32_t> (row * width + col),
                                      dst + (row * width + col) * channels, channels)
            # Columns right of the last window get no gradient.
            if covered_w < width:
                memset(dst + (row * width + covered_w) * channels, 0,
                       (width - covered_w) * channels * sizeof(floating))
    # Rows below the last window neither.
    if out_h * pool_h < height:
        memset(dst + out_h * pool_h * width * channels, 0,
               (height - out_h * pool_h) * width * channels * sizeof(floating))
