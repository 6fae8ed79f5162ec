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


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_snapshot_compares_in_blocks_across_arrays(n_threads, rng):
    """Arrays laid end to end over several 64 KiB blocks (compared by the
    threads in parallel): a change in any array, at either end of a block or
    of an array, is seen at any thread count; empty arrays in between too."""
    arrays = [rng.rand(30000), np.empty(0), rng.rand(9000).astype(np.float32),
              rng.rand(3), np.empty(0), rng.rand(40000)]  # about 600 KB: 9 blocks
    snapshot = ArraysSnapshot(arrays)
    assert snapshot.unchanged(n_threads)
    offsets = np.cumsum([0] + [a.nbytes for a in arrays])
    block = 65536
    positions = sorted({0, int(offsets[-1]) - 1, block - 1, block, 2 * block + 7,
                        8 * block - 1, 8 * block,
                        *(int(o) for o in offsets[1:-1]), *(int(o) - 1 for o in offsets[1:-1])})
    for position in positions:
        index = int(np.searchsorted(offsets, position, side="right")) - 1
        data = arrays[index].view(np.uint8).reshape(-1)
        if data.size == 0:
            continue
        byte = position - int(offsets[index])
        data[byte] ^= 1
        assert not snapshot.unchanged(n_threads), position
        data[byte] ^= 1
        assert snapshot.unchanged(n_threads)
