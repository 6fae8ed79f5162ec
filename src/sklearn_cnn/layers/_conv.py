"""Conv2D: 2-D convolution + bias + activation (fused), and its runtime layer.

The runtime layer also absorbs, unseen by users, a stand-alone activation
right after it (when it has none of its own) and a max pooling right after
that: the fused kernels of ``_kernels/_conv.pyx`` then never write the
full-resolution map to memory.  It also chooses, from its shape alone, how
the kernels convolve: im2col + GEMM, or Winograd for stride-1 convolutions
with enough channels: F(4x4, 3x3) in training and F(2x2, 3x3) in prediction
for 3x3 kernels, F(n + 1 - r, r) for series' kernels of r = 3..7 taps
(n = 10 points in training, 8 in prediction).
"""

import math
from dataclasses import dataclass

import numpy as np

from .._blas_kernels import (
    SMALL_GEMM_MULTIPLY_ADDS,
    has_small_matrix_kernels,
    use_own_products,
)
from .._kernels import load
from .._spec import check_int
from ._base import (
    ACTIVATION_CODES,
    KernelCallLayer,
    LayerSpec,
    ParamInfo,
    absorb_activation,
    as_pair,
    bias_init,
    check_activation,
    register,
    require_feature_map,
    uniform_init,
)

# The AVX2 build where the CPU has it (see sklearn_cnn._kernels).
_conv = load("_conv")

# Rows (output pixels) of the im2col matrix one GEMM handles: enough to make
# the GEMM fat, small enough for the buffer to stay in L2 cache.  It depends
# on the layer's shape only, never on the thread count (determinism).
TARGET_CHUNK_ROWS = 1024

# A call's samples split into a multiple of this many chunks of near-equal
# size (at most the layer's samples_per_chunk each), so that 2 or 4 threads
# get equal shares.  With chunks of exactly samples_per_chunk and a remainder
# they did not: 41 predicted samples of 7x7 maps made chunks of 20, 20 and 1
# (two threads: 40 against 1 sample, no faster than one thread), 128 of
# them 6 chunks of 20 and one of 8 (80 against 48).  A constant, so the
# chunks, and therefore the results, never depend on the thread count.
CHUNK_GROUP = 4

# Predicting fewer samples than this, all threads work on one image at a
# time (latency).  A convolution by im2col (fused with max-pool or not)
# splits the image into ROW_BLOCKS blocks of rows.  One by Winograd does the
# same, in blocks of whole tiles (the image's own tiles), where BLAS has
# small-matrix kernels that multiply a block's short GEMMs without packing
# the weights (has_small_matrix_kernels; products of at most
# SMALL_GEMM_MULTIPLY_ADDS).  Elsewhere every thread would pack all the
# weights for GEMMs a few tiles tall (one FM-LeNet image, full
# predict_proba: 101-108 / 108-112 us on 1 / 2 threads, against 110 / 90 by
# im2col in 8 blocks), so the threads share the image instead: they split
# its tiles' transforms and then its GEMMs, one tile position each
# (_conv.winograd_image_shared; a fused max-pool then pools in the blocks
# of rows), and one thread convolves it as a chunk, with the same GEMMs.
# On a 2-core Xeon with OpenBLAS's SkylakeX kernels, one image's
# predict_proba, alternated in one process (medians of 20 rounds): on 2
# threads blocks took 0.78-0.82x the shared path's time for resnet2d,
# 0.87-0.92x for FM-LeNet; on 1 thread 0.86x a chunk's for resnet2d,
# 0.92-1.03x for FM-LeNet.  With OpenBLAS's Haswell kernels blocks took 1.2x
# (resnet2d) and 1.6x (FM-LeNet) the shared path's time.  Both numbers are
# constants: no dependence on threads.
#
# Where even the whole image's products go to those small-matrix kernels, a
# convolution with a multiple of 16 filters splits the image into one block
# per thread instead of ROW_BLOCKS (see _row_blocks): fewer, taller
# products, and no thread waits for a last block.  The results stay the
# same at any count because those kernels (and the fused chunks of
# _winograd4.h) sum each output of such a product (Winograd's, or im2col's
# of more than one channel: "NN", 16 filters per vector) in one chain of
# FMAs over the channels or taps, whatever its height.  Not so for other
# filter counts with 32 channels or taps or more: SciPy's OpenBLAS gave
# other sums in blocks of other heights for 1-3, 5-7, 17-19, 21-23 ...
# filters (a few of them as dot products; a stride-2 Conv2D(6) on 4
# channels differed at 3 threads), nor for one channel's transposed im2col
# products: they keep ROW_BLOCKS.  One resnet2d image on a 2-core Xeon
# (OpenBLAS SkylakeX kernels), each Winograd layer alone (two runs): on 1
# thread, 64 -> 64 channels at 7x7 took 24-26 us in one block against 42-43
# in four, 32 -> 32 at 14x14 34.5-35 against 45-47 in seven, 16 -> 16 at
# 28x28 53-56 against 59-61; on 2 threads, in two blocks, 22-24 against
# 26-27, 25 against 31-33 and 34-36 against 41-45.  The whole predict_proba,
# alternated in one process (medians of 15-41 rounds): Winograd layers
# 0.94-0.98x on 1 thread, 0.935-0.945x on 2; then its stride-2 and 1x1
# im2col layers too 0.977x and 0.932x.  Fused with a max-pool, FM-LeNet's
# Winograd convolution was faster alone in one block too, but its
# predict_proba was not (1.01-1.13x on 1 thread; its dense layer's 1.6 MB
# of weights, read next, presumably lost their place in L2 to the larger
# block's scratch): a pooled convolution splits into at least two blocks.
# Against ROW_BLOCKS: 0.965-0.985x on 1 thread, 0.925-0.941x on 2.
ROW_SPLIT_MAX_SAMPLES = 4
ROW_BLOCKS = 8
# Maps of one row (series) split into blocks of columns, at least this many:
# narrower blocks make GEMMs too thin (measured on the FCN with one OSULeaf
# series of 427 steps: blocks of 54 columns cost 1600 us on 1 thread and 851
# on 2, blocks of 256 1183 and 713, no split 1124 and 1137).
MIN_BLOCK_COLUMNS = 256

