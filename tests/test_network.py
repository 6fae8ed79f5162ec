"""The network: whole-network gradients, geometry errors, fusion, naming."""

import numpy as np
import pytest

from sklearn_cnn._losses import SoftmaxCrossEntropy
from sklearn_cnn._network import Network
from sklearn_cnn.layers import (
    Activation,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    Sequential,
)
from sklearn_cnn.layers._base import BuildContext
from sklearn_cnn.layers._dropout import DropoutLayer

from _layer_check import assert_gradient_close, numeric_gradient


def make_network(specs, hidden, n_outputs, shape, activation="relu", fuse=True,
                 dropout=0.0, rng=None):
    context = BuildContext(activation, rng=rng, fuse=fuse)
    return Network(specs, hidden, n_outputs, shape, context, dropout=dropout)


def network_loss_and_grads(network, parameters, x, labels, weights):
    network.bind(parameters, {})
    network.allocate(x.shape[0], x.dtype, 2, training=True)
    logits = network.forward(x, 2)
    losses = np.empty(x.shape[0])
    SoftmaxCrossEntropy().loss_and_gradient(logits, labels, weights, losses, 2)
    network.backward(logits, 2)
    return losses.sum(), [g.copy() for g in network.grads()]


def check_network_gradient(network, parameters, x, labels, before_each=None):
    weights = np.full(len(labels), 1 / len(labels))

    def loss():
        if before_each:
            before_each()
        return network_loss_and_grads(network, parameters, x, labels, weights)[0]

    if before_each:
        before_each()
    _, grads = network_loss_and_grads(network, parameters, x, labels, weights)
    numeric = np.concatenate([numeric_gradient(loss, p).ravel()
                              for p in parameters.values()])
    analytic = np.concatenate([g.ravel() for g in grads])
    assert np.abs(numeric).max() > 1e-3
    assert_gradient_close(numeric, analytic)


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_whole_network_gradient_by_finite_differences(activation, rng):
    specs = (Conv2D(3, 3, 1, "same"), MaxPool2D(2), Conv2D(4, (2, 3), 2, 1),
             AvgPool2D((1, 2)), Conv2D(2, 1), GlobalAvgPool2D())
    network = make_network(specs, [5], 3, (7, 9, 2), activation)
    parameters, _ = network.init_parameters(rng, np.float64)
    for name in parameters:
        if name.endswith(".bias"):
            parameters[name] = rng.standard_normal(parameters[name].shape) * 0.1
    x = rng.standard_normal((4, 7, 9, 2))
    check_network_gradient(network, parameters, x, np.array([0, 2, 1, 2], np.int32))


def test_blocks_and_activation_layers_by_finite_differences(rng):
    specs = (Sequential((Conv2D(3, activation="identity"), Activation("tanh"),
                         MaxPool2D(2))),
             Conv2D(2, activation="identity"), Activation("logistic"),
             Dense(4, activation="tanh"), Dropout(0.0))
    network = make_network(specs, [], 3, (6, 5, 2))
    parameters, _ = network.init_parameters(rng, np.float64)
    x = rng.standard_normal((3, 6, 5, 2))
    check_network_gradient(network, parameters, x, np.array([0, 2, 1], np.int32))


def test_parameters_are_named_after_where_layers_are_declared(rng):
    specs = (Sequential((Conv2D(3), MaxPool2D())), AvgPool2D(), Conv2D(2))
    network = make_network(specs, [5, 4], 3, (8, 8, 1), dropout=0.2)
    assert list(network.parameter_infos()) == [
        "conv_layers.0.layers.0.weights", "conv_layers.0.layers.0.bias",
        "conv_layers.2.weights", "conv_layers.2.bias",
        "hidden_layers.0.weights", "hidden_layers.0.bias",
        "hidden_layers.1.weights", "hidden_layers.1.bias",
        "output.weights", "output.bias"]
    infos = network.parameter_infos()
    assert all(info.decay == name.endswith(".weights") for name, info in infos.items())
    assert network.feature_layer_count() == len(network.layers) - 2  # dropout


def test_shapes_are_described_in_errors():
    with pytest.raises(ValueError, match=r"conv_layers\[2\].*larger than the 1x1"):
        make_network((Conv2D(2), MaxPool2D(2), MaxPool2D(2)), [], 2, (2, 2, 1))
    with pytest.raises(ValueError, match=r"conv_layers\[0\].*5x5 kernel does not fit"):
        make_network((Conv2D(2, 5, padding="valid"),), [], 2, (4, 4, 1))
    with pytest.raises(ValueError, match=r"conv_layers\[1\].layers\[0\].*larger than"):
        make_network((Conv2D(2), Sequential((MaxPool2D(5),))), [], 2, (4, 4, 1))
    with pytest.raises(ValueError, match=r"conv_layers\[1\].*needs a feature map"):
        make_network((Dense(3), MaxPool2D()), [], 2, (4, 4, 1))


