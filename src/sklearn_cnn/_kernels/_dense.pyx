"""Fully connected layer kernels: GEMM with fused bias and activation.

Notes
-----
Forward and the input gradient are split over fixed chunks of rows
(samples); the weight gradient ``x^T @ dz`` is split over fixed tiles of
input features, so that every entry of it is one dot product over the whole
batch computed by a single GEMM call: no cross-thread reduction, and the
same result for any thread count.  The bias gradient is summed in float64.
"""

from cython.parallel cimport prange
from cython cimport floating

from ._activations cimport add_bias_and_activate, multiply_by_derivative
from ._blas cimport gemm_rowmajor
from ._typedefs cimport intp_t

cdef enum:
    ROWS_PER_CHUNK = 32
    FEATURES_PER_TILE = 128
    COLUMNS_PER_TILE = 32


def dense_forward(
    const floating[:, ::1] x,            # IN: (N, F)
    const floating[:, ::1] weights,      # IN: (F, O)
    const floating[::1] bias,            # IN: (O,)
    floating[:, ::1] out,                # OUT: (N, O), activated
    int activation, int n_threads,
):
    cdef intp_t n_samples = x.shape[0], n_features = x.shape[1]
    cdef intp_t n_outputs = weights.shape[1]
    cdef intp_t n_chunks = (n_samples + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    cdef intp_t n_tiles = (n_outputs + COLUMNS_PER_TILE - 1) // COLUMNS_PER_TILE
    cdef intp_t chunk, start, rows, i, tile, width
    cdef floating* y
    if n_samples == 0:
        return
    if n_chunks == 1 and n_tiles > 1:
        # A few rows (predicting one image): split the outputs instead, so
        # that every thread reads its share of the weights.  Each output is
        # still one dot product over all features: same results.
        with nogil:
            for tile in prange(n_tiles, schedule="static", num_threads=n_threads):
                start = tile * COLUMNS_PER_TILE
                width = min(COLUMNS_PER_TILE, n_outputs - start)
                gemm_rowmajor(c'N', c'N', <int> n_samples, <int> width,
                              <int> n_features, <floating> 1, &x[0, 0],
                              <int> n_features, &weights[0, start], <int> n_outputs,
                              <floating> 0, &out[0, start], <int> n_outputs)
                for i in range(n_samples):
                    add_bias_and_activate(&out[i, start], 1, width, &bias[start],
                                          activation)
        return
    with nogil:
        for chunk in prange(n_chunks, schedule="static", num_threads=n_threads):
            start = chunk * ROWS_PER_CHUNK
            rows = min(ROWS_PER_CHUNK, n_samples - start)
            y = &out[start, 0]
            gemm_rowmajor(c'N', c'N', <int> rows, <int> n_outputs, <int> n_features,
                          <floating> 1, &x[start, 0], <int> n_features,
                          &weights[0, 0], <int> n_outputs,
                          <floating> 0, y, <int> n_outputs)
            add_bias_and_activate(y, rows, n_outputs, &bias[0], activation)


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
