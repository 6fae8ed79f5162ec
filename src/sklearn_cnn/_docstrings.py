"""Docstring parts shared by CNNClassifier and CNNRegressor.

The two estimators take the same parameters (the classifier adds
``class_weight``) and share most fitted attributes; their docstrings are
assembled from these parts so that the text exists once.
"""

PARAMETERS = """\
    conv_layers : "auto" or tuple of layers, default="auto"
        The architecture before the dense head, in order (keyword-only).
        Each entry is a layer from :mod:`sklearn_cnn.layers`: for images
        ``Conv2D``, ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``,
        ``GlobalMaxPool2D``; for series ``Conv1D``, ``MaxPool1D``,
        ``AvgPool1D``, ``GlobalAvgPool1D``, ``GlobalMaxPool1D``; for either
        ``BatchNormalization``, ``Activation``, ``Dropout``, ``Dense``, and
        the blocks ``Sequential`` and ``Residual``; or an int ``k`` (a 3x3
        ``Conv2D`` with ``k`` filters and 'same' padding) or one of the
        strings "maxpool", "avgpool", "globalavgpool".  "auto" is
        ``(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())`` with pooling
        windows shrunk to fit small maps, so it works for any input size,
        down to one feature.  An empty tuple gives a plain MLP.  Fields of
        the layers are parameters too: ``set_params(conv_layers__0__filters=64)``
        and grid searches over ``conv_layers__0__filters`` work.

    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(128,)
        Sizes of the fully connected hidden layers after ``conv_layers``,
        as in MLPClassifier (and first positional, as there).

    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"}, \
            default="relu"
        Activation of the hidden layers, and of the ``Conv2D`` and ``Dense``
        layers that do not name their own.

    solver : {"sgd", "adam", "adamw"}, default="adam"
        The stochastic solver.  "adamw" is Adam with decoupled weight decay
        (Loshchilov & Hutter): each step shrinks the weights by
        ``learning_rate * alpha``, apart from the gradient.

    alpha : float, default=0.0001
        With "sgd" and "adam", strength of the L2 penalty on the weights, as
        in MLPClassifier (``alpha / (2 n) ||w||²`` added to the loss of a
        batch of ``n`` samples).  With "adamw", the decoupled decay
        coefficient (0.01 to 0.1 is usual).  Biases and BatchNormalization's
        scale and shift are never penalised or decayed.

    batch_size : int or "auto", default="auto"
        Largest size of the minibatches; "auto" is ``min(200, n_samples)``.
        Each epoch is split into ``ceil(n_samples / batch_size)`` batches of
        equal sizes (within one sample), so that no batch is a small
        remainder (whose statistics would skew BatchNormalization).

    learning_rate : str or schedule, default="constant"
        Learning-rate schedule, applied at every step for every solver:
        MLPClassifier's "constant", "invscaling" (``learning_rate_init /
        (t + 1) ** power_t`` after ``t`` samples) and "adaptive" (divide by 5
        instead of stopping when ``n_iter_no_change`` epochs stall), or a
        specification from :mod:`sklearn_cnn.schedules`: ``CosineDecay``,
        ``LinearDecay`` (both with warm-up; they run over ``max_iter``
        epochs) and ``ReduceOnPlateau``; "cosine", "linear" and "plateau"
        stand for them with their defaults.  Their fields are parameters too
        (``learning_rate__warmup_epochs``).

    learning_rate_init : float, default=0.001
        The initial learning rate.

    power_t : float, default=0.5
        Exponent of the "invscaling" schedule.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).

    shuffle : bool, default=True
        Whether to shuffle the samples in each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the shuffling, dropout and the
        validation split.  An int gives bitwise reproducible models,
        whatever the number of threads.

    tol : float, default=1e-4
        Improvement of the loss (or validation score) below which an epoch
        counts as no improvement.

    verbose : int, default=0
        0 is silent; 1 prints one line per epoch with the loss, the
        validation score and loss when used, the seconds taken and samples
        per second; 2 adds progress within each epoch (a live bar on a
        terminal, a line per tenth of the epoch otherwise).

    warm_start : bool, default=False
        Continue from the weights of the previous fit (same architecture).

    momentum : float, default=0.9
        Momentum of ``solver="sgd"``.

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with ``solver="sgd"``.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop when
        the score on it stops improving: accuracy for CNNClassifier (subset
        accuracy for multilabel targets; the split is stratified for
        multiclass ones), R² for CNNRegressor.  The best weights are restored.

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

    image_shape : tuple of int or None, default=None
        How X is read.  With 2-D layers (images): each row of a 2-D ``X`` is
        ``(height, width)`` or ``(channels, height, width)`` (channels first,
        C order); None reads a perfect-square number of features as a square
        one-channel image and anything else as a 1-D signal (height 1); 3-D
        ``X`` ``(n_samples, height, width)`` and 4-D ``X`` ``(n_samples,
        channels, height, width)`` carry their own shape, and a 4-D X that
        looks channels-last (``(n, 28, 28, 3)``) is refused unless
        ``image_shape`` confirms the channels-first reading.  With 1-D layers
        (``Conv1D``, ...: series): a 2-D ``X`` holds univariate series (or
        rows of ``(length,)`` / ``(channels, length)``) and a 3-D ``X`` is
        ``(n_samples, channels, length)``, aeon's layout; a series is never
        read as an image.

    augment : tuple of augmentations or None, default=None
        Data augmentation of every training batch (never of the
        early-stopping split, predict or transform), from
        :mod:`sklearn_cnn.augmentation`: ``RandomTranslation``,
        ``RandomFlip`` (images only), ``RandomScaling``, ``Jitter``.  Drawn
        from ``random_state``; the result does not depend on the number of
        threads.  Fields are parameters too (``augment__0__max_shift``).

    test_time_augmentation : bool, default=False
        Predict from the mean of the network's outputs for each image and
        its mirror image (left-right).  Images only.

    weight_init : {"auto", "glorot", "pytorch"}, default="auto"
        How convolutions and dense layers draw their starting weights, all
        uniform.  "auto": He (``±sqrt(6 / fan_in)``) for ReLU-like
        activations and Glorot (``±sqrt(6 / (fan_in + fan_out))``) for the
        others, zero biases.  "glorot": Glorot for every layer, as
        MLPClassifier.  "pytorch": ``±1 / sqrt(fan_in)`` for weights and
        biases, PyTorch's default; its smaller weights take larger relative
        steps early on, which measurably speeds up training networks with
        BatchNormalization (the user guide's recipe: see there).
"""

