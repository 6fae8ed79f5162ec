"""Element-wise activation kernels (in place), parallel over fixed blocks.

The conv and dense kernels apply their activation fused; these stand-alone
versions serve layers without a preceding GEMM and the tests.
"""

from cython.parallel cimport prange
from cython cimport floating

from libc.string cimport memcpy

from ._activations cimport activate, multiply_by_derivative
from ._typedefs cimport intp_t, IDENTITY, RELU

# Elements per parallel block: large enough to amortise scheduling.
cdef enum:
    BLOCK = 8192


cdef inline void activate_run(floating* y, intp_t n, int code) noexcept nogil:
    """y = activation(y) over a run; ReLU and identity as branch-free loops
    (the test on ``code`` stays outside them) that gcc vectorises."""
    cdef intp_t i
    cdef floating z
    if code == RELU:
        for i in range(n):
            z = y[i]
            y[i] = z if z > 0 else 0
    elif code != IDENTITY:
        for i in range(n):
            y[i] = activate(y[i], code)


def activation_forward(
    floating[::1] values,     # IN/OUT: pre-activations, replaced by activations
    int code,
    int n_threads,
):
    cdef intp_t n = values.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, start, stop
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = block * BLOCK
            stop = min(start + BLOCK, n)
            activate_run(&values[start], stop - start, code)


def add_and_activate(
    const floating[::1] a,    # IN
    const floating[::1] b,    # IN: same length
    floating[::1] out,        # OUT: activation(a + b); may be a or b
    int code,
    int n_threads,
):
    """The end of a residual block, one pass over memory instead of two."""
    cdef intp_t n = out.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, i, start, stop
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = block * BLOCK
            stop = min(start + BLOCK, n)
            for i in range(start, stop):
                out[i] = a[i] + b[i]
            activate_run(&out[start], stop - start, code)


def activation_backward_copy(
    const floating[::1] output,  # IN: activations produced by the forward pass
    floating[::1] grad,          # IN/OUT: d loss/d output, becomes d loss/d input
    floating[::1] copy,          # OUT: the same d loss/d input
    int code,
    int n_threads,
):
    """activation_backward that also writes a copy: the start of a residual
    block's backward, whose two branches each need their own gradient."""
    cdef intp_t n = output.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, start, stop
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = block * BLOCK
            stop = min(start + BLOCK, n)
            multiply_by_derivative(&grad[start], &output[start], stop - start, code)
            memcpy(&copy[start], &grad[start], (stop - start) * sizeof(floating))


def activation_backward(
    const floating[::1] output,  # IN: activations produced by the forward pass
    floating[::1] grad,          # IN/OUT: d loss/d output, becomes d loss/d input
    int code,
    int n_threads,
):
    cdef intp_t n = output.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, start, stop
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = block * BLOCK
            stop = min(start + BLOCK, n)
            multiply_by_derivative(&grad[start], &output[start], stop - start, code)
