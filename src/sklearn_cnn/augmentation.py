"""Data augmentation of the training batches, declared as plain data.

The ``augment`` parameter of the estimators takes a tuple of these
specifications, e.g. ``augment=(RandomTranslation(2), RandomFlip())``.  Each
training batch is augmented afresh in one Cython pass (a few percent of an
epoch); the early-stopping split, ``predict``, ``predict_proba`` and
``transform`` never are.  The random draws come from ``random_state``, so an
int seed gives the same model whatever the number of threads.  Fields are
grid-searchable: ``{"augment__0__max_shift": [1, 2, 3]}``.

=======================  ======  ======  ==================================
specification            images  series  what it does to each sample
=======================  ======  ======  ==================================
``RandomTranslation``    yes     yes     shift by up to ``max_shift`` pixels
                                         (steps, for series: along time)
``RandomFlip``           yes     no      mirror left-right, half the time
``RandomScaling``        yes     yes     multiply by a factor in
                                         ``[low, high]``
``Jitter``               yes     yes     add Gaussian noise of std ``sigma``
=======================  ======  ======  ==================================
"""

from dataclasses import dataclass

import numpy as np

from ._kernels import _augment
from ._spec import Spec, check_int, check_real

__all__ = ["Augmentation", "Jitter", "RandomFlip", "RandomScaling",
           "RandomTranslation"]


class Augmentation(Spec):
    """Base of the augmentation specifications."""

    for_series = True

    def check_input(self, chw, spatial_dims):
        """Raise a clear error if this cannot apply to inputs of this shape."""


@dataclass(frozen=True, repr=False)
class RandomTranslation(Augmentation):
    """Shift each image by a random whole number of pixels (pad and crop).

    Each sample gets its own shifts, drawn uniformly from ``-max_shift`` to
    ``max_shift`` along the height and the width (along time only, for
    series); the shape is kept.

    Parameters
    ----------
    max_shift : int, default=2
        Largest shift in pixels (time steps); must be smaller than the
        image's height and width (the series' length).
    padding : {"zero", "reflect"}, default="zero"
        What fills the pixels shifted in: zeros, or the image mirrored at
        its edge (without repeating the edge pixel).
    """

    max_shift: int = 2
    padding: str = "zero"

    def __post_init__(self):
        check_int(self.max_shift, "RandomTranslation max_shift", 1)
        if self.padding not in ("zero", "reflect"):
            raise ValueError(
                f"RandomTranslation padding must be 'zero' or 'reflect', got "
                f"{self.padding!r}.")

    def check_input(self, chw, spatial_dims):
        _, height, width = chw
        sizes = (width,) if spatial_dims == 1 else (height, width)
        if self.max_shift >= min(sizes):
            what = (f"series of length {width}" if spatial_dims == 1
                    else f"{height}x{width} images")
            raise ValueError(
                f"{self!r} cannot shift {what}: max_shift must be smaller than "
                f"{min(sizes)}.")


@dataclass(frozen=True, repr=False)
class RandomFlip(Augmentation):
    """Mirror each image left-right with probability one half.

    For images whose classes do not depend on left and right (most
    photographs, Fashion-MNIST; not digits or text).  Not for series: time
    reversal changes most series' meaning.
    """

    for_series = False

    def check_input(self, chw, spatial_dims):
        if chw[2] < 2:
            raise ValueError(f"{self!r} needs images at least 2 pixels wide, got "
                             f"width {chw[2]}.")


@dataclass(frozen=True, repr=False)
class RandomScaling(Augmentation):
    """Multiply each sample by a random factor (amplitude scaling).

    Parameters
    ----------
    low, high : float, default=0.9, 1.1
        The factor is drawn uniformly from ``[low, high]``; ``0 < low <= high``.
    """

    low: float = 0.9
    high: float = 1.1

    def __post_init__(self):
        check_real(self.low, "RandomScaling low", low=0, low_closed=False)
        check_real(self.high, "RandomScaling high", low=self.low)


@dataclass(frozen=True, repr=False)
class Jitter(Augmentation):
    """Add Gaussian noise to every value.

    Parameters
    ----------
    sigma : float, default=0.03
        Standard deviation of the noise, in the units of X (scale X first).
    """

    sigma: float = 0.03

    def __post_init__(self):
        check_real(self.sigma, "Jitter sigma", low=0, low_closed=False)


class Augmenter:
    """Applies the estimator's augmentations to training batches (runtime).

    Built once per fit, after :func:`check_augment`.
    """

    def __init__(self, specs, chw, spatial_dims):
        by_kind = {type(spec): spec for spec in specs}
        self.translation = by_kind.get(RandomTranslation)
        self.flip = RandomFlip in by_kind
        self.scaling = by_kind.get(RandomScaling)
        self.jitter = by_kind.get(Jitter)
        self.spatial_dims = spatial_dims
        self._out = None

    def __call__(self, x, rng, n_threads):
        """An augmented copy of the NHWC batch ``x`` (a reused buffer)."""
        n = x.shape[0]
        if self._out is None or self._out.shape[0] < n or self._out.dtype != x.dtype:
            self._out = np.empty_like(x)
        out = self._out[:n]
        zeros = np.zeros(n, dtype=np.int32)
        shift_y = shift_x = zeros
        if self.translation is not None:
            m = self.translation.max_shift
            shift_x = rng.randint(-m, m + 1, size=n).astype(np.int32)
            if self.spatial_dims == 2:
                shift_y = rng.randint(-m, m + 1, size=n).astype(np.int32)
        flip = (rng.random_sample(n) < 0.5 if self.flip
                else np.zeros(n, dtype=bool)).view(np.uint8)
        scale = (rng.uniform(self.scaling.low, self.scaling.high, size=n)
                 if self.scaling is not None else np.ones(n))
        if self.jitter is not None:
            noise = rng.standard_normal(x.shape).astype(x.dtype, copy=False)
            sigma = self.jitter.sigma
        else:
            noise, sigma = x, 0.0
        _augment.augment_batch(
            x, out, shift_y, shift_x, flip, scale, noise, sigma,
            self.jitter is not None,
            self.translation is not None and self.translation.padding == "reflect",
            n_threads)
        return out


def check_augment(augment, chw, spatial_dims):
    """Validate the ``augment`` parameter for inputs of shape ``chw``;
    returns an :class:`Augmenter`, or None for no augmentation."""
    if augment is None:
        return None
    if isinstance(augment, Augmentation):
        augment = (augment,)
    if not isinstance(augment, (tuple, list)) or not all(
            isinstance(spec, Augmentation) for spec in augment):
        raise TypeError(
            "augment must be None or a tuple of augmentations from "
            "sklearn_cnn.augmentation (RandomTranslation, RandomFlip, "
            f"RandomScaling, Jitter), got {augment!r}.")
    kinds = [type(spec).__name__ for spec in augment]
    repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if repeated:
        raise ValueError(f"augment lists {repeated} more than once; give each kind "
                         "at most once.")
    for spec in augment:
        if spatial_dims == 1 and not spec.for_series:
            raise ValueError(
                f"{spec!r} is for images, but the network's layers are 1-D (series): "
                "remove it from augment.")
        spec.check_input(chw, spatial_dims)
    return Augmenter(augment, chw, spatial_dims) if augment else None
