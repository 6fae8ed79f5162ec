"""Displays in scikit-learn's style: ``from_estimator`` builds, ``plot`` draws.

Like :class:`sklearn.metrics.RocCurveDisplay`, each display keeps what it
drew (``ax_``, ``figure_`` and the artists) so that a figure can be adjusted
afterwards, and ``plot(ax=...)`` draws into an existing figure.
matplotlib is imported only when something is drawn.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._input import to_nhwc
from ._threads import effective_n_threads, single_threaded_blas
from .layers._conv import ConvLayer
from .layers._pool import GlobalAvgPoolLayer

__all__ = ["TrainingHistoryDisplay", "FeatureMapsDisplay", "class_activation_maps"]


def _axes(ax, **figure_kwargs):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(**figure_kwargs)
    return ax


class TrainingHistoryDisplay:
    """Training loss per epoch, with the validation loss and score when kept.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training loss of each epoch.
    validation_loss_curve : array-like of shape (n_epochs,) or None
        Validation loss of each epoch (``early_stopping=True``).
    validation_scores : array-like of shape (n_epochs,) or None
        Validation score of each epoch.
    score_name : str, default="validation score"
        Label of the score axis.
    name : str or None
        Name of the model, for the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes of the losses.
    ax_score_ : matplotlib Axes or None
        The twin axes (right) of the validation score.
    figure_ : matplotlib Figure
        The figure.
    lines_ : dict of str to Line2D
        ``"loss"``, and ``"validation_loss"`` and ``"validation_score"`` when
        drawn.
    best_line_ : Line2D or None
        Vertical line at the epoch with the best validation score (the
        weights an early-stopped model keeps).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.inspection import TrainingHistoryDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNClassifier(max_iter=3, early_stopping=True, random_state=0)
    >>> display = TrainingHistoryDisplay.from_estimator(clf.fit(X / 16, y))
    >>> sorted(display.lines_)
    ['loss', 'validation_loss', 'validation_score']
    """

    def __init__(self, loss_curve, validation_loss_curve=None, validation_scores=None,
                 *, score_name="validation score", name=None):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.score_name = score_name
        self.name = name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None):
        """Draw the history of a fitted CNNClassifier or CNNRegressor.

        Parameters
        ----------
        estimator : CNNClassifier or CNNRegressor
            A fitted model.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        name : str, default=None
            Title; None uses the estimator's class name.

        Returns
        -------
        display : TrainingHistoryDisplay
            The drawn display.
        """
        check_is_fitted(estimator)
        score_name = ("validation R²" if estimator.out_activation_ == "identity"
                      else "validation accuracy")
        display = cls(estimator.loss_curve_, estimator.validation_loss_curve_,
                      estimator.validation_scores_, score_name=score_name,
                      name=name or type(estimator).__name__)
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : TrainingHistoryDisplay
            Itself, with ``ax_``, ``figure_`` and the artists set.
        """
        from matplotlib.ticker import MaxNLocator

        ax = _axes(ax, figsize=(6, 4))
        epochs = np.arange(1, len(self.loss_curve) + 1)
        self.lines_ = {}
        (self.lines_["loss"],) = ax.plot(epochs, self.loss_curve, marker="o",
                                         label="training loss")
        if self.validation_loss_curve is not None:
            (self.lines_["validation_loss"],) = ax.plot(
                epochs, self.validation_loss_curve, marker="o", label="validation loss")
        ax.set(xlabel="epoch", ylabel="loss", title=self.name or "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.ax_score_ = self.best_line_ = None
        handles = list(self.lines_.values())
        if self.validation_scores is not None and len(self.validation_scores):
            self.ax_score_ = ax.twinx()
            (self.lines_["validation_score"],) = self.ax_score_.plot(
                epochs, self.validation_scores, marker="s", color="C2",
                label=self.score_name)
            self.ax_score_.set_ylabel(self.score_name)
            best = int(np.argmax(self.validation_scores)) + 1
            self.best_line_ = ax.axvline(best, color="grey", linestyle="--",
                                         label=f"best: epoch {best}")
            handles += [self.lines_["validation_score"], self.best_line_]
        ax.legend(handles=handles, loc="upper center")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class FeatureMapsDisplay:
    """A convolution's filters, and its feature maps for one input.

    Parameters
    ----------
    filters : ndarray of shape (kernel_height, kernel_width, n_filters)
        The filters for one input channel.
    feature_maps : ndarray of shape (height, width, n_filters)
        The layer's output (after its activation) for the image.
    image : ndarray of shape (height, width)
        The input image (its first channel).
    layer_name : str
        For the title.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes of shape (3, n_shown)
        Filters in the first row, the image in the second, maps in the third.
    figure_ : matplotlib Figure
        The figure.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.inspection import FeatureMapsDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNClassifier(max_iter=2, random_state=0).fit(X / 16, y)
    >>> display = FeatureMapsDisplay.from_estimator(clf, X[:1] / 16)
    >>> display.feature_maps.shape
    (8, 8, 32)
    """

    def __init__(self, filters, feature_maps, image, *, layer_name=""):
        self.filters = filters
        self.feature_maps = feature_maps
        self.image = image
        self.layer_name = layer_name

    @classmethod
    def from_estimator(cls, estimator, X, *, layer=0, input_channel=0, max_filters=16,
                       figure=None):
        """Compute the maps of one image through a fitted model, and draw.

        Parameters
        ----------
        estimator : CNNClassifier or CNNRegressor
            A fitted model.
        X : array-like of one sample
            The image, in any layout the estimator accepts.
        layer : int, default=0
            Index in ``conv_layers`` of a ``Conv2D`` (a top-level entry).
        input_channel : int, default=0
            Which input channel of the filters to show.
        max_filters : int, default=16
            At most this many filters and maps are drawn.
        figure : matplotlib Figure, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : FeatureMapsDisplay
            The drawn display.
        """
        check_is_fitted(estimator)
        network = estimator._build_network(estimator.n_outputs_,
                                           estimator.image_shape_, fuse=False)
        path = f"conv_layers.{layer}"
        index = next((i for i, built in enumerate(network.layers)
                      if built.path == path), None)
        if index is None or not isinstance(network.layers[index], ConvLayer):
            raise ValueError(
                f"layer={layer!r} must be the index of a Conv2D entry of "
                f"conv_layers; the model's layers are "
                f"{[built.path for built in network.layers]}.")
        X, _ = estimator._validate_input(X, reset=False)
        if X.shape[0] != 1:
            raise ValueError(f"X must hold one sample, got {X.shape[0]}.")
        weights = estimator.parameters_[f"{path}.weights"]
        if not 0 <= input_channel < weights.shape[2]:
            raise ValueError(
                f"input_channel must be in [0, {weights.shape[2]}), got {input_channel}.")
        network.bind({k: v.astype(X.dtype) for k, v in estimator.parameters_.items()},
                     {k: v.astype(X.dtype) for k, v in estimator.state_.items()})
        network.allocate(1, X.dtype, 1, training=False)
        image = to_nhwc(X, estimator.image_shape_)
        with single_threaded_blas():
            maps = network.forward(image, 1, n_layers=index + 1)[0].copy()
        display = cls(weights[:, :, input_channel, :], maps, image[0, :, :, input_channel],
                      layer_name=f"{network.layers[index].name} at {path}")
        return display.plot(max_filters=max_filters, figure=figure)

    def plot(self, *, max_filters=16, figure=None):
        """Draw filters (red positive, blue negative), image and maps.

        Parameters
        ----------
        max_filters : int, default=16
            At most this many filters and maps are drawn.
        figure : matplotlib Figure, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : FeatureMapsDisplay
            Itself, with ``axes_`` and ``figure_`` set.
        """
        import matplotlib.pyplot as plt

        shown = min(max_filters, self.filters.shape[-1])
        if figure is None:
            figure = plt.figure(figsize=(max(shown, 4), 3.6))
        axes = figure.subplots(3, shown, squeeze=False)
        limit = float(np.abs(self.filters).max()) or 1.0
        for k in range(shown):
            axes[0, k].imshow(self.filters[:, :, k], cmap="RdBu_r", vmin=-limit,
                              vmax=limit)
            axes[2, k].imshow(self.feature_maps[:, :, k], cmap="viridis")
            if k:
                axes[1, k].axis("off")
        axes[1, 0].imshow(self.image, cmap="gray_r")
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, 0].set_ylabel("filters")
        axes[1, 0].set_ylabel("input")
        axes[2, 0].set_ylabel("maps")
        figure.suptitle(f"{self.layer_name}: filters and feature maps")
        self.axes_ = axes
        self.figure_ = figure
        return self


