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
    """Return an idle network for ``key``, or None if there is none."""
    with _lock:
        idle = _pools.get(estimator, {}).get(key)
        return idle.pop() if idle else None


def release(estimator, key, network):
    """Give a network back for later calls with the same key."""
    with _lock:
        by_key = _pools.get(estimator)
        if by_key is None:
            by_key = _pools[estimator] = {}
        idle = by_key.get(key)
        if idle is None:
            # Keys of older parameter arrays are dead weight: drop them.  Only
            # a new key can bring new arrays (all others share their arrays),
            # so a call that returns a network to its list skips the scan.
            for other in [k for k in by_key if k[0] != key[0]]:
                del by_key[other]
            idle = by_key[key] = []
        if len(idle) < _MAX_IDLE:
            idle.append(network)
