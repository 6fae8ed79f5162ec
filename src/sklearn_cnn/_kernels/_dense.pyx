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

cdef enum:
    ROWS_PER_CHUNK = 32
    FEATURES_PER_TILE = 128
    # dense_forward's blocks (see there).
    FORWARD_ROWS = 256
    FORWARD_COLUMNS = 64
    FEW_ROWS = 32
    FEW_COLUMNS = 32
    ONE_ROW_COLUMNS = 64


def dense_forward(
    const floating[:, ::1] x,            # IN: (N, F)
    const floating[:, ::1] weights,      # IN: (F, O)
    const floating[::1] bias,            # IN: (O,)
    floating[:, ::1] out,                # OUT: (N, O), activated
    int activation, int n_threads,
):
    """out = activation(x @ weights + bias), over a grid of blocks of
    ``FORWARD_ROWS`` rows by a tile of outputs.

    Each GEMM call packs its share of the weights (F x tile) again, so the
    blocks of rows are tall: at 32 rows the packing made a 3136 -> 128 layer
    run at about half the GEMM peak.  The tiles of outputs give the threads
    work when there are few rows (``FEW_COLUMNS`` wide, each thread reads
    only its share of the weights).  One row (one image) is a GEMV per tile
    of ``ONE_ROW_COLUMNS``: GEMM would pack the tile's weights first, and
    FM-LeNet's 3136 -> 128 layer took 27.0-27.8 us that way (tiles of 32)
    against 24.4-25.5 (1 thread, weights in cache; 35.7-36.2 against
    30.8-34.1 from L3).  Block sizes depend on the shape only, and every
    output is one dot product over all features: the same result for any
    thread count.
    """
    cdef intp_t n_samples = x.shape[0], n_features = x.shape[1]
    cdef intp_t n_outputs = weights.shape[1]
    cdef intp_t tile_width = (ONE_ROW_COLUMNS if n_samples == 1 else FEW_COLUMNS
                              if n_samples <= FEW_ROWS else FORWARD_COLUMNS)
    cdef intp_t n_chunks = (n_samples + FORWARD_ROWS - 1) // FORWARD_ROWS
    cdef intp_t n_tiles = (n_outputs + tile_width - 1) // tile_width
    cdef intp_t item, start, rows, column, width, i
    if n_samples == 0:
        return
    with nogil:
        for item in prange(n_chunks * n_tiles, schedule="static",
                           num_threads=n_threads):
            start = (item // n_tiles) * FORWARD_ROWS
            rows = min(FORWARD_ROWS, n_samples - start)
            column = (item % n_tiles) * tile_width
            width = min(tile_width, n_outputs - column)
            if n_samples == 1:
                vector_times_rowmajor(<int> n_features, <int> width, &x[start, 0],
                                      &weights[0, column], <int> n_outputs,
                                      &out[start, column])
            else:
                gemm_rowmajor(c'N', c'N', <int> rows, <int> width, <int> n_features,
                              <floating> 1, &x[start, 0], <int> n_features,
                              &weights[0, column], <int> n_outputs,
                              <floating> 0, &out[start, column], <int> n_outputs)
            for i in range(start, start + rows):
                add_bias_and_activate(&out[i, column], 1, width, &bias[column],
                                      activation)


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
