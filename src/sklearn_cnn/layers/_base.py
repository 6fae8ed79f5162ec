"""The layer protocol: what a layer specification and a runtime layer provide.

A layer kind is two classes, usually in one module of this package:

* a **specification** (subclass of :class:`LayerSpec`): a frozen dataclass
  that a user writes (``Conv2D(32)``).  Plain data: it compares, pickles,
  clones and grid-searches (``conv_layers__0__filters``), and its ``repr``
  shows only what differs from the defaults.
* a **runtime layer** (subclass of :class:`Layer`), registered for its
  specification with :func:`register`.  It is built for one input shape and
  does the work: geometry checks, named parameters, buffers, forward and
  backward.  Kernels live in ``sklearn_cnn._kernels``.  A forward that is
  one kernel call is best a :class:`KernelCallLayer`: predictions of a few
  samples then replay the call (see :meth:`Layer.plan`).

Adding a layer kind therefore means one module here with its spec and
runtime class (plus, if it needs one, a kernel module), and one line in
``layers/__init__.py`` to export the spec.

Shapes are per sample: ``(height, width, channels)`` for feature maps (NHWC
inside the network) and ``(n_features,)`` for flat vectors.
"""

import dataclasses
import math
from collections import namedtuple
from numbers import Integral

import numpy as np

from .._kernels import _snapshot
from .._spec import Spec, nested_spec_params, replace_in_tuple

ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu")
ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "logistic": 4}

# A trained array of a layer: its shape, whether the L2 penalty (``alpha``)
# applies to it, and ``init(rng, dtype, shape) -> ndarray``.
ParamInfo = namedtuple("ParamInfo", ["shape", "decay", "init"])


# ------------------------------------------------------------ specifications


class LayerSpec(Spec):
    """Base of the layer specifications (frozen dataclasses).

    Subclasses are declared ``@dataclass(frozen=True, repr=False)`` and
    validate their fields in ``__post_init__``.  ``spatial_dims`` (a class
    attribute, not a field) is 1 for layers of series, 2 for layers of
    images, None for layers that take either (dense, activation, ...); it
    decides how the estimator reads X.
    """

    spatial_dims = None

    def get_params(self, deep=True):
        """Fields of this layer, and with ``deep`` those of nested layers.

        Parameters
        ----------
        deep : bool, default=True
            Also return ``layers__0__filters``-style entries for layers
            contained in this one.

        Returns
        -------
        params : dict
            Field names mapped to their values.
        """
        params = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            params[field.name] = value
            if deep and _is_layer_sequence(value):
                params.update(nested_spec_params(field.name, value))
        return params

    def replace(self, **changes):
        """A copy with some fields changed; ``layers__0__filters`` reaches
        into contained layers.  Specifications are immutable.

        Parameters
        ----------
        **changes : dict
            Field names (or nested ``field__index__name`` paths) and values.

        Returns
        -------
        spec : LayerSpec
            The new specification, validated.
        """
        self._check_field_names(changes)
        direct, nested = {}, {}
        for key, value in changes.items():
            name, _, rest = key.partition("__")
            if rest:
                nested.setdefault(name, {})[rest] = value
            else:
                direct[name] = value
        for name, sub_changes in nested.items():
            current = direct.get(name, getattr(self, name))
            if not _is_layer_sequence(current):
                raise ValueError(
                    f"{type(self).__name__}.{name} holds no layers, so "
                    f"{name}__{next(iter(sub_changes))} cannot be set.")
            direct[name] = replace_in_layers(current, sub_changes, name)
        return dataclasses.replace(self, **direct)


def _is_layer_sequence(value):
    return isinstance(value, (tuple, list)) and any(
        isinstance(entry, LayerSpec) for entry in value)


def spatial_dims_of(specs):
    """1 or 2: the dimensionality of the spatial layers in ``specs`` (blocks
    included); None when there are none.  Mixing is an error."""
    found = {}
    stack = list(specs)
    while stack:
        spec = stack.pop()
        if spec.spatial_dims is not None:
            found.setdefault(spec.spatial_dims, spec)
        for field in dataclasses.fields(spec):
            value = getattr(spec, field.name)
            if _is_layer_sequence(value):
                stack.extend(entry for entry in value if isinstance(entry, LayerSpec))
    if len(found) > 1:
        raise ValueError(
            f"conv_layers mixes 1-D layers (e.g. {found[1]!r}) with 2-D layers (e.g. "
            f"{found[2]!r}): a network takes either series or images.")
    return next(iter(found), None)


