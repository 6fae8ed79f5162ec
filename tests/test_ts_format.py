"""The UCR/UEA .ts reader: synthetic files for every branch, and the real
files that the aeon wheel ships (skipped cleanly when aeon is absent)."""

import numpy as np
import pytest

from sklearn_cnn.datasets import load_ts, load_ucr, ucr_dir

UNIVARIATE = """# A comment
# on two lines
@problemName Toy
@timeStamps false
@missing true
@univariate true
@equalLength true
@seriesLength 4
@classLabel true a b
@data
1,2,3,4:a
0.5,?,-1e3,7:b
"""

MULTIVARIATE_UNEQUAL = """@problemName Toy2
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2
@data
1,2,3:4,5,6:1
7,8:9,10:2
"""

REGRESSION = """@problemName Reg
@univariate true
@targetLabel true
@data
1,2:0.5
3,4:-2.25
"""


def write(tmp_path, text, name="toy.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_univariate_file_with_missing_values(tmp_path):
    bunch = load_ts(write(tmp_path, UNIVARIATE))
    assert bunch.data.shape == (2, 1, 4)
    np.testing.assert_array_equal(bunch.data[0, 0], [1, 2, 3, 4])
    assert np.isnan(bunch.data[1, 0, 1]) and bunch.data[1, 0, 2] == -1000
    assert bunch.target.tolist() == ["a", "b"] and bunch.target_names == ["a", "b"]
    assert bunch.header["problemname"] == "Toy" and "on two lines" in bunch.DESCR
    X, y = load_ts(write(tmp_path, UNIVARIATE), return_X_y=True, dtype=np.float32)
    assert X.dtype == np.float32 and y.tolist() == ["a", "b"]


def test_multivariate_unequal_lengths_raise_or_pad(tmp_path):
    path = write(tmp_path, MULTIVARIATE_UNEQUAL)
    with pytest.raises(ValueError, match="lengths 2 to 3. Pass pad_unequal=True"):
        load_ts(path)
    bunch = load_ts(path, pad_unequal=True)
    np.testing.assert_array_equal(bunch.data[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(bunch.data[1], [[7, 8, 0], [9, 10, 0]])
    assert bunch.lengths.tolist() == [3, 2] and bunch.target.tolist() == ["1", "2"]


def test_regression_targets_are_floats(tmp_path):
    X, y = load_ts(write(tmp_path, REGRESSION), return_X_y=True)
    assert X.shape == (2, 1, 2) and y.dtype == np.float64 and y.tolist() == [0.5, -2.25]


@pytest.mark.parametrize("text, message", [
    ("@timeStamps true\n@data\n(0,1):a\n", "timestamped series are not supported"),
    ("@classLabel true a\n@data\n1,x,3:a\n", "line 3: 'x' is not a number"),
    ("@classLabel true a\n@data\n1,2:1:a\n", "channels of one series have different"),
    ("@problemName X\n1,2,3\n", "line 2: expected a @key line"),
    ("@problemName X\n", "no @data line"),
    ("@classLabel false\n@data\n", "holds no series"),
], ids=["timestamps", "not-a-number", "ragged-channels", "no-header", "no-data",
        "empty"])
def test_malformed_files_get_clear_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_ts(write(tmp_path, text))


def test_load_ucr_finds_files_in_data_home_and_says_where_it_looked(tmp_path,
                                                                     monkeypatch):
    (tmp_path / "Toy").mkdir()
    write(tmp_path / "Toy", UNIVARIATE, "Toy_TEST.ts")
    assert load_ucr("Toy", "test", data_home=tmp_path).data.shape == (2, 1, 4)
    monkeypatch.setenv("SKLEARN_CNN_UCR", str(tmp_path))
    assert load_ucr("Toy", "test").data.shape == (2, 1, 4)
    with pytest.raises(FileNotFoundError, match="Toy_TRAIN.ts not found; looked in"):
        load_ucr("Toy", data_home=tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_ucr("Toy", "validation", data_home=tmp_path)


AEON_DATA = ucr_dir() if ucr_dir() is not None and ucr_dir().is_dir() else None
needs_aeon = pytest.mark.skipif(
    AEON_DATA is None, reason="aeon not installed (pip install --no-deps aeon==1.6.0 "
                              "brings its .ts files)")


@needs_aeon
@pytest.mark.parametrize("name, shapes, n_classes, pad", [
    ("GunPoint", ((50, 1, 150), (150, 1, 150)), 2, False),
    ("ItalyPowerDemand", ((67, 1, 24), (1029, 1, 24)), 2, False),
    ("BasicMotions", ((40, 6, 100), (40, 6, 100)), 4, False),
    ("JapaneseVowels", ((270, 12, 26), (370, 12, 29)), 9, True),
])
def test_the_archive_files_aeon_ships(name, shapes, n_classes, pad):
    for split, shape in zip(("train", "test"), shapes):
        bunch = load_ucr(name, split, pad_unequal=pad)
        assert bunch.data.shape == shape
        assert len(np.unique(bunch.target)) == n_classes
        assert np.isfinite(bunch.data).all()
        # The first series, read back by hand from the text.
        with open(AEON_DATA / name / f"{name}_{split.upper()}.ts") as f:
            lines = [line for line in f if line.strip() and not line.startswith(("#", "@"))]
        first = lines[0].strip().split(":")
        np.testing.assert_array_equal(bunch.data[0, 0, :bunch.lengths[0]],
                                      np.array(first[0].split(","), dtype=float))
        assert bunch.target[0] == first[-1]
