"""Holding BLAS to one thread while the kernels run (``single_threaded_blas``)."""

import os
import shutil
import subprocess
import sys
import threading

import pytest
import scipy.linalg.cython_blas
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from sklearn_cnn import _threads
from sklearn_cnn._threads import single_threaded_blas


@pytest.fixture(autouse=True)
def _blas_one_thread():
    """Replaces conftest's fixture of that name: these tests need BLAS
    outside any limit (inside one, a nested block changes nothing)."""
    yield


def blas_threads():
    """``{real path: threads}`` of every BLAS library loaded."""
    return {os.path.realpath(info["filepath"]): info["num_threads"]
            for info in threadpool_info() if info["user_api"] == "blas"}


@pytest.fixture
def two_blas_threads():
    """Every BLAS library at two threads, so that a limit to one shows."""
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(blas_threads().values()) == {2}
        yield


def held_libraries():
    """The real paths of the libraries that single_threaded_blas holds."""
    kernels_blas = _threads._kernels_blas_path()
    paths = set(blas_threads())
    return {kernels_blas} if kernels_blas in paths else paths


def assert_held(counts):
    held = held_libraries()
    assert held
    for path, n_threads in counts.items():
        assert n_threads == (1 if path in held else 2), path


def test_the_kernels_blas_is_held_and_restored(two_blas_threads):
    with single_threaded_blas():
        assert_held(blas_threads())
    assert set(blas_threads().values()) == {2}


def test_blas_limit_nests(two_blas_threads):
    with single_threaded_blas():
        with single_threaded_blas():
            assert_held(blas_threads())
        assert_held(blas_threads())
    assert set(blas_threads().values()) == {2}


def test_blas_limit_is_restored_even_under_concurrency(two_blas_threads):
    errors = []
    barrier = threading.Barrier(4)

    def worker():
        try:
            barrier.wait()
            for _ in range(200):
                with single_threaded_blas():
                    assert_held(blas_threads())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert set(blas_threads().values()) == {2}


def test_a_library_is_found_from_an_address_in_it():
    libraries = [lib for lib in ThreadpoolController().select(user_api="blas").lib_controllers
                 if lib.internal_api == "openblas"]
    if not libraries:
        pytest.skip("no OpenBLAS loaded")
    for lib in libraries:
        function = lib._get_symbol("openblas_get_num_threads")  # prefixed or not
        address = _threads.ctypes.cast(function, _threads.ctypes.c_void_p).value
        assert _threads._library_path(address) == os.path.realpath(lib.filepath)


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None,
                    reason="ldd lists a module's libraries on Linux")
def test_the_held_library_is_the_one_scipys_cython_blas_links():
    """ldd resolves cython_blas's libraries as the loader does: the BLAS
    among them is the one held (NumPy's own OpenBLAS, if another, is not)."""
    listing = subprocess.run(["ldd", scipy.linalg.cython_blas.__file__],
                             capture_output=True, text=True, check=True).stdout
    linked = {os.path.realpath(line.split("=>")[1].split("(")[0].strip())
              for line in listing.splitlines() if "=>" in line}
    loaded = set(blas_threads())
    if not linked & loaded:
        pytest.skip("SciPy's BLAS is not a library of its own here")
    assert _threads._kernels_blas_path() in linked & loaded
    assert held_libraries() == linked & loaded
