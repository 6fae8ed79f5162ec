"""
GridSearchCV over architectures and learning rates
==================================================

GridSearchCV over architectures and learning rates, with a results plot.
"""

import os
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sklearn_cnn import CNNClassifier, Conv2D, MaxPool2D

# Small settings when the test suite or a quick docs build runs the example.
QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype("float32")
architectures = {
    "conv16-pool": (Conv2D(16), MaxPool2D()),
    "conv32-pool-conv64-pool": (Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D()),
    "conv16-gap": (Conv2D(16), Conv2D(32), "globalavgpool"),
}
rates = [3e-4, 1e-3, 3e-3]
grid = GridSearchCV(
    CNNClassifier(image_shape=(8, 8), max_iter=4 if QUICK else 15, batch_size=64,
                  random_state=0),
    {"conv_layers": list(architectures.values()), "learning_rate_init": rates},
    cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=2)
grid.fit(X, y)

scores = grid.cv_results_["mean_test_score"].reshape(len(architectures), len(rates))
fig, ax = plt.subplots(figsize=(7, 4))
for row, name in zip(scores, architectures):
    ax.plot(rates, row, marker="o", label=name)
ax.set(xscale="log", xlabel="learning_rate_init", ylabel="mean CV accuracy",
       title=f"GridSearchCV on digits (best {grid.best_score_:.3f})")
ax.legend()
fig.tight_layout()
print(f"best {grid.best_score_:.4f} with {grid.best_params_}")
