"""Parameter updates of the stochastic solvers, one fused pass per array.

The formulas are those of scikit-learn's MLPClassifier (``SGDOptimizer``
and ``AdamOptimizer``), with the L2 penalty folded into the gradient, and
AdamW's decoupled weight decay (a shrink of the parameter outside the
moments).
"""

from cython.parallel cimport prange
from cython cimport floating

from ._typedefs cimport intp_t

cdef extern from "_adam_step.h":
    void adam_step_float(float* param, const float* grad, float* first_moment,
                         float* second_moment, intp_t start, intp_t stop, double step,
                         double beta_1, double beta_2, double epsilon, double l2,
                         double shrink) noexcept nogil
    void adam_step_double(double* param, const double* grad, double* first_moment,
                          double* second_moment, intp_t start, intp_t stop,
                          double step, double beta_1, double beta_2, double epsilon,
                          double l2, double shrink) noexcept nogil

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
    cdef intp_t block
    if n == 0:
        return
    if grad.shape[0] != n or first_moment.shape[0] != n or second_moment.shape[0] != n:
        raise ValueError("param, grad and the moments must have the same size")
    with nogil:
        # The update of each value in float64 (see _adam_step.h).
        for block in prange(n_blocks, schedule="static", num_threads=n_threads):
            if floating is float:
                adam_step_float(&param[0], &grad[0], &first_moment[0],
                                &second_moment[0], block * BLOCK,
                                min((block + 1) * BLOCK, n), step, beta_1, beta_2,
                                epsilon, l2, shrink)
            else:
                adam_step_double(&param[0], &grad[0], &first_moment[0],
                                 &second_moment[0], block * BLOCK,
                                 min((block + 1) * BLOCK, n), step, beta_1, beta_2,
                                 epsilon, l2, shrink)


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
