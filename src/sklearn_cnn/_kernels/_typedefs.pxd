# Types shared by every kernel module: one source of truth.
#
# ``floating`` is Cython's fused float/double: each kernel is compiled twice
# and the input dtype (float32 or float64) is kept end to end.

from cython cimport floating

ctypedef Py_ssize_t intp_t
ctypedef int int32_t

# Activation codes understood by the fused kernels (see _activations.pyx).
# The Python side maps names to these through ACTIVATION_CODES.
cdef enum ActivationCode:
    IDENTITY = 0
    RELU = 1
    LEAKY_RELU = 2
    TANH = 3
    LOGISTIC = 4
