"""
Training history with early stopping
====================================

Fits a CNN on the digits with ``early_stopping=True`` and draws, per epoch,
the training loss, the validation loss and the validation accuracy with
:class:`~sklearn_cnn.inspection.TrainingHistoryDisplay`; the epoch whose
weights were kept is marked.  The same display works for
:class:`~sklearn_cnn.CNNRegressor` (the score is then R²).
"""

import os
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_cnn import CNNClassifier
from sklearn_cnn.inspection import TrainingHistoryDisplay

# Small settings when the test suite or a quick docs build runs the example.
QUICK = os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
clf = CNNClassifier(image_shape=(8, 8), max_iter=8 if QUICK else 40,
                    early_stopping=True, n_iter_no_change=5, batch_size=64,
                    random_state=0).fit((X / 16).astype("float32"), y)
print(f"best validation accuracy {clf.best_validation_score_:.4f} after "
      f"{clf.n_iter_} epochs")

# %%
# The display keeps its artists (``lines_``, ``best_line_``, ``ax_``), so the
# figure can be adjusted after drawing.
display = TrainingHistoryDisplay.from_estimator(clf, name="CNNClassifier on digits")
display.figure_.tight_layout()
