"""Property-based fuzzing: random architectures, shapes and inputs.

Each case either fits and predicts finite probabilities that sum to one, or
raises one of our clear errors.  CI runs a bounded number of examples
(profile "ci"); ``HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzzing.py``
runs many more.  Run it on the bounds-checked build too (README).
"""

import warnings

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sklearn_cnn import AvgPool2D, CNNClassifier, Conv2D, GlobalAvgPool2D, MaxPool2D

import _reference as ref
from _layer_check import build

pairs = st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4)))
paddings = st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3),
                     st.tuples(st.integers(0, 3), st.integers(0, 3)))
conv_specs = st.builds(Conv2D, filters=st.integers(1, 4), kernel_size=pairs,
                       stride=pairs, padding=paddings,
                       activation=st.sampled_from([None, "relu", "tanh", "identity",
                                                   "logistic", "leaky_relu"]))
layer_specs = st.one_of(
    conv_specs,
    st.builds(MaxPool2D, pool_size=pairs, stride=st.one_of(st.none(), pairs)),
    st.builds(AvgPool2D, pool_size=pairs, stride=st.one_of(st.none(), pairs)),
    st.just(GlobalAvgPool2D()),
    st.integers(1, 4),
    st.sampled_from(["maxpool", "avgpool"]),
)

# Our clear errors name what to change; anything else is a bug.
CLEAR_ERROR_WORDS = ("conv_layers", "image_shape", "kernel", "window")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(1, 10), width=st.integers(1, 10), channels=st.integers(1, 3),
    layers=st.lists(layer_specs, max_size=4),
    hidden=st.lists(st.integers(1, 6), max_size=2),
    n_samples=st.integers(1, 10), n_classes=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    scale=st.sampled_from([1e-3, 1.0, 100.0]),
    solver=st.sampled_from(["adam", "sgd"]),
    seed=st.integers(0, 2**16),
)
def test_random_networks_fit_and_predict_or_explain(height, width, channels, layers,
                                                    hidden, n_samples, n_classes, dtype,
                                                    scale, solver, seed):
    rng = np.random.RandomState(seed)
    X = (rng.standard_normal((n_samples, channels * height * width)) * scale)
    X = X.astype(dtype)
    y = rng.randint(0, n_classes, n_samples)
    clf = CNNClassifier(conv_layers=tuple(layers), hidden_layer_sizes=tuple(hidden),
                        image_shape=(channels, height, width), max_iter=2,
                        solver=solver, batch_size=4, random_state=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
    except ValueError as error:
        assert any(word in str(error) for word in CLEAR_ERROR_WORDS), error
        event("rejected with a clear error")
        return
    event("fitted and predicted")
    proba = clf.predict_proba(X)
    assert proba.shape == (n_samples, len(np.unique(y)))
    assert proba.dtype == dtype
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-4)
    assert set(clf.predict(X)) <= set(y)


@settings(deadline=None)
@given(
    height=st.integers(1, 9), width=st.integers(1, 9), channels=st.integers(1, 3),
    spec=conv_specs, n_samples=st.integers(1, 5), chunk=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_random_convolutions_match_the_reference(height, width, channels, spec,
                                                 n_samples, chunk, seed):
    # Linear layer (identity activation), so the reference is exact.
    spec = Conv2D(spec.filters, spec.kernel_size, spec.stride, spec.padding)
    try:
        layer = build(spec, (height, width, channels), activation="identity")
    except ValueError:
        return  # the kernel does not fit: rejected before any kernel runs
    layer.im2col_chunk = chunk
    layer.winograd_chunks = dict.fromkeys(layer.winograd_chunks, chunk)
    rng = np.random.RandomState(seed)
    infos = layer.parameters()
    layer.bind({"weights": rng.standard_normal(infos["weights"].shape),
                "bias": rng.standard_normal(infos["bias"].shape)}, {})
    x = rng.standard_normal((n_samples, height, width, channels))
    grad_output = rng.standard_normal((n_samples, *layer.output_shape))
    layer.allocate(n_samples, np.float64, 2, training=True, needs_input_grad=True)
    out = layer.forward(x, 2).copy()
    grad_input = layer.backward(grad_output.copy(), 2)
    stride, pads = (layer.stride_h, layer.stride_w), (layer.pad_top, layer.pad_left)
    expected = ref.conv2d_forward(x, layer.weights, layer.bias, stride, pads,
                                  layer.output_shape[:2])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    exp_gx, exp_gw, exp_gb = ref.conv2d_backward(x, layer.weights, out, grad_output,
                                                 stride, pads)
    np.testing.assert_allclose(grad_input, exp_gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grad_weights, exp_gw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grad_bias, exp_gb, rtol=1e-10, atol=1e-10)
