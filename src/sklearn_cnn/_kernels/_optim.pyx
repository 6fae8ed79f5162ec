"""Parameter updates of the stochastic solvers, one fused pass per array.

The formulas are those of scikit-learn's MLPClassifier (``SGDOptimizer``
and ``AdamOptimizer``), with the L2 penalty folded into the gradient, and
AdamW's decoupled weight decay (a shrink of the parameter outside the
moments).
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport sqrt

from ._typedefs cimport intp_t

cdef enum:
    BLOCK = 4096


def adam_update(
    floating[::1] param,                 # IN/OUT
    const floating[::1] grad,            # IN: gradient of the data term
    floating[::1] first_moment,          # IN/OUT
    floating[::1] second_moment,         # IN/OUT
    double step,                         # learning rate with bias corrections
    double beta_1, double beta_2, double epsilon,
    double l2,                           # the gradient gets l2 * param added
    double shrink,                       # decoupled decay: param *= 1 - shrink
    int n_threads,
):
    cdef intp_t n = param.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, i
    cdef double g, m, v
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            for i in range(block * BLOCK, min((block + 1) * BLOCK, n)):
                g = grad[i] + l2 * param[i]
                m = beta_1 * first_moment[i] + (1 - beta_1) * g
                v = beta_2 * second_moment[i] + (1 - beta_2) * g * g
                first_moment[i] = <floating> m
                second_moment[i] = <floating> v
                param[i] = <floating> (param[i] - shrink * param[i]
                                       - step * m / (sqrt(v) + epsilon))


def sgd_update(
    floating[::1] param,                 # IN/OUT
    const floating[::1] grad,            # IN: gradient of the data term
    floating[::1] velocity,              # IN/OUT
    double learning_rate, double momentum, bint nesterov,
    double l2,                           # the gradient gets l2 * param added
    int n_threads,
):
    cdef intp_t n = param.shape[0]
    cdef intp_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef intp_t block, i
    cdef double g, vel
    with nogil:
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            for i in range(block * BLOCK, min((block + 1) * BLOCK, n)):
                g = grad[i] + l2 * param[i]
                vel = momentum * velocity[i] - learning_rate * g
                velocity[i] = <floating> vel
                if nesterov:
                    param[i] = <floating> (param[i] + momentum * vel - learning_rate * g)
                else:
                    param[i] = <floating> (param[i] + vel)
