# Max pooling of one image, shared by the pooling kernels and the fused
# conv + activation + max-pool kernel.

from cython cimport floating
from ._typedefs cimport intp_t, int32_t

cdef extern from "_running_max.h":
    void running_max_float(const float* src, float* best, int32_t* where,
                           int32_t position, intp_t n) noexcept nogil
    void running_max_double(const double* src, double* best, int32_t* where,
                            int32_t position, intp_t n) noexcept nogil


cdef inline void max_pool_rows(
    const floating* x,          # IN: one image, (H, W, C)
    intp_t width, intp_t channels,
    intp_t pool_h, intp_t pool_w, intp_t stride_h, intp_t stride_w,
    intp_t out_w, intp_t oh_start, intp_t oh_stop,
    floating* out,              # OUT: the image's pooled map, (OH, OW, C)
    int32_t* argmax,            # OUT: same shape, flat input index ih * W + iw
) noexcept nogil:
    """Pool output rows [oh_start, oh_stop); ties keep the first position.

    The contiguous channel loop is innermost and lives in C
    (``_running_max.h``), where gcc vectorises it.
    """
    cdef intp_t oh, ow, kh, kw, c, ih, iw
    cdef int32_t position
    cdef const floating* src
    cdef floating* best
    cdef int32_t* where
    for oh in range(oh_start, oh_stop):
        for ow in range(out_w):
            best = out + (oh * out_w + ow) * channels
            where = argmax + (oh * out_w + ow) * channels
            ih = oh * stride_h
            iw = ow * stride_w
            src = x + (ih * width + iw) * channels
            position = <int32_t> (ih * width + iw)
            for c in range(channels):
                best[c] = src[c]
                where[c] = position
            for kh in range(pool_h):
                for kw in range(pool_w):
                    if kh == 0 and kw == 0:
                        continue
                    src = x + ((ih + kh) * width + iw + kw) * channels
                    position = <int32_t> ((ih + kh) * width + iw + kw)
                    if floating is float:
                        running_max_float(src, best, where, position, channels)
                    else:
                        running_max_double(src, best, where, position, channels)