ATTRIBUTES = """\
    loss_ : float
        Training loss of the last epoch, L2 penalty included.
    best_loss_ : float or None
        Lowest training loss seen; None when ``early_stopping=True``.
    loss_curve_ : list of float
        Training loss of each epoch.
    validation_scores_ : list of float or None
        Validation score of each epoch when ``early_stopping=True``.
    validation_loss_curve_ : list of float or None
        Validation loss of each epoch when ``early_stopping=True``.
    best_validation_score_ : float or None
        Best validation score when ``early_stopping=True``.
    t_ : int
        Number of training samples seen by the solver.
    n_iter_ : int
        Number of epochs run.
    parameters_ : dict of str to ndarray
        Every trained array, named ``"{layer}.{array}"`` after where its
        layer is declared: ``"conv_layers.0.weights"``,
        ``"conv_layers.1.layers.0.bias"`` (inside a ``Sequential``),
        ``"hidden_layers.0.weights"``, ``"output.weights"``.  Convolution
        weights are ``(kernel height, kernel width, in_channels, filters)``,
        dense weights ``(n_inputs, n_outputs)``.  ``summary()`` lists them.
    state_ : dict of str to ndarray
        Arrays the layers keep that are not trained by the solver: the
        running mean and variance of each ``BatchNormalization``
        (``"conv_layers.1.running_mean"``), used in predict and transform;
        named as in ``parameters_``, empty without such layers.
    coefs_ : list of ndarray
        MLPClassifier's view of ``parameters_``: the weights of each layer
        with weights and biases (convolutions and dense layers), in network
        order.  The same arrays, not copies.
    intercepts_ : list of ndarray
        The biases of the layers in ``coefs_``.
    image_shape_ : tuple of int
        ``(channels, height, width)`` of the inputs.
    n_features_in_ : int
        Number of features per sample.
    feature_names_in_ : ndarray of str
        Names of the features (one per feature), when X has string column
        names.
    n_layers_ : int
        Number of layers as declared: the input, each entry of
        ``conv_layers`` (a ``Sequential`` counts once; "auto" is 4), each
        hidden layer, and the output layer.  Internal fusion and the
        ``dropout`` parameter do not change it.
    n_outputs_ : int
        Number of outputs of the network.
"""

NOTES = """\
    Threads follow scikit-learn's practice: the kernels use OpenMP with as
    many threads as ``threadpoolctl`` / ``OMP_NUM_THREADS`` allow, and the
    results do not depend on that number.
"""


def compose(template):
    """Fill ``%(parameters)s``, ``%(attributes)s`` and ``%(notes)s``."""
    return template % {"parameters": PARAMETERS.rstrip("\n"),
                       "attributes": ATTRIBUTES.rstrip("\n"),
                       "notes": NOTES.rstrip("\n")}
