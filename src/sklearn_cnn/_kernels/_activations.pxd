# Scalar activation functions, inlined into the fused conv and dense kernels.
#
# Backward passes use the derivative written in terms of the activation's
# *output*, so a layer never keeps its pre-activation values.

from libc.math cimport exp, tanh
from cython cimport floating
from ._typedefs cimport ActivationCode, RELU, LEAKY_RELU, TANH, LOGISTIC



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
