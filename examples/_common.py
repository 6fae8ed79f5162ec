"""Shared by the examples: output folder, quick mode, and the data."""

import argparse
import os
import warnings

import matplotlib
from sklearn.exceptions import ConvergenceWarning

matplotlib.use("Agg")  # examples write PNG files; no display needed
# The examples train for a fixed number of epochs on purpose.
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=".", help="folder for the PNG files")
    parser.add_argument("--quick", action="store_true",
                        help="small settings (as in the test suite)")
    args = parser.parse_args()
    args.quick = args.quick or os.environ.get("SKLEARN_CNN_EXAMPLES_QUICK") == "1"
    os.makedirs(args.out, exist_ok=True)
    return args


def load_digits_images():
    """Digits as float32 in [0, 1], 8x8 images flattened."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype("float32"), y