def test_float32_and_float64_start_from_the_same_weights():
    network = make_network((Conv2D(2),), [3], 2, (4, 4, 1))
    p32, _ = network.init_parameters(np.random.RandomState(1), np.float32)
    p64, _ = network.init_parameters(np.random.RandomState(1), np.float64)
    for name in p64:
        np.testing.assert_array_equal(p32[name], p64[name].astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("pool", [MaxPool2D(2), MaxPool2D(3, 2), MaxPool2D((1, 2))],
                         ids=["2", "3-stride2", "1x2"])
def test_fused_conv_maxpool_matches_separate_layers(pool, activation, dtype, rng):
    specs = (Conv2D(3, 3, 1, "same"), pool, Conv2D(4, 3, 2, "valid"), MaxPool2D(1))
    x = rng.standard_normal((5, 9, 11, 2)).astype(dtype)
    results = []
    for fuse in (True, False):
        network = make_network(specs, [4], 3, (9, 11, 2), activation, fuse=fuse)
        assert len(network.layers) == (4 if fuse else 6)
        parameters, _ = network.init_parameters(np.random.RandomState(0), dtype)
        for name in parameters:
            if name.endswith(".bias"):
                parameters[name] = np.full(parameters[name].shape, 0.05, dtype)
        results.append(network_loss_and_grads(
            network, parameters, x, np.array([0, 1, 2, 1, 0], np.int32),
            np.full(5, 0.2)))
    (loss_fused, grads_fused), (loss_plain, grads_plain) = results
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss_fused, loss_plain, rtol=rtol)
    for a, b in zip(grads_fused, grads_plain):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)


def test_dropout_gradient_by_finite_differences(rng):
    """With the mask held fixed (same random state each pass), the dropout
    network's gradient matches central differences."""
    network = make_network((Conv2D(2),), [6, 5], 3, (3, 3, 1), "tanh", dropout=0.4,
                           rng=np.random.RandomState(0))
    dropouts = [layer for layer in network.layers if isinstance(layer, DropoutLayer)]
    assert len(dropouts) == 2
    parameters, _ = network.init_parameters(rng, np.float64)
    x = rng.standard_normal((4, 3, 3, 1))

    def reseed():
        for layer in dropouts:
            layer.rng = np.random.RandomState(7)

    check_network_gradient(network, parameters, x, np.array([0, 2, 1, 2], np.int32),
                           before_each=reseed)
    assert (dropouts[0].mask == 0).any() and (dropouts[0].mask > 1).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("specs", [
    (Conv2D(8), MaxPool2D(2), Conv2D(16), MaxPool2D(2)),
    (Conv2D(4, 3, 2), MaxPool2D(3, 1), Conv2D(3, (1, 3), 1, (2, 0)), MaxPool2D((2, 1))),
    (Conv2D(5, 1, padding="valid"), MaxPool2D(3, 2)),
    (Conv2D(4, 3, dilation=2), MaxPool2D(2), Conv2D(3, 3, 2, dilation=(2, 1)), MaxPool2D(2)),
    (Conv2D(4), Conv2D(6, 3, 2), Conv2D(3, (2, 3), padding="valid", dilation=(2, 1)),
     Conv2D(2, 1, padding="valid")),
    # >= 8 channels, 3x3, stride 1: Winograd in batches, and on all threads
    # one image at a time for a few (then pooled in blocks of rows).
    (Conv2D(8), Conv2D(9), Conv2D(8, padding="valid"), Conv2D(3, padding=3)),
    (Conv2D(8), Conv2D(9, activation="tanh"), MaxPool2D(2), Conv2D(10), MaxPool2D(3, 2),
     Conv2D(8)),
    # Multiples of 16 filters: one block of rows per thread (blocks_per_thread,
    # with OpenBLAS's small-matrix kernels; at least two when pooled); 22
    # filters on 32 channels keep ROW_BLOCKS (those kernels' sums would
    # depend on the blocks' heights).
    (Conv2D(32), Conv2D(22), Conv2D(16), MaxPool2D(2), Conv2D(32, 3, 2), Conv2D(16)),
], ids=["lenet", "strided-overlapping", "pointwise", "dilated", "unpooled", "winograd",
        "winograd-pooled", "winograd-16-wide"])
