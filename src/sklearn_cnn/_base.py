"""The estimator base shared by CNNClassifier and CNNRegressor.

As scikit-learn's ``BaseMultilayerPerceptron``: this class holds the
parameters, input validation, the training loop (``_fit`` /
``_fit_stochastic``), early stopping, ``partial_fit``, ``warm_start``,
``transform``, ``summary`` and pickling.  A subclass supplies what depends on
the targets, through the hooks at the top of the class: how ``y`` is encoded
(and which loss and output activation that means), and the validation score
that early stopping watches.
"""

import math
import os
import sys
import time
import warnings
from abc import ABCMeta, abstractmethod
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils import TransformerTags, check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _network_pool
from ._input import resolve_image_shape, split_image_array, to_nhwc
from ._kernels import _activations
from ._losses import make_loss
from ._network import Network, default_conv_layers
from ._optimizers import AdamOptimizer, SGDOptimizer, solver_from_dict
from ._progress import EpochProgress
from ._spec import nested_spec_params, replace_nested
from ._summary import summarize
from ._threads import effective_n_threads, single_threaded_blas
from ._version import __version__
from .augmentation import Augmentation, check_augment
from .layers import as_layer_spec
from .layers._base import (
    ACTIVATIONS,
    WEIGHT_INITS,
    BuildContext,
    replace_in_layers,
    spatial_dims_of,
)
from .schedules import MLP_SCHEDULES, SHORTHANDS, LearningRate, Schedule, as_schedule

# Where the documentation is published (the HTML repr links there).
DOCS_URL = "https://sklearn-cnn.readthedocs.io/en/latest/"

# Samples per forward pass in predict: bounds memory whatever n_samples is.
_PREDICT_BATCH_SIZE = 256
# ... and fewer where a batch of the network's largest feature map would
# exceed this many bytes: a layer then reads its input while it is still in
# cache.  Measured on the 10k Fashion-MNIST test images (1 / 2 threads):
# resnet2d((16, 32, 64)), 50 KB per image at 28x28x16, took 1.22 / 0.68 s
# in batches of 32 and 1.60 / 0.83 s in batches of 256; FM-LeNet (25 KB)
# 0.40 / 0.22 s in batches of 64 to 256, 0.43 / 0.25 s in batches of 32.
_PREDICT_BATCH_BYTES = 2 * 2**20
# ... and fewer where a batch of all the layers' outputs (containers
# included: a residual block keeps its input for the shortcut and its
# branches' outputs) would exceed this many bytes.  The 5k first
# Fashion-MNIST test images (1 / 2 threads): resnet2d((16, 32, 64)), 600 KB
# of outputs per image, took 0.563 / 0.336 s in batches of 41 (the largest
# map alone) and 0.514 / 0.281 in batches of 20; FM-LeNet (37 KB) and vgg()
# (478 KB, largest map 98 KB) are left at their batches of 83 and 20, the
# fastest measured (0.149 / 0.082 s, 0.509 / 0.282 s).  Lowered later from
# 12 MiB, with the floor below from 16, on 3k test images, alternated, us per
# image: resnet2d in batches of 12 instead of 20, 110.7 / 60.5 against
# 116.6 / 61.2 (16: 112.5 / 60.4); vgg() in batches of 16 instead of 20,
# 119.3 / 59.3 against 122.6 / 62.2; the FCN on OSULeaf (1.7 MB per
# series) in batches of 12 instead of 16, 620 / 344 against 615 / 342.
_PREDICT_FORWARD_BYTES = 15 * 2**19
_MIN_PREDICT_BATCH_SIZE = 12


