"""Prediction networks kept ready between calls.

Building the runtime layers and their buffers costs about 50 us, a fifth of a
single-image prediction, so fitted models keep built networks for reuse.

* Thread safe: a network (its buffers) serves one call at a time.  Each call
  takes an idle network from the pool or builds one, and gives it back after.
* Nothing is stored on the estimator, whose ``__dict__`` must not change in
  predict (a scikit-learn check) and whose pickle must stay small: the pool
  lives in a module-level ``WeakKeyDictionary`` that forgets dead estimators.
* An estimator's networks are all bound to the parameter arrays it holds, the
  very same objects: a new fit (or an assignment) makes new arrays, hence
  new networks, while in-place updates (partial_fit) are seen through the
  binding.  The pool holds the arrays too, so none of them can be freed and
  another take its place while its networks are kept.
"""

import threading
import weakref

from ._kernels._snapshot import holds_values

_pools = weakref.WeakKeyDictionary()
_lock = threading.Lock()

# Idle networks kept per estimator, dtype and thread count; more concurrent
# calls just build.
_MAX_IDLE = 4


class _EstimatorPool(dict):
    """``{(dtype, n_threads): idle networks}`` of one estimator, bound to
    ``arrays``: its parameter arrays, then its state arrays."""

    __slots__ = ("arrays",)

    def __init__(self, arrays):
        super().__init__()
        self.arrays = arrays


def acquire(estimator, parameters, state, dtype, n_threads):
    """``(network, slot)``: an idle network bound to the arrays of the dicts
    ``parameters`` then ``state`` for ``dtype`` and ``n_threads`` (None if
    there is none), and the list to give it back to with ``release``.

    The arrays are compared by identity, in compiled code: the key of their
    ids that this replaces cost 3.5 us of a 190 us resnet2d prediction.
    """
    with _lock:
        pool = _pools.get(estimator)
        if pool is None or not holds_values(pool.arrays, parameters, state):
            # Networks bound to older arrays are dead weight: drop them.
            pool = _pools[estimator] = _EstimatorPool(
                (*parameters.values(), *state.values()))
        slot = pool.get((dtype, n_threads))
        if slot is None:
            slot = pool[dtype, n_threads] = []
        return (slot.pop() if slot else None), slot


def release(slot, network):
    """Give a network back to the slot that ``acquire`` returned (a slot
    dropped meanwhile, by a call with new arrays, lets it go)."""
    with _lock:
        if len(slot) < _MAX_IDLE:
            slot.append(network)
