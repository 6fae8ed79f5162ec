"""CNNClassifier: multiclass (softmax) and multilabel (logistic) outputs."""

from numbers import Real

import numpy as np
from scipy.special import log_softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils import compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import (
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import check_array, column_or_1d

from . import _docstrings
from ._base import BaseCNN, check_target_length
from ._losses import activate_outputs, make_loss
from ._threads import effective_n_threads


class CNNClassifier(ClassifierMixin, BaseCNN):
    __doc__ = _docstrings.compose("""Convolutional neural network classifier.

    Convolution and pooling layers, then fully connected hidden layers and
    an output layer trained with SGD or Adam: softmax and cross-entropy for
    binary and multiclass ``y``; independent logistic outputs and binary
    cross-entropy for a multilabel indicator matrix, as MLPClassifier.
    Parameters shared with :class:`~sklearn.neural_network.MLPClassifier`
    have the same names, defaults and meaning.

    Parameters
    ----------
%(parameters)s

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, ``{label: weight}``; "balanced"
        uses ``n_samples / (n_classes * np.bincount(y))``.  Multiplies
        ``sample_weight``.  Not for multilabel y; "balanced" is not supported
        by ``partial_fit``.

    label_smoothing : float, default=0.0
        Label smoothing ``s`` in [0, 1): the loss's target puts ``1 - s`` on
        the true class and spreads ``s`` evenly over all classes (for
        multilabel y each label's target becomes ``t (1 - s) + s / 2``), as
        PyTorch's ``CrossEntropyLoss(label_smoothing=s)``.  Discourages
        over-confident logits; 0.1 is usual.  ``loss_`` includes it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; for multilabel y, the column indices ``0 .. n_labels-1``.
%(attributes)s
    out_activation_ : str
        "softmax" (binary and multiclass: one output per class, unlike
        MLPClassifier's single logistic output for binary y) or "logistic"
        (multilabel).

    See Also
    --------
    CNNRegressor : The same network for regression.
    sklearn.neural_network.MLPClassifier : The fully connected sibling.

    Notes
    -----
%(notes)s

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNClassifier(max_iter=3, random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """)

    _parameter_constraints: dict = {
        **BaseCNN._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128,),
        activation="relu",
        *,
        conv_layers="auto",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=0,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        dropout=0.0,
        image_shape=None,
        augment=None,
        test_time_augmentation=False,
        weight_init="auto",
        class_weight=None,
        label_smoothing=0.0,
    ):
        super().__init__(
            hidden_layer_sizes, activation, conv_layers=conv_layers, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, dropout=dropout,
            image_shape=image_shape, augment=augment,
            test_time_augmentation=test_time_augmentation, weight_init=weight_init)
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing

    def _loss(self):
        return make_loss(self.out_activation_, self.label_smoothing)

    # ------------------------------------------------------------- targets

    def _encode_targets(self, y, X, sample_weight, *, reset, incremental, classes):
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type == "multilabel-indicator":
            return self._encode_multilabel(y, X, sample_weight, reset=reset,
                                           incremental=incremental, classes=classes)
        if y_type not in ("binary", "multiclass"):
            raise ValueError(
                f"y is {y_type}: CNNClassifier takes class labels (binary or "
                "multiclass, one column) or a multilabel indicator matrix of 0/1.")
        y = column_or_1d(y, warn=True)
        check_target_length(y, X)
        if not reset and self.out_activation_ == "logistic":
            raise ValueError(
                "y holds class labels but the model was fitted on a multilabel "
                "indicator matrix: keep the kind of y across partial_fit and "
                "warm_start calls, or fit afresh.")
        classes_ = self._classes_for(y, reset=reset, incremental=incremental,
                                     classes=classes)
        unseen = np.setdiff1d(unique_labels(y), classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} not among the classes "
                f"{classes_.tolist()} the model was fitted with.")
        targets = np.searchsorted(classes_, y).astype(np.int32)
        if self.class_weight is not None:
            if incremental and isinstance(self.class_weight, str):
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: the "
                    "class frequencies of the whole data are unknown. Pass a dict "
                    "{label: weight} instead.")
            per_class = compute_class_weight(self.class_weight, classes=classes_,
                                             y=classes_[targets])
            per_sample = per_class[targets]
            sample_weight = (per_sample if sample_weight is None
                             else sample_weight * per_sample)
        attributes = {"classes_": classes_, "n_outputs_": len(classes_),
                      "out_activation_": "softmax"}
        return targets, sample_weight, attributes

    def _classes_for(self, y, *, reset, incremental, classes):
        """The classes after this call (the estimator is not changed)."""
        if incremental and reset:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: "
                    "all the labels the model will see.")
            return unique_labels(classes)
        if incremental and classes is not None and not np.array_equal(
                unique_labels(classes), self.classes_):
            raise ValueError(
                f"`classes={unique_labels(classes).tolist()}` is not the same as on "
                f"the first call to partial_fit, {self.classes_.tolist()}.")
        return unique_labels(y) if reset else self.classes_

    def _encode_multilabel(self, y, X, sample_weight, *, reset, incremental, classes):
        y = check_array(y, ensure_2d=True, dtype=None, input_name="y")
        check_target_length(y, X)
        n_labels = y.shape[1]
        if self.class_weight is not None:
            raise ValueError(
                "class_weight is not supported with a multilabel y: weight the "
                "samples with sample_weight instead.")
        if incremental and reset and (classes is None or len(unique_labels(classes))
                                  != n_labels):
            raise ValueError(
                f"With a multilabel y of {n_labels} labels, partial_fit needs "
                f"classes=range({n_labels}) on its first call.")
        if not reset and (
                self.out_activation_ != "logistic" or self.n_outputs_ != n_labels):
            fitted_on = (f"{self.n_outputs_} labels" if self.out_activation_ ==
                         "logistic" else "class labels (multiclass)")
            raise ValueError(
                f"y is a multilabel indicator matrix of {n_labels} labels but the "
                f"model was fitted on {fitted_on}: keep the kind of y across "
                "partial_fit and warm_start calls, or fit afresh.")
        targets = np.ascontiguousarray(y, dtype=X.dtype)
        attributes = {"classes_": np.arange(n_labels), "n_outputs_": n_labels,
                      "out_activation_": "logistic"}
        return targets, sample_weight, attributes

    def _stratify(self, targets):
        return targets if targets.ndim == 1 else None

    def _validation_score(self, outputs, targets, sample_weight):
        if targets.ndim == 1:
            correct = outputs.argmax(axis=1) == targets
        else:  # subset accuracy: every label right
            correct = ((outputs > 0) == (targets > 0.5)).all(axis=1)
        return float(np.average(correct, weights=sample_weight))

    # ----------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : array-like
            Training images (see ``image_shape``).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multilabel indicator matrix of 0/1.
        classes : array-like of shape (n_classes,), default=None
            All the classes (for multilabel y, ``range(n_labels)``); required
            on the first call, checked afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : CNNClassifier
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    # ------------------------------------------------------------- predict

    def predict_proba(self, X):
        """Probability of each class (of each label for multilabel y).

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities in the order of ``classes_``, summing to one;
            for a multilabel model, the independent probability of each
            label.  float32 for float32 X, else float64.
        """
        n_threads = effective_n_threads()
        outputs = self._predict_outputs(X, n_threads)
        return activate_outputs(self.out_activation_, outputs, n_threads)

    def predict_log_proba(self, X):
        """Logarithm of ``predict_proba``.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Computed from the outputs directly, so it is finite even where a
            probability underflows to zero.
        """
        outputs = self._predict_outputs(X, effective_n_threads())
        if self.out_activation_ == "logistic":
            return -np.logaddexp(0, -outputs)
        return log_softmax(outputs, axis=1)

    def predict(self, X):
        """Predict class labels (an indicator matrix for a multilabel model).

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels taken from ``classes_``, or 0/1 per label (probability
            above one half) for a multilabel model.
        """
        outputs = self._predict_outputs(X, effective_n_threads())
        if self.out_activation_ == "logistic":
            return (outputs > 0).astype(np.int64)
        return self.classes_[outputs.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (subset accuracy for multilabel y).

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        score : float
            Share of samples predicted right (every label right, for
            multilabel y), weighted by ``sample_weight``.
        """
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

