"""ONNX export through skl2onnx's converter registry.

Importing this module registers a shape calculator and a converter for
:class:`~sklearn_cnn.CNNClassifier` and :class:`~sklearn_cnn.CNNRegressor`,
so that ``skl2onnx.to_onnx`` converts them alone and inside a Pipeline::

    import sklearn_cnn.onnx  # noqa: F401 - registers the converters
    from skl2onnx import to_onnx

    onx = to_onnx(model, X[:1].astype("float32"))

It needs the optional packages ``skl2onnx`` and ``onnx`` (``pip install
"sklearn-cnn[onnx]"``); ONNX Runtime runs the result.  The graph takes the
rows of X as ``predict`` takes them (flattened images or series, float32),
runs every layer kind (BatchNormalization folded into the convolution
before it; residual blocks; 1-D layers as maps of height 1) and outputs
what ``predict`` and ``predict_proba`` return:

* CNNClassifier: ``label`` (shape ``(N,)``; ``(N, n_labels)`` of 0/1 for a
  multilabel model) and ``probabilities`` ``(N, n_classes)``, as a list of
  dicts (ZipMap) unless ``options={"zipmap": False}``; the options of
  MLPClassifier's converter, ``zipmap``, ``nocl`` and
  ``output_class_labels``, are accepted.
* CNNRegressor: ``variable`` ``(N, n_outputs)``.

Computations are float32 whatever the model's dtype.  A model with
``test_time_augmentation=True`` is refused (set it to False to export the
plain network).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._classifier import CNNClassifier
from ._onnx_graph import OnnxGraph
from ._regressor import CNNRegressor
from .layers._sequential import export_through

__all__ = ["CLASSIFIER_OPTIONS"]

try:
    from onnx import TensorProto
    from skl2onnx import update_registered_converter
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sklearn_cnn.onnx needs skl2onnx and onnx: pip install skl2onnx onnx "
        "(and onnxruntime to run the exported models).") from error

# The options of MLPClassifier's converter, which ours accepts as well.
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"],
                      "output_class_labels": [False, True], "nocl": [True, False]}


def _network_outputs(model, graph, x):
    """Nodes of the whole network: flat float rows in, logits (or values) out."""
    check_is_fitted(model)
    if model.test_time_augmentation:
        raise ValueError(
            "A model with test_time_augmentation=True cannot be exported: the ONNX "
            "graph runs the plain network. Set test_time_augmentation=False first "
            "(its predictions then differ from the model's).")
    x = graph.node("Cast", [x], to=TensorProto.FLOAT)
    channels, height, width = model.image_shape_
    x = graph.node("Reshape", [x, graph.int64_constant([-1, channels, height, width])])
    network = model._build_network(model.n_outputs_, model.image_shape_)
    network.bind(model.parameters_, model.state_)
    return export_through(network.layers, graph, x, network.input_shape)


def _label_type(model):
    """int64 labels for integer, bool and float classes (scikit-learn takes
    only whole-number floats as class labels), strings for the others."""
    return Int64TensorType if model.classes_.dtype.kind in "biuf" else StringTensorType


def _parse_classifier(scope, model, inputs, custom_parsers=None):
    # skl2onnx's classifier parser (ZipMap, output_class_labels), after the
    # check that the model is fitted: that parser reads classes_.
    check_is_fitted(model)
    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)


def _classifier_shapes(operator):
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    if model.out_activation_ == "logistic":
        operator.outputs[0].set_type(Int64TensorType([n, model.n_outputs_]))
    else:
        operator.outputs[0].set_type(_label_type(model)([n]))
    operator.outputs[1].set_type(FloatTensorType([n, model.n_outputs_]))


def _regressor_shapes(operator):
    check_is_fitted(operator.raw_operator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].set_type(FloatTensorType([n, operator.raw_operator.n_outputs_]))


def _convert_classifier(scope, operator, container):
    model = operator.raw_operator
    graph = OnnxGraph(scope, container, TensorProto.FLOAT)
    logits = _network_outputs(model, graph, operator.inputs[0].full_name)
    label, probabilities = (output.full_name for output in operator.outputs)
    if model.out_activation_ == "logistic":
        # predict: 1 where the logit is positive (probability above 1/2).
        graph.node("Sigmoid", [logits], probabilities)
        positive = graph.node("Greater", [logits, graph.constant(np.zeros(1), "zero")])
        graph.node("Cast", [positive], label, to=TensorProto.INT64)
        return
    graph.node("Softmax", [logits], probabilities, axis=1)
    best = graph.node("ArgMax", [logits], axis=1, keepdims=0)
    classes = model.classes_
    if _label_type(model) is Int64TensorType:
        table = graph.int64_constant(classes, "classes")
        graph.node("Gather", [table, best], label, axis=0)
    else:
        name = scope.get_unique_variable_name("classes")
        container.add_initializer(name, TensorProto.STRING, [len(classes)],
                                  [str(c).encode("utf-8") for c in classes])
        graph.node("Gather", [name, best], label, axis=0)


def _convert_regressor(scope, operator, container):
    model = operator.raw_operator
    graph = OnnxGraph(scope, container, TensorProto.FLOAT)
    outputs = _network_outputs(model, graph, operator.inputs[0].full_name)
    graph.node("Identity", [outputs], operator.outputs[0].full_name)


update_registered_converter(CNNClassifier, "SklearnCNNClassifier", _classifier_shapes,
                            _convert_classifier, parser=_parse_classifier,
                            options=CLASSIFIER_OPTIONS)
update_registered_converter(CNNRegressor, "SklearnCNNRegressor", _regressor_shapes,
                            _convert_regressor)
