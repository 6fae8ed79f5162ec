"""Which BLAS kernels prediction sizes its products for."""

import pytest

from sklearn_cnn import _blas_kernels


def openblas(architecture):
    return {"user_api": "blas", "internal_api": "openblas", "architecture": architecture}


@pytest.mark.parametrize("libraries, expected", [
    ([openblas("SkylakeX"), openblas("SkylakeX")], True),
    ([openblas("SapphireRapids"), {"user_api": "openmp", "internal_api": "openmp"}], True),
    ([openblas("SkylakeX"), openblas("Haswell")], False),
    ([openblas("Haswell")], False),
    ([openblas(None)], False),
    ([{"user_api": "blas", "internal_api": "mkl"}], False),
    ([], False),
])
def test_small_matrix_kernels_need_every_blas_to_have_them(monkeypatch, libraries,
                                                           expected):
    monkeypatch.setattr(_blas_kernels, "threadpool_info", lambda: libraries)
    _blas_kernels.has_small_matrix_kernels.cache_clear()
    try:
        assert _blas_kernels.has_small_matrix_kernels() is expected
    finally:
        _blas_kernels.has_small_matrix_kernels.cache_clear()


def test_a_failed_introspection_keeps_the_default_chunks(monkeypatch):
    def broken():
        raise OSError("no /proc here")

    monkeypatch.setattr(_blas_kernels, "threadpool_info", broken)
    _blas_kernels.has_small_matrix_kernels.cache_clear()
    try:
        assert _blas_kernels.has_small_matrix_kernels() is False
    finally:
        _blas_kernels.has_small_matrix_kernels.cache_clear()
