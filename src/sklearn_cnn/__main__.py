"""The main job: train a CNN and evaluate it on held-out data.

    python -m sklearn_cnn                          # scikit-learn's digits (no download)
    python -m sklearn_cnn --dataset fashion-mnist  # needs dataset-fashion-mnist
    python -m sklearn_cnn --data my_images.npz     # your own X and y arrays
"""

import argparse
import sys
import time
import warnings

import numpy as np

EXAMPLES = """examples:
  python -m sklearn_cnn
      train on scikit-learn's 8x8 digits for 20 epochs and print the test accuracy
  python -m sklearn_cnn --dataset fashion-mnist --epochs 5 --save model.joblib
      Fashion-MNIST (apt-get install -y dataset-fashion-mnist), save the model
  python -m sklearn_cnn --data images.npz --image-shape 3,32,32 --plot curves.png
      your own arrays: an .npz file with X (n_samples, n_features or n, [C,] H, W)
      and y (n_samples,); 25% is held out for testing; plot the learning curves
"""


def _parse_shape(text):
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--image-shape must be H,W or C,H,W (integers), got {text!r}") from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"--image-shape must be H,W or C,H,W (positive integers), got {text!r}")
    return shape


def _split(X, y, seed):
    from sklearn.model_selection import train_test_split

    counts = np.unique(y, return_counts=True)[1]
    stratify = y if counts.min() >= 2 else None
    return train_test_split(X, y, test_size=0.25, stratify=stratify, random_state=seed)


def _load(args):
    """Return X_train, X_test, y_train, y_test, image_shape, default epochs."""
    if args.data is not None:
        try:
            with np.load(args.data, allow_pickle=False) as data:
                X, y = data["X"], data["y"]
        except (OSError, ValueError) as error:
            sys.exit(f"error: cannot read {args.data}: {error}")
        except KeyError:
            sys.exit(f"error: {args.data} must hold two arrays named X and y "
                     "(np.savez(path, X=X, y=y)).")
        return (*_split(X, y, args.seed), args.image_shape, 10)
    if args.dataset == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32)
        return (*_split(X, y, args.seed), args.image_shape or (8, 8), 20)
    from .datasets import fashion_mnist_dir, load_fashion_mnist

    try:
        X_train, y_train = load_fashion_mnist("train", return_X_y=True)
        X_test, y_test = load_fashion_mnist("test", return_X_y=True)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}\n(looked in {fashion_mnist_dir()})")
    return X_train, X_test, y_train, y_test, args.image_shape or (28, 28), 5


def _plot(clf, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("error: --plot needs matplotlib (pip install matplotlib).")
    from .inspection import TrainingHistoryDisplay

    display = TrainingHistoryDisplay.from_estimator(clf, name="Learning curves")
    display.figure_.tight_layout()
    display.figure_.savefig(path, dpi=100)
    plt.close(display.figure_)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_cnn",
        description="Train a CNNClassifier and report its test accuracy.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=["digits", "fashion-mnist"],
                        default="digits",
                        help="digits ships with scikit-learn; fashion-mnist is read "
                             "from /usr/share/datasets/fashion-mnist "
                             "(apt-get install -y dataset-fashion-mnist)")
    source.add_argument("--data", metavar="FILE.npz",
                        help="train on your own arrays X and y saved with np.savez")
    parser.add_argument("--image-shape", type=_parse_shape, metavar="H,W or C,H,W",
                        help="how each row of a 2-D X is read (channels first)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: 20 for digits, 5 for "
                             "fashion-mnist, 10 for --data)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument("--early-stopping", action="store_true",
                        help="hold out 10%% of the training data and keep the best epoch")
    parser.add_argument("--save", metavar="PATH",
                        help="save the fitted model with joblib.dump")
    parser.add_argument("--plot", metavar="PNG", help="save the learning curves")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")

    from sklearn.exceptions import ConvergenceWarning

    from . import CNNClassifier, show_build_info
    from .layers import Conv2D, MaxPool2D

    show_build_info()
    X_train, X_test, y_train, y_test, image_shape, epochs = _load(args)
    epochs = args.epochs or epochs
    source = args.data or args.dataset
    print(f"\n{source}: {X_train.shape[0]} training and {X_test.shape[0]} test "
          f"samples, {epochs} epochs\n", flush=True)
    clf = CNNClassifier(
        conv_layers=(Conv2D(32), MaxPool2D(), Conv2D(64), MaxPool2D())
        if args.data is None else "auto",
        hidden_layer_sizes=(128,), batch_size=args.batch_size, max_iter=epochs,
        n_iter_no_change=epochs + 1, image_shape=image_shape, random_state=args.seed,
        early_stopping=args.early_stopping, verbose=1)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # A fixed epoch budget is the point here, not convergence.
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, y_train)
    except (ValueError, TypeError) as error:
        sys.exit(f"error: {error}")
    fit_seconds = time.perf_counter() - start
    print()
    print(clf.summary())
    start = time.perf_counter()
    accuracy = clf.score(X_test, y_test)
    predict_seconds = time.perf_counter() - start
    print(f"\ntrained in {fit_seconds:.1f} s; predicted {X_test.shape[0]} test samples "
          f"in {predict_seconds:.2f} s")
    print(f"test accuracy: {accuracy:.4f}")
    if args.save:
        import joblib

        joblib.dump(clf, args.save)
        print(f"model saved to {args.save}")
    if args.plot:
        _plot(clf, args.plot)
        print(f"learning curves saved to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
