"""
A modern training recipe, side by side with plain Adam
======================================================

The same VGG-style network (:func:`~sklearn_cnn.architectures.vgg`, with
BatchNormalization) trained twice: with plain Adam at a constant learning
rate, and with the recipe of the user guide: AdamW, a one-epoch warm-up then
linear decay of the learning rate, label smoothing, random translations
and flips of the training images, and PyTorch's smaller starting weights
(``weight_init="pytorch"``).  The test accuracy is drawn after every
epoch; ``partial_fit`` runs one epoch per call and follows the same schedule
as ``fit`` with ``max_iter`` epochs.

On Fashion-MNIST when it is installed (``apt-get install -y
dataset-fashion-mnist``; a subset of 20,000 training images here, to keep
the example short), else on the digits.  ``benchmarks/fm_recipe.py`` runs
the full 60,000 images.
"""

import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import vgg
from sklearn_cnn.augmentation import RandomFlip, RandomTranslation
from sklearn_cnn.datasets import fashion_mnist_available, load_fashion_mnist
from sklearn_cnn.schedules import LinearDecay

# Small settings when the test suite or a quick docs build runs the example.
QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

if fashion_mnist_available():
    X_train, y_train = load_fashion_mnist("train", return_X_y=True)
    X_test, y_test = load_fashion_mnist("test", return_X_y=True)
    n_train = 1000 if QUICK else 20000
    X_train, y_train = X_train[:n_train], y_train[:n_train]
    if QUICK:
        X_test, y_test = X_test[:1000], y_test[:1000]
    side, name, flip = 28, "Fashion-MNIST", (RandomFlip(),)
else:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        (X / 16).astype("float32"), y, stratify=y, random_state=0)
    # Mirrored digits are other symbols: no flips for them.
    side, name, flip = 8, "digits", ()
epochs = 2 if QUICK else 12

common = dict(hidden_layer_sizes=(256,), conv_layers=vgg(), dropout=0.3,
              batch_size=128, max_iter=epochs, image_shape=(side, side),
              random_state=0)
recipes = {
    "plain Adam": CNNClassifier(**common),
    "modern recipe": CNNClassifier(
        solver="adamw", alpha=0.05, learning_rate_init=2e-3,
        learning_rate=LinearDecay(warmup_epochs=1), label_smoothing=0.1,
        augment=(RandomTranslation(2), *flip), weight_init="pytorch", **common),
}

curves = {}
for label, clf in recipes.items():
    start, curve = time.perf_counter(), []
    for _ in range(epochs):
        clf.partial_fit(X_train, y_train, classes=np.arange(10))
        curve.append(clf.score(X_test, y_test))
    curves[label] = curve
    print(f"{label:14s} test accuracy {curve[-1]:.4f} after {epochs} epochs "
          f"({time.perf_counter() - start:.0f} s)")

# %%
# Accuracy per epoch.  The recipe starts slower (the warm-up, and harder
# training images) and ends higher: the decaying rate settles the weights,
# and the augmented images keep the network from memorising the training set.
fig, (ax_accuracy, ax_rate) = plt.subplots(1, 2, figsize=(10, 4))
for label, curve in curves.items():
    ax_accuracy.plot(np.arange(1, epochs + 1), curve, marker="o", label=label)
ax_accuracy.set(xlabel="epoch", ylabel="test accuracy", title=name)
ax_accuracy.legend()

# %%
# The learning rate of each step under the recipe's schedule.
steps_per_epoch = -(-len(X_train) // 128)
schedule = LinearDecay(warmup_epochs=1)
progress = np.arange(epochs * steps_per_epoch) / steps_per_epoch
ax_rate.plot(progress, [2e-3 * schedule.factor(p, 1 / steps_per_epoch, epochs)
                        for p in progress])
ax_rate.set(xlabel="epoch", ylabel="learning rate", title="LinearDecay(warmup_epochs=1)")
fig.tight_layout()
