"""Holding BLAS to one thread while the kernels run (``single_threaded_blas``)."""

import threading

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_cnn._threads import single_threaded_blas


@pytest.fixture(autouse=True)
def _blas_one_thread():
    """Replaces conftest's fixture of that name: these tests need BLAS
    outside any limit (inside one, a nested block changes nothing)."""
    yield


def blas_threads():
    return [info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    """Every BLAS library at two threads, so that a limit to one shows."""
    with threadpool_limits(limits=2, user_api="blas"):
        if set(blas_threads()) != {2}:
            pytest.skip("a BLAS library here does not take 2 threads")
        yield


def test_every_blas_library_is_held_and_restored(two_blas_threads):
    with single_threaded_blas():
        assert set(blas_threads()) == {1}
    assert set(blas_threads()) == {2}


def test_blas_limit_nests(two_blas_threads):
    with single_threaded_blas():
        with single_threaded_blas():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}
    assert set(blas_threads()) == {2}


def test_blas_limit_is_restored_even_under_concurrency(two_blas_threads):
    errors = []
    barrier = threading.Barrier(4)

    def worker():
        try:
            barrier.wait()
            for _ in range(200):
                with single_threaded_blas():
                    assert set(blas_threads()) == {1}
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert set(blas_threads()) == {2}


def test_a_library_already_at_one_thread_is_left_alone(two_blas_threads):
    with threadpool_limits(limits=1, user_api="blas"):
        with single_threaded_blas():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}
    assert set(blas_threads()) == {2}


@pytest.mark.parametrize("native", [True, False], ids=["own-functions", "threadpoolctl"])
def test_both_ways_of_setting_the_count_hold_and_restore(two_blas_threads, monkeypatch,
                                                         native):
    """OpenBLAS's own functions called from the kernel module, and
    threadpoolctl's methods for any other library."""
    from sklearn_cnn import _threads

    monkeypatch.setattr(_threads, "_blas_libraries", None)
    if not native:
        monkeypatch.setattr(_threads, "_native_thread_count_functions", lambda lib: None)
    getters, setters, ones, others = _threads._blas_thread_counts()
    assert len(getters) == len(setters) == len(ones)
    assert len(getters) + len(others) == len(blas_threads())
    if native and not getters:
        pytest.skip("no OpenBLAS on pthreads here")
    if not native:
        assert not getters
    with single_threaded_blas():
        assert set(blas_threads()) == {1}
    assert set(blas_threads()) == {2}


def test_exchange_refuses_mismatched_lengths():
    from sklearn_cnn._kernels._platform import exchange_blas_threads

    with pytest.raises(ValueError, match="one setter and one count per getter"):
        exchange_blas_threads((1, 2), (1,), (1, 1))
    with pytest.raises(ValueError, match="one setter and one count per getter"):
        exchange_blas_threads((1,), (1,), ())
