"""Fully connected layer kernels: GEMM with fused bias and activation.

Notes
-----
Forward is split over a fixed grid of blocks of rows (samples) by tiles of
outputs, the input gradient over fixed chunks of rows; the weight gradient
``x^T @ dz`` is split over fixed tiles of input features, so that every
entry of it is one dot product over the whole batch computed by a single
GEMM call: no cross-thread reduction, and the same result for any thread
count.  The bias gradient is summed in float64.
"""

from cython.parallel cimport prange
from cython cimport floating

from ._activations cimport add_bias_and_activate, multiply_by_derivative
from ._blas cimport gemm_rowmajor, vector_times_rowmajor
from ._typedefs cimport intp_t

cdef extern from "_vector_product.h" nogil:
    int c_set_own_vector_products "set_own_vector_products"(int on)
    bint own_vector_product_float(intp_t k, intp_t n)
    void vector_product_float(intp_t k, intp_t n, const float* x, const float* b,
                              intp_t ldb, float* y)

cdef enum:
    ROWS_PER_CHUNK = 32
    FEATURES_PER_TILE = 128
    # dense_forward's blocks (see there).
    FORWARD_ROWS = 256
    FORWARD_COLUMNS = 64
    FEW_ROWS = 32
    FEW_COLUMNS = 32
    # One row (see one_row_forward).
    ONE_ROW_COLUMNS = 128
    ONE_ROW_FEATURES = 2048