def replace_in_layers(entries, changes, owner):
    """Apply ``{"0": spec, "1__filters": 64, ...}`` to a tuple of layers.

    Entries that are shorthands (``32``, ``"maxpool"``) become specs first
    when a field of theirs is changed.  Returns a new tuple.
    """
    from . import as_layer_spec  # the shorthand table lives with the exports

    return replace_in_tuple(entries, changes, owner, as_layer_spec, "layers")


def as_layer_tuple(spec, owner):
    """Validate a block's ``layers`` field and turn shorthands into specs.

    Keeps the very tuple given when it needs no change: scikit-learn's clone
    checks that constructors store their arguments as they are.
    """
    from . import as_layer_spec

    if not isinstance(spec.layers, (tuple, list)) or not spec.layers:
        raise ValueError(
            f"{owner} layers must be a non-empty tuple of layers, got {spec.layers!r}.")
    specs = tuple(as_layer_spec(entry, f"{owner}.layers[{i}]")
                  for i, entry in enumerate(spec.layers))
    if not (isinstance(spec.layers, tuple) and specs == spec.layers):
        object.__setattr__(spec, "layers", specs)


def check_activation(value, owner, allow_none=True):
    """Raise a clear error unless ``value`` names an activation (or is None)."""
    if value is None and allow_none:
        return
    if not (isinstance(value, str) and value in ACTIVATIONS):
        allowed = f"one of {ACTIVATIONS}" + (" or None" if allow_none else "")
        raise ValueError(f"{owner} activation must be {allowed}, got {value!r}.")


def as_pair(value, name, minimum):
    """Return ``value`` as a pair of ints >= ``minimum``, or raise a clear error."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(
            f"{name} must be an int or a pair of ints (height, width), got {value!r}.")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} along both axes, got {value!r}.")
    return pair


# ------------------------------------------------------------ runtime layers


class BuildContext:
    """What building a runtime layer may need beyond its spec and input shape.

    Attributes
    ----------
    activation : str
        The estimator's activation, for layers that name none.
    auto : bool
        Building the default architecture: pooling windows shrink to fit.
    rng : RandomState or None
        Source of dropout masks during training.
    fuse : bool
        Let layers absorb the layer after them (see :meth:`Layer.absorb`).
    inference : bool
        The network will only predict: layers may also absorb what only
        inference allows (a BatchNormalization folded into a convolution).
    weight_init : str
        The estimator's ``weight_init``: how trained layers draw their
        starting weights (see :func:`uniform_init`).
    """

    def __init__(self, activation="relu", auto=False, rng=None, fuse=True,
                 inference=False, weight_init="auto"):
        self.activation = activation
        self.weight_init = weight_init
        self.auto = auto
        self.rng = rng
        self.fuse = fuse
        self.inference = fuse and inference


class Layer:
    """Runtime layer protocol; subclasses override what applies to them.

    Attributes set by every layer
    -----------------------------
    path : str
        Where the spec sits, dotted: ``"conv_layers.2"``,
        ``"conv_layers.0.layers.1"``, ``"hidden_layers.0"``, ``"output"``.
        Parameter names are ``f"{path}.{name}"``.
    name : str
        Short description for ``summary()``.
    input_shape, output_shape : tuple of int
        Per-sample shapes.

    After ``allocate``, ``output`` is the forward buffer and, when an input
    gradient is needed, ``grad_input`` the backward one.
    """

    path = ""
    name = ""
    input_shape = ()
    output_shape = ()

    def parameters(self):
        """Trained arrays, ``{local name: ParamInfo}``, in a fixed order."""
        return {}

    def state(self):
        """Non-trained arrays (running statistics), ``{local name: ParamInfo}``."""
        return {}

    def bind(self, params, state):
        """Use these arrays (``{local name: ndarray}``) for the parameters."""

    def absorb(self, following):
        """Take over the layer after this one, fused into this layer's
        kernel; return True if done.  Must not change any result."""
        return False

    def children(self):
        """Runtime layers contained in this one (blocks)."""
        return ()

    def adds_in_epilogue(self):
        """Whether ``forward(x, n_threads, addend, activation)`` can return
        ``activation(output + addend)`` (a residual block's last layer)."""
        return False

    def keeps_grad_output(self):
        """Whether ``backward`` leaves the gradient it is given as it was
        (then a residual block's two branches can share it, no copy)."""
        return False

    def scratch_size(self):
        """Values of the scratch buffer that this layer's kernels use within
        a call and keep nothing in (0: none); see ``use_scratch``."""
        return 0

    def use_scratch(self, buffer):
        """Use the first ``scratch_size()`` values of ``buffer`` as scratch
        from now on: in prediction a network gives all its layers one
        buffer, which they use in turn."""

    def prepare(self, n_threads):
        """Compute what prediction takes from the parameters alone (the
        arrays of ``prepare_inputs``), for the passes that follow; the
        network calls it again whenever one of those arrays changed."""

    def prepare_inputs(self):
        """The arrays that ``prepare`` reads (none: it computes nothing)."""
        return []

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        """Make the buffers for batches of up to ``batch_size`` samples."""
        self.training = training
        self.needs_input_grad = training and needs_input_grad
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)
        if self.needs_input_grad:
            self.grad_input = np.empty((batch_size, *self.input_shape), dtype=dtype)

    def forward(self, x, n_threads):
        """Output for the batch ``x``: a view of ``self.output``."""
        raise NotImplementedError

    def plan(self, x, n_threads, steps):
        """Run the forward of ``x``, an array that later passes fill anew in
        place, and append to ``steps`` the ``(function, arguments)`` calls
        that repeat it: the same output in the same array.  Returns that
        output; raises Unplannable if it is not such an array.

        Prediction replays the steps of a whole network (see
        ``Network.forward``) instead of going through the layers' Python.
        By default the one step is the layer's own forward, which must then
        write into its buffers (or pass ``x`` through).
        """
        out = self.forward(x, n_threads)
        own = getattr(self, "output", None)
        if not (out is x or own is not None and np.may_share_memory(out, own)):
            raise Unplannable(self.name)
        steps.append((self.forward, (x, n_threads)))
        return out

    def backward(self, grad_output, n_threads):
        """Store the parameter gradients (summed over the batch) and return
        d loss / d input, or None when no input gradient is needed.
        ``grad_output`` may be overwritten."""
        raise NotImplementedError

    def grads(self):
        """Gradients of the last backward, ``{local name: ndarray}``."""
        return {}

    def input_grad_buffer(self, n_samples):
        """``grad_input`` for a batch of ``n_samples``, or None when this
        layer needs not compute its input gradient (the first layer)."""
        return self.grad_input[:n_samples] if self.needs_input_grad else None

    def location(self):
        """The path as a user writes it: ``conv_layers[0].layers[1]``."""
        return location_of(self.path)


