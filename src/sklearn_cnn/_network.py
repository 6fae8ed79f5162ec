"""The runtime network: layers built for one input shape, with named parameters.

A network is built from the estimator's architecture (``conv_layers``, then
one ``Dense`` per hidden layer size, dropout, and the output layer) through
the layer registry of :mod:`sklearn_cnn.layers`.  Every shape is resolved and
checked here, before any kernel runs: the kernels do no bounds checking, so
building is what makes out-of-range memory access impossible.

Parameters are plain NumPy arrays owned by the estimator, in one dict keyed
``"{layer path}.{name}"`` (``"conv_layers.0.weights"``); a network only binds
its layers to them, plus work buffers allocated once per fit or predict call.
Feature maps are NHWC (channels last); see ``_kernels/_conv.pyx`` for why.
"""

import numpy as np

from ._kernels._snapshot import ArraysSnapshot
from .layers import Dense, Dropout
from .layers._base import BuildContext, Unplannable, build_sequence, size_text
from .layers._conv import Conv2D
from .layers._dropout import DropoutLayer
from .layers._pool import MaxPool2D
from .layers._sequential import backward_through

OUTPUT_PATH = "output"

# Prepared prediction passes of up to this many samples replay the kernel
# calls of a recorded pass (Layer.plan) instead of walking the layers'
# Python: one image spent more time in that walk than in some of its
# kernels.  A plan holds a copy of its input, hence the cap on its size and
# on the number kept per network (one per batch size and thread count).
PLANNED_MAX_SAMPLES = 16
MAX_PLANS = 4


def default_conv_layers():
    """The architecture that ``conv_layers='auto'`` stands for."""
    return (Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())


def architecture(conv_specs, hidden_layer_sizes, n_outputs, dropout=0.0):
    """(spec, path) of every top-level layer, the output layer last."""
    entries = [(spec, f"conv_layers.{i}") for i, spec in enumerate(conv_specs)]
    for i, size in enumerate(hidden_layer_sizes):
        entries.append((Dense(size), f"hidden_layers.{i}"))
        if dropout > 0:
            entries.append((Dropout(dropout), f"hidden_layers.{i}.dropout"))
    entries.append((Dense(n_outputs, activation="identity"), OUTPUT_PATH))
    return entries