def test_few_sample_prediction_paths_match_batch_paths(specs, dtype, rng):
    """Below ROW_SPLIT_MAX_SAMPLES, convolutions (fused with max-pool or not)
    split images into row blocks and dense layers split their outputs: the
    results must not change."""
    assert_few_sample_paths_match(specs, [70], (13, 11, 1), 9, dtype, rng, 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_series_split_along_time_match_batch_paths(dtype, rng, monkeypatch):
    """Maps of one row (series) split one sample's columns across threads:
    the results must not change."""
    # Blocks of a few columns, so that these short series split too.
    monkeypatch.setattr("sklearn_cnn.layers._conv.MIN_BLOCK_COLUMNS", 1)
    specs = (Conv1D(4, 5), Conv1D(6, 3, stride=2), Conv1D(3, 4, padding="valid",
                                                          dilation=2),
             Conv1D(5, 8), Conv1D(2, 1, padding="valid"))
    assert_few_sample_paths_match(specs, [9], (1, 37, 2), 5, dtype, rng, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_images_of_one_row_match_batch_paths(dtype, rng):
    """Images one row high split into blocks of columns, 3x3 convolutions
    with enough channels by Winograd in each block: the results must not
    change."""
    specs = (Conv2D(8), Conv2D(9), Conv2D(8, (1, 3), padding="valid"))
    assert_few_sample_paths_match(specs, [5], (1, 600, 2), 3, dtype, rng, 0.1)


def assert_few_sample_paths_match(specs, hidden, shape, n_samples, dtype, rng,
                                  bias_scale):
    """Each sample predicted alone (the few-sample paths, on 1-3 threads)
    matches the batch path, and two samples agree bit for bit on 1 and 3
    threads."""
    network = make_network(specs, hidden, 3, shape)
    parameters, _ = network.init_parameters(rng, dtype)
    for name in parameters:
        if name.endswith(".bias"):
            parameters[name] = (rng.standard_normal(parameters[name].shape)
                                .astype(dtype) * bias_scale)
    x = rng.standard_normal((n_samples, *shape)).astype(dtype)

    def predict(batch, n_threads):
        net = make_network(specs, hidden, 3, shape).bind(parameters, {})
        net.allocate(len(batch), dtype, n_threads, training=False)
        return net.forward(batch, n_threads).copy()

    batched = predict(x, 2)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for i in range(len(x)):
        for n_threads in (1, 2, 3):
            np.testing.assert_allclose(predict(x[i:i + 1], n_threads)[0], batched[i],
                                       rtol=rtol, atol=rtol)
    # Same results whatever the thread count, bit for bit.
    np.testing.assert_array_equal(predict(x[:2], 1), predict(x[:2], 3))


@pytest.mark.parametrize("n_samples", [1, 9])
def test_prediction_layers_share_one_scratch_buffer_and_results(n_samples, rng):
    """In prediction the layers take turns in one scratch buffer; the
    results are bitwise those of layers with buffers of their own, at 1-3
    threads."""
    from sklearn_cnn.architectures import resnet2d

    specs = (*resnet2d((8, 16))[:-1], Conv2D(16, 3, 2), MaxPool2D(2))
    network = make_network(specs, [], 3, (13, 11, 2))
    parameters, state = network.init_parameters(rng, np.float32)
    for name in state:
        state[name] = rng.uniform(0.5, 2, state[name].shape).astype(np.float32)
    x = rng.standard_normal((n_samples, 13, 11, 2)).astype(np.float32)
    for n_threads in (1, 2, 3):
        shared = make_network(specs, [], 3, (13, 11, 2)).bind(parameters, state)
        shared.allocate(n_samples, np.float32, n_threads, training=False)
        users = [layer for layer in shared.walk() if layer.scratch_size()]
        assert len(users) >= 5
        assert all(np.shares_memory(users[0].cols, layer.cols) for layer in users)
        own = make_network(specs, [], 3, (13, 11, 2)).bind(parameters, state)
        own.allocate(n_samples, np.float32, n_threads, training=False)
        for layer in own.walk():
            if layer.scratch_size():
                layer.use_scratch(np.empty(layer.scratch_size(), np.float32))
        for _ in range(2):  # the second pass replays the recorded plan
            own.prepare(n_threads)
            shared.prepare(n_threads)
            np.testing.assert_array_equal(shared.forward(x, n_threads),
                                          own.forward(x, n_threads))
