"""
Confusion matrix and misclassified images
=========================================

On Fashion-MNIST when it is installed (``apt-get install -y
dataset-fashion-mnist``), else on the digits.
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D
from sklearn_cnn.datasets import (
    FASHION_MNIST_CLASSES,
    fashion_mnist_available,
    load_fashion_mnist,
)

# Small settings when the test suite or a quick docs build runs the example.
QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

if fashion_mnist_available():
    X_train, y_train = load_fashion_mnist("train", return_X_y=True)
    X_test, y_test = load_fashion_mnist("test", return_X_y=True)
    if QUICK:
        X_train, y_train = X_train[:6000], y_train[:6000]
    side, names, name = 28, list(FASHION_MNIST_CLASSES), "Fashion-MNIST"
    epochs = 1 if QUICK else 5
else:
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y,
                                                        random_state=0)
    side, names, name = 8, [str(d) for d in range(10)], "digits"
    epochs = 5 if QUICK else 20

clf = CNNClassifier(conv_layers=(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D()),
                    image_shape=(side, side), batch_size=128, max_iter=epochs,
                    random_state=0).fit(X_train, y_train)
predicted = clf.predict(X_test)
accuracy = (predicted == y_test).mean()

fig, ax = plt.subplots(figsize=(8, 7))
ConfusionMatrixDisplay.from_predictions(y_test, predicted, display_labels=names, ax=ax,
                                        xticks_rotation=45, colorbar=False)
ax.set_title(f"{name}: test accuracy {accuracy:.3f}")
fig.tight_layout()

wrong = np.flatnonzero(predicted != y_test)[:12]
fig, axes = plt.subplots(2, 6, figsize=(10, 4.8))
for ax, index in zip(axes.ravel(), wrong):
    ax.imshow(X_test[index].reshape(side, side), cmap="gray_r")
    ax.set_title(f"{names[predicted[index]]}\n(true: {names[y_test[index]]})", fontsize=8)
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle("Misclassified test images: predicted (true)")
fig.tight_layout()
print(f"{name}: accuracy {accuracy:.4f}")
