"""Training and validation curves with early stopping.

Fits a CNN on the digits with ``early_stopping=True`` and plots, per epoch, the
training loss, the validation loss and the validation accuracy; the epoch whose
weights were kept is marked.
"""

import os

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
from _common import load_digits_images, parse_args

from sklearn_cnn import CNNClassifier

args = parse_args(__doc__.splitlines()[0])
X, y = load_digits_images()
clf = CNNClassifier(image_shape=(8, 8), max_iter=8 if args.quick else 40,
                    early_stopping=True, n_iter_no_change=5, batch_size=64,
                    random_state=0).fit(X, y)

epochs = np.arange(1, clf.n_iter_ + 1)
best = int(np.argmax(clf.validation_scores_)) + 1
fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
ax_loss.plot(epochs, clf.loss_curve_, marker="o", label="training loss")
ax_loss.plot(epochs, clf.validation_loss_curve_, marker="o", label="validation loss")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
ax_loss.legend()
ax_score.plot(epochs, clf.validation_scores_, marker="o", color="C2")
ax_score.axvline(best, color="grey", linestyle="--", label=f"kept: epoch {best}")
ax_score.set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
ax_score.legend()
for ax in (ax_loss, ax_score):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
fig.suptitle("CNNClassifier on digits, early_stopping=True")
fig.tight_layout()
path = os.path.join(args.out, "learning_curves.png")
fig.savefig(path, dpi=100)
print(f"best validation accuracy {clf.best_validation_score_:.4f} at epoch {best}; "
      f"wrote {path}")
