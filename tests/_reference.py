"""Plain NumPy references for every kernel: slow, obvious, trusted.

Feature maps are NHWC; convolution weights are (kh, kw, in_channels,
out_channels), as in the package.
"""

import numpy as np

ACTIVATIONS = {
    "identity": (lambda z: z, lambda y: np.ones_like(y)),
    "relu": (lambda z: np.maximum(z, 0), lambda y: (y > 0).astype(y.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z),
                   lambda y: np.where(y > 0, 1, 0.01).astype(y.dtype)),
    "tanh": (np.tanh, lambda y: 1 - y * y),
    "logistic": (lambda z: 1 / (1 + np.exp(-z)), lambda y: y * (1 - y)),
}


def padded(x, pad_top, pad_left, out_h, out_w, kernel, stride):
    """Zero-pad x so that every window of the output fits."""
    n, height, width, channels = x.shape
    need_h = (out_h - 1) * stride[0] + kernel[0]
    need_w = (out_w - 1) * stride[1] + kernel[1]
    pad_bottom = max(need_h - height - pad_top, 0)
    pad_right = max(need_w - width - pad_left, 0)
    return np.pad(x, ((0, 0), (pad_top, pad_bottom), (pad_left, pad_right), (0, 0)))


def conv2d_forward(x, weights, bias, stride, pads, out_hw, activation="identity"):
    kh_size, kw_size = weights.shape[:2]
    out_h, out_w = out_hw
    xp = padded(x, pads[0], pads[1], out_h, out_w, (kh_size, kw_size), stride)
    out = np.zeros((x.shape[0], out_h, out_w, weights.shape[3]), dtype=np.float64)
    for kh in range(kh_size):
        for kw in range(kw_size):
            patch = xp[:, kh:kh + stride[0] * (out_h - 1) + 1:stride[0],
                       kw:kw + stride[1] * (out_w - 1) + 1:stride[1], :]
            out += patch.astype(np.float64) @ weights[kh, kw].astype(np.float64)
    out += bias
    return ACTIVATIONS[activation][0](out)


def conv2d_backward(x, weights, output, grad_output, stride, pads, activation="identity"):
    """Return (grad_input, grad_weights, grad_bias) as float64."""
    kh_size, kw_size = weights.shape[:2]
    out_h, out_w = output.shape[1:3]
    dz = grad_output.astype(np.float64) * ACTIVATIONS[activation][1](
        output.astype(np.float64))
    xp = padded(x, pads[0], pads[1], out_h, out_w, (kh_size, kw_size), stride)
    xp = xp.astype(np.float64)
    grad_xp = np.zeros_like(xp)
    grad_w = np.zeros(weights.shape, dtype=np.float64)
    for kh in range(kh_size):
        for kw in range(kw_size):
            window = (slice(None), slice(kh, kh + stride[0] * (out_h - 1) + 1, stride[0]),
                      slice(kw, kw + stride[1] * (out_w - 1) + 1, stride[1]), slice(None))
            patch = xp[window]
            grad_w[kh, kw] = np.einsum("nhwc,nhwo->co", patch, dz)
            grad_xp[window] += dz @ weights[kh, kw].astype(np.float64).T
    height, width = x.shape[1:3]
    grad_x = grad_xp[:, pads[0]:pads[0] + height, pads[1]:pads[1] + width, :]
    return grad_x, grad_w, dz.sum(axis=(0, 1, 2))


def pool_windows(x, pool, stride):
    """Array (N, OH, OW, ph*pw, C) of every window's values."""
    n, height, width, channels = x.shape
    out_h = (height - pool[0]) // stride[0] + 1
    out_w = (width - pool[1]) // stride[1] + 1
    windows = np.empty((n, out_h, out_w, pool[0] * pool[1], channels), dtype=x.dtype)
    for kh in range(pool[0]):
        for kw in range(pool[1]):
            windows[:, :, :, kh * pool[1] + kw, :] = x[
                :, kh:kh + stride[0] * (out_h - 1) + 1:stride[0],
                kw:kw + stride[1] * (out_w - 1) + 1:stride[1], :]
    return windows


def max_pool2d_forward(x, pool, stride):
    return pool_windows(x, pool, stride).max(axis=3)


def max_pool2d_backward(x, grad_output, pool, stride):
    """Gradient routed to the first maximum of each window (row-major order)."""
    windows = pool_windows(x, pool, stride)
    first = windows.argmax(axis=3)  # first occurrence of the maximum
    grad_x = np.zeros(x.shape, dtype=np.float64)
    n, out_h, out_w, channels = grad_output.shape
    for i in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                for c in range(channels):
                    kh, kw = divmod(first[i, oh, ow, c], pool[1])
                    grad_x[i, oh * stride[0] + kh, ow * stride[1] + kw, c] += \
                        grad_output[i, oh, ow, c]
    return grad_x


def avg_pool2d_forward(x, pool, stride):
    return pool_windows(x.astype(np.float64), pool, stride).mean(axis=3)


def avg_pool2d_backward(x_shape, grad_output, pool, stride):
    grad_x = np.zeros(x_shape, dtype=np.float64)
    out_h, out_w = grad_output.shape[1:3]
    share = grad_output.astype(np.float64) / (pool[0] * pool[1])
    for kh in range(pool[0]):
        for kw in range(pool[1]):
            grad_x[:, kh:kh + stride[0] * (out_h - 1) + 1:stride[0],
                   kw:kw + stride[1] * (out_w - 1) + 1:stride[1], :] += share
    return grad_x


def dense_forward(x, weights, bias, activation="identity"):
    z = x.astype(np.float64) @ weights.astype(np.float64) + bias
    return ACTIVATIONS[activation][0](z)


def dense_backward(x, weights, output, grad_output, activation="identity"):
    dz = grad_output.astype(np.float64) * ACTIVATIONS[activation][1](
        output.astype(np.float64))
    return dz @ weights.astype(np.float64).T, x.astype(np.float64).T @ dz, dz.sum(0)


def softmax_cross_entropy(logits, labels, weights, smoothing=0.0):
    """Return (sum of weighted losses, gradient w.r.t. logits); the target
    distribution is ``(1 - smoothing) onehot + smoothing / K``."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    target = np.full(log_p.shape, smoothing / log_p.shape[1])
    target[rows, labels] += 1 - smoothing
    loss = -(weights[:, None] * target * log_p).sum()
    return loss, (np.exp(log_p) - target) * weights[:, None]


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else \
        {"rtol": 1e-10, "atol": 1e-12}