class Unplannable(Exception):
    """A layer's forward cannot be replayed as a plan (see Layer.plan)."""


def forward_or_plan(layer, x, n_threads, steps, *extra):
    """``layer.forward``, or with a list of ``steps`` ``layer.plan``: for
    blocks of layers, whose forward and plan are one walk."""
    if steps is None:
        return layer.forward(x, n_threads, *extra)
    return layer.plan(x, n_threads, steps, *extra)


def replayable_call(kernel, arguments):
    """``(kernel, arguments)`` as a prediction plan replays them: the fused
    kernel's specialisation for the dtype of ``arguments[0]``, and the
    arrays as typed memoryviews (``_snapshot.typed_views``).  Neither
    Cython's dispatcher nor a buffer check then runs per call: the
    arguments of one FM-LeNet image's four kernel calls take 3.0 us instead
    of 10.7 (hot, empty inputs), resnet2d's eleven 9.1 instead of 31.8."""
    signatures = getattr(kernel, "__signatures__", None)
    if signatures:
        kernel = signatures["float" if arguments[0].dtype == np.float32 else "double"]
    return kernel, _snapshot.typed_views(arguments)


class KernelCallLayer(Layer):
    """A layer whose forward is one kernel call, which ``_bound_call``
    works out: then a prediction plan replays that call alone."""

    def _bound_call(self, x, n_threads, *extra):
        """``(kernel, arguments, out)``: the forward is ``kernel(*arguments)``."""
        raise NotImplementedError

    def forward(self, x, n_threads, *extra):
        kernel, arguments, out = self._bound_call(x, n_threads, *extra)
        kernel(*arguments)
        return out

    def plan(self, x, n_threads, steps, *extra):
        kernel, arguments, out = self._bound_call(x, n_threads, *extra)
        # The kernel reads x itself (or a view of it), which each replay
        # refills; a copy made here would be read stale.
        if not np.may_share_memory(arguments[0], x):
            raise Unplannable(self.name)
        kernel(*arguments)
        steps.append(replayable_call(kernel, arguments))
        return out


