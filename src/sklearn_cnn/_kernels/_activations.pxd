# Scalar activation functions, inlined into the fused conv and dense kernels.
#
# Backward passes use the derivative written in terms of the activation's
# *output*, so a layer never keeps its pre-activation values.

from libc.math cimport exp, tanh
from cython cimport floating
from ._typedefs cimport intp_t, IDENTITY, RELU, LEAKY_RELU, TANH, LOGISTIC


cdef inline floating activate(floating z, int code) noexcept nogil:
    cdef floating e
    if code == RELU:
        return z if z > 0 else 0
    elif code == LEAKY_RELU:
        return z if z > 0 else <floating> (0.01 * z)
    elif code == TANH:
        return tanh(z)
    elif code == LOGISTIC:
        # Two branches so that exp never overflows.
        if z >= 0:
            return 1 / (1 + exp(-z))
        e = exp(z)
        return e / (1 + e)
    return z


cdef inline floating derivative_from_output(floating y, int code) noexcept nogil:
    if code == RELU:
        return 1 if y > 0 else 0
    elif code == LEAKY_RELU:
        return 1 if y > 0 else <floating> 0.01
    elif code == TANH:
        return 1 - y * y
    elif code == LOGISTIC:
        return y * (1 - y)
    return 1


cdef inline void add_bias_and_activate(
    floating* y, intp_t rows, intp_t width, const floating* bias, int code,
) noexcept nogil:
    """y[i, o] = activation(y[i, o] + bias[o]) over a row-major (rows, width) block.

    The activation test sits outside the loops so that the common cases
    (ReLU, identity) compile to branch-free vectorised loops.
    """
    cdef intp_t i, o
    cdef floating z
    if code == RELU:
        for i in range(rows):
            for o in range(width):
                z = y[i * width + o] + bias[o]
                y[i * width + o] = z if z > 0 else 0
    elif code == IDENTITY:
        for i in range(rows):
            for o in range(width):
                y[i * width + o] = y[i * width + o] + bias[o]
    else:
        for i in range(rows):
            for o in range(width):
                y[i * width + o] = activate(y[i * width + o] + bias[o], code)


cdef inline void multiply_by_derivative(
    floating* grad, const floating* output, intp_t n, int code,
) noexcept nogil:
    """grad[i] *= activation'(at output[i]), with the test outside the loop."""
    cdef intp_t i
    if code == IDENTITY:
        return
    if code == RELU:
        for i in range(n):
            grad[i] = grad[i] if output[i] > 0 else 0
    else:
        for i in range(n):
            grad[i] = grad[i] * derivative_from_output(output[i], code)
