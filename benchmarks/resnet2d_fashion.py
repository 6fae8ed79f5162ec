"""A compact 2-D ResNet with BatchNorm on Fashion-MNIST: our epoch against PyTorch's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/resnet2d_fashion.py

``sklearn_cnn.architectures.resnet2d(filters=(16, 32, 64))`` (a 3x3 stem, one
residual block per stage, stride-2 stages with 1x1 + BatchNorm shortcuts,
global average pooling) and the same network in PyTorch, Adam, batch 128,
float32, on the first ``--n-train`` training images; epochs alternate between
the two at each thread count, medians and ratios are printed.
"""

import argparse
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
from sklearn_cnn.architectures import resnet2d

FILTERS = (16, 32, 64)


def torch_resnet(torch, exact_padding=False):
    """The network in PyTorch.  Its stride-2 convolutions pad one row and
    column on each side; ours, as "same" padding does (TensorFlow's rule),
    only at the bottom and right of an even map.  Equal work, so the
    training benchmark keeps PyTorch's usual form; ``exact_padding`` pads as
    ours (a ZeroPad2d first), for a copy with our weights that must give
    our outputs."""
    nn = torch.nn

    def first_convolution(in_channels, out_channels, stride):
        if stride == 1 or not exact_padding:
            return [nn.Conv2d(in_channels, out_channels, 3, stride, 1)]
        return [nn.ZeroPad2d((0, 1, 0, 1)),
                nn.Conv2d(in_channels, out_channels, 3, stride, 0)]

    class Block(nn.Module):
        def __init__(self, in_channels, out_channels, stride):
            super().__init__()
            self.body = nn.Sequential(
                *first_convolution(in_channels, out_channels, stride),
                nn.BatchNorm2d(out_channels), nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, 3, 1, 1),
                nn.BatchNorm2d(out_channels))
            self.shortcut = (nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride),
                                           nn.BatchNorm2d(out_channels))
                             if stride != 1 or in_channels != out_channels else None)

        def forward(self, x):
            shortcut = x if self.shortcut is None else self.shortcut(x)
            return torch.relu(self.body(x) + shortcut)

    layers = [nn.Conv2d(1, FILTERS[0], 3, 1, 1), nn.BatchNorm2d(FILTERS[0]), nn.ReLU()]
    previous = FILTERS[0]
    for stage, filters in enumerate(FILTERS):
        layers.append(Block(previous, filters, 2 if stage else 1))
        previous = filters
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(previous, 10))


def torch_epoch(torch, model, optimizer, X, y, rng, batch_size=128):
    loss_fn = torch.nn.CrossEntropyLoss()
    order = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        loss_fn(model(X[idx]), y[idx]).backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=10000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y, _, _ = load_fashion_mnist_or_exit()
    X, y = X[:args.n_train], y[:args.n_train]
    blas = [(lib["internal_api"], lib.get("architecture")) for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    print(f"resnet2d{FILTERS} on {len(X)} Fashion-MNIST images, Adam, batch 128; "
          f"BLAS {blas}")
    torch = torch_or_none()
    monitor = CpuMonitor()
    for n_threads in [int(t) for t in args.threads.split(",")]:
        with threads(n_threads):
            ours = CNNClassifier((), conv_layers=resnet2d(FILTERS), image_shape=(28, 28),
                                 batch_size=128, max_iter=1, warm_start=True,
                                 random_state=0)
            ours.fit(X[:256], y[:256])  # build and allocate once
            times = {"sklearn-cnn": [], "pytorch": []}
            if torch is not None:
                torch.manual_seed(0)
                model = torch_resnet(torch)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                X_t = torch.from_numpy(X.reshape(-1, 1, 28, 28))
                y_t = torch.from_numpy(y)
                rng = np.random.RandomState(0)
            for _ in range(args.epochs):
                times["sklearn-cnn"].append(timed(lambda: ours.fit(X, y)))
                if torch is not None:
                    times["pytorch"].append(timed(lambda: torch_epoch(
                        torch, model, optimizer, X_t, y_t, rng)))
            report_alternated(f"{n_threads} thread(s), training epoch", times)
    print(monitor.report())


if __name__ == "__main__":
    main()
