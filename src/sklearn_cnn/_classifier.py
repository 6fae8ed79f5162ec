"""CNNClassifier: a convolutional network with MLPClassifier's conventions."""

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import log_softmax
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _network, _network_pool
from ._input import resolve_image_shape, split_image_array, to_nhwc
from ._kernels import _loss
from ._optimizers import AdamOptimizer, SGDOptimizer
from ._progress import EpochProgress
from ._threads import effective_n_threads, single_threaded_blas
from ._version import __version__
from .layers import ACTIVATIONS, as_layer_spec

# Samples per forward pass in predict: bounds memory whatever n_samples is.
_PREDICT_BATCH_SIZE = 256


class CNNClassifier(ClassNamePrefixFeaturesOutMixin, ClassifierMixin, BaseEstimator):
    """Convolutional neural network classifier.

    A stack of convolution and pooling layers, then fully connected hidden
    layers and a softmax output, trained with SGD or Adam on the
    cross-entropy loss.  Parameters shared with
    :class:`~sklearn.neural_network.MLPClassifier` have the same names,
    defaults and meaning.

    Parameters
    ----------
    conv_layers : "auto" or tuple of layers, default="auto"
        The convolutional part, in order.  Each entry is a layer from
        :mod:`sklearn_cnn.layers` (``Conv2D``, ``MaxPool2D``, ``AvgPool2D``,
        ``GlobalAvgPool2D``), an int ``k`` (a 3x3 ``Conv2D`` with ``k``
        filters and 'same' padding) or one of the strings "maxpool",
        "avgpool", "globalavgpool".  "auto" is
        ``(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())`` with pooling
        windows shrunk to fit small maps, so it works for any input size,
        down to one feature.  An empty tuple gives a plain MLP.

    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(128,)
        Sizes of the fully connected hidden layers after the convolutional
        part.

    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"}, \
            default="relu"
        Activation of the hidden layers, and of the ``Conv2D`` layers that do
        not name their own.

    solver : {"sgd", "adam"}, default="adam"
        The stochastic solver.

    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases).

    batch_size : int or "auto", default="auto"
        Size of the minibatches; "auto" is ``min(200, n_samples)``.

    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning-rate schedule for ``solver="sgd"``, as in MLPClassifier.

    learning_rate_init : float, default=0.001
        The initial learning rate.

    power_t : float, default=0.5
        Exponent of the "invscaling" schedule.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).

    shuffle : bool, default=True
        Whether to shuffle the samples in each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the shuffling and the validation
        split.  An int gives bitwise reproducible models, whatever the number
        of threads.

    tol : float, default=1e-4
        Improvement of the loss (or validation score) below which an epoch
        counts as no improvement.

    verbose : int, default=0
        0 is silent; 1 prints one line per epoch with the loss, the
        validation score and loss when used, the seconds taken and samples
        per second; 2 adds progress within each epoch (a live bar on a
        terminal, a line per tenth of the epoch otherwise).

    warm_start : bool, default=False
        Continue from the weights of the previous fit.

    momentum : float, default=0.9
        Momentum of ``solver="sgd"``.

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with ``solver="sgd"``.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified)
        and stop when its accuracy stops improving; the best weights are
        restored.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.

    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of Adam's moment estimates.

    epsilon : float, default=1e-8
        Adam's numerical-stability constant.

    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before stopping.

    dropout : float, default=0.0
        Share of each hidden dense layer's outputs zeroed at random in each
        training step (inverted dropout; nothing is dropped in predict or
        transform).

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, ``{label: weight}``; "balanced"
        uses ``n_samples / (n_classes * np.bincount(y))``.  Multiplies
        ``sample_weight``.  "balanced" is not supported by ``partial_fit``.

    image_shape : tuple of int or None, default=None
        How each row of a 2-D ``X`` is read: ``(height, width)`` or
        ``(channels, height, width)`` (channels first, C order).  None reads
        a perfect-square number of features as a square one-channel image and
        anything else as a 1-D signal (height 1).  3-D ``X`` of shape
        ``(n_samples, height, width)`` and 4-D ``X`` of shape
        ``(n_samples, channels, height, width)`` carry their own shape.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    loss_ : float
        Training loss (mean cross-entropy plus L2 penalty) of the last epoch.
    best_loss_ : float or None
        Lowest training loss seen; None when ``early_stopping=True``.
    loss_curve_ : list of float
        Training loss of each epoch.
    validation_scores_ : list of float or None
        Validation accuracy of each epoch when ``early_stopping=True``.
    validation_loss_curve_ : list of float or None
        Validation loss of each epoch when ``early_stopping=True``.
    best_validation_score_ : float or None
        Best validation accuracy when ``early_stopping=True``.
    t_ : int
        Number of training samples seen by the solver.
    n_iter_ : int
        Number of epochs run.
    coefs_ : list of ndarray
        Weights of each layer with parameters: ``(kh, kw, in_channels,
        filters)`` for convolutions, ``(n_inputs, n_outputs)`` for dense
        layers.
    intercepts_ : list of ndarray
        Biases of each layer with parameters.
    image_shape_ : tuple of int
        ``(channels, height, width)`` of the inputs.
    n_features_in_ : int
        Number of features per sample.
    feature_names_in_ : ndarray of str
        Names of the features (one per feature), when X has string column
        names.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs (classes).
    out_activation_ : str
        "softmax".

    See Also
    --------
    sklearn.neural_network.MLPClassifier : The fully connected sibling.

    Notes
    -----
    Threads follow scikit-learn's practice: the kernels use OpenMP with as
    many threads as ``threadpoolctl`` / ``OMP_NUM_THREADS`` allow, and the
    results do not depend on that number.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNClassifier(max_iter=3, random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "conv_layers": [StrOptions({"auto"}), tuple, list],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "image_shape": [tuple, list, None],
    }

    def __init__(
        self,
        conv_layers="auto",
        hidden_layer_sizes=(128,),
        activation="relu",
        *,
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
        class_weight=None,
        image_shape=None,
    ):
        self.conv_layers = conv_layers
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.class_weight = class_weight
        self.image_shape = image_shape

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and labels y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, \
                width) or (n_samples, channels, height, width)
            Training images (see ``image_shape``).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : CNNClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _validate_architecture(self):
        """Normalise ``conv_layers`` and ``hidden_layer_sizes``; clear errors."""
        if isinstance(self.conv_layers, str):
            conv_specs, auto = _network.default_conv_layers(), True
        else:
            conv_specs = tuple(
                as_layer_spec(entry, i) for i, entry in enumerate(self.conv_layers))
            auto = False
        hidden = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if hidden.ndim != 1 or (hidden.size and not np.issubdtype(hidden.dtype, np.integer)):
            raise ValueError(
                "hidden_layer_sizes must be an int or a 1-D sequence of ints, got "
                f"{self.hidden_layer_sizes!r}.")
        if np.any(hidden < 1):
            raise ValueError(
                f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}.")
        return conv_specs, auto, [int(h) for h in hidden]

    def _validate_image_shape(self):
        shape = self.image_shape
        if shape is None:
            return
        if not (len(shape) in (2, 3) and all(
                isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
                for s in shape)):
            raise ValueError(
                "image_shape must be None, (height, width) or (channels, height, "
                f"width) with positive ints, got {shape!r}.")

    def _build_network(self, n_classes):
        conv_specs, auto, hidden = self._validate_architecture()
        channels, height, width = self.image_shape_
        return _network.build_layers(
            conv_specs, hidden, n_classes, (height, width, channels),
            self.activation, auto=auto, dropout=self.dropout,
            rng=getattr(self, "_random_state", None))

    def _validate_input(self, X, reset):
        if not reset and self._is_valid_plain_array(X):
            return X
        X, array_shape = split_image_array(X)
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                          order="C")
        _check_magnitude(X)
        if reset:
            self._validate_image_shape()
            self.image_shape_ = resolve_image_shape(
                self.image_shape, X.shape[1], array_shape)
        elif array_shape is not None and array_shape != self.image_shape_:
            raise ValueError(
                f"X holds images of shape {array_shape} (channels, height, width) "
                f"but the model was fitted on {self.image_shape_}.")
        return X

    def _is_valid_plain_array(self, X):
        """Fast path of predict's validation, for what validate_data would
        return unchanged: a finite, C-ordered float ndarray of the fitted
        width from a model fitted without feature names.  It saves ~100 us,
        half the time of a single-image prediction."""
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in (np.float32, np.float64)
            and X.flags.c_contiguous
            and X.shape[0] >= 1
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
            # A finite sum means no NaN or inf, without a mask as large as X;
            # an overflowing sum just takes the slow path.
            and bool(np.isfinite(X.sum(dtype=np.float64)))
            and _largest_magnitude(X) <= _max_abs_input(X.dtype)
        )

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental)
        X = self._validate_input(X, reset=first_pass)
        check_classification_targets(y)
        y = column_or_1d(y, warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} samples but y has {y.shape[0]}: they must match.")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            if not np.isfinite(sample_weight).all() or (sample_weight < 0).any():
                raise ValueError(
                    "sample_weight must be finite and non-negative; it has "
                    f"{int((~np.isfinite(sample_weight)).sum())} non-finite and "
                    f"{int((sample_weight < 0).sum())} negative values.")
            if sample_weight.sum() == 0:
                raise ValueError(
                    "sample_weight sums to zero: at least one sample needs a positive "
                    "weight.")
        if incremental:
            if _check_partial_fit_first_call(self, classes):
                first_pass = True
            elif first_pass:
                self.classes_ = unique_labels(y)
        elif first_pass:
            self.classes_ = unique_labels(y)
        if not first_pass or incremental:
            unseen = np.setdiff1d(unique_labels(y), self.classes_)
            if unseen.size:
                raise ValueError(
                    f"y contains labels {unseen.tolist()} not among the classes "
                    f"{self.classes_.tolist()} the model was fitted with.")
        y_index = np.searchsorted(self.classes_, y).astype(np.int32)
        if self.class_weight is not None:
            if incremental and isinstance(self.class_weight, str):
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: the "
                    "class frequencies of the whole data are unknown. Pass a dict "
                    "{label: weight} instead.")
            per_class = compute_class_weight(
                self.class_weight, classes=self.classes_, y=self.classes_[y_index])
            per_sample = per_class[y_index]
            sample_weight = per_sample if sample_weight is None else \
                sample_weight * per_sample

        if first_pass or not hasattr(self, "_random_state"):
            self._random_state = check_random_state(self.random_state)
        if first_pass:
            rng = self._random_state
            n_classes = len(self.classes_)
            layers = self._build_network(n_classes)
            self.coefs_, self.intercepts_ = _network.init_params(layers, rng, X.dtype)
            self.n_outputs_ = n_classes
            self.n_layers_ = len(layers) + 1
            self.out_activation_ = "softmax"
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None
                self.best_loss_ = np.inf
        else:
            layers = self._build_network(len(self.classes_))
            if self.coefs_[0].dtype != X.dtype:
                self.coefs_ = [c.astype(X.dtype) for c in self.coefs_]
                self.intercepts_ = [b.astype(X.dtype) for b in self.intercepts_]
                if hasattr(self, "_optimizer"):
                    del self._optimizer
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True.")
        self._fit_stochastic(X, y_index, sample_weight, layers, incremental)
        return self

    def _fit_stochastic(self, X, y, sample_weight, layers, incremental):
        params = self.coefs_ + self.intercepts_
        if not incremental or not hasattr(self, "_optimizer"):
            if self.solver == "sgd":
                self._optimizer = SGDOptimizer(
                    params, self.learning_rate_init, self.learning_rate,
                    self.momentum, self.nesterovs_momentum, self.power_t)
            else:
                self._optimizer = AdamOptimizer(
                    params, self.learning_rate_init, self.beta_1, self.beta_2,
                    self.epsilon)

        if self.early_stopping:
            split = train_test_split(
                X, y, *(() if sample_weight is None else (sample_weight,)),
                random_state=self._random_state, test_size=self.validation_fraction,
                stratify=y)
            X, X_val, y, y_val = split[:4]
            sample_weight, sample_weight_val = split[4:] if sample_weight is not None \
                else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset.")
        else:
            X_val = y_val = sample_weight_val = None

        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    f"Got batch_size={self.batch_size} larger than the number of "
                    f"samples ({n_samples}); it is clipped to {n_samples}.")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        if sample_weight is None:
            sample_weight = np.ones(n_samples)

        n_threads = effective_n_threads()
        network = _network.Network(layers, self.coefs_, self.intercepts_)
        network.allocate(batch_size, X.dtype, n_threads, training=True)
        l2_per_sample = [self.alpha] * len(self.coefs_) + [0.0] * len(self.intercepts_)
        sample_losses = np.empty(batch_size, dtype=np.float64)
        sample_idx = np.arange(n_samples)

        try:
            with single_threaded_blas():
                for _ in range(self.max_iter):
                    start_time = time.perf_counter()
                    if self.shuffle:
                        sample_idx = self._random_state.permutation(n_samples)
                    last_good = [p.copy() for p in params]
                    accumulated_loss = 0.0
                    progress = (EpochProgress(self.n_iter_ + 1,
                                              -(-n_samples // batch_size))
                                if self.verbose >= 2 else None)
                    for batch_index, batch in enumerate(_batches(n_samples, batch_size)):
                        idx = sample_idx[batch]
                        weights = sample_weight[idx]
                        weight_sum = weights.sum()
                        if weight_sum <= 0:
                            continue
                        x_batch = to_nhwc(X[idx], self.image_shape_)
                        logits = network.forward(x_batch, n_threads)
                        n = logits.shape[0]
                        _loss.softmax_cross_entropy(
                            logits, y[idx], weights / weight_sum, sample_losses[:n],
                            n_threads)
                        penalty = 0.5 * self.alpha * sum(
                            float(np.dot(c.ravel(), c.ravel())) for c in self.coefs_)
                        batch_loss = sample_losses[:n].sum() + penalty / weight_sum
                        network.backward(logits, n_threads)
                        self._optimizer.update_params(
                            params, network.grads(),
                            [l2 / weight_sum for l2 in l2_per_sample], n_threads)
                        accumulated_loss += batch_loss * n
                        if progress is not None:
                            progress.update(batch_index + 1,
                                            accumulated_loss / min(batch.stop, n_samples))
                    elapsed = time.perf_counter() - start_time
                    self.n_iter_ += 1
                    self.loss_ = accumulated_loss / n_samples
                    self.t_ += n_samples
                    if not self._check_finite(params, last_good):
                        break
                    self.loss_curve_.append(self.loss_)
                    self._update_no_improvement_count(
                        X_val, y_val, sample_weight_val, n_threads)
                    if self.verbose:
                        self._print_epoch(elapsed, n_samples)
                    self._optimizer.iteration_ends(self.t_)
                    if self._no_improvement_count > self.n_iter_no_change:
                        if self.early_stopping:
                            message = (
                                f"Validation score did not improve more than "
                                f"tol={self.tol:f} for {self.n_iter_no_change} "
                                "consecutive epochs.")
                        else:
                            message = (
                                f"Training loss did not improve more than "
                                f"tol={self.tol:f} for {self.n_iter_no_change} "
                                "consecutive epochs.")
                        if self._optimizer.trigger_stopping(message, self.verbose):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            f"Stochastic Optimizer: Maximum iterations "
                            f"({self.max_iter}) reached and the optimization hasn't "
                            "converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping and hasattr(self, "_best_coefs"):
            for param, best in zip(params, self._best_coefs + self._best_intercepts):
                param[...] = best

    def _check_finite(self, params, last_good):
        """On divergence restore the weights from before the epoch, warn and
        return False.

        Divergence is a non-finite loss, or weights that are non-finite or so
        large (beyond ``_max_abs_input``) that the next layers would overflow.
        """
        limit = _max_abs_input(params[0].dtype)
        if np.isfinite(self.loss_) and all(
                np.isfinite(p).all() and _largest_magnitude(p) <= limit
                for p in params):
            return True
        for param, good in zip(params, last_good):
            param[...] = good
        if hasattr(self, "_optimizer"):
            del self._optimizer
        warnings.warn(
            f"Training diverged in epoch {self.n_iter_} (loss={self.loss_}); the "
            "weights from before that epoch were restored and training stopped. "
            "Lower learning_rate_init, or scale X (e.g. to [0, 1]).",
            ConvergenceWarning)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else np.nan
        return False

    def _update_no_improvement_count(self, X_val, y_val, sample_weight_val, n_threads):
        if self.early_stopping:
            logits = self._logits(X_val, n_threads)
            val_loss = _weighted_log_loss(logits, y_val, sample_weight_val)
            val_pred = logits.argmax(axis=1)
            score = float(np.average(val_pred == y_val, weights=sample_weight_val))
            self.validation_scores_.append(score)
            self.validation_loss_curve_.append(val_loss)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _print_epoch(self, elapsed, n_samples):
        line = f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}"
        if self.early_stopping:
            line += (f", validation score = {self.validation_scores_[-1]:.6f}"
                     f", validation loss = {self.validation_loss_curve_[-1]:.6f}")
        line += f", {elapsed:.2f} s, {n_samples / max(elapsed, 1e-9):.0f} samples/s"
        print(line, flush=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : array-like
            Training images (see ``image_shape``).
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call, ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : CNNClassifier
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    # -------------------------------------------------------------- predict

    def _logits(self, X, n_threads, n_layers=None):
        """Output of the first ``n_layers`` (all: the logits) for validated 2-D
        X, flattened per sample, computed in bounded-memory batches."""
        batch_size = max(1, min(_PREDICT_BATCH_SIZE, X.shape[0]))
        params = self.coefs_ + self.intercepts_
        key = (tuple(map(id, params)), X.dtype, n_threads, batch_size)
        network = _network_pool.acquire(self, key)
        if network is None:
            if params[0].dtype != X.dtype:
                params = [p.astype(X.dtype) for p in params]
            n_coefs = len(self.coefs_)
            network = _network.Network(self._build_network(len(self.classes_)),
                                       params[:n_coefs], params[n_coefs:])
            network.allocate(batch_size, X.dtype, n_threads, training=False)
        layers = network.layers
        width = math.prod(layers[(n_layers or len(layers)) - 1].output_shape)
        out = np.empty((X.shape[0], width), dtype=X.dtype)
        with single_threaded_blas():
            for batch in _batches(X.shape[0], batch_size):
                x_batch = to_nhwc(X[batch], self.image_shape_)
                result = network.forward(x_batch, n_threads, n_layers)
                out[batch] = result.reshape(result.shape[0], -1)
        _network_pool.release(self, key, network)
        return out


    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, in the order of ``classes_``; float32 for
            float32 X, else float64.
        """
        n_threads = effective_n_threads()
        logits = self._predict_logits(X, n_threads)
        _loss.softmax(logits, n_threads)
        return logits

    def _predict_logits(self, X, n_threads):
        if not hasattr(self, "coefs_"):
            check_is_fitted(self)  # raises NotFittedError with the usual message
        X = self._validate_input(X, reset=False)
        logits = self._logits(X, n_threads)
        if not np.isfinite(logits).all():
            raise ValueError(
                "The network's outputs overflowed for these inputs (non-finite "
                "logits): X is far outside the range the model was trained on, or "
                "the weights are extreme. Scale X as for training, or refit with a "
                "lower learning_rate_init.")
        return logits

    def predict_log_proba(self, X):
        """Logarithm of the probability of each class.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Computed from the logits directly, so it is finite even where a
            probability underflows to zero.
        """
        return log_softmax(self._predict_logits(X, effective_n_threads()), axis=1)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        logits = self._predict_logits(X, effective_n_threads())
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on the given images and labels.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        score : float
            Share of correct predictions (weighted by ``sample_weight``).
        """
        return super().score(X, y, sample_weight=sample_weight)

    def transform(self, X):
        """Features of the last hidden layer: what the output layer sees.

        Use the fitted network as a feature extractor, e.g. before another
        estimator in a Pipeline.  Dropout is off.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            Activations of the last hidden dense layer (of the flattened
            convolutional part when ``hidden_layer_sizes`` is empty); same
            dtype as the model.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        layers = self._build_network(len(self.classes_))
        # Every layer but the output layer (and the dropout before it).
        n_layers = len(layers) - 1
        while n_layers and isinstance(layers[n_layers - 1], _network.DropoutLayer):
            n_layers -= 1
        if n_layers == 0:
            return np.ascontiguousarray(X)
        return self._logits(X, effective_n_threads(), n_layers)

    def summary(self):
        """Print the layers with their output shapes and parameter counts.

        Like Keras' ``model.summary()``; needs a fitted model, since the input
        size is known only then.

        Returns
        -------
        table : str
            The printed table.
        """
        check_is_fitted(self)
        layers = self._build_network(len(self.classes_))
        channels, height, width = self.image_shape_
        rows = [("Input", f"{height} x {width} x {channels}", "")]
        params = iter(zip(self.coefs_, self.intercepts_))
        total = 0
        for layer in layers:
            shape = " x ".join(str(s) for s in layer.output_shape)
            count = ""
            if layer.has_params:
                weights, bias = next(params)
                total += weights.size + bias.size
                count = f"{weights.size + bias.size:,}"
            rows.append((layer.name, shape, count))
        widths = [max(len(row[i]) for row in rows + [("Layer", "Output shape",
                                                       "Parameters")])
                  for i in range(3)]
        line = "  ".join("-" * w for w in widths)
        header = "  ".join(h.ljust(w) for h, w in zip(
            ("Layer", "Output shape", "Parameters"), widths))
        body = ["  ".join((row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                           row[2].rjust(widths[2]))) for row in rows]
        table = "\n".join([header, line, *body, line,
                           f"Total parameters: {total:,} ({self.coefs_[0].dtype})"])
        print(table)
        return table

    def fit_transform(self, X, y, sample_weight=None):
        """Fit the model, then return ``transform(X)``.

        Parameters
        ----------
        X : array-like
            Training images (see ``image_shape``).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            The last hidden layer's activations for X.
        """
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    @property
    def _n_features_out(self):
        """Width of ``transform``'s output, for ``get_feature_names_out``."""
        return self.coefs_[-1].shape[0]

    def __getstate__(self):
        state = super().__getstate__()
        state["_sklearn_cnn_version"] = __version__
        return state

    def __setstate__(self, state):
        version = state.pop("_sklearn_cnn_version", None)
        if version != __version__:
            saved_by = f"sklearn-cnn {version}" if version else "an unknown version"
            warnings.warn(
                f"This model was pickled by {saved_by} and this is sklearn-cnn "
                f"{__version__}: the model may not load or predict correctly. "
                "Refit it, or load it with the version that saved it.", UserWarning)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        # transform() extracts features, so scikit-learn's transformer checks
        # apply too; the model's dtype (float32 or float64) is kept.
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        return tags


