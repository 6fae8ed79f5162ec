"""What a runtime layer writes its ONNX nodes with (see ``onnx.py``).

Each runtime layer has ``export_onnx(graph, x, input_shape)``: it appends
the nodes that compute its output from the tensor named ``x`` and returns
the output's name.  Inside the exported graph, feature maps are NCHW
(ONNX's layout; ours is NHWC) and series are maps of height 1, so the
per-sample shapes the layers know, ``(height, width, channels)`` or
``(n_features,)``, tell each layer how to lay out its arrays.  This module
only wraps skl2onnx's scope and container, which the converter passes in.
"""

import numpy as np

# ONNX operators of our activations (leaky_relu's slope is the kernels').
ONNX_ACTIVATIONS = {"relu": ("Relu", {}), "tanh": ("Tanh", {}),
                    "logistic": ("Sigmoid", {}),
                    "leaky_relu": ("LeakyRelu", {"alpha": 0.01})}


class OnnxGraph:
    """Appends nodes and float32 initializers to an ONNX graph under
    construction."""

    def __init__(self, scope, container, proto_dtype):
        self.scope = scope
        self.container = container
        self.proto_dtype = proto_dtype

    def constant(self, array, name="constant"):
        """An initializer holding ``array`` (as float32); returns its name."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        unique = self.scope.get_unique_variable_name(name)
        self.container.add_initializer(unique, self.proto_dtype, list(array.shape),
                                       array.ravel().tolist())
        return unique

    def int64_constant(self, values, name="shape"):
        from onnx import TensorProto

        unique = self.scope.get_unique_variable_name(name)
        values = [int(v) for v in values]
        self.container.add_initializer(unique, TensorProto.INT64, [len(values)], values)
        return unique

    def node(self, op_type, inputs, output=None, **attributes):
        """Append one node; returns the name of its (first) output."""
        output = output or self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(op_type, list(inputs), output,
                                name=self.scope.get_unique_operator_name(op_type),
                                **attributes)
        return output

    def activation(self, x, name):
        """``x`` through the named activation (no node for identity)."""
        if name == "identity":
            return x
        op_type, attributes = ONNX_ACTIVATIONS[name]
        return self.node(op_type, [x], **attributes)


def channel_shape(input_shape):
    """Shape that broadcasts a per-channel vector over NCHW maps (or flat rows)."""
    return (-1, 1, 1) if len(input_shape) == 3 else (-1,)