def _predict_batch_size(network, dtype):
    """Samples per forward pass in predict, from the network's shapes only
    (never the thread count: predictions stay bitwise the same)."""
    itemsize = np.dtype(dtype).itemsize
    sizes = [math.prod(layer.output_shape) for layer in network.walk()]
    fitting = min(_PREDICT_BATCH_BYTES // (max(sizes) * itemsize),
                  _PREDICT_FORWARD_BYTES // (sum(sizes) * itemsize))
    return int(min(_PREDICT_BATCH_SIZE, max(_MIN_PREDICT_BATCH_SIZE, fitting)))


class BaseCNN(ClassNamePrefixFeaturesOutMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the CNN estimators; not for direct use."""

    # The HTML repr (notebooks) links to our API pages, not scikit-learn's.
    _doc_link_module = "sklearn_cnn"
    _doc_link_template = (DOCS_URL + "generated/{estimator_module}."
                          "{estimator_name}.html")

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "conv_layers": [StrOptions({"auto"}), tuple, list],
        "solver": [StrOptions({"sgd", "adam", "adamw"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({*MLP_SCHEDULES, *SHORTHANDS}), Schedule],
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
        "image_shape": [tuple, list, None],
        "augment": [tuple, list, Augmentation, None],
        "test_time_augmentation": ["boolean"],
        "weight_init": [StrOptions(set(WEIGHT_INITS))],
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
    ):
        # CNNRegressor uses this signature as it is; CNNClassifier adds
        # class_weight and label_smoothing.  scikit-learn reads the
        # parameters from it.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.conv_layers = conv_layers
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
        self.image_shape = image_shape
        self.augment = augment
        self.test_time_augmentation = test_time_augmentation
        self.weight_init = weight_init

    # ------------------------------------------------- hooks for subclasses

    @abstractmethod
    def _encode_targets(self, y, X, sample_weight, *, reset, incremental, classes):
        """Validate ``y`` without changing the estimator.

        Returns ``(targets, sample_weight, attributes)``: the targets as the
        loss kernel takes them (int32 class indices, or a float matrix of
        X's dtype), the sample weights (class weights folded in), and the
        fitted attributes to set once every check has passed; these include
        ``n_outputs_`` and ``out_activation_`` (which picks the loss).
        """

    @abstractmethod
    def _validation_score(self, outputs, targets, sample_weight):
        """Score of raw network outputs on held-out targets (higher is better)."""

    def _stratify(self, targets):
        """What the early-stopping split is stratified on (None: not at all)."""
        return None

    def _check_validation_targets(self, targets):
        """Raise if early stopping cannot score these held-out targets."""

    def _loss(self):
        """The training loss (the output activation picks it)."""
        return make_loss(self.out_activation_)

    # --------------------------------------------- nested layer parameters

    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        With ``deep=True`` the layers of ``conv_layers`` are listed too, as
        ``conv_layers__0`` (the layer) and ``conv_layers__0__filters`` (its
        fields), and so are the fields of a schedule given as
        ``learning_rate`` (``learning_rate__warmup_epochs``) and of the
        augmentations (``augment__0__max_shift``): the names ``set_params``
        and ``GridSearchCV`` take.

        Parameters
        ----------
        deep : bool, default=True
            Also return the layers' fields.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        if deep and isinstance(self.conv_layers, (tuple, list)):
            params.update(nested_spec_params("conv_layers", self.conv_layers))
        if deep:
            params.update(nested_spec_params("augment", self.augment))
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator.

        ``conv_layers__1__filters=64`` changes one field of one layer (a new
        tuple of layers is made: layers are immutable), and
        ``conv_layers__1=MaxPool2D()`` replaces a layer; the same goes for
        ``learning_rate__warmup_epochs`` and ``augment__0__max_shift``.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        nested = {key[len("conv_layers__"):]: params.pop(key)
                  for key in list(params) if key.startswith("conv_layers__")}
        specs = {}
        for owner in ("learning_rate", "augment"):
            prefix = owner + "__"
            changes = {key[len(prefix):]: params.pop(key)
                       for key in list(params) if key.startswith(prefix)}
            if changes:
                specs[owner] = changes
        super().set_params(**params)
        for owner, changes in specs.items():
            value = getattr(self, owner)
            if owner == "learning_rate" and isinstance(value, str) and value in SHORTHANDS:
                value = SHORTHANDS[value]
            setattr(self, owner, replace_nested(value, changes, owner))
        if nested:
            if not isinstance(self.conv_layers, (tuple, list)):
                raise ValueError(
                    f"conv_layers is {self.conv_layers!r}: set conv_layers to a tuple "
                    "of layers before setting conv_layers__<index>__<field>.")
            self.conv_layers = replace_in_layers(self.conv_layers, nested,
                                                 "conv_layers")
        return self

    # ------------------------------------------------------ fitted arrays

    @property
    def coefs_(self):
        """Weights of the layers with weights and biases (convolutions and
        dense layers), in network order: the arrays of ``parameters_``."""
        return [array for name, array in self.parameters_.items()
                if name.endswith(".weights")]

    @coefs_.setter
    def coefs_(self, arrays):
        self._replace_parameters(".weights", arrays)

    @property
    def intercepts_(self):
        """Biases of the layers listed in ``coefs_``."""
        return [array for name, array in self.parameters_.items()
                if name.endswith(".bias")]

    @intercepts_.setter
    def intercepts_(self, arrays):
        self._replace_parameters(".bias", arrays)

    def _replace_parameters(self, suffix, arrays):
        names = [name for name in self.parameters_ if name.endswith(suffix)]
        arrays = list(arrays)
        if len(arrays) != len(names) or any(
                np.shape(a) != self.parameters_[n].shape for n, a in zip(names, arrays)):
            raise ValueError(
                f"Expected {len(names)} arrays of shapes "
                f"{[self.parameters_[n].shape for n in names]}.")
        parameters = dict(self.parameters_)
        for name, array in zip(names, arrays):
            # In the model's dtype and C order, as the kernels read them (a
            # copy only where the array is neither).
            parameters[name] = np.ascontiguousarray(array,
                                                    dtype=self.parameters_[name].dtype)
        self.parameters_ = parameters

    # ---------------------------------------------------------- validation

    def _validate_architecture(self):
        """``(layer specs, auto, hidden sizes)``, with clear errors."""
        if isinstance(self.conv_layers, str):
            conv_specs, auto = default_conv_layers(), True
        else:
            conv_specs = tuple(as_layer_spec(entry, f"conv_layers[{i}]")
                               for i, entry in enumerate(self.conv_layers))
            auto = False
        hidden = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if hidden.ndim != 1 or (hidden.size and not np.issubdtype(hidden.dtype,
                                                                  np.integer)):
            raise ValueError(
                "hidden_layer_sizes must be an int or a 1-D sequence of ints, got "
                f"{self.hidden_layer_sizes!r}.")
        if np.any(hidden < 1):
            raise ValueError(
                f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes!r}.")
        return conv_specs, auto, [int(h) for h in hidden]

    def _spatial_dims(self):
        """1 when the layers are for series, else 2 (images)."""
        conv_specs, _, _ = self._validate_architecture()
        return spatial_dims_of(conv_specs) or 2

    def _validate_image_shape(self, spatial_dims):
        shape = self.image_shape
        if shape is None:
            return
        lengths, forms = (((1, 2), "(length,) or (channels, length)") if spatial_dims == 1
                          else ((2, 3), "(height, width) or (channels, height, width)"))
        if not (len(shape) in lengths and all(
                isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
                for s in shape)):
            raise ValueError(
                f"image_shape must be None or {forms} with positive ints for a network "
                f"of {spatial_dims}-D layers, got {shape!r}.")

    def _build_network(self, n_outputs, image_shape, rng=None, fuse=True,
                       training=False):
        """The runtime network; one built for training (``training=True``)
        keeps every layer apart that backward needs apart."""
        conv_specs, auto, hidden = self._validate_architecture()
        channels, height, width = image_shape
        context = BuildContext(self.activation, auto=auto, rng=rng, fuse=fuse,
                               inference=not training, weight_init=self.weight_init)
        return Network(conv_specs, hidden, n_outputs, (height, width, channels),
                       context, dropout=self.dropout)

    def _validate_input(self, X, reset):
        """Validated 2-D X and the ``(channels, height, width)`` it holds."""
        if not reset:
            plain = self._plain_2d_view(X)
            if plain is not None:
                return plain, self.image_shape_
        spatial_dims = self._spatial_dims()
        X, array_shape = split_image_array(X, spatial_dims)
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                          order="C")
        _check_magnitude(X, "X")
        if reset:
            self._validate_image_shape(spatial_dims)
            return X, resolve_image_shape(self.image_shape, X.shape[1], array_shape,
                                          spatial_dims)
        if array_shape is not None and array_shape != self.image_shape_:
            if spatial_dims == 1:
                (channels, _, length), (fit_channels, _, fit_length) = (
                    array_shape, self.image_shape_)
                raise ValueError(
                    f"X holds series of {channels} channels and length {length} but "
                    f"the model was fitted on {fit_channels} channels of length "
                    f"{fit_length}.")
            raise ValueError(
                f"X holds images of shape {array_shape} (channels, height, width) "
                f"but the model was fitted on {self.image_shape_}.")
        return X, self.image_shape_

    def _plain_2d_view(self, X):
        """Fast path of predict's validation: X as validate_data would return
        it, for a finite, C-ordered float ndarray of the fitted shape from a
        model fitted without feature names (2-D, or images or series in the
        3-D or 4-D layout that fitted ``image_shape_``, as a 2-D view), else
        None.  It saves ~100 us, half the time of a single-image prediction."""
        if type(X) is not np.ndarray or X.ndim < 2 or X.shape[0] < 1:
            return None
        if X.ndim > 2:
            channels, height, width = self.image_shape_
            layouts = {1: {3: (channels, width) if height == 1 else None},
                       2: {3: (height, width) if channels == 1 else None,
                           4: (channels, height, width)}}
            spatial_dims = getattr(self, "_fitted_spatial_dims", None)
            if X.shape[1:] != layouts.get(spatial_dims, {}).get(X.ndim):
                return None
            X = X.reshape(X.shape[0], -1)
        # The checks inline: each Python call here costs about twice as much
        # in a single-image prediction as in a loop (its data left the cache).
        valid = (
            X.dtype in (np.float32, np.float64)
            and X.flags.c_contiguous
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
            # One test for NaN, inf and the magnitude, without a mask as large
            # as X: max and min are NaN if any value is, and NaN or inf fail
            # the comparison (then the full validation raises its error).
            and _largest_magnitude(X) <= _max_abs_input(X.dtype)
        )
        return X if valid else None

    # ----------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to images (or signals) X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, \
                width) or (n_samples, channels, height, width)
            Training images (see ``image_shape``).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels or a multilabel indicator matrix of 0/1
            (CNNClassifier); target values (CNNRegressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        """Validate everything, then (and only then) change the estimator and
        train."""
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: it sees one "
                "chunk at a time. Set early_stopping=False, or use fit.")
        reset = not hasattr(self, "parameters_") or (
            not self.warm_start and not incremental)
        X, image_shape = self._validate_input(X, reset=reset)
        sample_weight = _validate_sample_weight(sample_weight, X)
        targets, sample_weight, attributes = self._encode_targets(
            y, X, sample_weight, reset=reset, incremental=incremental, classes=classes)
        rng = (check_random_state(self.random_state)
               if reset or not hasattr(self, "_random_state") else self._random_state)
        network = self._build_network(attributes["n_outputs_"], image_shape, rng,
                                      training=True)
        infos = network.parameter_infos()
        if not reset:
            _check_same_architecture(infos, self.parameters_)
        schedule = self._validate_training_recipe()
        augmenter = check_augment(self.augment, image_shape, self._spatial_dims())
        if self.early_stopping:
            X, targets, sample_weight, validation = self._split_validation(
                X, targets, sample_weight, rng)
        else:
            validation = None
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warn_at_caller(
                    f"Got batch_size={self.batch_size} larger than the number of "
                    f"samples ({n_samples}); it is clipped to {n_samples}.")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        # Every check passed: the estimator changes from here on.
        self.image_shape_ = image_shape
        # For predict's fast path (_plain_2d_view): how it reads 3-D X.
        self._fitted_spatial_dims = self._spatial_dims()
        for name, value in attributes.items():
            setattr(self, name, value)
        self._random_state = rng
        if reset:
            self._initialize(network, X.dtype)
        elif next(iter(self.parameters_.values())).dtype != X.dtype:
            self.parameters_ = {k: v.astype(X.dtype) for k, v in self.parameters_.items()}
            self.state_ = {k: v.astype(X.dtype) for k, v in self.state_.items()}
            self.__dict__.pop("_optimizer", None)
        decay = [info.decay for info in infos.values()]
        self._fit_stochastic(X, targets, sample_weight, validation, network, decay,
                             batch_size, incremental, schedule, augmenter)
        return self

    def _validate_training_recipe(self):
        """The learning-rate schedule, after the checks of the settings that
        concern training as a whole."""
        schedule = as_schedule(self.learning_rate)
        if isinstance(schedule, Schedule):
            schedule.check_training(self.max_iter, self.n_iter_no_change)
        if self.test_time_augmentation and self._spatial_dims() == 1:
            raise ValueError(
                "test_time_augmentation averages each image with its mirror image; "
                "the network's layers are 1-D (series), for which time reversal is "
                "not a valid view. Set test_time_augmentation=False.")
        return schedule

    def _initialize(self, network, dtype):
        self.parameters_, self.state_ = network.init_parameters(self._random_state,
                                                                dtype)
        self.n_layers_ = network.n_declared_layers
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self.__dict__.pop("_optimizer", None)
        self.__dict__.pop("_best_parameters", None)
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

    def _split_validation(self, X, targets, sample_weight, rng):
        arrays = (X, targets) + (() if sample_weight is None else (sample_weight,))
        split = train_test_split(*arrays, random_state=rng,
                                 test_size=self.validation_fraction,
                                 stratify=self._stratify(targets))
        X, X_val, targets, targets_val = split[:4]
        sample_weight, sample_weight_val = split[4:] or (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset.")
        self._check_validation_targets(targets_val)
        return X, targets, sample_weight, (X_val, targets_val, sample_weight_val)

    def _fit_stochastic(self, X, targets, sample_weight, validation, network, decay,
                        batch_size, incremental, schedule, augmenter):
        loss = self._loss()
        parameters = list(self.parameters_.values())
        if not incremental or not hasattr(self, "_optimizer"):
            rate = LearningRate(schedule, self.learning_rate_init, self.max_iter,
                                self.power_t)
            if self.solver == "sgd":
                self._optimizer = SGDOptimizer(parameters, rate, self.momentum,
                                               self.nesterovs_momentum)
            else:
                self._optimizer = AdamOptimizer(parameters, rate, self.beta_1,
                                                self.beta_2, self.epsilon)
        learning_rate = self._optimizer.learning_rate
        # "adamw" decays the weights apart from the gradient; the others add
        # alpha's L2 penalty to the loss.  Neither touches biases or
        # BatchNormalization's scale and shift (``decay`` is False for them).
        decoupled = self.solver == "adamw"
        l2_alpha = 0.0 if decoupled else self.alpha
        weight_decays = [self.alpha if d and decoupled else 0.0 for d in decay]
        n_samples = X.shape[0]
        if sample_weight is None:
            sample_weight = np.ones(n_samples)
        n_threads = effective_n_threads()
        network.bind(self.parameters_, self.state_)
        network.allocate(batch_size, X.dtype, n_threads, training=True)
        decayed = [p for p, d in zip(parameters, decay) if d and l2_alpha]
        sample_losses = np.empty(batch_size, dtype=np.float64)
        sample_idx = np.arange(n_samples)
        n_batches = -(-n_samples // batch_size)

        try:
            with single_threaded_blas():
                for _ in range(self.max_iter):
                    start_time = time.perf_counter()
                    if self.shuffle:
                        sample_idx = self._random_state.permutation(n_samples)
                    last_good = self._snapshot()
                    accumulated_loss = 0.0
                    progress = (EpochProgress(self.n_iter_ + 1, n_batches)
                                if self.verbose >= 2 else None)
                    for batch_index, batch in enumerate(
                            _training_batches(n_samples, batch_size)):
                        idx = sample_idx[batch]
                        weights = sample_weight[idx]
                        weight_sum = weights.sum()
                        rate = learning_rate.step_rate(
                            self.n_iter_ + batch_index / n_batches, 1 / n_batches,
                            self.t_ + batch.start)
                        if weight_sum <= 0:
                            continue
                        x_batch = to_nhwc(X[idx], self.image_shape_)
                        if augmenter is not None:
                            x_batch = augmenter(x_batch, self._random_state, n_threads)
                        outputs = network.forward(x_batch, n_threads)
                        n = outputs.shape[0]
                        loss.loss_and_gradient(outputs, targets[idx],
                                               weights / weight_sum,
                                               sample_losses[:n], n_threads)
                        penalty = 0.5 * l2_alpha * sum(
                            float(np.dot(p.ravel(), p.ravel())) for p in decayed)
                        batch_loss = sample_losses[:n].sum() + penalty / weight_sum
                        network.backward(outputs, n_threads)
                        l2 = l2_alpha / weight_sum
                        self._optimizer.update_params(
                            parameters, network.grads(), rate,
                            [l2 if d else 0.0 for d in decay], weight_decays, n_threads)
                        accumulated_loss += batch_loss * n
                        if progress is not None:
                            progress.update(batch_index + 1,
                                            accumulated_loss / min(batch.stop, n_samples))
                    elapsed = time.perf_counter() - start_time
                    self.n_iter_ += 1
                    self.loss_ = accumulated_loss / n_samples
                    self.t_ += n_samples
                    if not self._check_finite(parameters, last_good):
                        break
                    self.loss_curve_.append(self.loss_)
                    improved = self._update_no_improvement_count(validation, loss,
                                                                 n_threads)
                    if self.verbose:
                        self._print_epoch(elapsed, n_samples)
                    learning_rate.epoch_ends(improved, self.verbose)
                    if self._no_improvement_count > self.n_iter_no_change:
                        watched = ("Validation score" if self.early_stopping
                                   else "Training loss")
                        message = (
                            f"{watched} did not improve more than tol={self.tol:f} for "
                            f"{self.n_iter_no_change} consecutive epochs.")
                        if learning_rate.stop_or_adapt(message, self.verbose):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warn_at_caller(
                            f"Stochastic Optimizer: Maximum iterations "
                            f"({self.max_iter}) reached and the optimization hasn't "
                            "converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            warn_at_caller("Training interrupted by user.")
        if self.early_stopping and hasattr(self, "_best_parameters"):
            self._restore(self._best_parameters)

    def _snapshot(self):
        """Copies of every parameter and state array (running statistics
        belong with the weights they were computed for)."""
        return {name: array.copy() for arrays in (self.parameters_, self.state_)
                for name, array in arrays.items()}

    def _restore(self, snapshot):
        for arrays in (self.parameters_, self.state_):
            for name, array in arrays.items():
                array[...] = snapshot[name]

    def _check_finite(self, parameters, last_good):
        """On divergence restore the weights from before the epoch, warn and
        return False.

        Divergence is a non-finite loss, or weights that are non-finite or so
        large (beyond ``_max_abs_input``) that the next layers would overflow.
        """
        limit = _max_abs_input(parameters[0].dtype)
        if np.isfinite(self.loss_) and all(
                np.isfinite(p).all() and _largest_magnitude(p) <= limit
                for p in parameters) and all(
                np.isfinite(s).all() for s in self.state_.values()):
            return True
        self._restore(last_good)
        self.__dict__.pop("_optimizer", None)
        warn_at_caller(
            f"Training diverged in epoch {self.n_iter_} (loss={self.loss_}); the "
            "weights from before that epoch were restored and training stopped. "
            "Lower learning_rate_init, or scale X (e.g. to [0, 1]).",
            ConvergenceWarning)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else np.nan
        return False

    def _update_no_improvement_count(self, validation, loss, n_threads):
        """Count the epoch towards ``n_iter_no_change``; return whether it
        improved the watched value by at least ``tol``."""
        if self.early_stopping:
            X_val, targets_val, sample_weight_val = validation
            outputs = self._forward(X_val, n_threads)
            self.validation_loss_curve_.append(
                loss.value(outputs, targets_val, sample_weight_val))
            score = self._validation_score(outputs, targets_val, sample_weight_val)
            self.validation_scores_.append(score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_parameters = self._snapshot()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        return self._no_improvement_count == 0

    def _print_epoch(self, elapsed, n_samples):
        line = f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}"
        if self.early_stopping:
            line += (f", validation score = {self.validation_scores_[-1]:.6f}"
                     f", validation loss = {self.validation_loss_curve_[-1]:.6f}")
        line += f", {elapsed:.2f} s, {n_samples / max(elapsed, 1e-9):.0f} samples/s"
        print(line, flush=True)

    # ------------------------------------------------------------- predict

    def _forward(self, X, n_threads, n_layers=None):
        """Output of the first ``n_layers`` top-level layers (None: all, the
        output layer's before its activation; "features": those before the
        output layer, what transform returns, which is X itself when there
        are none) for validated 2-D X, flattened per sample, computed in
        bounded-memory batches."""
        parameters, state = self.parameters_, self.state_
        # A network of another dtype than the model's holds cast copies, which
        # in-place training (partial_fit) would leave stale: only networks
        # bound to the arrays themselves are pooled (and only those of plain
        # dicts, which the pool compares in compiled code).
        pooled = (type(parameters) is dict and type(state) is dict
                  and next(iter(parameters.values())).dtype == X.dtype)
        network, slot = (
            _network_pool.acquire(self, parameters, state, X.dtype, n_threads)
            if pooled else (None, None))
        if network is None:
            if not pooled:
                parameters = {k: v.astype(X.dtype) for k, v in parameters.items()}
                state = {k: v.astype(X.dtype) for k, v in state.items()}
            network = self._build_network(self.n_outputs_, self.image_shape_)
            network.bind(parameters, state)
            network.allocate(_predict_batch_size(network, X.dtype), X.dtype, n_threads,
                             training=False)
        if n_layers == "features":
            # Counted on the network at hand: building one to count its
            # layers took longer than a one-image transform (resnet2d: 0.47 ms).
            n_layers = network.feature_layer_count()
            if n_layers == 0:
                if pooled:
                    _network_pool.release(slot, network)
                return np.ascontiguousarray(X)
        batch_size = network.batch_size
        n_layers = n_layers or len(network.layers)
        # The folded BatchNormalizations and Winograd weights: computed once
        # per call of several batches, and kept in a pooled network for the
        # next calls until a parameter changes (see Network.prepare).  A
        # single batch of a network used once computes them in its pass.
        if pooled or X.shape[0] > batch_size:
            network.prepare(n_threads)
        with single_threaded_blas():
            if X.shape[0] <= batch_size:
                # One batch (one image, say): a copy of the output buffer.
                result = network.forward(to_nhwc(X, self.image_shape_), n_threads,
                                         n_layers)
                out = result.reshape(X.shape[0], -1).copy()
            else:
                width = math.prod(network.layers[n_layers - 1].output_shape)
                out = np.empty((X.shape[0], width), dtype=X.dtype)
                for batch in _batches(X.shape[0], batch_size):
                    x_batch = to_nhwc(X[batch], self.image_shape_)
                    result = network.forward(x_batch, n_threads, n_layers)
                    out[batch] = result.reshape(result.shape[0], -1)
        if pooled:
            _network_pool.release(slot, network)
        return out

    def _predict_outputs(self, X, n_threads):
        """Raw outputs of the network (logits, or values) for any valid X."""
        if not hasattr(self, "parameters_"):
            check_is_fitted(self)  # raises NotFittedError with the usual message
        X, _ = self._validate_input(X, reset=False)
        outputs = self._forward(X, n_threads)
        if self.test_time_augmentation:
            # The mean of the outputs for each image and its mirror image.
            channels, height, width = self.image_shape_
            mirrored = X.reshape(-1, channels, height, width)[..., ::-1]
            outputs += self._forward(
                np.ascontiguousarray(mirrored).reshape(X.shape), n_threads)
            outputs *= 0.5
        if not math.isfinite(_largest_magnitude(outputs)):
            raise ValueError(
                "The network's outputs overflowed for these inputs (non-finite "
                "values): X is far outside the range the model was trained on, or "
                "the weights are extreme. Scale X as for training, or refit with a "
                "lower learning_rate_init.")
        return outputs

    def transform(self, X):
        """Features of the last hidden layer: what the output layer sees.

        Use the fitted network as a feature extractor, e.g. before another
        estimator in a Pipeline.  Dropout is off.

        Parameters
        ----------
        X : array-like
            Images or signals (see ``image_shape``).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            Activations of the last hidden dense layer (of the flattened
            convolutional part when ``hidden_layer_sizes`` is empty); same
            dtype as the model.
        """
        check_is_fitted(self)
        X, _ = self._validate_input(X, reset=False)
        return self._forward(X, effective_n_threads(), "features")

    def fit_transform(self, X, y, sample_weight=None):
        """Fit the model, then return ``transform(X)``.

        Parameters
        ----------
        X : array-like
            Training images or signals (see ``image_shape``).
        y : array-like
            Targets.
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
        return self.parameters_["output.weights"].shape[0]

    def summary(self):
        """The layers with their output shapes and trained arrays.

        Like Keras' ``model.summary()``: the layers as declared (before the
        internal fusion of convolution, activation and pooling), each with
        its output shape per sample and the names and shapes of its arrays in
        ``parameters_``.  Before fit it needs ``image_shape`` with the
        channels, e.g. ``(1, 28, 28)``, and shows the output layer per output
        (their number comes from y).

        Returns
        -------
        summary : ModelSummary
            Shows as a text table (``print(model.summary())``) and as an HTML
            table in a notebook.
        """
        if hasattr(self, "parameters_"):
            network = self._build_network(self.n_outputs_, self.image_shape_,
                                          fuse=False)
            return summarize(network, self.parameters_)
        spatial_dims = self._spatial_dims()
        self._validate_image_shape(spatial_dims)
        if self.image_shape is None:
            raise NotFittedError(
                "summary() before fit needs image_shape, e.g. (1, 28, 28) for "
                "28x28 one-channel images; or fit the model first.")
        image_shape = resolve_image_shape(self.image_shape, math.prod(self.image_shape),
                                          None, spatial_dims)
        return summarize(self._build_network(1, image_shape, fuse=False))

    # ------------------------------------------------------------- pickling

    def __getstate__(self):
        # A copy: object.__getstate__ may return the instance's own __dict__.
        state = dict(super().__getstate__())
        state["_sklearn_cnn_version"] = __version__
        # The solver's state (to continue with partial_fit) as plain data, so
        # that skops.io needs to trust only public types.
        if "_optimizer" in state:
            state["_optimizer"] = state["_optimizer"].to_dict()
        return state

    def __setstate__(self, state):
        version = state.pop("_sklearn_cnn_version", None)
        if version != __version__:
            saved_by = f"sklearn-cnn {version}" if version else "an unknown version"
            warnings.warn(
                f"This model was pickled by {saved_by} and this is sklearn-cnn "
                f"{__version__}: the model may not load or predict correctly. "
                "Refit it, or load it with the version that saved it.", UserWarning,
                stacklevel=2)
        if isinstance(state.get("_optimizer"), dict):
            state = {**state, "_optimizer": solver_from_dict(state["_optimizer"])}
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        # transform() extracts features, so scikit-learn's transformer checks
        # apply too; the model's dtype (float32 or float64) is kept.
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        return tags


# ---------------------------------------------------------------- helpers

_PACKAGE_DIRS = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
                 os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep)


def warn_at_caller(message, category=UserWarning):
    """Warn with the user's line as the location: the first frame outside
    sklearn-cnn and scikit-learn (whose ``_fit_context`` wraps ``fit``)."""
    frame = sys._getframe(1)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIRS):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _check_same_architecture(infos, parameters):
    """warm_start and partial_fit continue only with the same arrays."""
    shapes = {name: tuple(info.shape) for name, info in infos.items()}
    fitted = {name: array.shape for name, array in parameters.items()}
    if shapes != fitted:
        changed = sorted(set(shapes.items()) ^ set(fitted.items()))
        raise ValueError(
            "The architecture no longer matches the fitted parameters "
            f"(differences: {changed[:4]}). warm_start and partial_fit continue "
            "training the same network: set warm_start=False to start afresh.")


def check_target_length(y, X):
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} samples but y has {y.shape[0]}: they must match.")


