"""Dense, activation, loss and optimizer kernels against NumPy references."""

import numpy as np
import pytest

from sklearn_cnn._kernels import _activations, _dense, _loss, _optim
from sklearn_cnn.layers import Dense
from sklearn_cnn.layers._base import ACTIVATION_CODES

import _reference as ref
from _layer_check import build, check_layer
from _reference import tolerance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# The forward kernel's blocks: one row by GEMV, in parts of at most 2048
# features by tiles of 128 outputs (130 outputs: two tiles; 4100 features:
# three parts), 2 rows and 33 outputs (two tiles of 32), 70 rows and 33
# (one), 300 rows and 70 (two blocks of rows by two tiles).
@pytest.mark.parametrize("n_samples, n_inputs, n_outputs", [(1, 3, 2), (37, 300, 5),
                                                              (70, 129, 33), (1, 40, 130),
                                                              (1, 4100, 130),
                                                              (2, 40, 33), (300, 20, 70)])
@pytest.mark.parametrize("activation", list(ACTIVATION_CODES))
def test_dense_matches_reference(n_samples, n_inputs, n_outputs, activation, dtype, rng,
                                 n_threads):
    layer = build(Dense(n_outputs, activation), (n_inputs,))
    weights = rng.standard_normal((n_inputs, n_outputs)).astype(dtype) / 10
    bias = rng.standard_normal(n_outputs).astype(dtype)
    layer.bind({"weights": weights, "bias": bias}, {})
    layer.allocate(n_samples, dtype, n_threads, training=True, needs_input_grad=True)
    x = rng.standard_normal((n_samples, n_inputs)).astype(dtype)
    grad_output = rng.standard_normal((n_samples, n_outputs)).astype(dtype)
    out = layer.forward(x, n_threads).copy()
    grad_input = layer.backward(grad_output.copy(), n_threads)
    np.testing.assert_allclose(out, ref.dense_forward(x, weights, bias, activation),
                               **tolerance(dtype))
    exp_gx, exp_gw, exp_gb = ref.dense_backward(x, weights, out, grad_output, activation)
    np.testing.assert_allclose(grad_input, exp_gx, **tolerance(dtype))
    np.testing.assert_allclose(layer.grad_weights, exp_gw, **tolerance(dtype))
    np.testing.assert_allclose(layer.grad_bias, exp_gb, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_row_forward_is_the_same_at_any_thread_count(dtype, rng):
    """One row's parts of features and tiles of outputs come from the shape,
    and their sums are added in part order: bitwise the same at 1-3 threads."""
    n_inputs, n_outputs = 4100, 130
    weights = rng.standard_normal((n_inputs, n_outputs)).astype(dtype) / 50
    bias = rng.standard_normal(n_outputs).astype(dtype)
    x = rng.standard_normal((1, n_inputs)).astype(dtype)
    partials = np.empty((_dense.one_row_parts(n_inputs), n_outputs), dtype)
    assert partials.shape[0] == 3
    results = []
    for n_threads in (1, 2, 3):
        out = np.empty((1, n_outputs), dtype)
        _dense.dense_forward(x, weights, bias, out, partials, ACTIVATION_CODES["relu"],
                             n_threads)
        results.append(out)
    assert all(np.array_equal(results[0], other) for other in results[1:])
    np.testing.assert_allclose(results[0], ref.dense_forward(x, weights, bias, "relu"),
                               **tolerance(dtype))


def test_one_row_forward_refuses_too_small_partials(rng):
    weights = np.ones((4100, 3))
    out = np.empty((1, 3))
    with pytest.raises(ValueError, match=r"partials must be \(one_row_parts\(F\), O\)"):
        _dense.dense_forward(np.ones((1, 4100)), weights, np.zeros(3), out,
                             np.empty((2, 3)), ACTIVATION_CODES["identity"], 1)


@pytest.fixture
def own_vector_products():
    """_dense with our one-row kernel on (skips where it may not run: no
    AVX-512, or OpenBLAS without its AVX-512 kernels, whose bits it gives);
    as the dense layers set it afterwards."""
    from sklearn_cnn._blas_kernels import has_small_matrix_kernels
    from sklearn_cnn._kernels import avx2_enabled

    if not has_small_matrix_kernels() or not _dense.set_own_vector_products(True):
        pytest.skip("our one-row kernel does not run here")
    yield _dense
    _dense.set_own_vector_products(avx2_enabled())


@pytest.mark.parametrize("n_outputs", [16, 48, 64, 80, 128, 144, 256, 272, 10, 130])
def test_own_vector_product_gives_openblas_bits(own_vector_products, n_outputs, rng):
    """One row's products by our kernel against OpenBLAS's SGEMV, bit for bit:
    every remainder of its groups of 8 rows, 1-3 parts of at most 2048
    features, tiles of 128, 64 and 16 outputs; 10 and 130 outputs and up to
    48 features stay with OpenBLAS."""
    for n_inputs in (5, 48, 49, 50, 51, 53, 55, 60, 63, 64, 1001, 3136, 4100):
        weights = (rng.standard_normal((n_inputs, n_outputs)) / 30).astype(np.float32)
        bias = rng.standard_normal(n_outputs).astype(np.float32)
        x = rng.standard_normal((1, n_inputs)).astype(np.float32)
        partials = np.full((_dense.one_row_parts(n_inputs), n_outputs), np.nan,
                           np.float32)
        results = []
        for own, n_threads in [(True, 1), (True, 2), (False, 1)]:
            _dense.set_own_vector_products(own)
            out = np.full((1, n_outputs), np.nan, np.float32)
            _dense.dense_forward(x, weights, bias, out, partials,
                                 ACTIVATION_CODES["identity"], n_threads)
            results.append(out)
        for other in results[1:]:
            np.testing.assert_array_equal(results[0], other)
        np.testing.assert_allclose(results[0], ref.dense_forward(x, weights, bias,
                                                                 "identity"),
                                   **tolerance(np.float32))


def test_own_vector_product_predicts_openblas_bits(own_vector_products, rng):
    """End to end: one sample through a network whose hidden dense layer (a
    7x7 map of 15 channels -> 64, every remainder of the groups of 8 inputs)
    takes our kernel, on 1 and 2 threads, against OpenBLAS's SGEMV."""
    from threadpoolctl import threadpool_limits

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.layers import Conv2D

    X = rng.standard_normal((30, 49)).astype(np.float32)
    y = np.arange(30) % 3
    model = CNNClassifier(image_shape=(1, 7, 7), conv_layers=(Conv2D(15, 3),),
                          hidden_layer_sizes=(64,), max_iter=2, random_state=0)
    with pytest.warns(Warning):  # two epochs: not converged
        model.fit(X, y)
    results = {}
    for own in (True, False):
        own_vector_products.set_own_vector_products(own)
        for n_threads in (1, 2):
            with threadpool_limits(n_threads, user_api="openmp"):
                results[own, n_threads] = np.concatenate(
                    [model.predict_proba(X[i:i + 1]) for i in range(5)])
    for other in list(results.values())[1:]:
        np.testing.assert_array_equal(results[True, 1], other)
    np.testing.assert_allclose(results[True, 1], model.predict_proba(X[:5]), rtol=1e-5)


@pytest.mark.parametrize("shape", [(6,), (3, 2, 2)], ids=["flat", "feature-map"])
def test_dense_passes_the_shared_layer_checks(shape):
    def oracle(x, params):
        return ref.dense_forward(x.reshape(len(x), -1), params["conv_layers.0.weights"],
                                 params["conv_layers.0.bias"], "tanh")

    check_layer(Dense(4, activation="tanh"), shape, oracle=oracle)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ACTIVATION_CODES))
