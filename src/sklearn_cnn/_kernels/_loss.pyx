"""Losses: value and gradient in one pass, computed in float64.

* softmax cross-entropy (multiclass): each row is shifted by its maximum
  before exponentiation, so logits of any magnitude (float32 +-1e4 included)
  give finite losses and gradients;
* sigmoid cross-entropy (multilabel): summed over the labels, written with
  ``log1p(exp(-|z|))`` so that it never overflows;
* both cross-entropies take a label smoothing ``s``: the targets become
  ``(1 - s) onehot + s / K`` (softmax) or ``t (1 - s) + s / 2`` (sigmoid);
* squared error (regression): half the squared error summed over the
  outputs, as MLPRegressor's gradient.

Each kernel overwrites the outputs with d loss/d output (weighted) and writes
one weighted loss per sample; the batch loss is their sum.
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport exp, fabs, log, log1p

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
    double[::1] sample_losses,           # OUT: (N,) weights[i] * -sum_k q_k log p[i, k]
    double smoothing,                    # IN: label smoothing in [0, 1)
    int n_threads,
):
    """The batch loss is ``sample_losses.sum()``; its gradient is written in place.

    The target distribution ``q`` puts ``1 - smoothing`` on the label and
    spreads ``smoothing`` evenly over all K classes (label smoothing;
    ``smoothing=0`` is the plain cross-entropy).  With ``weights`` summing to
    one the loss is the weighted mean.
    """
    cdef intp_t n_samples = logits.shape[0], n_classes = logits.shape[1]
    cdef intp_t i, k
    cdef double log_total, p, total_logits
    cdef double spread = smoothing / n_classes
    with nogil:
        for i in prange(n_samples, schedule="static", num_threads=n_threads):
            log_total = log_sum_exp(&logits[i, 0], n_classes)
            total_logits = 0
            for k in range(n_classes):
                total_logits = total_logits + logits[i, k]
            sample_losses[i] = weights[i] * (
                log_total - (1 - smoothing) * logits[i, labels[i]]
                - spread * total_logits)
            for k in range(n_classes):
                p = exp(logits[i, k] - log_total) - spread
                if k == labels[i]:
                    p = p - (1 - smoothing)
                logits[i, k] = <floating> (weights[i] * p)


def softmax(
    floating[:, ::1] logits,             # IN/OUT: (N, K); becomes probabilities
    int n_threads,
):
    cdef intp_t n_samples = logits.shape[0], n_classes = logits.shape[1]
    cdef intp_t i
    if n_samples == 0:
        return
    with nogil:
        # No team for one thread (a team of one cost 0.7 us in libgomp).
        if n_threads == 1:
            for i in range(n_samples):
                softmax_row(&logits[i, 0], n_classes)
        else:
            for i in prange(n_samples, schedule="static", num_threads=n_threads):
                softmax_row(&logits[i, 0], n_classes)


cdef inline void softmax_row(floating* logits, intp_t n_classes) noexcept nogil:
    cdef double log_total = log_sum_exp(logits, n_classes)
    cdef intp_t k
    for k in range(n_classes):
        logits[k] = <floating> exp(logits[k] - log_total)


def sigmoid_cross_entropy(
    floating[:, ::1] logits,             # IN/OUT: (N, K); becomes d loss/d logits
    const floating[:, ::1] targets,      # IN: (N, K) in {0, 1}
    const double[::1] weights,           # IN: (N,) per-sample weights of the loss
    double[::1] sample_losses,           # OUT: (N,) weighted loss summed over labels
    double smoothing,                    # IN: targets become t (1 - s) + s / 2
    int n_threads,
):
    cdef intp_t n_samples = logits.shape[0], n_labels = logits.shape[1]
    cdef intp_t i, k
    cdef double z, t, total, e, p
    with nogil:
        for i in prange(n_samples, schedule="static", num_threads=n_threads):
            total = 0
            for k in range(n_labels):
                z = logits[i, k]
                t = targets[i, k] * (1 - smoothing) + 0.5 * smoothing
                # softplus(z) - t z, and sigmoid(z) from the same exp(-|z|).
                e = exp(-fabs(z))
                total = total + (z if z > 0 else 0) - t * z + log1p(e)
                p = 1 / (1 + e) if z >= 0 else e / (1 + e)
                logits[i, k] = <floating> (weights[i] * (p - t))
            sample_losses[i] = weights[i] * total


def squared_error(
    floating[:, ::1] outputs,            # IN/OUT: (N, K); becomes d loss/d outputs
    const floating[:, ::1] targets,      # IN: (N, K)
    const double[::1] weights,           # IN: (N,) per-sample weights of the loss
    double[::1] sample_losses,           # OUT: (N,) weights[i] * sum_k (out - t)^2 / 2
    int n_threads,
):
    cdef intp_t n_samples = outputs.shape[0], n_outputs = outputs.shape[1]
    cdef intp_t i, k
    cdef double error, total
    with nogil:
        for i in prange(n_samples, schedule="static", num_threads=n_threads):
            total = 0
            for k in range(n_outputs):
                error = <double> outputs[i, k] - <double> targets[i, k]
                total = total + error * error
                outputs[i, k] = <floating> (weights[i] * error)
            sample_losses[i] = weights[i] * 0.5 * total
