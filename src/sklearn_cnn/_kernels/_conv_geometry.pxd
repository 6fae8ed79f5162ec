# The geometry of a convolution, shared by the im2col kernels (_conv.pyx)
# and the Winograd ones (_winograd.pxd).

from ._typedefs cimport intp_t


cdef struct ConvGeometry:
    intp_t height, width, channels, out_h, out_w, out_channels, taps
    intp_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left
    intp_t dilation_h, dilation_w
    bint pointwise, taps_major
    # Winograd's output tile side, 2 or 4 (_winograd.pxd); set by the
    # kernels that received Winograd weights, 0 otherwise.
    int winograd_tile


cdef inline ConvGeometry make_geometry(
    intp_t height, intp_t width, intp_t channels, intp_t out_h, intp_t out_w,
    intp_t out_channels, int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_top, int pad_left, int dilation_h, int dilation_w,
) noexcept nogil:
    cdef ConvGeometry g
    g.height, g.width, g.channels = height, width, channels
    g.out_h, g.out_w, g.out_channels = out_h, out_w, out_channels
    g.kernel_h, g.kernel_w = kernel_h, kernel_w
    g.stride_h, g.stride_w = stride_h, stride_w
    g.pad_top, g.pad_left = pad_top, pad_left
    g.dilation_h, g.dilation_w = dilation_h, dilation_w
    g.taps = kernel_h * kernel_w * channels
    # A 1x1, stride-1, unpadded convolution is a plain GEMM on the input.
    g.pointwise = (kernel_h == 1 and kernel_w == 1 and stride_h == 1
                   and stride_w == 1 and pad_top == 0 and pad_left == 0)
    # One input channel: im2col transposed (see im2col_taps_major).
    g.taps_major = channels == 1 and not g.pointwise
    g.winograd_tile = 0
    return g
