"""Softmax cross-entropy: loss and gradient in one pass, computed in float64.

Each row is shifted by its maximum before exponentiation, so logits of any
magnitude (float32 +-1e4 included) give finite losses and gradients.
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport exp, log

from ._typedefs cimport intp_t, int32_t


cdef inline double log_sum_exp(const floating* row, intp_t n_classes) noexcept nogil:
    """log(sum(exp(row))), shifted by the row's maximum so exp never overflows."""
    cdef double top = row[0], total = 0
    cdef intp_t k
    for k in range(1, n_classes):
        if row[k] > top:
            top = row[k]
    for k in range(n_classes):
        total = total + exp(row[k] - top)
    return top + log(total)


def softmax_cross_entropy(
    floating[:, ::1] logits,             # IN/OUT: (N, K); becomes d loss/d logits
    const int32_t[::1] labels,           # IN: (N,) class indices in [0, K)
    const double[::1] weights,           # IN: (N,) per-sample weights of the loss
    double[::1] sample_losses,           # OUT: (N,) weights[i] * -log p[i, labels[i]]
    int n_threads,
):
    """The batch loss is ``sample_losses.sum()``; its gradient is written in place.

    With ``weights`` summing to one the loss is the weighted mean.
    """
    cdef intp_t n_samples = logits.shape[0], n_classes = logits.shape[1]
    cdef intp_t i, k
    cdef double log_total, p
    with nogil:
        for i in prange(n_samples, schedule="static", num_threads=n_threads):
            log_total = log_sum_exp(&logits[i, 0], n_classes)
            sample_losses[i] = weights[i] * (log_total - logits[i, labels[i]])
            for k in range(n_classes):
                p = exp(logits[i, k] - log_total)
                if k == labels[i]:
                    p = p - 1
                logits[i, k] = <floating> (weights[i] * p)


def softmax(
    floating[:, ::1] logits,             # IN/OUT: (N, K); becomes probabilities
    int n_threads,
):
    cdef intp_t n_samples = logits.shape[0], n_classes = logits.shape[1]
    cdef intp_t i, k
    cdef double log_total
    with nogil:
        for i in prange(n_samples, schedule="static", num_threads=n_threads):
            log_total = log_sum_exp(&logits[i, 0], n_classes)
            for k in range(n_classes):
                logits[i, k] = <floating> exp(logits[i, k] - log_total)
