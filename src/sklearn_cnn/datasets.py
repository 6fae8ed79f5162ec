"""Dataset loaders that never download.

Fashion-MNIST is read from local IDX files (gzip-compressed or not), by
default where Debian's package puts them::

    apt-get install -y dataset-fashion-mnist   # -> /usr/share/datasets/fashion-mnist/

Set ``SKLEARN_CNN_FASHION_MNIST`` or pass ``data_home`` to read them elsewhere.

Time series come in the UCR/UEA archive's ``.ts`` files (:func:`load_ts`,
:func:`load_ucr`): download the archive yourself, or use the few datasets
that the ``aeon`` package ships.
"""

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._ts_format import parse_ts, stack_series

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


def load_ts(path, *, return_X_y=False, pad_unequal=False, dtype=np.float64):
    """Read a UCR/UEA ``.ts`` file into ``(n_samples, channels, length)``.

    Parameters
    ----------
    path : str or path-like
        The ``.ts`` file.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    pad_unequal : bool, default=False
        Series of different lengths raise a ValueError unless this is True;
        then they are padded with zeros at the end.
    dtype : dtype, default=np.float64
        dtype of the data.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``data`` (n_samples, channels, length), the layout
        :class:`~sklearn_cnn.CNNClassifier` takes with 1-D layers; ``target``
        (class labels as strings, or floats for a ``@targetLabel`` regression
        file; None without labels); ``lengths`` (each series' true length);
        ``target_names`` (the ``@classLabel`` values, if given); ``header``
        (the ``@`` lines, keys lower-cased); ``DESCR`` (the ``#`` comments).
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sklearn_cnn.datasets import load_ucr
    >>> X, y = load_ucr("GunPoint", return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (50, 1, 150)
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    series, labels, header = parse_ts(lines, source=str(path))
    if not series:
        raise ValueError(f"{path} holds no series after @data.")
    X, lengths = stack_series(series, pad_unequal, str(path))
    target = None
    if labels is not None:
        regression = header.get("targetlabel", "false").split()[0] == "true"
        target = np.array(labels, dtype=np.float64 if regression else object)
        if not regression:
            target = target.astype(str)
    X = X.astype(dtype)
    if return_X_y:
        return X, target
    class_labels = header.get("classlabel", "false").split()
    return Bunch(data=X, target=target, lengths=lengths,
                 target_names=class_labels[1:] if class_labels[0] == "true" else None,
                 header=header,
                 DESCR="".join(line[1:] for line in lines if line.startswith("#")))


def ucr_dir(data_home=None):
    """Where :func:`load_ucr` looks: ``data_home``, else
    ``$SKLEARN_CNN_UCR``, else the data folder of an installed ``aeon``
    (found without importing it), else None."""
    if data_home is not None:
        return Path(data_home)
    if os.environ.get("SKLEARN_CNN_UCR"):
        return Path(os.environ["SKLEARN_CNN_UCR"])
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def load_ucr(name, split="train", *, data_home=None, return_X_y=False,
             pad_unequal=False, dtype=np.float64):
    """Load ``<name>/<name>_TRAIN.ts`` (or ``_TEST``) of the UCR/UEA archive.

    Nothing is downloaded: the files come from ``data_home``, from
    ``$SKLEARN_CNN_UCR``, or from the datasets that the ``aeon`` package ships
    (GunPoint, ItalyPowerDemand, BasicMotions, JapaneseVowels, ...).

    Parameters
    ----------
    name : str
        The dataset's name, e.g. "GunPoint".
    split : {"train", "test"}, default="train"
        The archive's default split.
    data_home : str or path-like, default=None
        Folder holding ``<name>/<name>_TRAIN.ts``; see above for None.
    return_X_y, pad_unequal, dtype
        As for :func:`load_ts`.

    Returns
    -------
    data : Bunch or tuple
        As :func:`load_ts` returns.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    directory = ucr_dir(data_home)
    filename = f"{name}_{split.upper()}.ts"
    candidates = [] if directory is None else [directory / name / filename,
                                               directory / filename]
    for path in candidates:
        if path.is_file():
            return load_ts(path, return_X_y=return_X_y, pad_unequal=pad_unequal,
                           dtype=dtype)
    looked = ", ".join(str(c) for c in candidates) or "nowhere (no data_home, no " \
        "$SKLEARN_CNN_UCR, no aeon installed)"
    raise FileNotFoundError(
        f"{filename} not found; looked in {looked}. Download the UCR/UEA archive and "
        "pass data_home= (or set SKLEARN_CNN_UCR), or pip install aeon, which ships "
        "a few of its datasets. Nothing is downloaded.")