def one_row_parts(intp_t n_features):
    """Parts of the features that one row's GEMV is split into: the first
    dimension of dense_forward's ``partials``."""
    return max(1, (n_features + ONE_ROW_FEATURES - 1) // ONE_ROW_FEATURES)


def set_own_vector_products(bint on):
    """Let one row's products run on our own kernel (_vector_product.h),
    which gives the bits of OpenBLAS's AVX-512 SGEMV: to be asked only where
    OpenBLAS runs those kernels.  True if it now runs (the CPU has
    AVX-512)."""
    return c_set_own_vector_products(on) != 0


def dense_forward(
    const floating[:, ::1] x,            # IN: (N, F)
    const floating[:, ::1] weights,      # IN: (F, O)
    const floating[::1] bias,            # IN: (O,)
    floating[:, ::1] out,                # OUT: (N, O), activated
    floating[:, ::1] partials,           # scratch: (one_row_parts(F), O)
    int activation, int n_threads,
):
    """out = activation(x @ weights + bias), over a grid of blocks of
    ``FORWARD_ROWS`` rows by a tile of outputs; one row by one_row_forward.

    Each GEMM call packs its share of the weights (F x tile) again, so the
    blocks of rows are tall: at 32 rows the packing made a 3136 -> 128 layer
    run at about half the GEMM peak.  The tiles of outputs give the threads
    work when there are few rows (``FEW_COLUMNS`` wide, each thread reads
    only its share of the weights).  Block sizes depend on the shape only,
    and every output is one dot product over all features: the same result
    for any thread count.
    """
    cdef intp_t n_samples = x.shape[0], n_features = x.shape[1]
    cdef intp_t n_outputs = weights.shape[1]
    cdef intp_t tile_width = FEW_COLUMNS if n_samples <= FEW_ROWS else FORWARD_COLUMNS
    cdef intp_t n_chunks = (n_samples + FORWARD_ROWS - 1) // FORWARD_ROWS
    cdef intp_t n_tiles = (n_outputs + tile_width - 1) // tile_width
    cdef intp_t item, start, rows, column, width, i
    if n_samples == 0:
        return
    if n_samples == 1:
        if (partials.shape[0] < 1 or partials.shape[0] * ONE_ROW_FEATURES < n_features
                or partials.shape[1] < n_outputs):
            raise ValueError("partials must be (one_row_parts(F), O) at least")
        with nogil:
            one_row_forward(&x[0, 0], n_features, &weights[0, 0], n_outputs, &bias[0],
                            &out[0, 0], &partials[0, 0], partials.shape[1],
                            activation, n_threads)
        return
    with nogil:
        for item in prange(n_chunks * n_tiles, schedule="static",
                           num_threads=n_threads):
            start = (item // n_tiles) * FORWARD_ROWS
            rows = min(FORWARD_ROWS, n_samples - start)
            column = (item % n_tiles) * tile_width
            width = min(tile_width, n_outputs - column)
            gemm_rowmajor(c'N', c'N', <int> rows, <int> width, <int> n_features,
                          <floating> 1, &x[start, 0], <int> n_features,
                          &weights[0, column], <int> n_outputs,
                          <floating> 0, &out[start, column], <int> n_outputs)
            for i in range(start, start + rows):
                add_bias_and_activate(&out[i, column], 1, width, &bias[column],
                                      activation)


cdef void one_row_forward(
    const floating* x, intp_t n_features, const floating* weights, intp_t n_outputs,
    const floating* bias, floating* out, floating* partials, intp_t partials_width,
    int activation, int n_threads,
) noexcept nogil:
    """One row (one image) by GEMV, which unlike GEMM does not pack the
    weights first, split into parts of at most ``ONE_ROW_FEATURES`` features
    by tiles of ``ONE_ROW_COLUMNS`` outputs; the parts' sums are added in
    part order.

    A part's rows of the row-major weights are contiguous, so each GEMV
    streams them; tiles of 64 of FM-LeNet's 128 outputs read half of every
    512-byte row instead.  That 3136 -> 128 layer, weights in cache,
    alternating the two builds: 23.5-26.7 -> 21.6-22.2 us on 1 thread,
    14.6-18.1 -> 12.6-13.7 on 2 (two parts run side by side); one image's
    predict_proba 69.7-72.8 -> 65.7-69.8 us on 2 threads, unchanged on 1.
    The split depends on the shape only: the same result for any thread
    count.
    """
    cdef intp_t n_parts = max(1, (n_features + ONE_ROW_FEATURES - 1) // ONE_ROW_FEATURES)
    cdef intp_t n_tiles = (n_outputs + ONE_ROW_COLUMNS - 1) // ONE_ROW_COLUMNS
    cdef intp_t item, part, o
    cdef floating total
    # No team for one thread or one item (the output layer of one image): a
    # team of one cost 0.7 us in libgomp, of two 1-3 us.
    if n_threads == 1 or n_parts * n_tiles == 1:
        for item in range(n_parts * n_tiles):
            one_row_item(x, n_features, weights, n_outputs, out, partials,
                         partials_width, n_parts, n_tiles, item)
    else:
        for item in prange(n_parts * n_tiles, schedule="static",
                           num_threads=min(n_threads, n_parts * n_tiles)):
            one_row_item(x, n_features, weights, n_outputs, out, partials,
                         partials_width, n_parts, n_tiles, item)
    if n_parts > 1:
        for o in range(n_outputs):
            total = partials[o]
            for part in range(1, n_parts):
                total = total + partials[part * partials_width + o]
            out[o] = total
    add_bias_and_activate(out, 1, n_outputs, bias, activation)


cdef void one_row_item(
    const floating* x, intp_t n_features, const floating* weights, intp_t n_outputs,
    floating* out, floating* partials, intp_t partials_width, intp_t n_parts,
    intp_t n_tiles, intp_t item,
) noexcept nogil:
    """Item ``item`` of one_row_forward: one part's products for one tile."""
    cdef intp_t part = item // n_tiles
    cdef intp_t start = part * n_features // n_parts
    cdef intp_t stop = (part + 1) * n_features // n_parts
    cdef intp_t column = (item % n_tiles) * ONE_ROW_COLUMNS
    cdef intp_t width = min(ONE_ROW_COLUMNS, n_outputs - column)
    cdef floating* part_out = (out + column if n_parts == 1 else
                               partials + part * partials_width + column)
    if floating is float and own_vector_product_float(stop - start, width):
        vector_product_float(stop - start, width, x + start,
                             weights + start * n_outputs + column, n_outputs, part_out)
    else:
        vector_times_rowmajor(<int> (stop - start), <int> width, x + start,
                              weights + start * n_outputs + column, <int> n_outputs,
                              part_out)


def dense_backward(
    const floating[:, ::1] x,            # IN: (N, F), forward input
    const floating[:, ::1] weights,      # IN: (F, O)
    const floating[:, ::1] output,       # IN: (N, O), forward output
    floating[:, ::1] grad_output,        # IN/OUT: d/d output; becomes d/d pre-activation
    floating[:, ::1] grad_input,         # OUT: (N, F) if compute_grad_input
    floating[:, ::1] grad_weights,       # OUT: (F, O)
    floating[::1] grad_bias,             # OUT: (O,)
    double[::1] bias_sums,               # scratch: (O,)
    int activation, bint compute_grad_input, int n_threads,
):
    cdef intp_t n_samples = x.shape[0], n_features = x.shape[1]
    cdef intp_t n_outputs = weights.shape[1]
    cdef intp_t n_chunks = (n_samples + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    cdef intp_t n_tiles = (n_features + FEATURES_PER_TILE - 1) // FEATURES_PER_TILE
    cdef intp_t chunk, tile, start, rows, i, o
    cdef floating* dz
    cdef const floating* y
    if n_samples == 0:
        grad_weights[:, :] = 0
        grad_bias[:] = 0
        return
    with nogil:
        for chunk in prange(n_chunks, schedule="static", num_threads=n_threads):
            start = chunk * ROWS_PER_CHUNK
            rows = min(ROWS_PER_CHUNK, n_samples - start)
            dz = &grad_output[start, 0]
            y = &output[start, 0]
            multiply_by_derivative(dz, y, rows * n_outputs, activation)

        for o in range(n_outputs):
            bias_sums[o] = 0
        for i in range(n_samples):
            for o in range(n_outputs):
                bias_sums[o] += grad_output[i, o]
        for o in range(n_outputs):
            grad_bias[o] = <floating> bias_sums[o]

        for tile in prange(n_tiles, schedule="static", num_threads=n_threads):
            start = tile * FEATURES_PER_TILE
            rows = min(FEATURES_PER_TILE, n_features - start)
            # grad_weights[tile] = x[:, tile]^T @ dz
            gemm_rowmajor(c'T', c'N', <int> rows, <int> n_outputs, <int> n_samples,
                          <floating> 1, &x[0, start], <int> n_features,
                          &grad_output[0, 0], <int> n_outputs,
                          <floating> 0, &grad_weights[start, 0], <int> n_outputs)

        if compute_grad_input:
            for chunk in prange(n_chunks, schedule="static", num_threads=n_threads):
                start = chunk * ROWS_PER_CHUNK
                rows = min(ROWS_PER_CHUNK, n_samples - start)
                gemm_rowmajor(c'N', c'T', <int> rows, <int> n_features, <int> n_outputs,
                              <floating> 1, &grad_output[start, 0], <int> n_outputs,
                              &weights[0, 0], <int> n_outputs,
                              <floating> 0, &grad_input[start, 0], <int> n_features)
