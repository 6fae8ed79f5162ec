"""Prediction networks kept ready between calls.

Building the runtime layers and their buffers costs about 50 us, a fifth of a
single-image prediction, so fitted models keep built networks for reuse.

* Thread safe: a network (its buffers) serves one call at a time.  Each call
  takes an idle network from the pool or builds one, and gives it back after.
* Nothing is stored on the estimator, whose ``__dict__`` must not change in
  predict (a scikit-learn check) and whose pickle must stay small: the pool
  lives in a module-level ``WeakKeyDictionary`` that forgets dead estimators.
* A network is keyed on the identity of the parameter arrays it is bound to
  (and dtype and threads): a new fit makes new arrays, hence new
  networks, while in-place updates (partial_fit) are seen through the binding.
  The pool holds the arrays, so an id cannot be reused while it is cached.
"""

import threading
import weakref

_pools = weakref.WeakKeyDictionary()
_lock = threading.Lock()

# Idle networks kept per estimator and key; more concurrent calls just build.
_MAX_IDLE = 4


def acquire(estimator, key):
    """``(network, slot)``: an idle network for ``key`` (None if there is
    none) and the list to give it back to with ``release``.

    The slot is looked up once per call, here: a second lookup of the
    estimator and of a key of ids of every parameter array (56 for resnet2d)
    cost about 1.5 us of a single-image prediction.
    """
    with _lock:
        by_key = _pools.get(estimator)
        if by_key is None:
            by_key = _pools[estimator] = {}
        slot = by_key.get(key)
        if slot is None:
            # Keys of older parameter arrays are dead weight: drop them.
            # Only a new key can bring new arrays (all others share their
            # arrays), so a call that finds its key skips the scan.
            for other in [k for k in by_key if k[0] != key[0]]:
                del by_key[other]
            slot = by_key[key] = []
        return (slot.pop() if slot else None), slot


def release(slot, network):
    """Give a network back to the slot that ``acquire`` returned (a slot
    dropped meanwhile, by a call with new arrays, lets it go)."""
    with _lock:
        if len(slot) < _MAX_IDLE:
            slot.append(network)
