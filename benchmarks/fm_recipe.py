"""The modern recipe on Fashion-MNIST: accuracy per epoch, and its epoch against PyTorch's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fm_recipe.py accuracy
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fm_recipe.py speed

The network is ``architectures.vgg()``: two 3x3 convolutions of 32 filters,
max-pool, two of 64, max-pool (each convolution followed by
BatchNormalization and ReLU), then a dense layer of 256 with dropout 0.3.
The recipe: AdamW (decay 0.05, not on biases or BatchNorm), a one-epoch
warm-up then linear decay of the learning rate over the run, label smoothing
0.1, random translations of up to 2 pixels and horizontal flips, batch 128,
and PyTorch's initialisation (``weight_init="pytorch"``: its smaller
starting weights learn faster early on; ``--init auto`` runs ours).

``accuracy`` trains on the 60k training images for ``--epochs`` epochs per
seed (one ``partial_fit`` per epoch, which follows the same schedule as
``fit``), prints the test accuracy after each epoch, the training time and
the median over seeds.  ``--plain`` runs the same network with plain Adam
instead.  ``--average-last K`` also scores, per seed, the weights (and
BatchNorm statistics) averaged over the last K epochs: weight averaging,
measured.  ``--tta`` also scores each seed's final model with
``test_time_augmentation=True`` (each image averaged with its mirror image).
``--pytorch`` runs the accuracy mode for the same recipe in PyTorch.
``speed`` alternates training epochs of ours and of the same recipe
in PyTorch 2.13 (same network, AdamW, schedule, smoothing, augmentation done
on whole batches, batch, threads) on ``--n-train`` images, at 1 and 2 threads,
and prints medians and the ratio, then both models' test accuracy after
those epochs (same images, schedule and augmentation).
"""

import argparse
import copy
import statistics
import time
import warnings

import numpy as np
from _common import (
    CpuMonitor,
    load_fashion_mnist_or_exit,
    report_alternated,
    threads,
    timed,
    torch_or_none,
)
from threadpoolctl import threadpool_info

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import vgg
from sklearn_cnn.augmentation import RandomFlip, RandomTranslation
from sklearn_cnn.schedules import LinearDecay

BATCH = 128
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 0.05
SMOOTHING = 0.1
MAX_SHIFT = 2


def recipe(epochs, seed, plain=False, weight_init="pytorch"):
    """Our estimator for the recipe (or, with ``plain``, Adam and nothing else)."""
    if plain:
        return CNNClassifier((256,), conv_layers=vgg(), dropout=0.3,
                             batch_size=BATCH, max_iter=epochs, random_state=seed,
                             image_shape=(28, 28))
    return CNNClassifier(
        (256,), conv_layers=vgg(), dropout=0.3, batch_size=BATCH, max_iter=epochs,
        solver="adamw", alpha=WEIGHT_DECAY, learning_rate_init=LEARNING_RATE,
        learning_rate=LinearDecay(warmup_epochs=1), label_smoothing=SMOOTHING,
        augment=(RandomTranslation(MAX_SHIFT), RandomFlip()), random_state=seed,
        image_shape=(28, 28), weight_init=weight_init)


def averaged(clf, snapshots):
    """A copy of ``clf`` whose weights and BatchNorm statistics are the mean
    of ``snapshots`` (weight averaging over the last epochs)."""
    average = copy.deepcopy(clf)
    for arrays in (average.parameters_, average.state_):
        for name, array in arrays.items():
            array[...] = np.mean([snapshot[name] for snapshot in snapshots], axis=0)
    return average


def accuracy(args, X, y, X_test, y_test):
    if args.pytorch:
        return pytorch_accuracy(args, X, y, X_test, y_test)
    finals, seconds, averages, mirrored = [], [], [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        clf = recipe(args.epochs, seed, plain=args.plain, weight_init=args.init)
        training = 0.0
        curve = []
        snapshots = []
        for _ in range(args.epochs):
            start = time.perf_counter()
            clf.partial_fit(X, y, classes=np.arange(10))
            training += time.perf_counter() - start
            curve.append(clf.score(X_test, y_test))
            print(f"  seed {seed} epoch {clf.n_iter_:2d}: test accuracy {curve[-1]:.4f}, "
                  f"training {training:6.1f} s", flush=True)
            if args.average_last:
                snapshots = snapshots[1 - args.average_last:] + [
                    {**{k: v.copy() for k, v in clf.parameters_.items()},
                     **{k: v.copy() for k, v in clf.state_.items()}}]
        finals.append(curve[-1])
        seconds.append(training)
        print(f"seed {seed}: final {curve[-1]:.4f} after {args.epochs} epochs, "
              f"{training:.0f} s of training; curve {[round(a, 4) for a in curve]}",
              flush=True)
        if args.tta:
            mirrored.append(clf.set_params(test_time_augmentation=True).score(
                X_test, y_test))
            clf.set_params(test_time_augmentation=False)
            print(f"seed {seed}: with test-time augmentation {mirrored[-1]:.4f}",
                  flush=True)
        if args.average_last:
            averages.append(averaged(clf, snapshots).score(X_test, y_test))
            print(f"seed {seed}: weights averaged over the last {len(snapshots)} "
                  f"epochs: {averages[-1]:.4f}", flush=True)
    print(f"median test accuracy {statistics.median(finals):.4f} "
          f"(seeds: {finals}); median training time {statistics.median(seconds):.0f} s")
    if args.tta:
        print(f"median test accuracy with test-time augmentation "
              f"{statistics.median(mirrored):.4f} (seeds: {mirrored})")
    if args.average_last:
        print(f"median test accuracy with weights averaged over the last "
              f"{args.average_last} epochs {statistics.median(averages):.4f} "
              f"(seeds: {averages})")


def torch_model(torch):
    nn = torch.nn

    def block(in_channels, out_channels):
        return [nn.Conv2d(in_channels, out_channels, 3, padding=1),
                nn.BatchNorm2d(out_channels), nn.ReLU()]

    return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2),
                         *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(256, 10))


