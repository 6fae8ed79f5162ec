"""
Time-series classification with an FCN, and where it looks
==========================================================

The fully convolutional network of Wang et al. (2017) on GunPoint (from the
UCR archive, as the ``aeon`` package ships it; synthetic series with a bump
otherwise): the series of each class, the training history, and class
activation maps, which show which steps of a series push the network towards
its class.
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import fcn
from sklearn_cnn.datasets import load_ucr
from sklearn_cnn.inspection import TrainingHistoryDisplay, class_activation_maps

QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

try:
    X_train, y_train = load_ucr("GunPoint", return_X_y=True, dtype=np.float32)
    X_test, y_test = load_ucr("GunPoint", "test", return_X_y=True, dtype=np.float32)
    name = "GunPoint"
except FileNotFoundError:  # no aeon: series with or without a bump somewhere
    rng = np.random.RandomState(0)
    X = rng.normal(0, 0.3, (300, 1, 150)).astype(np.float32)
    y = rng.randint(0, 2, 300).astype(str)
    for i in np.flatnonzero(y == "1"):
        start = rng.randint(0, 130)
        X[i, 0, start:start + 20] += 2 * np.hanning(20)
    X_train, X_test, y_train, y_test = X[:100], X[100:], y[:100], y[100:]
    name = "synthetic bumps"

# %%
# The series of each class (GunPoint: an actor draws a gun, or only points).
classes = np.unique(y_train)
fig, axes = plt.subplots(1, len(classes), figsize=(10, 3), sharey=True)
for ax, label in zip(axes, classes):
    ax.plot(X_train[y_train == label, 0].T, color="grey", alpha=0.3)
    ax.set(title=f"{name}: class {label}", xlabel="step")
fig.tight_layout()

# %%
# Train the FCN: 3 blocks of Conv1D + BatchNormalization + ReLU, global
# average pooling, softmax.  The papers train 1500-2000 epochs; MLP's stopping
# rule would stop far earlier, so ``n_iter_no_change`` is set to the epochs.
epochs = 30 if QUICK else 300
layers = fcn(filters=(16, 32, 16)) if QUICK else fcn()
clf = CNNClassifier((), conv_layers=layers, batch_size=16, max_iter=epochs,
                    n_iter_no_change=epochs, random_state=0).fit(X_train, y_train)
print(f"{name}: test accuracy {clf.score(X_test, y_test):.4f} after {clf.n_iter_} "
      "epochs")
TrainingHistoryDisplay.from_estimator(clf, name="FCN training loss")

# %%
# Class activation maps: for each step, how much the last convolution's
# features there push towards the series' class.  One test series per class,
# coloured by its map, scaled to [-1, 1] per series.
cams = class_activation_maps(clf, X_test)
fig, axes = plt.subplots(1, len(classes), figsize=(10, 3), sharey=True)
for ax, label in zip(axes, classes):
    index = np.flatnonzero(y_test == label)[0]
    k = int(np.searchsorted(clf.classes_, label))
    steps = np.arange(X_test.shape[2])
    cam = cams[index, :, k] / np.abs(cams[index, :, k]).max()
    points = ax.scatter(steps, X_test[index, 0], c=cam, cmap="coolwarm", vmin=-1,
                        vmax=1, s=8)
    ax.plot(steps, X_test[index, 0], color="black", linewidth=0.5)
    ax.set(title=f"class {label}: activation map", xlabel="step")
fig.colorbar(points, ax=axes, label="class activation (scaled)")