# 3x3, stride-1, undilated convolutions with at least this many input
# channels run by Winograd F(2x2, 3x3) (2.25x fewer FLOPs than im2col +
# GEMM) when they convolve whole samples.  With fewer channels the 16 GEMMs
# are too thin to pay for the transforms (1 thread, 28x28, ms per 10k images,
# im2col / Winograd: 3->32 173 / 260, 4->32 185 / 251, 8->16 207 / 168,
# 16->16 347 / 258; 32->64 at 14x14 385 / 205).
WINOGRAD_MIN_CHANNELS = 8
# Output tiles of Winograd's convolutions, by use.  Training runs F(4x4, 3x3)
# (36 GEMMs per 4x4 outputs: 4x fewer multiplications than im2col, and less
# transformed data than F(2x2)'s 2.25x) and keeps F(2x2)'s accuracy where
# it matters: its float32 errors are 5-20x F(2x2)'s (up to 4e-5 of the
# outputs' mean size on random 64-channel tiles), harmless to stochastic
# gradients, but prediction stays with F(2x2, 3x3), within 1e-5 of other
# implementations (ONNX).
WINOGRAD_TRAINING_TILE = 4
WINOGRAD_PREDICT_TILE = 2
# Series (maps of height 1) with kernels of 3 to 7 taps run by the 1-D
# Winograd F(n + 1 - r, r) of _winograd1d.h.  Prediction: n = 8 points,
# 2.25-2.5x fewer multiplications for 3 to 6 taps (1.75x for 7), float32
# errors only about twice im2col's.  Training: 10 points for 4 to 7 taps
# (3x fewer for 5), errors about 4x the 8 points' (mean 3e-6 of the outputs'
# size), as harmless to stochastic gradients as F(4x4, 3x3)'s.  The FCN's
# 128 -> 256-channel layer of 5 taps took 4.2 ms forward on 16 OSULeaf series
# with 10 points, 4.7 with 8 and 9.6 by im2col (1 thread).
WINOGRAD_SERIES_TILE = _conv.WINOGRAD_SERIES_TILE
WINOGRAD_SERIES_TRAINING_TILE = _conv.WINOGRAD_SERIES_TRAINING_TILE
# For 3 taps, 10 points save little (1.25 multiplications per output against
# 1.33, and as much less transformed data) at 4x the error: the FCN's
# 256 -> 128 layer took 3.42 ms forward (16 OSULeaf series) with 10 points,
# 3.40 with 8; the 128 -> 256 one with 5 taps 4.37 against 4.97.
WINOGRAD_SERIES_TRAINING_MIN_KERNEL = 4
WINOGRAD_SERIES_KERNELS = range(3, 8)
# ... when a chunk of samples holds at least this many tiles: each of the 8
# or 10 GEMMs of a chunk packs a plane of weights, which few rows do not pay
# for.
# The FCN on ItalyPowerDemand (24 steps, batch 6: chunks of 2 series, 12
# tiles) took 0.024 s per epoch by Winograd against 0.019 by im2col (2
# threads); on random series of 24 steps at batch 16 (24 tiles) 0.055 /
# 0.058 (1 thread), of 64 steps 0.098 / 0.120.
WINOGRAD_SERIES_MIN_TILES = 24
# Winograd's scratch per chunk (transformed tiles and GEMM outputs) is kept
# under this many values, by tile.  F(2x2): 1 MiB in float32; measured on
# 128 images (1 thread), 64->64 channels at 14x14 took 370-378 ms per 10k
# images with chunks of 0.4-1.6 MiB and 556 ms from 2.4 MiB on; 64->64 at
# 7x7, 111-114 ms up to 0.8 MiB and 160 at 2.6 MiB.  F(4x4), in training:
# 1.5 MiB, and no cap of TARGET_CHUNK_ROWS (one 28x28 image per chunk left
# its GEMMs 49 tiles tall); the vgg() step at batch 128 (1 thread) took
# 74 ms with 0.5 MiB, 66-68 with 1 MiB, 64-67 with 1.5 MiB, 65-66 with 2-3.
#
# Series: 1.5 MiB values (6 MiB in float32, in L3).  The FCN's layers on 16
# OSULeaf series of 427 steps (1 thread, forward + backward ms per batch):
# 128 -> 256 channels, 5 taps, 20.0 with chunks of one series (0.33 Mi
# values), 16.9 with 4 (1.4 Mi), 17.6 with 8 (2.8 Mi); 256 -> 128, 3 taps,
# 14.6, 11.9 and 12.0.
WINOGRAD_CHUNK_VALUES = {2: 256 * 1024, 4: 384 * 1024,
                         WINOGRAD_SERIES_TILE: 1536 * 1024,
                         WINOGRAD_SERIES_TRAINING_TILE: 1536 * 1024}


