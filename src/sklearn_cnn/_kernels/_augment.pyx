"""Data augmentation of one training batch of NHWC images (or series).

One pass per batch writes the augmented copy: each sample is mirrored
left-right (if flipped), then shifted by ``(shift_y, shift_x)``, so the output
pixel ``(y, x)`` is the mirrored image's pixel ``(y - shift_y, x - shift_x)``;
then it is multiplied by the sample's scale, plus ``sigma`` times the
sample's noise when noise is given.  Pixels read from
outside the image are zero, or mirrored back inside ("reflect", NumPy's
mode: the edge is not repeated), which needs ``|shift| < size``: the caller
checks it.

Every random draw is made by the caller (NumPy, from the estimator's
``random_state``), so the result does not depend on the thread count.
"""

from cython.parallel cimport prange
from cython cimport floating

from ._typedefs cimport intp_t, int32_t


cdef inline intp_t source_index(intp_t index, intp_t size, bint reflect) noexcept nogil:
    """``index`` if inside ``[0, size)``, its mirror image when reflecting,
    else -1 (a zero pixel)."""
    if index >= 0 and index < size:
        return index
    if not reflect:
        return -1
    if index < 0:
        return -index
    return 2 * (size - 1) - index


def augment_batch(
    const floating[:, :, :, ::1] x,      # IN: (N, H, W, C)
    floating[:, :, :, ::1] out,          # OUT: (N, H, W, C)
    const int32_t[::1] shift_y,          # IN: (N,) |shift_y| < H
    const int32_t[::1] shift_x,          # IN: (N,) |shift_x| < W
    const unsigned char[::1] flip,       # IN: (N,) 1: mirror left-right
    const double[::1] scale,             # IN: (N,) multiplier of the sample
    const floating[:, :, :, ::1] noise,  # IN: (N, H, W, C), read when add_noise
    double sigma,
    bint add_noise,
    bint reflect,
    int n_threads,
):
    cdef intp_t n_samples = x.shape[0], height = x.shape[1]
    cdef intp_t width = x.shape[2], channels = x.shape[3]
    cdef intp_t row, n, y, sy, col, sx, c
    cdef double factor, value
    with nogil:
        for row in prange(n_samples * height, schedule="static", num_threads=n_threads):
            n = row // height
            y = row % height
            factor = scale[n]
            sy = source_index(y - shift_y[n], height, reflect)
            for col in range(width):
                sx = source_index(col - shift_x[n], width, reflect)
                if flip[n] and sx >= 0:
                    sx = width - 1 - sx
                for c in range(channels):
                    value = 0
                    if sy >= 0 and sx >= 0:
                        value = factor * x[n, sy, sx, c]
                    if add_noise:
                        value = value + sigma * noise[n, y, col, c]
                    out[n, y, col, c] = <floating> value