class Network:
    """Runtime layers (fused where that pays) and their named parameters.

    Parameters
    ----------
    conv_specs : tuple of LayerSpec
        The spatial part (and any layers the user put after it).
    hidden_layer_sizes : list of int
        One ``Dense`` layer each, with the estimator's activation.
    n_outputs : int
        Width of the output layer (identity activation: logits or values).
    input_shape : (height, width, channels)
        Per-sample input shape.
    context : BuildContext
        Default activation, "auto" mode, dropout rng, fusion switch.
    dropout : float
        Rate of the dropout after each hidden dense layer.
    """

    def __init__(self, conv_specs, hidden_layer_sizes, n_outputs, input_shape,
                 context=None, dropout=0.0):
        context = context or BuildContext()
        specs, paths = zip(*architecture(conv_specs, hidden_layer_sizes, n_outputs,
                                         dropout))
        sizes = [f"input {size_text(input_shape)}"]
        self.layers, _ = build_sequence(specs, input_shape, context, paths, sizes)
        self.input_shape = tuple(input_shape)
        # The estimator's n_layers_: the input, each declared entry, the output.
        self.n_declared_layers = len(conv_specs) + len(hidden_layer_sizes) + 2
        self._bound = []  # the arrays of the last bind

    # ------------------------------------------------------------ parameters

    def walk(self):
        """Every runtime layer, depth first (blocks before their children)."""
        stack = list(reversed(self.layers))
        while stack:
            layer = stack.pop()
            yield layer
            stack.extend(reversed(layer.children()))

    def parameter_infos(self):
        """``{"path.name": ParamInfo}`` of every trained array, in order."""
        return {f"{layer.path}.{name}": info for layer in self.walk()
                for name, info in layer.parameters().items()}

    def state_infos(self):
        """``{"path.name": ParamInfo}`` of every non-trained array."""
        return {f"{layer.path}.{name}": info for layer in self.walk()
                for name, info in layer.state().items()}

    def init_parameters(self, rng, dtype):
        """Fresh parameters and state, drawn in layer order from ``rng``."""
        parameters = {name: info.init(rng, dtype, info.shape)
                      for name, info in self.parameter_infos().items()}
        state = {name: info.init(rng, dtype, info.shape)
                 for name, info in self.state_infos().items()}
        return parameters, state

    def bind(self, parameters, state):
        """Point every layer at its arrays (shapes were checked by the caller)."""
        self._plans = {}
        self._bound = []
        for layer in self.walk():
            own = {name: parameters[f"{layer.path}.{name}"]
                   for name in layer.parameters()}
            own_state = {name: state[f"{layer.path}.{name}"] for name in layer.state()}
            if own or own_state:
                layer.bind(own, own_state)
                self._bound += [*own.values(), *own_state.values()]
        return self

    def grads(self):
        """Gradients of the last backward, in the order of ``parameter_infos``."""
        return [grad for layer in self.walk() for grad in layer.grads().values()]

    # ------------------------------------------------------------ computing

    def allocate(self, batch_size, dtype, n_threads, training):
        """Buffers for batches of up to ``batch_size`` samples."""
        self.batch_size = batch_size
        self.training = training
        self._prepared_from, self._prepared = None, False
        self._plans = {}
        for index, layer in enumerate(self.layers):
            layer.allocate(batch_size, dtype, n_threads, training,
                           needs_input_grad=index > 0)
        if not training:
            # The layers run one after the other and keep nothing in their
            # scratch between calls: one buffer serves them all, a smaller
            # footprint in memory and in cache.  One resnet2d image on a
            # 2-core Xeon, alternated in one process (medians of 21-31
            # rounds, two runs): 0.92-0.93x on 1 thread, 0.96-1.01x on 2;
            # one FCN series 0.94-1.06x, one FM-LeNet image 0.98-1.03x
            # (noise).
            users = [layer for layer in self.walk() if layer.scratch_size()]
            if users:
                shared = np.empty(max(layer.scratch_size() for layer in users), dtype)
                for layer in users:
                    layer.use_scratch(shared)
        return self

    def prepare(self, n_threads):
        """Let every layer compute what prediction takes from the parameters
        alone, unless none of the arrays that this reads has changed since
        the last time (compared byte for byte: exact, and for one resnet2d
        image about 4 us against the 29 us of computing them)."""
        if self._prepared_from is None:
            # Every bound array, not only the snapshot's: the kernels take
            # C-contiguous arrays (a reshape of another would be a copy,
            # blind to later edits in place).
            if not all(array.flags.c_contiguous for array in self._bound):
                raise ValueError(
                    "The model's parameter arrays must be C-contiguous: assign them "
                    "through coefs_ and intercepts_ (which convert them), or put "
                    "np.ascontiguousarray(array) into parameters_.")
            inputs = [array for layer in self.walk() for array in layer.prepare_inputs()]
            self._prepared_from = ArraysSnapshot(inputs)
        elif self._prepared and self._prepared_from.unchanged(n_threads):
            return
        else:
            self._prepared_from.take()
        # The snapshot is taken before the layers read the arrays, and a
        # prepare cut short is never trusted: a change that races with it is
        # seen at the next call.
        self._prepared = False
        self._plans = {}  # their calls take the values computed here
        for layer in self.walk():
            layer.prepare(n_threads)
        self._prepared = True

    def forward(self, x, n_threads, n_layers=None):
        """Output of the first ``n_layers`` top-level layers (all: the output
        layer's) for the NHWC batch ``x``; a view of an internal buffer.
        Prepared prediction passes of up to PLANNED_MAX_SAMPLES samples
        replay the plan recorded for their size (see Layer.plan)."""
        if self._prepared and not self.training and len(x) <= PLANNED_MAX_SAMPLES:
            out = self._planned_forward(x, n_threads, n_layers)
            if out is not None:
                return out
        for layer in self.layers[:n_layers]:
            x = layer.forward(x, n_threads)
        return x

    def _planned_forward(self, x, n_threads, n_layers):
        """The forward by the plan for this batch size, recorded on the
        first such call; None if some layer cannot be planned."""
        key = (len(x), n_threads, n_layers)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= MAX_PLANS:
                del self._plans[next(iter(self._plans))]
            # The plan's input stays put: each pass copies x into it.
            source, steps = x.copy(), []
            try:
                out = source
                for layer in self.layers[:n_layers]:
                    out = layer.plan(out, n_threads, steps)
            except Unplannable:
                self._plans[key] = False
                return None
            self._plans[key] = (source, steps, out)
            return out
        if plan is False:
            return None
        source, steps, out = plan
        np.copyto(source, x)
        for kernel, arguments in steps:
            kernel(*arguments)
        return out

    def backward(self, grad_outputs, n_threads):
        """Fill every layer's gradients; ``grad_outputs`` may be overwritten."""
        backward_through(self.layers, grad_outputs, n_threads)

    def feature_layer_count(self):
        """Top-level layers before the output layer, less a trailing dropout:
        what ``transform`` runs."""
        n_layers = len(self.layers) - 1
        while n_layers and isinstance(self.layers[n_layers - 1], DropoutLayer):
            n_layers -= 1
        return n_layers