def balanced_chunk(n_samples, samples_per_chunk):
    """Samples per chunk for a call on ``n_samples``: at most
    ``samples_per_chunk``, in a multiple of CHUNK_GROUP chunks of near-equal
    size (the last may be shorter).  Never more than
    ``chunk_count(n_samples, samples_per_chunk)`` chunks."""
    if n_samples == 0:
        return samples_per_chunk
    return max(1, -(-n_samples // chunk_count(n_samples, samples_per_chunk)))


def chunk_count(n_samples, samples_per_chunk):
    """The chunk count balanced_chunk aims at (an upper bound of the chunks
    its size makes): what weight-gradient scratch must hold."""
    n_chunks = -(-n_samples // samples_per_chunk)
    return -(-n_chunks // CHUNK_GROUP) * CHUNK_GROUP


@dataclass(frozen=True, repr=False)
class Conv2D(LayerSpec):
    """2-D convolution followed by the estimator's (or its own) activation.

    Parameters
    ----------
    filters : int
        Number of output channels.
    kernel_size : int or (int, int), default=3
        Height and width of the kernel.
    stride : int or (int, int), default=1
        Step between neighbouring windows.
    padding : {"same", "valid"} or int or (int, int), default="same"
        "valid" uses no padding; "same" pads with zeros so that the output has
        ``ceil(size / stride)`` positions (TensorFlow's convention: an odd
        total padding puts the extra zero at the bottom/right); integers pad
        that many zeros on both sides.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or None, \
            default=None
        Activation after the convolution; None uses the estimator's
        ``activation``.  Use "identity" to follow it with other layers (e.g.
        an ``Activation``) before the non-linearity.
    dilation : int or (int, int), default=1
        Spacing between the kernel's taps: a kernel of size k covers
        ``(k - 1) * dilation + 1`` positions ("same" padding accounts for it).
    """

    filters: int
    kernel_size: object = 3
    stride: object = 1
    padding: object = "same"
    activation: object = None
    dilation: object = 1
    spatial_dims = 2

    def __post_init__(self):
        check_int(self.filters, "Conv2D filters")
        as_pair(self.kernel_size, "Conv2D kernel_size", 1)
        as_pair(self.stride, "Conv2D stride", 1)
        if not (isinstance(self.padding, str) and self.padding in ("same", "valid")):
            as_pair(self.padding, "Conv2D padding ('same', 'valid' or ints)", 0)
        check_activation(self.activation, "Conv2D")
        as_pair(self.dilation, "Conv2D dilation", 1)


def same_padding(size, kernel, stride):
    """(before, after) zeros so that the output has ceil(size / stride) positions."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@register(Conv2D)
class ConvLayer(KernelCallLayer):
    """Convolution + bias + activation, optionally + max pooling, fused."""

    def __init__(self, spec, input_shape, context, path):
        require_feature_map(input_shape, spec, path)
        height, width, channels = input_shape
        self.path = path
        self.weight_init = context.weight_init
        self.kernel_h, self.kernel_w = as_pair(spec.kernel_size, "kernel_size", 1)
        self.stride_h, self.stride_w = as_pair(spec.stride, "stride", 1)
        self.dilation_h, self.dilation_w = as_pair(spec.dilation, "dilation", 1)
        # The positions a dilated kernel spans.
        span_h = (self.kernel_h - 1) * self.dilation_h + 1
        span_w = (self.kernel_w - 1) * self.dilation_w + 1
        self.activation = spec.activation or context.activation
        self.filters = spec.filters
        if spec.padding == "valid":
            pad_h = pad_w = (0, 0)
        elif spec.padding == "same":
            pad_h = same_padding(height, span_h, self.stride_h)
            pad_w = same_padding(width, span_w, self.stride_w)
        else:
            ph, pw = as_pair(spec.padding, "padding", 0)
            pad_h, pad_w = (ph, ph), (pw, pw)
        self.pad_top, self.pad_left = pad_h[0], pad_w[0]
        padded_h, padded_w = height + sum(pad_h), width + sum(pad_w)
        if span_h > padded_h or span_w > padded_w:
            dilated = (f" (dilated to {span_h}x{span_w})"
                       if (span_h, span_w) != (self.kernel_h, self.kernel_w) else "")
            raise ValueError(
                f"{self.location()} = {spec!r}: its {self.kernel_h}x"
                f"{self.kernel_w} kernel{dilated} does not fit the {height}x{width} "
                f"feature map it receives (padded to {padded_h}x{padded_w}). Use a "
                "smaller kernel_size or dilation, padding='same', or fewer pooling "
                "layers before it.")
        out_h = (padded_h - span_h) // self.stride_h + 1
        out_w = (padded_w - span_w) // self.stride_w + 1
        self.input_shape = (height, width, channels)
        self.conv_shape = self.output_shape = (out_h, out_w, spec.filters)
        self.taps = self.kernel_h * self.kernel_w * channels
        # Samples per chunk of im2col; allocate sets samples_per_chunk.
        self.im2col_chunk = self.samples_per_chunk = max(
            1, TARGET_CHUNK_ROWS // (out_h * out_w))
        plain = ((self.stride_h, self.stride_w) == (1, 1)
                 and (self.dilation_h, self.dilation_w) == (1, 1)
                 and channels >= WINOGRAD_MIN_CHANNELS)
        # Winograd for series: maps and kernels of height 1.
        self.winograd_series = (plain and height == out_h == self.kernel_h == 1
                                and self.kernel_w in WINOGRAD_SERIES_KERNELS)
        self.winograd = self.winograd_series or (
            plain and (self.kernel_h, self.kernel_w) == (3, 3))
        # Samples per chunk of a Winograd convolution, by tile (allocate
        # picks one): scratch per sample, forward or input gradient (tiles
        # of the output, or of the input).
        self.winograd_chunks = {}
        for tile, values in WINOGRAD_CHUNK_VALUES.items():
            if tile in (WINOGRAD_SERIES_TILE, WINOGRAD_SERIES_TRAINING_TILE):
                outputs = tile + 1 - self.kernel_w  # per tile of ``tile`` points
                per_sample = tile * -(-max(out_w, width) // outputs)
            else:
                per_sample = max(
                    (tile + 2) ** 2 * -(-rows // tile) * -(-columns // tile)
                    for rows, columns in ((out_h, out_w), (height, width)))
            per_sample *= channels + spec.filters
            cap = self.im2col_chunk if tile == 2 else values
            self.winograd_chunks[tile] = max(1, min(cap, values // per_sample))
        self.name = f"Conv2D({spec.filters}, {self.kernel_h}x{self.kernel_w})"
        self.pool = None
        # In predict, a BatchNormalization right after the convolution is
        # folded in: its per-channel multiply-add joins the bias in the
        # kernel's epilogue (and a following activation and max-pool fuse
        # too), which saves a pass over the feature map.  Only the
        # per-channel coefficients are computed, at each forward, from the
        # arrays as they are: nothing goes stale when training resumes.
        self.fold_batchnorm = context.inference
        self.batchnorm = None

    @property
    def activation_code(self):
        return ACTIVATION_CODES[self.activation]

    def absorb(self, following):
        # Imported here: these modules import this one's neighbours.
        from ._batchnorm import BatchNormLayer
        from ._pool import PoolLayer

        if self.pool is not None:
            return False
        if (self.fold_batchnorm and self.batchnorm is None
                and self.activation == "identity"
                and isinstance(following, BatchNormLayer)):
            self.batchnorm = following
            self.name += " + BatchNormalization"
            return True
        if absorb_activation(self, following):
            return True
        if isinstance(following, PoolLayer) and following.is_max:
            self.pool = following
            self.output_shape = following.output_shape
            self.name += f" + {following.name}"
            return True
        return False

    def parameters(self):
        fan_in = self.taps
        fan_out = self.kernel_h * self.kernel_w * self.filters
        return {
            "weights": ParamInfo(
                (self.kernel_h, self.kernel_w, self.input_shape[2], self.filters),
                True, uniform_init(fan_in, fan_out, self.activation, self.weight_init)),
            "bias": ParamInfo((self.filters,), False, bias_init(fan_in, self.weight_init)),
        }

    def children(self):
        # The folded BatchNormalization: its arrays are bound through it.
        return () if self.batchnorm is None else (self.batchnorm,)

    def bind(self, params, state):
        self.weights, self.bias = params["weights"], params["bias"]
        self.weights_2d = self.weights.reshape(self.taps, self.filters)
        # Where _epilogue writes the folded multiplier and bias.
        self.folded = (np.empty_like(self.bias), np.empty_like(self.bias))
        # Nothing prepared or kept refers to the arrays bound before.
        self.prepared = None
        self._calls = {}

    def _epilogue(self):
        """``(multiplier, bias, nonnegative)`` per output channel: the folded
        BatchNormalization's ``(conv + b - mean) * m + shift`` as
        ``conv * m + bias``, or ``(None, bias, True)`` without one.
        ``nonnegative``: no multiplier is negative.  Computed at each call
        (in one kernel, into buffers kept for the next), so that it never
        goes stale when training resumes."""
        if self.batchnorm is None:
            return None, self.bias, True
        bn = self.batchnorm
        multiplier, bias = self.folded
        nonnegative = _conv.fold_batchnorm(self.bias, bn.scale, bn.shift, bn.running_mean,
                                           bn.running_var, bn.epsilon, multiplier, bias)
        return multiplier, bias, nonnegative

    def allocate(self, batch_size, dtype, n_threads, training, needs_input_grad):
        self.training = training
        self.needs_input_grad = training and needs_input_grad
        self.prepared = None
        self._calls = {}
        out_h, out_w, _ = self.conv_shape
        self.output = np.empty((batch_size, *self.output_shape), dtype=dtype)
        use_own_products()
        if self.winograd_series:
            tile = (WINOGRAD_SERIES_TRAINING_TILE
                    if training and self.kernel_w >= WINOGRAD_SERIES_TRAINING_MIN_KERNEL
                    else WINOGRAD_SERIES_TILE)
        else:
            tile = WINOGRAD_TRAINING_TILE if training else WINOGRAD_PREDICT_TILE
        # Series' Winograd only where a batch's chunks hold enough tiles.
        self.winograd_active = self.winograd and (
            not self.winograd_series or self.series_tiles(
                balanced_chunk(batch_size, self.winograd_chunks[tile]), tile)
            >= WINOGRAD_SERIES_MIN_TILES)
        self.samples_per_chunk = (self.winograd_chunks[tile] if self.winograd_active
                                  else self.im2col_chunk)
        if not training and not self.winograd_active and has_small_matrix_kernels():
            # Products small enough for BLAS kernels that pack nothing.
            per_sample = out_h * out_w * self.taps * self.filters
            self.samples_per_chunk = min(
                self.samples_per_chunk, max(1, SMALL_GEMM_MULTIPLY_ADDS // per_sample))
        chunk_rows = self.samples_per_chunk * out_h * out_w
        height, width, channels = self.input_shape
        # The input gradient, a convolution of the output gradient, by
        # Winograd too when it has enough channels.
        self.winograd_back = (self.winograd_active and self.needs_input_grad
                              and self.filters >= WINOGRAD_MIN_CHANNELS)
        # im2col runs on whole chunks unless Winograd does every convolution
        # of the chunk; then only on one image's row blocks (few samples).
        whole_chunks = not self.winograd_active or (self.needs_input_grad
                                                    and not self.winograd_back)
        scratch = (chunk_rows if whole_chunks else out_h * out_w) * self.taps
        if self.winograd_active:
            self.winograd_weights = np.empty(
                _conv.winograd_weights_shape(channels, self.filters, tile), dtype)
            scratch = max(scratch, _conv.winograd_scratch_size(
                self.samples_per_chunk, out_h, out_w, channels, self.filters, tile,
                self.kernel_w))
        if self.winograd_back:
            self.winograd_back_weights = np.empty(
                _conv.winograd_weights_shape(self.filters, channels, tile), dtype)
            scratch = max(scratch, _conv.winograd_scratch_size(
                self.samples_per_chunk, height, width, self.filters, channels, tile,
                self.kernel_w))
        # A few images in blocks of rows (see ROW_SPLIT_MAX_SAMPLES): by
        # Winograd where BLAS's small-matrix kernels take a block's products,
        # one block per thread where they take even the whole image's.
        small = not training and not self.winograd_series and has_small_matrix_kernels()
        self.winograd_row_blocks = (
            small and self.winograd_active
            and self._row_block_tiles() * channels * self.filters
            <= SMALL_GEMM_MULTIPLY_ADDS)
        whole_image = (self._row_block_tiles(n_blocks=1) * channels if self.winograd_active
                       else out_h * out_w * self.taps)
        self.blocks_per_thread = (
            small and (self.winograd_active or channels > 1) and self.filters % 16 == 0
            and whole_image * self.filters <= SMALL_GEMM_MULTIPLY_ADDS)
        if self.winograd_active and not training and not self.winograd_row_blocks:
            # A few series convolve as one chunk in all threads' scratch, a
            # few images one at a time.
            few = (_conv.winograd_scratch_size(
                ROW_SPLIT_MAX_SAMPLES - 1, out_h, out_w, channels, self.filters, tile,
                self.kernel_w) if self.winograd_series else
                _conv.winograd_shared_scratch_size(out_h, out_w, channels, self.filters,
                                                   tile, n_threads))
            scratch = max(scratch, -(-few // n_threads))
        self.cols = np.empty((n_threads, scratch), dtype=dtype)
        if self.pool:
            # Only backward reads the winners' positions: prediction keeps none.
            self.argmax = (np.empty((batch_size, *self.output_shape), dtype=np.int32)
                           if training else None)
            self.conv_buffer = np.empty((n_threads, chunk_rows * self.filters), dtype)
        if training:
            n_chunks = chunk_count(batch_size, self.samples_per_chunk)
            # Winograd layers sum their weight gradient in the Winograd
            # domain: 8, 16 or 36 padded planes per chunk, then one buffer.
            partial_size = self.taps * self.filters
            self.winograd_weight_grad = None
            if self.winograd_active:
                self.winograd_weight_grad = np.empty_like(self.winograd_weights)
                partial_size = self.winograd_weight_grad.size
            self.weight_partials = np.empty((n_chunks, partial_size), dtype)
            self.bias_partials = np.empty((n_chunks, self.filters), np.float64)
            self.grad_weights = np.empty(self.weights.shape, dtype=dtype)
            self.grad_bias = np.empty(self.bias.shape, dtype=dtype)
            shape = ((batch_size, *self.input_shape) if self.needs_input_grad
                     else (0, 1, 1, 1))
            self.grad_input = np.empty(shape, dtype=dtype)

    def scratch_size(self):
        return self.cols.size

    def use_scratch(self, buffer):
        self.cols = buffer[:self.cols.size].reshape(self.cols.shape)
        self._calls = {}

    def _rows_per_block(self, winograd, n_blocks=ROW_BLOCKS):
        """Rows per block (pooled rows for a fused max-pool) when a few images
        split into ``n_blocks`` blocks of rows.  By Winograd the blocks start
        on the image's own F(2x2) tiles: whole tiles of rows, or pooled rows
        whose windows start on an even conv row."""
        tile = WINOGRAD_PREDICT_TILE if winograd else 1
        if self.pool:
            rows = self.pool.output_shape[0]
            align = tile // math.gcd(self.pool.stride_h, tile)
        else:
            rows, align = self.conv_shape[0], tile
        return -(-rows // (n_blocks * align)) * align

    def _row_blocks(self, n_threads):
        """Blocks of rows that each of a few images splits into: one per
        thread (at least two with a max-pool) where blocks_per_thread, else
        ROW_BLOCKS (see ROW_SPLIT_MAX_SAMPLES)."""
        if not self.blocks_per_thread:
            return ROW_BLOCKS
        return max(n_threads, 2 if self.pool else 1)

    def _row_block_tiles(self, n_blocks=ROW_BLOCKS):
        """Winograd tiles of one of ``n_blocks`` blocks of rows of an image
        (see _rows_per_block): the height of its GEMMs."""
        out_h, out_w, _ = self.conv_shape
        rows = self._rows_per_block(winograd=True, n_blocks=n_blocks)
        if self.pool:
            rows = (rows - 1) * self.pool.stride_h + self.pool.pool_h
        tile = WINOGRAD_PREDICT_TILE
        return -(-min(rows, out_h) // tile) * -(-out_w // tile)

    def series_tiles(self, n_samples, points=WINOGRAD_SERIES_TILE):
        """The series' Winograd tiles of ``n_samples`` output series, for a
        transform of ``points`` points."""
        return n_samples * -(-self.conv_shape[1] // (points + 1 - self.kernel_w))

    def _takes_winograd(self, few):
        """Whether this forward convolves by Winograd: not for a few series
        of fewer than WINOGRAD_SERIES_MIN_TILES tiles each (im2col; more,
        and they are one chunk that all threads share; a few images are
        convolved one at a time by all threads)."""
        return self.winograd_active and not (
            few and self.winograd_series
            and self.series_tiles(1) < WINOGRAD_SERIES_MIN_TILES)

    def _transformed_weights(self, multiplier, n_threads):
        """The Winograd transform of the weights as they are now (times the
        folded BatchNormalization's multiplier): about 2-5 us for 32 -> 64
        channels."""
        _conv.winograd_weights(self.weights, self.winograd_weights, multiplier,
                               n_threads=n_threads)
        return self.winograd_weights

    def prepare(self, n_threads):
        """Compute, for the prediction passes that follow, what they take
        from the parameters alone: the folded BatchNormalization and the
        Winograd weights.  Without it each pass computes them afresh (2-5 us
        per Winograd layer, 1 us per fold).  ``Network.prepare`` calls it
        again whenever an array of ``prepare_inputs`` changed."""
        if self.training:
            return
        multiplier, bias, nonnegative = self._epilogue()
        transformed = (self._transformed_weights(multiplier, n_threads)
                       if self.winograd_active else None)
        self.prepared = (multiplier, bias, nonnegative, transformed)
        self._calls = {}

    def prepare_inputs(self):
        """The arrays ``prepare`` derives values from: the folded
        BatchNormalization's and the bias, and the weights only where their
        Winograd transform is kept.  An im2col kernel reads the weights
        themselves at each call, so an edit takes effect without a new
        ``prepare``: leaving them out of the network's snapshot spares one
        resnet2d image a third of the comparison (about 100 of its 324 KB)."""
        if self.training:
            return []
        inputs = [self.weights, self.bias] if self.winograd_active else [self.bias]
        if self.batchnorm is not None:
            bn = self.batchnorm
            inputs += [bn.scale, bn.shift, bn.running_mean, bn.running_var]
        return inputs

    def adds_in_epilogue(self):
        """Whether ``forward`` can add an ``addend``: in prediction, with no
        activation or pooling of its own."""
        return not self.training and self.pool is None and self.activation == "identity"

    def forward(self, x, n_threads, addend=None, activation=None):
        """The layer's output; given ``addend`` (see adds_in_epilogue),
        ``activation(conv(x) + addend)`` instead: a residual block's sum and
        activation fused into its last convolution."""
        return super().forward(x, n_threads, addend, activation)

    def _bound_call(self, x, n_threads, addend=None, activation=None):
        self.input = x
        key = (x.shape[0], n_threads, addend is not None, activation)
        if self.prepared is None:
            call = self._kernel_call(*key)
        else:
            # Prepared for prediction: the kernel's arguments other than x
            # and the addend depend on this key only, so they are worked out
            # once (one resnet2d image: 155.5-156.0 -> 150.3-153.6 us on 1
            # thread); bind(), allocate() and prepare() forget them.
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = self._kernel_call(*key)
        kernel, arguments, out, takes_addend = call
        if takes_addend:
            return kernel, (x, *arguments, addend), out
        return kernel, (x, *arguments), out

    def _kernel_call(self, n, n_threads, with_addend, activation):
        """``(kernel, arguments, out, takes_addend)`` for a forward of ``n``
        samples: the kernel takes x, then the arguments (then the addend, if
        it takes one)."""
        out = self.output[:n]
        chunk = balanced_chunk(n, self.samples_per_chunk)
        if self.prepared is not None:
            multiplier, bias, nonnegative, transformed = self.prepared
        else:
            multiplier, bias, nonnegative = self._epilogue()
            transformed = None
        # Predicting a few images: split each into blocks of rows.
        few = not self.training and n < ROW_SPLIT_MAX_SAMPLES
        # A few images by Winograd: blocks of rows, or shared (see
        # ROW_SPLIT_MAX_SAMPLES).
        share = few and self.winograd_active and not self.winograd_series \
            and not self.winograd_row_blocks
        if share and n == 1 and n_threads == 1:
            # One thread gains nothing from sharing the image: a chunk of
            # it runs the same transforms and GEMMs on the same data (the
            # same results) without the shared path's per-tile epilogues and
            # parallel regions (one resnet2d image's forward: 150-160 -> 141-147
            # us; its predict_proba 169-172 -> 160-165 us).
            few = share = False
        # In prediction, a ReLU or identity epilogue with no negative
        # multiplier commutes with the max-pool: run it on the pooled
        # values only (exactly the same results, see conv2d_maxpool_forward).
        pool_first = (not self.training and nonnegative
                      and self.activation in ("relu", "identity"))
        winograd_weights = None
        if self._takes_winograd(few):
            winograd_weights = (transformed if transformed is not None
                                else self._transformed_weights(multiplier, n_threads))
            multiplier = None  # in the transformed weights
        if self.pool:
            if with_addend:
                raise ValueError("a convolution fused with pooling takes no addend")
            pool = self.pool
            rows_per_block = (self._rows_per_block(winograd_weights is not None,
                                                   self._row_blocks(n_threads))
                              if few else 0)
            return _conv.conv2d_maxpool_forward, (
                self.weights_2d, bias, out,
                self.argmax[:n] if self.training else None,
                self.cols, self.conv_buffer,
                self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
                self.pad_top, self.pad_left, self.dilation_h, self.dilation_w,
                *self.conv_shape[:2],
                pool.pool_h, pool.pool_w, pool.stride_h, pool.stride_w,
                # A negative count asks for the shared path.
                chunk, -rows_per_block if share else rows_per_block, self.activation_code,
                n_threads, multiplier, winograd_weights, pool_first,
            ), out, False
        # Blocks of columns, for maps of one row (series).
        out_h, out_w, _ = self.conv_shape
        rows_per_block = (self._rows_per_block(winograd_weights is not None,
                                               self._row_blocks(n_threads))
                          if few and out_h > 1 else 0)
        columns_per_block = (max(-(-out_w // ROW_BLOCKS), MIN_BLOCK_COLUMNS)
                             if few and out_h == 1 else 0)
        return _conv.conv2d_forward, (
            self.weights_2d, bias, out, self.cols,
            self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
            self.pad_top, self.pad_left, self.dilation_h, self.dilation_w,
            chunk, activation if with_addend else self.activation_code, n_threads,
            multiplier, -rows_per_block if share else rows_per_block, columns_per_block,
            winograd_weights,  # a negative count of rows asks for the shared path
        ), out, True

    def export_onnx(self, graph, x, input_shape):
        # Conv weights are (filters, channels, kh, kw) in ONNX; the folded
        # BatchNormalization scales each filter.
        multiplier, bias, _ = self._epilogue()
        weights = self.weights.astype(np.float64)
        if multiplier is not None:
            weights = weights * multiplier.astype(np.float64)
        height, width, _ = self.input_shape
        pads = []
        for size, kernel, stride, dilation, before, out in (
                (height, self.kernel_h, self.stride_h, self.dilation_h, self.pad_top,
                 self.conv_shape[0]),
                (width, self.kernel_w, self.stride_w, self.dilation_w, self.pad_left,
                 self.conv_shape[1])):
            span = (kernel - 1) * dilation + 1
            pads.append((before, max(0, (out - 1) * stride + span - size - before)))
        x = graph.node(
            "Conv", [x, graph.constant(weights.transpose(3, 2, 0, 1), "weights"),
                     graph.constant(bias, "bias")],
            kernel_shape=[self.kernel_h, self.kernel_w],
            strides=[self.stride_h, self.stride_w],
            dilations=[self.dilation_h, self.dilation_w],
            pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]])
        x = graph.activation(x, self.activation)
        return self.pool.export_onnx(graph, x, self.conv_shape) if self.pool else x

    def _winograd_back_weights(self, n_threads):
        """Winograd weights of the input gradient's convolution: the kernel
        turned half a turn (a series' taps reversed), input and output
        channels swapped.  Swapped in a copy rather than read transposed by
        the products, which then go to our own kernel where the forward's do
        (a multiple of 64 input channels): the FCN's 128 -> 256 and 256 ->
        128 layers' backward took 0.954x and 0.964x as long (1 thread)."""
        if not self.winograd_back:
            return None
        turned = np.ascontiguousarray(self.weights[::-1, ::-1].transpose(0, 1, 3, 2))
        _conv.winograd_weights(turned, self.winograd_back_weights, n_threads=n_threads)
        return self.winograd_back_weights

    def keeps_grad_output(self):
        """Without activation or pooling: conv2d_backward's in-place
        derivative is then the identity's, which writes nothing."""
        return self.activation == "identity" and not self.pool

    def backward(self, grad_output, n_threads):
        n = grad_output.shape[0]
        chunk = balanced_chunk(n, self.samples_per_chunk)
        back_weights = self._winograd_back_weights(n_threads)
        grad_input = self.grad_input[:n] if self.needs_input_grad else self.grad_input
        grad_weights_2d = self.grad_weights.reshape(self.taps, self.filters)
        if self.pool:
            pool = self.pool
            _conv.conv2d_maxpool_backward(
                self.input, self.weights_2d, self.output[:n], self.argmax[:n],
                grad_output, grad_input, grad_weights_2d, self.grad_bias,
                self.weight_partials, self.bias_partials, self.cols, self.conv_buffer,
                self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
                self.pad_top, self.pad_left, self.dilation_h, self.dilation_w,
                *self.conv_shape[:2],
                pool.pool_h, pool.pool_w, pool.stride_h, pool.stride_w,
                chunk, self.activation_code,
                self.needs_input_grad, n_threads, back_weights,
                self.winograd_weight_grad,
            )
        else:
            _conv.conv2d_backward(
                self.input, self.weights_2d, self.output[:n], grad_output, grad_input,
                grad_weights_2d, self.grad_bias,
                self.weight_partials, self.bias_partials, self.cols,
                self.kernel_h, self.kernel_w, self.stride_h, self.stride_w,
                self.pad_top, self.pad_left, self.dilation_h, self.dilation_w,
                chunk, self.activation_code, self.needs_input_grad,
                n_threads, back_weights, self.winograd_weight_grad,
            )
        return grad_input if self.needs_input_grad else None

    def grads(self):
        return {"weights": self.grad_weights, "bias": self.grad_bias}
