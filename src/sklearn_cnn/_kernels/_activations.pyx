"""Element-wise activation kernels (in place), parallel over fixed blocks.

The conv and dense kernels apply their activation fused; these stand-alone
versions serve layers without a preceding GEMM and the tests.
"""

from cython.parallel cimport prange
from cython cimport floating

from ._activations cimport activate, derivative_from_output
from ._typedefs cimport intp_t

# Elements per parallel block: large enough to amortise scheduling.
cdef enum:
    BLOCK = 8192


def activation_forward(
    floating[::1] values,     # IN/OUT: pre-activations, replaced by activations
    int code,
    int n_threads,
):
    cdef intp_t n = values.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, i, start, stop
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = block * BLOCK
            stop = min(start + BLOCK, n)
            for i in range(start, stop):
                values[i] = activate(values[i], code)


def activation_backward(
    const floating[::1] output,  # IN: activations produced by the forward pass
    floating[::1] grad,          # IN/OUT: d loss/d output, becomes d loss/d input
    int code,
    int n_threads,
):
    cdef intp_t n = output.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, i, start, stop
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = block * BLOCK
            stop = min(start + BLOCK, n)
            for i in range(start, stop):
                grad[i] = grad[i] * derivative_from_output(output[i], code)