def _validate_sample_weight(sample_weight, X):
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if not np.isfinite(sample_weight).all() or (sample_weight < 0).any():
        raise ValueError(
            "sample_weight must be finite and non-negative; it has "
            f"{int((~np.isfinite(sample_weight)).sum())} non-finite and "
            f"{int((sample_weight < 0).sum())} negative values.")
    if sample_weight.sum() == 0:
        raise ValueError(
            "sample_weight sums to zero: at least one sample needs a positive weight.")
    return sample_weight


@lru_cache(maxsize=8)
def _max_abs_input(dtype):
    """Largest |X| (or |y|) accepted: products and squares of such values (in
    the layers and in Adam's second moments) stay far from overflow."""
    return float(np.finfo(dtype).max) ** 0.25


# Up to this many values, largest |X| comes from one kernel call (1.3 us for
# one 28x28 image, against 5.4 for numpy's max and min); beyond, numpy's two
# vectorised passes are faster (10k such images: 2.9 ms against 3.5).
_ONE_PASS_MAX_VALUES = 65536


def _largest_magnitude(X):
    """max |X|: NaN if X holds a NaN, so that any test ``<= limit`` fails."""
    if (X.size <= _ONE_PASS_MAX_VALUES and X.dtype in (np.float32, np.float64)
            and X.flags.c_contiguous):
        return _activations.largest_magnitude(X)
    # max and min rather than abs(X).max(): no temporary as large as X.
    return max(float(X.max()), -float(X.min()))


