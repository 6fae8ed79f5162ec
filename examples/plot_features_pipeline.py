"""
CNN features feeding another estimator in a Pipeline
====================================================

``transform`` returns the last hidden layer's activations.  Here a small CNN
is the first step of a Pipeline and a LogisticRegression the second; the plot
compares it with a LogisticRegression on raw pixels and shows the CNN
features of the test set in two dimensions (PCA).
"""

import os
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

# Small settings when the test suite or a quick docs build runs the example.
QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype("float32")
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

cnn = CNNClassifier(conv_layers=(Conv2D(16), MaxPool2D()), hidden_layer_sizes=(32,),
                    image_shape=(8, 8), max_iter=5 if QUICK else 20,
                    batch_size=64, random_state=0)
pipe = make_pipeline(cnn, LogisticRegression(max_iter=2000)).fit(X_train, y_train)
raw = LogisticRegression(max_iter=2000).fit(X_train, y_train)
scores = {"logistic regression\non pixels": raw.score(X_test, y_test),
          "logistic regression\non CNN features": pipe.score(X_test, y_test)}

features = pipe[0].transform(X_test)
points = PCA(n_components=2, random_state=0).fit_transform(features)
fig, (ax_bar, ax_pca) = plt.subplots(1, 2, figsize=(11, 4.5))
bars = ax_bar.bar(list(scores), list(scores.values()), color=["C7", "C0"])
ax_bar.bar_label(bars, fmt="%.3f")
ax_bar.set(ylim=(0.8, 1.0), ylabel="test accuracy", title="Same classifier, two inputs")
scatter = ax_pca.scatter(points[:, 0], points[:, 1], c=y_test, cmap="tab10", s=12)
ax_pca.legend(*scatter.legend_elements(), title="digit", fontsize=7, loc="best")
ax_pca.set(title=f"{features.shape[1]} CNN features (PCA to 2-D)",
           xticks=[], yticks=[])
fig.tight_layout()
print(f"pixels {scores[list(scores)[0]]:.4f}, CNN features "
      f"{scores[list(scores)[1]]:.4f}")
