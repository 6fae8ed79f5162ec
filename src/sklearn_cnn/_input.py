"""Input geometry: from what the user passes to NHWC batches for the kernels.

The layers decide whether X holds images or series (``spatial_dims`` of the
specs, 2 or 1): a series is never read as an image because its length
happens to be a square, nor an image as a series.

Series (networks of 1-D layers)
-------------------------------
* 2-D ``(n_samples, length)``: univariate series (``image_shape`` may give
  ``(length,)`` or ``(channels, length)`` for flattened multivariate rows).
* 3-D ``(n_samples, channels, length)``: multivariate series, aeon's and
  sktime's layout.  One that looks like ``(n, length, channels)`` (at most
  4 along the last axis, more along the second) is refused with the
  transpose to use, unless ``image_shape`` confirms the reading.

Each series runs as a map of height 1: ``(channels, 1, length)``.

Images (2-D layers, or no spatial layer)
----------------------------------------
* 2-D ``(n_samples, n_features)``: each row is an image flattened in
  C order from ``image_shape``, which is ``(height, width)`` or
  ``(channels, height, width)`` (channels first, as PyTorch).  With
  ``image_shape=None``, a perfect-square number of features is read as a
  square one-channel image, anything else as a 1-D signal of height 1.
* 3-D ``(n_samples, height, width)``: one-channel images.
* 4-D ``(n_samples, channels, height, width)``: channels first.  An array
  that looks channels-last instead (at most 4 along the last axis, more
  along the second: ``(n, 28, 28, 3)``) is refused with the transpose to
  use, unless ``image_shape`` names its shape, confirming the reading.

Internally the estimator keeps a 2-D view ``(n_samples, n_features)`` and
turns each batch into NHWC.  With one channel that is a free reshape.
"""

import math

import numpy as np

# A 4-D X with at most this many values along its last axis and more along
# its second looks channels-last (RGB, RGBA): it is refused, not misread.
_MAX_CHANNELS_LAST = 4


def split_image_array(X, spatial_dims=2):
    """Return ``(X_2d, (C, H, W) or None)`` for a 3-D/4-D array, else ``(X, None)``."""
    ndim = getattr(X, "ndim", None)
    if spatial_dims == 1 and ndim is not None and ndim > 2:
        if ndim != 3:
            raise ValueError(
                f"X has {ndim} dimensions, but a network of 1-D layers (Conv1D, ...) "
                "takes series: 2-D (n_samples, length) or 3-D (n_samples, channels, "
                "length).")
        n, channels, length = X.shape
        return X.reshape(n, channels * length), (channels, 1, length)
    if ndim == 3:
        n, height, width = X.shape
        return X.reshape(n, height * width), (1, height, width)
    if ndim == 4:
        n, channels, height, width = X.shape
        return X.reshape(n, channels * height * width), (channels, height, width)
    if ndim is not None and ndim > 4:
        raise ValueError(
            f"X has {ndim} dimensions; expected 2-D (n_samples, n_features), 3-D "
            "(n_samples, height, width) or 4-D (n_samples, channels, height, width)."
        )
    return X, None


def resolve_image_shape(image_shape, n_features, array_shape=None, spatial_dims=2):
    """Return the ``(channels, height, width)`` each sample is read as.

    Raises a ValueError naming ``image_shape`` when it does not match the
    number of features.
    """
    if spatial_dims == 1:
        return _resolve_series_shape(image_shape, n_features, array_shape)
    if array_shape is not None:
        if image_shape is not None and _as_chw(image_shape) != array_shape:
            raise ValueError(
                f"image_shape={image_shape!r} does not match the shape of the "
                f"images in X, {array_shape} (channels, height, width). Pass "
                "image_shape=None or reshape X."
            )
        channels, height, width = array_shape
        if image_shape is None and width <= _MAX_CHANNELS_LAST < channels:
            raise ValueError(
                f"X has shape (n, {channels}, {height}, {width}): 4-D X is read "
                f"channels first, as {channels} channels of {height}x{width}, but "
                f"it looks channels-last ({channels}x{height} images of {width} "
                "channels). Pass X.transpose(0, 3, 1, 2), or confirm the "
                f"channels-first reading with image_shape={array_shape}."
            )
        return array_shape
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side == n_features:
            return (1, side, side)
        return (1, 1, n_features)
    chw = _as_chw(image_shape)
    if math.prod(chw) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {math.prod(chw)} values per sample "
            f"but X has {n_features} features. Give image_shape as (height, width) "
            "or (channels, height, width) with a product equal to n_features."
        )
    return chw


def _resolve_series_shape(image_shape, n_features, array_shape):
    given = None if image_shape is None else _series_chw(image_shape)
    if array_shape is not None:
        channels, _, length = array_shape
        if given is not None and given != array_shape:
            raise ValueError(
                f"image_shape={image_shape!r} does not match the series in X: "
                f"{channels} channels of length {length}. Pass image_shape=None or "
                "reshape X.")
        if given is None and length <= _MAX_CHANNELS_LAST < channels:
            raise ValueError(
                f"X has shape (n, {channels}, {length}): 3-D X is read as (n_samples, "
                f"channels, length), {channels} channels of length {length}, but it "
                f"looks like (n_samples, length, channels). Pass X.transpose(0, 2, 1), "
                f"or confirm the reading with image_shape=({channels}, {length}).")
        return array_shape
    if given is None:
        return (1, 1, n_features)
    if math.prod(given) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {math.prod(given)} values per series but "
            f"X has {n_features} features. For series give (length,) or (channels, "
            "length).")
    return given


def _series_chw(image_shape):
    shape = tuple(int(s) for s in image_shape)
    channels, length = shape if len(shape) == 2 else (1, shape[0])
    return (channels, 1, length)


def _as_chw(image_shape):
    shape = tuple(int(s) for s in image_shape)
    return (1, *shape) if len(shape) == 2 else shape


def to_nhwc(X_rows, chw):
    """Turn rows of flattened CHW images into a C-contiguous NHWC array."""
    channels, height, width = chw
    n = X_rows.shape[0]
    if channels == 1:
        return np.ascontiguousarray(X_rows).reshape(n, height, width, 1)
    return np.ascontiguousarray(
        X_rows.reshape(n, channels, height, width).transpose(0, 2, 3, 1))
