"""Dataset loaders that never download.

Fashion-MNIST is read from local IDX files (gzip-compressed or not), by
default where Debian's package puts them::

    apt-get install -y dataset-fashion-mnist   # -> /usr/share/datasets/fashion-mnist/

Set ``SKLEARN_CNN_FASHION_MNIST`` or pass ``data_home`` to read them elsewhere.
"""

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes -> NumPy dtypes (big-endian on disk).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def fashion_mnist_dir(data_home=None):
    """Directory searched for the Fashion-MNIST files."""
    if data_home is not None:
        return Path(data_home)
    return Path(os.environ.get("SKLEARN_CNN_FASHION_MNIST", DEFAULT_FASHION_MNIST_DIR))


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        path = directory / name
        if path.is_file():
            return path
    return None


def fashion_mnist_available(data_home=None):
    """Return True when all four Fashion-MNIST files are found."""
    directory = fashion_mnist_dir(data_home)
    return all(_find(directory, stem) is not None
               for pair in _FILES.values() for stem in pair)


def read_idx(path):
    """Read one IDX file (optionally gzip-compressed) into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: {len(data)} bytes, expected {expected}.")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def load_fashion_mnist(subset="train", data_home=None, return_X_y=False, scale=True,
                       dtype=np.float32):
    """Load Fashion-MNIST from local IDX files; never downloads.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        60,000 training or 10,000 test images.
    data_home : str or path-like, default=None
        Directory holding the files; None uses ``$SKLEARN_CNN_FASHION_MNIST``
        or ``/usr/share/datasets/fashion-mnist``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch, as scikit-learn's
        loaders do.
    scale : bool, default=True
        Divide pixel values by 255 (to [0, 1]).
    dtype : dtype, default=np.float32
        dtype of X.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        data : ndarray of shape (n_samples, 784)
            Images flattened in row-major order (28x28, one channel).
        target : ndarray of shape (n_samples,)
            Labels 0-9.
        images : ndarray of shape (n_samples, 28, 28)
            The same images, unflattened (a view of ``data``).
        target_names : list of str
            Names of the ten classes, in label order.
        DESCR : str
            Description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays above.
    """
    if subset not in _FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    directory = fashion_mnist_dir(data_home)
    images_stem, labels_stem = _FILES[subset]
    images_path, labels_path = _find(directory, images_stem), _find(directory, labels_stem)
    if images_path is None or labels_path is None:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found in {directory}. Install them with "
            "'apt-get install -y dataset-fashion-mnist' (Debian/Ubuntu), or put "
            f"{images_stem}.gz and {labels_stem}.gz there and pass data_home= or set "
            "SKLEARN_CNN_FASHION_MNIST. Nothing is downloaded.")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Unexpected Fashion-MNIST shapes: images {images.shape}, labels "
            f"{labels.shape}.")
    X = images.reshape(images.shape[0], -1).astype(dtype)
    if scale:
        X /= 255
    y = labels.astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, images=X.reshape(-1, 28, 28),
                 target_names=list(FASHION_MNIST_CLASSES),
                 DESCR=_DESCR.format(subset=subset, n_samples=len(y),
                                     directory=directory))


_DESCR = """\
Fashion-MNIST ({subset} set)
============================

Zalando's article images: {n_samples} grayscale 28x28 images in 10 classes
(T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag,
Ankle boot), read from the IDX files in {directory}. Pixel values are
scaled to [0, 1] unless scale=False. Xiao, Rasul and Vollgraf (2017),
https://github.com/zalandoresearch/fashion-mnist (MIT licence).
"""
