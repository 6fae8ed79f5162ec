"""Batch normalisation (+ an optional activation, fused) over the columns of
a row-major (rows, channels) matrix.

Notes
-----
Layout.  An NHWC feature map (N, H, W, C) is a (N*H*W, C) matrix and a dense
layer's output an (N, F) one: both normalise each column, and the channel
loop is innermost and contiguous, so gcc vectorises it.

Determinism.  Every sum over rows is taken per fixed block of
ROWS_PER_BLOCK rows into float64 partials, then reduced over the blocks in
block order.  The block size is a constant, never derived from the thread
count: the statistics, hence the results, are bitwise the same for any
number of threads.  Mean and variance take two passes (the variance sums
squared deviations from the mean), which keeps the variance accurate where
one pass (E[x²] - E[x]²) would cancel catastrophically.

Activation.  A following activation is fused: forward applies it to the
normalised values, backward first turns d loss/d output into d loss/d
normalised values with the derivative written in terms of the output.
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport sqrt

from ._activations cimport activate, multiply_by_derivative
from ._typedefs cimport intp_t, IDENTITY, RELU

cdef enum:
    ROWS_PER_BLOCK = 256


def n_blocks(intp_t n_rows):
    """Rows of the ``partials`` scratch arrays the kernels need."""
    return max(1, (n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK)


cdef inline void column_sums(
    const floating[:, ::1] x, const double[::1] centre, bint squared,
    double[:, ::1] partials, double[::1] totals, int n_threads,
) noexcept nogil:
    """totals[c] = sum over rows of (x - centre[c]), or of its square, by fixed
    blocks reduced in block order."""
    cdef intp_t n_rows = x.shape[0], n_channels = x.shape[1]
    cdef intp_t n_block = (n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    cdef intp_t block, r, c
    cdef double d, total
    for block in prange(n_block, schedule="static", num_threads=n_threads):
        for c in range(n_channels):
            partials[block, c] = 0
        # The test is outside the loops so that both compile to vector code.
        if squared:
            for r in range(block * ROWS_PER_BLOCK,
                           min((block + 1) * ROWS_PER_BLOCK, n_rows)):
                for c in range(n_channels):
                    d = x[r, c] - centre[c]
                    partials[block, c] += d * d
        else:
            for r in range(block * ROWS_PER_BLOCK,
                           min((block + 1) * ROWS_PER_BLOCK, n_rows)):
                for c in range(n_channels):
                    partials[block, c] += x[r, c] - centre[c]
    for c in range(n_channels):
        total = 0
        for block in range(n_block):
            total = total + partials[block, c]
        totals[c] = total


cdef inline void multiply_add_activate(
    const floating[:, ::1] x, const double* multiplier, const double* offset,
    floating[:, ::1] out, int activation, int n_threads,
) noexcept nogil:
    """out = activation(x * multiplier[c] + offset[c]), blocks of rows in parallel."""
    cdef intp_t n_rows = x.shape[0], n_channels = x.shape[1]
    cdef intp_t n_block = (n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    cdef intp_t block, r, c, start, stop
    for block in prange(n_block, schedule="static", num_threads=n_threads):
        start = block * ROWS_PER_BLOCK
        stop = min(start + ROWS_PER_BLOCK, n_rows)
        for r in range(start, stop):
            for c in range(n_channels):
                out[r, c] = <floating> (x[r, c] * multiplier[c] + offset[c])
        if activation != IDENTITY:
            activate_block(&out[start, 0], (stop - start) * n_channels, activation)


cdef inline void activate_block(floating* values, intp_t n, int activation) noexcept nogil:
    cdef intp_t i
    if activation == RELU:
        for i in range(n):
            values[i] = values[i] if values[i] > 0 else 0
    else:
        for i in range(n):
            values[i] = activate(values[i], activation)


def batchnorm_forward_train(
    const floating[:, ::1] x,        # IN: (R, C)
    const floating[::1] scale,       # IN: (C,) gamma
    const floating[::1] shift,       # IN: (C,) beta
    floating[:, ::1] out,            # OUT: (R, C), activated
    double[::1] mean,                # OUT: (C,) batch mean
    double[::1] var,                 # OUT: (C,) batch variance (biased)
    double[:, ::1] partials,         # scratch: (n_blocks(R), >= C)
    double[::1] coefficients,        # scratch: (>= 2 C,)
    double epsilon, int activation, int n_threads,
):
    cdef intp_t n_rows = x.shape[0], n_channels = x.shape[1]
    cdef intp_t c
    cdef double multiplier
    with nogil:
        var[:] = 0  # the first pass sums x - 0
        column_sums(x, var, False, partials, mean, n_threads)
        for c in range(n_channels):
            mean[c] = mean[c] / n_rows
        column_sums(x, mean, True, partials, var, n_threads)
        for c in range(n_channels):
            var[c] = var[c] / n_rows
            # (x - mean) / std * scale + shift as one multiply-add per value.
            multiplier = scale[c] / sqrt(var[c] + epsilon)
            coefficients[c] = multiplier
            coefficients[n_channels + c] = shift[c] - mean[c] * multiplier
        multiply_add_activate(x, &coefficients[0], &coefficients[n_channels], out,
                              activation, n_threads)


def batchnorm_forward_infer(
    const floating[:, ::1] x,        # IN: (R, C)
    const double[::1] multiplier,    # IN: (C,) scale / sqrt(running_var + eps)
    const double[::1] offset,        # IN: (C,) shift - running_mean * multiplier
    floating[:, ::1] out,            # OUT: (R, C), activated
    int activation, int n_threads,
):
    with nogil:
        multiply_add_activate(x, &multiplier[0], &offset[0], out, activation, n_threads)


def batchnorm_backward(
    const floating[:, ::1] x,        # IN: (R, C), forward input
    const floating[:, ::1] output,   # IN: (R, C), forward output (activated)
    floating[:, ::1] grad_output,    # IN/OUT: d/d output; becomes d/d (normalised * scale)
    const floating[::1] scale,       # IN: (C,)
    const double[::1] mean,          # IN: (C,) batch mean of the forward pass
    const double[::1] var,           # IN: (C,) batch variance of the forward pass
    floating[:, ::1] grad_input,     # OUT: (R, C) if compute_grad_input
    floating[::1] grad_scale,        # OUT: (C,)
    floating[::1] grad_shift,        # OUT: (C,)
    double[:, ::1] partials,         # scratch: (n_blocks(R), 2 C)
    double[::1] coefficients,        # scratch: (>= 4 C,)
    double epsilon, int activation, bint compute_grad_input, int n_threads,
):
    """Gradients summed over the batch (the loss kernel scaled d loss/d output).

    With x̂ = (x - mean) / std: d shift = Σ dy, d scale = Σ dy x̂, and
    dx = scale / std · (dy - (d shift + x̂ d scale) / R), which is
    ``a[c] dy + b[c] x + k[c]`` with per-channel coefficients.
    """
    cdef intp_t n_rows = x.shape[0], n_channels = x.shape[1]
    cdef intp_t n_block = (n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    cdef intp_t block, r, c, start, stop
    cdef double total_dy, total_dy_xhat, inv_std, a
    cdef double* inv = &coefficients[0]
    with nogil:
        for c in range(n_channels):
            inv[c] = 1 / sqrt(var[c] + epsilon)
        for block in prange(n_block, schedule="static", num_threads=n_threads):
            start = block * ROWS_PER_BLOCK
            stop = min(start + ROWS_PER_BLOCK, n_rows)
            multiply_by_derivative(&grad_output[start, 0], &output[start, 0],
                                   (stop - start) * n_channels, activation)
            for c in range(2 * n_channels):
                partials[block, c] = 0
            for r in range(start, stop):
                for c in range(n_channels):
                    partials[block, c] += grad_output[r, c]
                    partials[block, n_channels + c] += (
                        grad_output[r, c] * ((x[r, c] - mean[c]) * inv[c]))
        for c in range(n_channels):
            total_dy = 0
            total_dy_xhat = 0
            for block in range(n_block):
                total_dy = total_dy + partials[block, c]
                total_dy_xhat = total_dy_xhat + partials[block, n_channels + c]
            grad_shift[c] = <floating> total_dy
            grad_scale[c] = <floating> total_dy_xhat
            inv_std = inv[c]
            a = scale[c] * inv_std
            coefficients[n_channels + c] = a
            coefficients[2 * n_channels + c] = -a * inv_std * total_dy_xhat / n_rows
            coefficients[3 * n_channels + c] = (-a * total_dy / n_rows + a * inv_std
                                                * mean[c] * total_dy_xhat / n_rows)
        if compute_grad_input:
            for block in prange(n_block, schedule="static", num_threads=n_threads):
                for r in range(block * ROWS_PER_BLOCK,
                               min((block + 1) * ROWS_PER_BLOCK, n_rows)):
                    for c in range(n_channels):
                        grad_input[r, c] = <floating> (
                            coefficients[n_channels + c] * grad_output[r, c]
                            + coefficients[2 * n_channels + c] * x[r, c]
                            + coefficients[3 * n_channels + c])
