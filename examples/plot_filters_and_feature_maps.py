"""What the first layer learned: its filters, and the feature maps of one image.

The first layer's weights are ``coefs_[0]``, of shape (kernel height, kernel
width, input channels, filters).  Its feature maps are recomputed here with
SciPy from those weights, which shows exactly what the layer does: a
correlation with each filter, plus the bias, through ReLU.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from _common import load_digits_images, parse_args
from scipy.signal import correlate2d

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

args = parse_args(__doc__.splitlines()[0])
X, y = load_digits_images()
clf = CNNClassifier(conv_layers=(Conv2D(16), MaxPool2D(), Conv2D(32), MaxPool2D()),
                    image_shape=(8, 8), max_iter=5 if args.quick else 30, batch_size=64,
                    random_state=0).fit(X, y)

filters = clf.coefs_[0][:, :, 0, :]  # (3, 3, 16)
bias = clf.intercepts_[0]
image = X[0].reshape(8, 8)
maps = [np.maximum(correlate2d(image, filters[:, :, k], mode="same") + bias[k], 0)
        for k in range(filters.shape[2])]

fig, axes = plt.subplots(3, 16, figsize=(16, 3.6))
limit = np.abs(filters).max()
for k in range(16):
    axes[0, k].imshow(filters[:, :, k], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1, k].imshow(image, cmap="gray_r") if k == 0 else axes[1, k].axis("off")
    axes[2, k].imshow(maps[k], cmap="viridis")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("filters")
axes[1, 0].set_ylabel(f"image ({y[0]})")
axes[2, 0].set_ylabel("maps")
fig.suptitle("First-layer 3x3 filters (red +, blue -) and their ReLU feature maps")
fig.tight_layout()
path = os.path.join(args.out, "filters_and_feature_maps.png")
fig.savefig(path, dpi=100)
print(f"wrote {path}")
