"""PyTorch copies of our fitted networks, for timing the same network there.

``torch_copy(torch, model, module)`` loads a fitted estimator's parameters and
running statistics into ``module``, a PyTorch network of the same layers
(``_common.torch_fm_lenet``, ``resnet2d_fashion.torch_resnet``,
``fcn_series.torch_fcn``), and returns it in eval mode.  Layers are paired
in order: our parameter arrays are ordered as the network's layers, and so
are PyTorch's modules (a residual block's body, then its shortcut, in both).
"""

import numpy as np


def torch_copy(torch, model, module):
    """``module`` with ``model``'s fitted values, in eval mode."""
    ours = _layers_in_order(model)
    theirs = [m for m in module.modules()
              if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear,
                                torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} layers with parameters here, {len(theirs)} in "
                         "the PyTorch module")
    with torch.no_grad():
        for (kind, arrays, feature_map), target in zip(ours, theirs):
            if kind == "conv":
                weights = arrays["weights"]  # (KH, KW, C, OC)
                if isinstance(target, torch.nn.Conv1d):  # ours (1, K, C, OC)
                    weights = weights[0].transpose(2, 1, 0)
                else:
                    weights = weights.transpose(3, 2, 0, 1)
                _assign(torch, target.weight, weights)
                _assign(torch, target.bias, arrays["bias"])
            elif kind == "batchnorm":
                _assign(torch, target.weight, arrays["scale"])
                _assign(torch, target.bias, arrays["shift"])
                _assign(torch, target.running_mean, arrays["running_mean"])
                _assign(torch, target.running_var, arrays["running_var"])
                target.eps = arrays["epsilon"]
            else:
                weights = arrays["weights"]  # (F, O), F in our NHWC order
                if feature_map is not None and weights.shape[0] == np.prod(feature_map):
                    # Flattened after the convolutions: PyTorch's features
                    # are in (channels, height, width) order, ours in
                    # (height, width, channels).
                    height, width, channels = feature_map
                    weights = (weights.reshape(height, width, channels, -1)
                               .transpose(2, 0, 1, 3).reshape(weights.shape[0], -1))
                _assign(torch, target.weight, weights.T)
                _assign(torch, target.bias, arrays["bias"])
    return module.eval()


def _layers_in_order(model):
    """``(kind, arrays, map)`` of each layer of ``model`` that holds
    parameters, in network order; ``map`` is (height, width, channels): for a
    dense layer, that of the last map before it (None if the last layer
    before it is dense), which it reads flattened."""
    from sklearn_cnn.layers._batchnorm import BatchNormLayer
    from sklearn_cnn.layers._conv import ConvLayer
    from sklearn_cnn.layers._dense import DenseLayer

    network = model._build_network(model.n_outputs_, model.image_shape_, fuse=False)
    fitted = model.parameters_ | model.state_
    layers, last_map = [], None
    for layer in network.walk():
        names = list(layer.parameters()) + list(layer.state())
        shape = getattr(layer, "output_shape", None)
        if not names:
            last_map = shape if shape is not None and len(shape) == 3 else last_map
            continue
        arrays = {name: fitted[f"{layer.path}.{name}"] for name in names}
        if isinstance(layer, ConvLayer):
            layers.append(("conv", arrays, None))
        elif isinstance(layer, BatchNormLayer):
            arrays["epsilon"] = layer.epsilon
            layers.append(("batchnorm", arrays, None))
        elif isinstance(layer, DenseLayer):
            layers.append(("dense", arrays, last_map))
        else:
            raise ValueError(f"no PyTorch counterpart for {type(layer).__name__}")
        last_map = shape if shape is not None and len(shape) == 3 else None
    return layers


def _assign(torch, tensor, array):
    tensor.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