def class_activation_maps(estimator, X):
    """Where the network looks: class activation maps (Zhou et al., 2016).

    For a network that ends in global average pooling followed directly by
    the output layer (``hidden_layer_sizes=()``, as the FCN and ResNets of
    :mod:`sklearn_cnn.architectures`), the output for class ``k`` is the
    average over positions of ``sum_c w[c, k] * A[position, c]``, where ``A``
    are the feature maps that the pooling averages.  That sum, before the
    average, is the class activation map: how much each step of a series (or
    pixel of an image) pushes towards each class.

    Parameters
    ----------
    estimator : CNNClassifier or CNNRegressor
        A fitted model whose ``conv_layers`` end with global average pooling
        and whose ``hidden_layer_sizes`` is empty.
    X : array-like
        Samples, in any layout the estimator accepts.

    Returns
    -------
    maps : ndarray of shape (n_samples, length, n_outputs) for series, \
            (n_samples, height, width, n_outputs) for images
        One map per output (class), in the order of ``classes_``; their mean
        over positions plus the output bias is the network's output (before
        softmax).
    """
    check_is_fitted(estimator)
    network = estimator._build_network(estimator.n_outputs_, estimator.image_shape_)
    pools = [i for i, layer in enumerate(network.layers)
             if isinstance(layer, GlobalAvgPoolLayer)]
    if not pools or pools[-1] != len(network.layers) - 2:
        raise ValueError(
            "class_activation_maps needs a network whose conv_layers end with global "
            "average pooling (GlobalAvgPool1D or GlobalAvgPool2D) and whose "
            "hidden_layer_sizes is empty, so that the output layer weighs the "
            "pooled maps directly.")
    X, _ = estimator._validate_input(X, reset=False)
    maps_shape = network.layers[pools[-1]].input_shape
    maps = estimator._forward(X, effective_n_threads(), pools[-1]).reshape(
        len(X), *maps_shape)
    cams = maps @ estimator.parameters_["output.weights"].astype(maps.dtype)
    return cams[:, 0] if estimator._spatial_dims() == 1 else cams