def _max_abs_input(dtype):
    """Largest |X| accepted: products and squares of such values (in the
    layers and in Adam's second moments) stay far from overflow."""
    return float(np.finfo(dtype).max) ** 0.25


def _largest_magnitude(X):
    # max and min rather than abs(X).max(): no temporary as large as X.
    return max(float(X.max()), -float(X.min()))


def _check_magnitude(X):
    if X.size == 0:
        return
    largest = _largest_magnitude(X)
    if largest > _max_abs_input(X.dtype):
        raise ValueError(
            f"X contains values as large as {largest:.3g}; {X.dtype} inputs must stay "
            f"below {_max_abs_input(X.dtype):.3g} in absolute value, or the network "
            "overflows. Scale X first (e.g. with StandardScaler or MinMaxScaler), "
            "or pass float64.")


def _batches(n_samples, batch_size):
    """Consecutive slices of ``batch_size`` (the last may be shorter).

    sklearn.utils.gen_batches does the same but validates its arguments on
    every call, which costs ~100 us: a third of a single-image prediction.
    """
    return (slice(start, min(start + batch_size, n_samples))
            for start in range(0, n_samples, batch_size))


def _weighted_log_loss(logits, y, sample_weight):
    log_proba = log_softmax(logits.astype(np.float64), axis=1)
    losses = -log_proba[np.arange(len(y)), y]
    return float(np.average(losses, weights=sample_weight))
