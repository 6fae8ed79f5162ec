"""summary(), verbose=2 progress, and the command line."""

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sklearn_cnn import CNNClassifier, CNNRegressor, Conv2D, MaxPool2D
from sklearn_cnn._progress import EpochProgress


@pytest.fixture
def data(rng):
    y = rng.randint(0, 3, 120)
    X = rng.rand(120, 3, 6, 6) * 0.3
    X[np.arange(120), y] += 1
    return X.reshape(120, -1), y


def test_summary_lists_layers_shapes_and_parameter_counts(data, capsys):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = CNNClassifier((7,), conv_layers=(Conv2D(4), MaxPool2D(), Conv2D(5, 1)), max_iter=1,
                            image_shape=(3, 6, 6)).fit(X, y)
    summary = clf.summary()
    assert capsys.readouterr().out == ""  # returned, not printed
    table = str(summary)
    assert repr(summary) == table and "<table>" in summary._repr_html_()
    lines = table.splitlines()
    assert lines[2].split() == ["Input", "6", "x", "6", "x", "3"]
    # The layers as declared (fusion is invisible), with every trained array.
    assert lines[3].split()[:6] == ["Conv2D(4,", "3x3)", "6", "x", "6", "x"]
    assert "weights 3x3x3x4, bias 4" in lines[3]
    assert lines[3].split()[-1] == str(3 * 3 * 3 * 4 + 4)
    assert lines[4].split() == ["MaxPool2D(2x2)", "3", "x", "3", "x", "4"]
    assert [line.split()[0] for line in lines[5:8]] == ["Conv2D(5,", "Dense(7)",
                                                        "Dense(3)"]
    total = sum(c.size + b.size for c, b in zip(clf.coefs_, clf.intercepts_))
    assert lines[-1] == f"Total parameters: {total:,} (float64)"
    with pytest.raises(NotFittedError, match="before fit needs image_shape"):
        CNNClassifier().summary()


def test_summary_before_fit_from_image_shape():
    summary = CNNClassifier((7,), conv_layers=(Conv2D(4), MaxPool2D()),
                            image_shape=(3, 6, 6)).summary()
    lines = str(summary).splitlines()
    assert lines[3].split()[-1] == str(3 * 3 * 3 * 4 + 4)
    assert lines[-3].split()[:2] == ["Dense(n_outputs)", "n_outputs"]
    assert "weights 7xn_outputs" in lines[-3] and "8 per output" in lines[-3]
    total = 3 * 3 * 3 * 4 + 4 + (3 * 3 * 4) * 7 + 7
    assert lines[-1].startswith(f"Total parameters: {total:,} + 8 per output")
    # The same table as after fit, but for the output layer.
    X = np.random.RandomState(0).rand(20, 3 * 6 * 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = CNNClassifier((7,), conv_layers=(Conv2D(4), MaxPool2D()),
                               image_shape=(3, 6, 6), max_iter=1).fit(X, np.arange(20) % 2)
    after = str(fitted.summary()).splitlines()
    assert [line.split() for line in after[2:-3]] == [line.split() for line in lines[2:-3]]


def test_html_repr_links_to_our_api_docs():
    html = CNNClassifier()._repr_html_()
    assert "sklearn-cnn.readthedocs.io/en/latest/generated/sklearn_cnn.CNNClassifier.html" in html
    assert "scikit-learn.org" not in CNNRegressor()._get_doc_link()


def test_verbose_2_prints_progress_in_a_log(data, capsys):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        CNNClassifier((4,), conv_layers=(Conv2D(2),), max_iter=2, batch_size=4, verbose=2).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    progress = [line for line in out if line.startswith("  epoch ")]
    assert len(progress) == 20  # a line per tenth of each of the 2 epochs
    assert progress[9].startswith("  epoch 1: 100% (30/30 batches)")
    assert sum(line.startswith("Iteration ") for line in out) == 2


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


class FakeJupyterStream(io.StringIO):
    """Like ipykernel's OutStream: not a TTY, but the notebook redraws on \\r."""


FakeJupyterStream.__module__ = "ipykernel.iostream"


@pytest.mark.parametrize("stream_class", [FakeTerminal, FakeJupyterStream],
                         ids=["terminal", "jupyter"])
def test_progress_bar_redraws_one_line_on_a_terminal(stream_class, monkeypatch):
    stream = stream_class()
    progress = EpochProgress(3, 4, stream=stream)
    clock = iter([1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr("sklearn_cnn._progress.time.perf_counter", lambda: next(clock))
    progress.start = 0.0
    for done in range(1, 5):
        progress.update(done, 1.0 / done)
    text = stream.getvalue()
    assert "\n" not in text
    assert "\rEpoch 3 [=======>" in text and "1/4 batches, loss 1.0000" in text
    assert "4/4 batches, loss 0.2500" in text
    assert text.endswith("\r")  # the bar is cleared for the epoch's summary line


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sklearn_cnn", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_trains_on_a_users_npz_with_a_plot(data, tmp_path):
    X, y = data
    np.savez(tmp_path / "data.npz", X=X, y=y)
    plot = tmp_path / "curves.png"
    result = run_cli("--data", str(tmp_path / "data.npz"), "--image-shape", "3,6,6",
                     "--epochs", "6", "--plot", str(plot), "--save",
                     str(tmp_path / "m.joblib"))
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split("test accuracy:")[1].split()[0]) > 0.9
    assert [line.split()[1:] for line in result.stdout.splitlines()
            if line.startswith("Input ")] == [["6", "x", "6", "x", "3"]]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--image-shape", "3,x"], "--image-shape must be H,W or C,H,W"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--data", "missing.npz"], "cannot read missing.npz"),
])
def test_cli_explains_bad_arguments(args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr


def test_cli_help_has_examples():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--data images.npz" in result.stdout