def _check_magnitude(X, name, dtype=None):
    if X.size == 0:
        return
    dtype = dtype or X.dtype
    largest = _largest_magnitude(X)
    if largest > _max_abs_input(dtype):
        scaler = ("TransformedTargetRegressor with a StandardScaler" if name == "y"
                  else "StandardScaler or MinMaxScaler")
        raise ValueError(
            f"{name} contains values as large as {largest:.3g}; with {np.dtype(dtype)} "
            f"data they must stay below {_max_abs_input(dtype):.3g} in absolute value, "
            f"or the network overflows. Scale {name} first (e.g. with {scaler}), or "
            "pass float64 X.")


def _training_batches(n_samples, batch_size):
    """``ceil(n_samples / batch_size)`` consecutive slices of equal sizes
    (within one sample), none larger than ``batch_size``.

    Not a full batches plus a remainder, as MLPClassifier does: a remainder
    of one or two samples gives BatchNormalization statistics of one or two
    samples, and, as the last update of every epoch, it skews the running
    statistics used in predict (measured on GunPoint's 50 series with batch
    16: training accuracy 0.74 in predict against a loss of 0.09).
    """
    n_batches = -(-n_samples // batch_size)
    smaller, extra = divmod(n_samples, n_batches)
    start = 0
    for index in range(n_batches):
        stop = start + smaller + (index < extra)
        yield slice(start, stop)
        start = stop


def _batches(n_samples, batch_size):
    """Consecutive slices of ``batch_size`` (the last may be shorter).

    sklearn.utils.gen_batches does the same but validates its arguments on
    every call, which costs ~100 us: a third of a single-image prediction.
    """
    return (slice(start, min(start + batch_size, n_samples))
            for start in range(0, n_samples, batch_size))