def torch_augment(torch, x, generator):
    """Random translation (zero padding) and flip of a whole batch at once."""
    n, _, height, width = x.shape
    padded = torch.nn.functional.pad(x, (MAX_SHIFT,) * 4)
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (n, 2), generator=generator)
    rows = (torch.arange(height)[None, :] + offsets[:, :1])[:, :, None]
    cols = (torch.arange(width)[None, :] + offsets[:, 1:])[:, None, :]
    shifted = padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], shifted.flip(3), shifted)


class TorchRecipe:
    def __init__(self, torch, n_samples, epochs, seed=0):
        torch.manual_seed(seed)
        self.torch = torch
        self.model = torch_model(torch)
        decay = [p for n, p in self.model.named_parameters()
                 if p.ndim > 1]  # weights of convolutions and dense layers
        other = [p for n, p in self.model.named_parameters() if p.ndim <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": WEIGHT_DECAY},
             {"params": other, "weight_decay": 0.0}], lr=LEARNING_RATE)
        steps_per_epoch = -(-n_samples // BATCH)
        warmup, total = steps_per_epoch, steps_per_epoch * epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min((step + 1) / warmup,
                                             max(0.0, (total - step) / (total - warmup))))
        self.loss = torch.nn.CrossEntropyLoss(label_smoothing=SMOOTHING)
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self, X, y):
        torch = self.torch
        self.model.train()
        order = torch.randperm(len(X), generator=self.generator)
        for start in range(0, len(X), BATCH):
            idx = order[start:start + BATCH]
            x = torch_augment(torch, X[idx], self.generator)
            self.optimizer.zero_grad()
            self.loss(self.model(x), y[idx]).backward()
            self.optimizer.step()
            self.scheduler.step()

    def score(self, X, y):
        torch = self.torch
        self.model.eval()
        images = torch.from_numpy(X.reshape(-1, 1, 28, 28))
        with torch.no_grad():
            predicted = torch.cat([self.model(images[start:start + 1000]).argmax(1)
                                   for start in range(0, len(X), 1000)])
        return float((predicted.numpy() == y).mean())


def pytorch_accuracy(args, X, y, X_test, y_test):
    """The accuracy mode for the same recipe in PyTorch (``--pytorch``)."""
    torch = torch_or_none()
    if torch is None:
        return
    X_t = torch.from_numpy(X.reshape(-1, 1, 28, 28))
    y_t = torch.from_numpy(y.astype(np.int64))
    finals = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        model, training = TorchRecipe(torch, len(X), args.epochs, seed), 0.0
        for epoch in range(1, args.epochs + 1):
            training += timed(lambda: model.epoch(X_t, y_t))
            print(f"  pytorch seed {seed} epoch {epoch:2d}: test accuracy "
                  f"{model.score(X_test, y_test):.4f}, training {training:6.1f} s",
                  flush=True)
        finals.append(model.score(X_test, y_test))
    print(f"pytorch median test accuracy {statistics.median(finals):.4f} "
          f"(seeds: {finals})")


def speed(args, X, y, X_test, y_test):
    torch = torch_or_none()
    X, y = X[:args.n_train], y[:args.n_train]
    monitor = CpuMonitor()
    for n_threads in [int(t) for t in args.threads.split(",")]:
        with threads(n_threads):
            # One partial_fit per epoch, over a schedule of as many epochs: the
            # same schedule as PyTorch's (the first epoch's timing includes
            # building and allocating, as PyTorch's includes its first calls).
            ours = recipe(args.epochs, 0, weight_init=args.init)
            times = {"sklearn-cnn": [], "pytorch": []}
            if torch is not None:
                theirs = TorchRecipe(torch, len(X), args.epochs)
                X_t = torch.from_numpy(X.reshape(-1, 1, 28, 28))
                y_t = torch.from_numpy(y.astype(np.int64))
            for _ in range(args.epochs):
                times["sklearn-cnn"].append(timed(
                    lambda: ours.partial_fit(X, y, classes=np.arange(10))))
                if torch is not None:
                    times["pytorch"].append(timed(lambda: theirs.epoch(X_t, y_t)))
            report_alternated(
                f"{n_threads} thread(s), training epoch of {len(X)} images", times)
            scores = f"sklearn-cnn {ours.score(X_test, y_test):.4f}"
            if torch is not None:
                scores += f", pytorch {theirs.score(X_test, y_test):.4f}"
            print(f"  test accuracy after {args.epochs} epochs: {scores}", flush=True)
    print(monitor.report())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["accuracy", "speed"])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--init", choices=["pytorch", "auto", "glorot"], default="pytorch",
                        help="our weight_init (PyTorch's by default, as the PyTorch runs)")
    parser.add_argument("--pytorch", action="store_true",
                        help="accuracy: train the same recipe in PyTorch instead")
    parser.add_argument("--average-last", type=int, default=0,
                        help="also score the mean of the last K epochs' weights")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--n-train", type=int, default=10000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y, X_test, y_test = load_fashion_mnist_or_exit()
    blas = [(lib["internal_api"], lib.get("architecture")) for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    print(f"Fashion-MNIST recipe ({'plain Adam' if args.plain else 'modern'}, "
          f"weight_init={args.init!r}); "
          f"BLAS {blas}", flush=True)
    if args.mode == "accuracy":
        accuracy(args, X, y, X_test, y_test)
    else:
        speed(args, X, y, X_test, y_test)


if __name__ == "__main__":
    main()
