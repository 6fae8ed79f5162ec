"""The checks every layer gets, in a few lines of its own test.

``check_layer(spec, input_shape, oracle=...)`` builds the runtime layer
through the registry and checks

1. its gradients (input and every parameter) against central finite
   differences in float64, on ``loss = sum(output * R)``;
2. its forward output against a NumPy oracle, in float32 and float64;
3. float32 against float64;
4. forward and backward bitwise identical on 1 and 2 threads;
5. that the spec pickles, compares equal after the round trip, and shows
   its type in its repr.

``numeric_gradient`` is the one finite-difference loop of the test suite.
"""

import pickle

import numpy as np

from sklearn_cnn.layers._base import BuildContext, build_layer

TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5),
             np.float64: dict(rtol=1e-10, atol=1e-11)}


def float32_tolerance(reference, magnitude=0.0):
    """TOLERANCE[float32], with atol also scaled by the largest reference
    value (or ``magnitude``, when larger): a float32 sum's rounding is
    relative to its largest terms, not to the result (Winograd F(4x4, 3x3)
    in training cancels terms about 10x larger than im2col's, and lands
    within 1e-5 of the largest value)."""
    largest = max(float(np.abs(reference).max(initial=0)), magnitude)
    return dict(rtol=TOLERANCE[np.float32]["rtol"],
                atol=max(TOLERANCE[np.float32]["atol"], 2e-5 * largest))


def build(spec, input_shape, activation="tanh", fuse=False, auto=False, rng=None,
          path="conv_layers.0"):
    """The runtime layer for ``spec`` (unfused unless asked)."""
    context = BuildContext(activation, auto=auto, rng=rng, fuse=fuse)
    return build_layer(spec, input_shape, context, path)


def walk(layer):
    yield layer
    for child in layer.children():
        yield from walk(child)


def random_arrays(layer, rng, dtype):
    """Standard-normal parameters and state for every layer inside ``layer``
    (keyed ``"path.name"``)."""
    params, state = {}, {}
    for inner in walk(layer):
        for name, info in inner.parameters().items():
            params[f"{inner.path}.{name}"] = rng.standard_normal(info.shape).astype(dtype)
        for name, info in inner.state().items():
            state[f"{inner.path}.{name}"] = info.init(rng, dtype, info.shape)
    return params, state


def bind(layer, params, state):
    for inner in walk(layer):
        own = {n: params[f"{inner.path}.{n}"] for n in inner.parameters()}
        own_state = {n: state[f"{inner.path}.{n}"] for n in inner.state()}
        if own or own_state:
            inner.bind(own, own_state)


def grads_by_name(layer):
    return {f"{inner.path}.{name}": grad.copy() for inner in walk(layer)
            for name, grad in inner.grads().items()}


def forward_backward(layer, x, grad_output, n_threads, seed=0):
    """(output, input gradient, {param name: gradient}) for one training step.

    Layers that draw random numbers (dropout) get the same seed every call."""
    for inner in walk(layer):
        if hasattr(inner, "rng"):
            inner.rng = np.random.RandomState(seed)
    layer.allocate(x.shape[0], x.dtype, n_threads, training=True, needs_input_grad=True)
    out = layer.forward(x, n_threads).copy()
    grad_input = layer.backward(grad_output.copy().reshape(out.shape), n_threads)
    return out, grad_input.copy(), grads_by_name(layer)


def numeric_gradient(loss, array, eps=1e-6):
    """Central differences of ``loss()`` with respect to ``array`` (in place)."""
    numeric = np.empty_like(array, dtype=np.float64)
    flat, flat_numeric = array.reshape(-1), numeric.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        up = loss()
        flat[i] = saved - eps
        down = loss()
        flat[i] = saved
        flat_numeric[i] = (up - down) / (2 * eps)
    return numeric


def assert_gradient_close(numeric, analytic, rtol=1e-6, atol=1e-8):
    """Relative to the largest entry, since rounding (~1e-10) swamps tiny
    entries; ``atol`` covers gradients that are zero (a bias before a
    BatchNormalization), where the differences are pure rounding."""
    error = np.abs(numeric - analytic).max()
    assert error < rtol * np.abs(numeric).max() + atol, (error, np.abs(numeric).max())


def check_layer(spec, input_shape, *, oracle=None, activation="tanh", fuse=False,
                n_samples=3, seed=0, scale=1.0):
    """Run every shared check on ``spec`` receiving ``input_shape``.

    ``oracle(x, params) -> output`` computes the forward pass in plain NumPy
    (float64) from the input and the ``{"path.name": array}`` parameters.
    Returns the layer built in float64, for extra checks.
    """
    rng = np.random.RandomState(seed)
    layer = build(spec, input_shape, activation=activation, fuse=fuse,
                  rng=np.random.RandomState(seed))
    params, state = random_arrays(layer, rng, np.float64)
    params = {k: v * scale for k, v in params.items()}
    x = rng.standard_normal((n_samples, *input_shape))
    projection = rng.standard_normal((n_samples, *layer.output_shape))
    bind(layer, params, state)
    out, grad_input, grads = forward_backward(layer, x, projection, 1, seed)

    # 1. Finite differences in float64.
    def loss():
        value = forward_backward(layer, x, projection, 1, seed)[0]
        return float((value * projection).sum())

    assert_gradient_close(numeric_gradient(loss, x), grad_input.reshape(x.shape))
    for name, array in params.items():
        assert_gradient_close(numeric_gradient(loss, array), grads[name])

    # 2-3. The oracle, and float32 against float64.
    if oracle is not None:
        np.testing.assert_allclose(out, oracle(x, params), **TOLERANCE[np.float64])
    layer32 = build(spec, input_shape, activation=activation, fuse=fuse,
                    rng=np.random.RandomState(seed))
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    bind(layer32, params32, {k: v.astype(np.float32) for k, v in state.items()})
    x32, projection32 = x.astype(np.float32), projection.astype(np.float32)
    out32, grad_input32, grads32 = forward_backward(layer32, x32, projection32, 1, seed)
    assert out32.dtype == np.float32
    # Behind a saturating activation the sums' largest terms are the
    # pre-activations (27 where tanh gives 1, on one case): scale by them.
    linear = build(spec, input_shape, activation="identity", fuse=fuse,
                   rng=np.random.RandomState(seed))
    bind(linear, params, state)
    magnitude = float(np.abs(forward_backward(linear, x, projection, 1, seed)[0]).max())
    np.testing.assert_allclose(out32, out, **float32_tolerance(out, magnitude))
    np.testing.assert_allclose(grad_input32, grad_input, **float32_tolerance(grad_input))
    for name in grads:
        np.testing.assert_allclose(grads32[name], grads[name], rtol=1e-3, atol=1e-3)

    # 4. Bitwise the same on 1 and 2 threads.
    two = forward_backward(layer32, x32, projection32, 2, seed)
    np.testing.assert_array_equal(two[0], out32)
    np.testing.assert_array_equal(two[1], grad_input32)
    for name in grads32:
        np.testing.assert_array_equal(two[2][name], grads32[name])

    # 5. The spec is plain data.
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec)
    assert repr(spec).startswith(type(spec).__name__ + "(")
    return layer
