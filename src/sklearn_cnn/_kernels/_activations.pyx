"""Element-wise activation kernels (in place), parallel over fixed blocks.

The conv and dense kernels apply their activation fused; these stand-alone
versions serve layers without a preceding GEMM and the tests.
"""

from cython.parallel cimport prange
from cython cimport floating

from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_FORMAT,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, strcmp

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


def largest_magnitude(values):
    """max |values| of a C-contiguous float32 or float64 array of any shape
    (0 for none); inf if any is infinite, NaN if any is NaN.

    One pass and no temporary: prediction's input and output checks on one
    image cost about 5x more as numpy's max and min.  The magnitudes are
    compared as integers (the bits of |v| without the sign, whose order is
    that of the values, with inf above every finite value and NaN above
    inf): gcc vectorises an integer maximum, not a floating one without
    -ffast-math.  The array is read through the buffer protocol, not a
    fused memoryview: their dispatch, the flattening reshape and the view
    took 0.7 of the 0.9 us that checking one image's 10 outputs cost.
    """
    cdef Py_buffer view
    cdef intp_t n, i
    cdef const uint32_t* bits32
    cdef const uint64_t* bits64
    cdef uint32_t largest32 = 0
    cdef uint64_t largest64 = 0
    cdef float magnitude32
    cdef double magnitude64 = 0
    PyObject_GetBuffer(values, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    try:
        if strcmp(view.format, "f") == 0:
            n = view.len // sizeof(float)
            bits32 = <const uint32_t*> view.buf
            with nogil:
                for i in range(n):
                    largest32 = max(largest32, bits32[i] & 0x7fffffffU)
            memcpy(&magnitude32, &largest32, sizeof(float))
            magnitude64 = magnitude32
        elif strcmp(view.format, "d") == 0:
            n = view.len // sizeof(double)
            bits64 = <const uint64_t*> view.buf
            with nogil:
                for i in range(n):
                    largest64 = max(largest64, bits64[i] & 0x7fffffffffffffffULL)
            memcpy(&magnitude64, &largest64, sizeof(double))
        else:
            raise TypeError("values must be a float32 or float64 array")
    finally:
        PyBuffer_Release(&view)
    return magnitude64
