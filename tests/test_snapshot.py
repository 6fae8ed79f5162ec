"""ArraysSnapshot: exact, cheap detection of arrays changed in place."""

import numpy as np
import pytest

from sklearn_cnn._kernels._snapshot import ArraysSnapshot


def test_snapshot_sees_any_changed_byte(rng):
    arrays = [rng.rand(3, 4).astype(np.float32), rng.rand(7), np.empty(0),
              np.arange(5, dtype=np.int32)]
    snapshot = ArraysSnapshot(arrays)
    assert snapshot.unchanged()
    for array in arrays:
        for index in range(array.size):
            flat = array.reshape(-1)
            old = flat[index].copy()
            flat[index] = old + 1
            assert not snapshot.unchanged()
            flat[index] = old
            assert snapshot.unchanged()
    arrays[1][-1] = -arrays[1][-1]
    assert not snapshot.unchanged()
    snapshot.take()
    assert snapshot.unchanged()


def test_snapshot_compares_bytes_not_values():
    """NaN equals itself byte for byte; -0.0 differs from 0.0: any change
    of bits, which might change a prediction, counts."""
    array = np.array([np.nan, 0.0])
    snapshot = ArraysSnapshot([array])
    assert snapshot.unchanged()
    array[1] = -0.0
    assert not snapshot.unchanged()


def test_snapshot_needs_contiguous_arrays(rng):
    with pytest.raises(ValueError, match="C-contiguous"):
        ArraysSnapshot([rng.rand(4, 4)[:, ::2]])
    assert ArraysSnapshot([]).unchanged()
