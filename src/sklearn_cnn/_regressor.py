"""CNNRegressor: squared error, identity output, one or several targets."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_array

from . import _docstrings
from ._base import BaseCNN, _check_magnitude, check_target_length
from ._threads import effective_n_threads


class CNNRegressor(RegressorMixin, BaseCNN):
    __doc__ = _docstrings.compose("""Convolutional neural network regressor.

    Convolution and pooling layers, then fully connected hidden layers and
    an identity output layer, trained with SGD or Adam on the squared error.
    One target or several; the conventions of
    :class:`~sklearn.neural_network.MLPRegressor` (same parameter names,
    defaults and fitted attributes; ``score`` is R²).

    Parameters
    ----------
%(parameters)s

    Attributes
    ----------
%(attributes)s
        One per target.
    out_activation_ : str
        "identity".

    See Also
    --------
    CNNClassifier : The same network for classification.
    sklearn.neural_network.MLPRegressor : The fully connected sibling.

    Notes
    -----
    The loss is half the squared error summed over the targets and averaged
    over the samples, plus the L2 penalty: MLPRegressor's gradient, and its
    ``loss_`` for one target (MLPRegressor also divides its reported loss by
    the number of targets).  Scale the targets (e.g. with
    :class:`~sklearn.compose.TransformedTargetRegressor` and a
    ``StandardScaler``) when they are far from unit size.

%(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(200, 8, 8)
    >>> y = X[:, :4].mean(axis=(1, 2))
    >>> reg = CNNRegressor(max_iter=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """)

    def _encode_targets(self, y, X, sample_weight, *, reset, incremental, classes):
        if y is None:
            raise ValueError(
                "CNNRegressor requires y to be passed, but the target y is None.")
        y = check_array(y, ensure_2d=False, allow_nd=True, dtype="numeric",
                        input_name="y")
        if y.ndim > 2:
            raise ValueError(
                f"y must be 1-D (one target) or 2-D (n_samples, n_targets), got "
                f"shape {y.shape}.")
        check_target_length(y, X)
        _check_magnitude(y, "y", dtype=X.dtype)
        targets = np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=X.dtype)
        n_outputs = targets.shape[1]
        if not reset and self.n_outputs_ != n_outputs:
            raise ValueError(
                f"y has {n_outputs} targets but the model was fitted on "
                f"{self.n_outputs_}: keep the targets across partial_fit and "
                "warm_start calls, or fit afresh.")
        attributes = {"n_outputs_": n_outputs, "out_activation_": "identity"}
        return targets, sample_weight, attributes

    def _check_validation_targets(self, targets):
        constant = np.ptp(targets, axis=0) == 0
        if constant.any():
            raise ValueError(
                f"early_stopping=True scores R² on the validation split, but target "
                f"{int(np.argmax(constant))} is constant there, where R² is "
                "undefined. Use early_stopping=False (a constant target is "
                "learned as it is), or a larger validation_fraction.")

    def _validation_score(self, outputs, targets, sample_weight):
        return float(r2_score(targets.astype(np.float64), outputs.astype(np.float64),
                              sample_weight=sample_weight))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X, y, sample_weight
            As for ``fit``; y keeps the number of targets of the first call.

        Returns
        -------
        self : CNNRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict the targets.

        Parameters
        ----------
        X : array-like
            Images (see ``image_shape``).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predicted values, 1-D for one target (as MLPRegressor); float32
            for float32 X, else float64.
        """
        outputs = self._predict_outputs(X, effective_n_threads())
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R² of the predictions.

        Parameters
        ----------
        X, y, sample_weight
            Images, their true values, and optional weights of the samples.

        Returns
        -------
        score : float
            R² of ``predict(X)`` against ``y`` (averaged uniformly over the
            targets), as :func:`sklearn.metrics.r2_score` computes it.
        """
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
