"""Training on data larger than memory.

:func:`partial_fit_chunks` streams an array that lives on disk (a NumPy
memmap, an HDF5 or zarr dataset: anything indexable by an array of rows)
through ``partial_fit``, one chunk in memory at a time.  Each epoch draws a
new permutation of *all* rows and cuts it into chunks, so batches mix rows
from the whole data set, as in-memory training would; within a chunk the rows
are read in increasing order, which keeps disk access mostly sequential.
"""

import numpy as np
from sklearn.utils import check_random_state


def partial_fit_chunks(estimator, X, y, *, classes=None, epochs=1, chunk_size=10000,
                       sample_weight=None, random_state=None):
    """Fit ``estimator`` on ``X, y`` one chunk of rows at a time.

    Parameters
    ----------
    estimator : CNNClassifier or CNNRegressor
        Any estimator with ``partial_fit(X, y, sample_weight=...)`` (and
        ``classes=...`` for a classifier); it keeps its state between chunks
        (and between calls of this function).
    X : array-like of shape (n_samples, ...)
        Training images; typically ``np.load(path, mmap_mode="r")``.  Only
        ``chunk_size`` rows are read into memory at a time.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Labels or targets (small enough to hold in memory).
    classes : array-like, default=None
        Every class label, as a classifier's ``partial_fit`` needs on its
        first call; None for a regressor.
    epochs : int, default=1
        Passes over the whole data.
    chunk_size : int, default=10000
        Rows per ``partial_fit`` call; memory use grows with it.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.
    random_state : int, RandomState instance or None, default=None
        Seeds the order in which rows are visited.

    Returns
    -------
    estimator : object
        The fitted estimator.
    """
    n_samples = len(y)
    if len(X) != n_samples:
        raise ValueError(f"X has {len(X)} rows but y has {n_samples}: they must match.")
    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}.")
    if not (isinstance(epochs, (int, np.integer)) and epochs >= 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    y = np.asarray(y)
    weights = None if sample_weight is None else np.asarray(sample_weight)
    rng = check_random_state(random_state)
    n_chunks = max(1, -(-n_samples // chunk_size))
    for _ in range(epochs):
        order = rng.permutation(n_samples)
        for rows in np.array_split(order, n_chunks):
            rows = np.sort(rows)
            # A regressor's partial_fit takes no classes.
            extra = {} if classes is None else {"classes": classes}
            estimator.partial_fit(
                np.ascontiguousarray(X[rows]), y[rows],
                sample_weight=None if weights is None else weights[rows], **extra)
    return estimator
