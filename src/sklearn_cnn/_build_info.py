"""Report how the package was built and what it will use at run time."""


import platform
import sys


def build_info():
    """Return a dict: versions, whether OpenMP is on, which build of the hot
    kernels runs (``avx2`` or ``baseline``), threads that fit will use."""
    import numpy
    import scipy
    import sklearn
    import threadpoolctl

    from . import __version__
    from ._kernels import AVX2_KERNELS, load
    from ._kernels._platform import OPENMP_ENABLED
    from ._threads import effective_n_threads

    return {
        "sklearn_cnn": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "openmp": OPENMP_ENABLED,
        "kernels": "avx2" if load(AVX2_KERNELS[0]).__name__.endswith("_avx2")
        else "baseline",
        "n_threads": effective_n_threads(),
    }


def show_build_info():
    """Print the versions, whether OpenMP is on and the thread count used."""
    for key, value in build_info().items():
        print(f"{key:>14}: {value}")


def show_versions():
    """Print what a bug report needs: versions, build, threads and libraries.

    Like :func:`sklearn.show_versions`, plus whether the kernels were built
    with OpenMP, how many threads they will use, and threadpoolctl's view of
    every OpenMP and BLAS library loaded in this process (scikit-learn and
    NumPy/SciPy may each bring their own).
    """
    import joblib
    from threadpoolctl import threadpool_info

    info = build_info()
    info["joblib"] = joblib.__version__
    print("sklearn-cnn and its dependencies:")
    for key, value in info.items():
        print(f"{key:>14}: {value}")
    print("\nthreadpool libraries loaded (threadpoolctl):")
    for library in threadpool_info():
        details = ", ".join(f"{key}={library.get(key)}" for key in (
            "internal_api", "version", "num_threads", "architecture")
            if library.get(key) is not None)
        print(f"  {library['user_api']:>7}: {library['filepath']}\n           {details}")