def location_of(path):
    """``"conv_layers.0.layers.1"`` -> ``"conv_layers[0].layers[1]"``."""
    parts = []
    for part in path.split("."):
        if part.isdigit() and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(part)
    return ".".join(parts)


_RUNTIME_CLASSES = {}


def register(spec_class):
    """Class decorator: the runtime layer built for ``spec_class``."""

    def decorator(runtime_class):
        _RUNTIME_CLASSES[spec_class] = runtime_class
        return runtime_class

    return decorator


def build_layer(spec, input_shape, context, path):
    """The runtime layer for ``spec`` receiving ``input_shape`` per sample."""
    return _RUNTIME_CLASSES[type(spec)](spec, tuple(input_shape), context, path)


def build_sequence(specs, input_shape, context, paths, sizes):
    """Build layers one after another; fuse where a layer absorbs the next.

    ``sizes`` collects a readable size per layer for error messages; a
    geometry error gets the sizes so far appended.
    """
    layers = []
    shape = tuple(input_shape)
    for spec, path in zip(specs, paths):
        try:
            layer = build_layer(spec, shape, context, path)
        except ValueError as error:
            if "Feature maps" in str(error):
                raise
            raise ValueError(
                f"{error} Feature maps (height x width x channels) so far: "
                f"{' -> '.join(sizes)}.") from None
        sizes.append(f"{type(spec).__name__} {size_text(layer.output_shape)}")
        shape = layer.output_shape
        if context.fuse and layers and layers[-1].absorb(layer):
            continue
        layers.append(layer)
    return layers, shape


def absorb_activation(layer, following):
    """Let ``layer`` (with an ``activation`` its kernel applies) take over a
    stand-alone Activation that follows it, when it has none of its own."""
    from ._activation import ActivationLayer  # that module imports this one

    if isinstance(following, ActivationLayer) and layer.activation == "identity":
        layer.activation = following.activation
        layer.name += f" + {following.activation}"
        return True
    return False


def size_text(shape):
    return "x".join(str(s) for s in shape)


def require_feature_map(input_shape, spec, path):
    """Raise a clear error when a spatial layer follows a flat one."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{location_of(path)} = {spec!r} needs a feature map (height x width x channels) "
            f"but receives a flat vector of {input_shape[0]} features: spatial "
            "layers must come before Dense layers.")


WEIGHT_INITS = ("auto", "glorot", "pytorch")


def uniform_init(fan_in, fan_out, activation, scheme="auto"):
    """Uniform weights whose bound follows ``scheme`` (the estimator's
    ``weight_init``).

    "auto": He-uniform (``sqrt(6 / fan_in)``) for ReLU-like activations,
    Glorot-uniform otherwise (``sqrt(6 / (fan_in + fan_out))``, and
    ``sqrt(2 / (fan_in + fan_out))`` for 'logistic', as MLPClassifier).
    "glorot": MLPClassifier's Glorot rule whatever the activation.
    "pytorch": ``1 / sqrt(fan_in)``, PyTorch's default for ``Linear`` and
    ``Conv`` layers (``kaiming_uniform_`` with ``a=sqrt(5)``).

    Drawn in float64 and cast, so float32 and float64 models start from the
    same values.
    """
    if scheme == "pytorch":
        bound = 1.0 / math.sqrt(fan_in)
    elif scheme == "auto" and activation in ("relu", "leaky_relu"):
        bound = math.sqrt(6.0 / fan_in)
    elif activation == "logistic":
        bound = math.sqrt(2.0 / (fan_in + fan_out))
    else:
        bound = math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(bound)


def bias_init(fan_in, scheme="auto"):
    """Zero biases (as Keras), except for "pytorch", which draws them from
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` as PyTorch does."""
    if scheme == "pytorch":
        return _uniform(1.0 / math.sqrt(fan_in))
    return zeros_init


def _uniform(bound):
    def init(rng, dtype, shape):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    return init


def zeros_init(rng, dtype, shape):
    return np.zeros(shape, dtype=dtype)


def ones_init(rng, dtype, shape):
    return np.ones(shape, dtype=dtype)
