"""Output activations and their losses, one class per kind of target.

The base estimator asks its subclass for one of these; each pairs the
output layer's activation (applied in predict) with the loss that training
minimises, computed in one Cython pass (``_kernels/_loss.pyx``).

================  =================  ==========================  ============
loss              out_activation_    targets                     estimator
================  =================  ==========================  ============
softmax entropy   "softmax"          class index (int32)         multiclass
sigmoid entropy   "logistic"         indicator matrix (float)    multilabel
squared error     "identity"         values (float)              regression
================  =================  ==========================  ============
"""

import numpy as np
from scipy.special import log_softmax

from ._kernels import _activations, _loss
from .layers._base import ACTIVATION_CODES


class SoftmaxCrossEntropy:
    """Mean cross-entropy of the softmax of the logits (multiclass), with
    optional label smoothing."""

    out_activation = "softmax"

    def __init__(self, label_smoothing=0.0):
        self.label_smoothing = label_smoothing

    def loss_and_gradient(self, logits, targets, weights, sample_losses, n_threads):
        _loss.softmax_cross_entropy(logits, targets, weights, sample_losses,
                                    self.label_smoothing, n_threads)

    def value(self, logits, targets, weights):
        log_proba = log_softmax(logits.astype(np.float64), axis=1)
        s = self.label_smoothing
        losses = (-(1 - s) * log_proba[np.arange(len(targets)), targets]
                  - s * log_proba.mean(axis=1))
        return float(np.average(losses, weights=weights))

    def activate(self, logits, n_threads):
        _loss.softmax(logits, n_threads)
        return logits


class SigmoidCrossEntropy:
    """Binary cross-entropy of each label, summed over labels (multilabel)."""

    out_activation = "logistic"

    def __init__(self, label_smoothing=0.0):
        self.label_smoothing = label_smoothing

    def loss_and_gradient(self, logits, targets, weights, sample_losses, n_threads):
        _loss.sigmoid_cross_entropy(logits, targets, weights, sample_losses,
                                    self.label_smoothing, n_threads)

    def value(self, logits, targets, weights):
        z = logits.astype(np.float64)
        s = self.label_smoothing
        smoothed = targets * (1 - s) + 0.5 * s
        losses = (np.logaddexp(0, z) - smoothed * z).sum(axis=1)
        return float(np.average(losses, weights=weights))

    def activate(self, logits, n_threads):
        _activations.activation_forward(logits.reshape(-1),
                                        ACTIVATION_CODES["logistic"], n_threads)
        return logits


class SquaredError:
    """Half the squared error summed over outputs, averaged over samples.

    MLPRegressor's gradient; its reported loss also divides by the number
    of outputs, so ``loss_`` equals MLPRegressor's for one target.
    """

    out_activation = "identity"

    def __init__(self, label_smoothing=0.0):
        if label_smoothing:
            raise ValueError("Label smoothing is for classification losses.")

    def loss_and_gradient(self, outputs, targets, weights, sample_losses, n_threads):
        _loss.squared_error(outputs, targets, weights, sample_losses, n_threads)

    def value(self, outputs, targets, weights):
        errors = outputs.astype(np.float64) - targets
        return float(np.average(0.5 * (errors * errors).sum(axis=1), weights=weights))

    def activate(self, outputs, n_threads):
        return outputs


LOSS_CLASSES = {loss.out_activation: loss for loss in
                (SoftmaxCrossEntropy, SigmoidCrossEntropy, SquaredError)}


def make_loss(out_activation, label_smoothing=0.0):
    """The loss of a model with this output activation."""
    return LOSS_CLASSES[out_activation](label_smoothing)


# One loss of each kind for applying the output activation, which no
# setting changes: predict_proba then builds no object per call.
_ACTIVATING = {name: loss() for name, loss in LOSS_CLASSES.items()}


# Rows from which the output activation runs on several threads: below, a
# parallel region costs more than the work it shares (softmax of rows of 10
# logits, 1 / 2 threads, idle 2-core Xeon: 1 row 1.4 / 2.2-2.5 us, 16 rows
# 3.5 / 3.7, 24 rows 4.5 / 4.0-4.5, 64 rows 9.8-10.0 / 7.3-8.8).  Each row is
# computed alone: the same results either way.
ACTIVATE_PARALLEL_MIN_ROWS = 24


def activate_outputs(out_activation, outputs, n_threads):
    """The output activation of the model's raw outputs, in place."""
    if len(outputs) < ACTIVATE_PARALLEL_MIN_ROWS:
        n_threads = 1
    return _ACTIVATING[out_activation].activate(outputs, n_threads)
