"""
What the first layer learned: filters and feature maps
======================================================

The first convolution's weights are ``parameters_["conv_layers.0.weights"]``
(also ``coefs_[0]``), of shape (kernel height, kernel width, input channels,
filters).  :class:`~sklearn_cnn.inspection.FeatureMapsDisplay` draws them
and the layer's output for one image.  The maps are then recomputed with
SciPy from the weights alone, which shows exactly what the layer does: a
correlation with each filter, plus the bias, through ReLU.
"""

import os
import warnings

import numpy as np
from scipy.signal import correlate2d
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D
from sklearn_cnn.inspection import FeatureMapsDisplay

QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype("float32")
clf = CNNClassifier(conv_layers=(Conv2D(16), MaxPool2D(), Conv2D(32), MaxPool2D()),
                    image_shape=(8, 8), max_iter=5 if QUICK else 30, batch_size=64,
                    random_state=0).fit(X, y)

display = FeatureMapsDisplay.from_estimator(clf, X[:1], layer=0)

# %%
# The same maps from the weights, with SciPy: "same" padding, bias, ReLU.
weights = clf.parameters_["conv_layers.0.weights"][:, :, 0, :]
bias = clf.parameters_["conv_layers.0.bias"]
image = X[0].reshape(8, 8)
maps = np.stack([np.maximum(correlate2d(image, weights[:, :, k], mode="same") + bias[k],
                            0) for k in range(weights.shape[2])], axis=-1)
print("largest difference from the display's maps:",
      float(np.abs(maps - display.feature_maps).max()))