def test_activation_kernels(name, dtype, rng, n_threads):
    z = (rng.standard_normal(20000) * 3).astype(dtype)
    forward, derivative = ref.ACTIVATIONS[name]
    y = z.copy()
    _activations.activation_forward(y, ACTIVATION_CODES[name], n_threads)
    np.testing.assert_allclose(y, forward(z.astype(np.float64)), **tolerance(dtype))
    grad = np.ones_like(z)
    _activations.activation_backward(y, grad, ACTIVATION_CODES[name], n_threads)
    np.testing.assert_allclose(grad, derivative(y.astype(np.float64)), **tolerance(dtype))
    # With a copy (residual blocks): the same values, twice.
    start = (rng.standard_normal(20000) * 3).astype(dtype)
    grad, copy = start.copy(), np.empty_like(start)
    _activations.activation_backward_copy(y, grad, copy, ACTIVATION_CODES[name],
                                          n_threads)
    np.testing.assert_allclose(grad, start * derivative(y.astype(np.float64)),
                               **tolerance(dtype))
    np.testing.assert_array_equal(copy, grad)
    # The residual blocks' end: activation(a + b), also in place.
    a, b = z[:10001], (rng.standard_normal(10001) * 3).astype(dtype)
    out = np.empty_like(a)
    _activations.add_and_activate(a, b, out, ACTIVATION_CODES[name], n_threads)
    expected = forward(a.astype(np.float64) + b)
    np.testing.assert_allclose(out, expected, **tolerance(dtype))
    _activations.add_and_activate(a, b, b, ACTIVATION_CODES[name], n_threads)
    np.testing.assert_array_equal(b, out)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_matches_reference(dtype, smoothing, rng, n_threads):
    logits = (rng.standard_normal((50, 7)) * 5).astype(dtype)
    labels = rng.randint(0, 7, 50).astype(np.int32)
    weights = rng.uniform(0, 1, 50)
    weights /= weights.sum()
    expected_loss, expected_grad = ref.softmax_cross_entropy(logits, labels, weights,
                                                             smoothing)
    grad = logits.copy()
    losses = np.empty(50)
    _loss.softmax_cross_entropy(grad, labels, weights, losses, smoothing, n_threads)
    np.testing.assert_allclose(losses.sum(), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, **tolerance(dtype))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_softmax_cross_entropy_gradient_by_finite_differences(smoothing, rng):
    logits = rng.standard_normal((4, 5))
    labels = np.array([0, 4, 2, 2], dtype=np.int32)
    weights = np.full(4, 0.25)
    grad = logits.copy()
    losses = np.empty(4)
    _loss.softmax_cross_entropy(grad, labels, weights, losses, smoothing, 1)

    def loss(z):
        out = np.empty(4)
        _loss.softmax_cross_entropy(z.copy(), labels, weights, out, smoothing, 1)
        return out.sum()

    numeric = np.empty_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric[i] = (loss(up) - loss(down)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_softmax_stable_for_huge_float32_logits(scale):
    logits = np.array([[scale, 0.0, -scale], [0.0, scale, 1.0]], dtype=np.float32)
    labels = np.array([2, 0], dtype=np.int32)
    grad = logits.copy()
    losses = np.empty(2)
    _loss.softmax_cross_entropy(grad, labels, np.full(2, 0.5), losses, 0.1, 1)
    assert np.isfinite(losses).all() and np.isfinite(grad).all()
    probabilities = logits.copy()
    _loss.softmax(probabilities, 1)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("l2, shrink", [(0.1, 0.0), (0.0, 0.003)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_matches_formula(dtype, l2, shrink, rng, n_threads):
    """Adam with an L2 penalty, and AdamW (decoupled decay: the parameter
    shrinks outside the moments)."""
    param = rng.standard_normal(10000).astype(dtype)
    grad = rng.standard_normal(10000).astype(dtype)
    m = rng.standard_normal(10000).astype(dtype)
    v = rng.uniform(0, 1, 10000).astype(dtype)
    g = grad.astype(np.float64) + l2 * param
    exp_m = 0.9 * m + 0.1 * g
    exp_v = 0.999 * v + 0.001 * g * g
    exp_param = param * (1 - shrink) - 0.01 * exp_m / (np.sqrt(exp_v) + 1e-8)
    _optim.adam_update(param, grad, m, v, 0.01, 0.9, 0.999, 1e-8, l2, shrink,
                       n_threads)
    for got, expected in ((m, exp_m), (v, exp_v), (param, exp_param)):
        np.testing.assert_allclose(got, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_is_the_float64_formula_bit_for_bit(dtype, rng, n_threads):
    """The vectorised update (_adam_step.h) computes each value with the same
    float64 operations in the same order as the formula: the same bits
    (an odd length leaves a vector remainder and a partial block)."""
    n = 10001
    param = rng.standard_normal(n).astype(dtype)
    grad = rng.standard_normal(n).astype(dtype)
    m = rng.standard_normal(n).astype(dtype)
    v = rng.uniform(0, 1, n).astype(dtype)
    step, beta_1, beta_2, epsilon, l2, shrink = 0.01, 0.9, 0.999, 1e-8, 0.1, 0.003
    p = param.astype(np.float64)
    g = grad + l2 * p
    exp_m = beta_1 * m.astype(np.float64) + (1.0 - beta_1) * g
    exp_v = beta_2 * v.astype(np.float64) + (1.0 - beta_2) * g * g
    exp_param = (p - shrink * p) - step * exp_m / (np.sqrt(exp_v) + epsilon)
    _optim.adam_update(param, grad, m, v, step, beta_1, beta_2, epsilon, l2, shrink,
                       n_threads)
    for got, expected in ((m, exp_m), (v, exp_v), (param, exp_param)):
        np.testing.assert_array_equal(got, expected.astype(dtype))
    with pytest.raises(ValueError, match="same size"):
        _optim.adam_update(param, grad[:-1], m, v, step, beta_1, beta_2, epsilon, l2,
                           shrink, n_threads)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_update_matches_mlp_formula(nesterov, rng, n_threads):
    param = rng.standard_normal(9000)
    grad = rng.standard_normal(9000)
    velocity = rng.standard_normal(9000)
    g = grad + 0.01 * param
    exp_velocity = 0.9 * velocity - 0.1 * g
    exp_param = param + (0.9 * exp_velocity - 0.1 * g if nesterov else exp_velocity)
    _optim.sgd_update(param, grad, velocity, 0.1, 0.9, nesterov, 0.01, n_threads)
    np.testing.assert_allclose(velocity, exp_velocity, rtol=1e-12)
    np.testing.assert_allclose(param, exp_param, rtol=1e-12)
