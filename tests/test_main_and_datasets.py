"""The main job, the Fashion-MNIST loader and the build."""

import gzip
import subprocess
import sys

import numpy as np
import pytest

import sklearn_cnn
from sklearn_cnn.datasets import fashion_mnist_available, load_fashion_mnist, read_idx


def test_main_job_on_digits(tmp_path):
    model_path = tmp_path / "model.joblib"
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_cnn", "--save", str(model_path)],
        capture_output=True, text=True, timeout=300, check=True)
    accuracy = float(result.stdout.split("test accuracy:")[1].split()[0])
    assert accuracy >= 0.97
    assert "Iteration 20, loss" in result.stdout
    import joblib

    assert joblib.load(model_path).n_iter_ == 20


def test_main_job_explains_missing_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("SKLEARN_CNN_FASHION_MNIST", str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_cnn", "--dataset", "fashion-mnist"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "apt-get install -y dataset-fashion-mnist" in result.stderr


def write_idx(path, array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def test_idx_reader_round_trip(tmp_path, rng):
    images = rng.randint(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = rng.randint(0, 10, 5).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    X, y = load_fashion_mnist("test", data_home=tmp_path, return_X_y=True)
    assert X.shape == (5, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X, images.reshape(5, -1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    # By default a Bunch, as scikit-learn's loaders return.
    bunch = load_fashion_mnist("test", data_home=tmp_path)
    np.testing.assert_array_equal(bunch.data, X)
    np.testing.assert_array_equal(bunch.target, y)
    np.testing.assert_allclose(bunch.images, images / 255, rtol=1e-6)
    assert bunch.images.shape == (5, 28, 28)
    assert bunch.target_names[9] == "Ankle boot" and len(bunch.target_names) == 10
    assert "Fashion-MNIST (test set)" in bunch.DESCR and "5 grayscale" in bunch.DESCR


def test_idx_reader_rejects_truncated_files(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion"):
        load_fashion_mnist(data_home=tmp_path)


@pytest.mark.skipif(not fashion_mnist_available(),
                    reason="Fashion-MNIST not installed (apt-get install -y "
                           "dataset-fashion-mnist)")
def test_real_fashion_mnist():
    X, y = load_fashion_mnist("test", return_X_y=True)
    assert X.shape == (10000, 784) and y.shape == (10000,)
    assert X.min() == 0 and X.max() == 1
    assert np.bincount(y).tolist() == [1000] * 10


def test_build_info_reports_openmp(capsys):
    info = sklearn_cnn._build_info.build_info()
    assert info["n_threads"] >= 1
    sklearn_cnn.show_build_info()
    assert "openmp" in capsys.readouterr().out
    if sys.platform.startswith("linux"):
        # gcc always has OpenMP: a serial build here means the flags were lost.
        assert info["openmp"] is True
    from importlib.util import find_spec

    from sklearn_cnn._kernels import avx2_enabled

    built = find_spec("sklearn_cnn._kernels._conv_avx2") is not None
    assert info["kernels"] == ("avx2" if avx2_enabled() and built else "baseline")


def test_show_versions_lists_the_loaded_thread_pools(capsys):
    sklearn_cnn.show_versions()
    out = capsys.readouterr().out
    assert f"sklearn_cnn: {sklearn_cnn.__version__}" in out
    assert "joblib:" in out and "threadpoolctl:" in out
    # The kernels' OpenMP runtime and scipy's BLAS are loaded by now.
    assert "openmp:" in out.split("threadpool libraries")[1]
    assert "   blas:" in out
