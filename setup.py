"""Build script: the Cython kernels, with OpenMP where the compiler has it.

Environment switches
--------------------
SKLEARN_CNN_REQUIRE_OPENMP=1
    Fail the build instead of building serial kernels when OpenMP is missing.
SKLEARN_CNN_DEBUG=1
    Build with Cython bounds checks, wraparound and initialisation checks on,
    and without optimisation: slow, for hunting out-of-range accesses.

On x86-64 with gcc or clang, the modules in AVX2_KERNELS are also built with
-mavx2 as ``<name>_avx2`` (the same source, included by a stub .pyx); the
package loads them on CPUs that have AVX2 (``sklearn_cnn._kernels.load``).
"""

import os
import platform
import shutil
import sys
import tempfile
import textwrap
import warnings

from Cython.Build import cythonize
from Cython.Compiler import Options
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SHARED_UTILITY = "sklearn_cnn._kernels._cyutility"
# Modules whose code runs once per call, never per value: optimised for size.
SIZE_OPTIMISED = (SHARED_UTILITY, "sklearn_cnn._kernels._snapshot")
# Modules built with -fno-math-errno: sqrt() then needs no errno fallback, so
# gcc vectorises Adam's update (see _kernels/_adam_step.h).  errno is the
# only thing the flag changes: every value is computed as before.
NO_MATH_ERRNO = ("sklearn_cnn._kernels._optim",)
KERNELS = ["_platform", "_conv", "_pool", "_activations", "_dense", "_loss",
           "_optim", "_batchnorm", "_augment", "_snapshot"]
# Built a second time with -mavx2 on x86-64 (see _kernels/__init__.py).
AVX2_KERNELS = ["_conv", "_batchnorm"]
X86_64 = platform.machine().lower() in ("x86_64", "amd64")

_OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _compiler_accepts(compiler, flag, program):
    """Compile and link a tiny program with ``flag``; True if that works."""
    tmpdir = tempfile.mkdtemp()
    try:
        source = os.path.join(tmpdir, "probe.c")
        with open(source, "w") as f:
            f.write(program)
        objects = compiler.compile([source], output_dir=tmpdir, extra_postargs=[flag])
        compiler.link_executable(objects, "probe", output_dir=tmpdir,
                                 extra_postargs=[flag])
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _compiler_has_openmp(compiler):
    return _compiler_accepts(compiler, "-fopenmp", _OPENMP_PROBE)


class BuildExtWithOpenMP(build_ext):
    """Add OpenMP flags when the compiler supports them, else build serial."""

    def build_extensions(self):
        use_openmp = self.compiler.compiler_type != "msvc" and _compiler_has_openmp(
            self.compiler
        )
        if not use_openmp:
            message = (
                "sklearn-cnn: this compiler has no OpenMP support; building the "
                "kernels single-threaded. Install a compiler with OpenMP (gcc, or "
                "clang with libomp) for multi-threaded training."
            )
            if _env_flag("SKLEARN_CNN_REQUIRE_OPENMP"):
                sys.exit(message + " (SKLEARN_CNN_REQUIRE_OPENMP is set: failing.)")
            warnings.warn(message, stacklevel=2)
        debug = _env_flag("SKLEARN_CNN_DEBUG")
        # Never fuse a * b + c into one rounding (gcc's default where the
        # target has FMA, e.g. aarch64): the kernels promise the rounding of
        # the separate operations (the x86-64 baseline and AVX2 builds have
        # no FMA, so this changes nothing there).
        no_contraction = (self.compiler.compiler_type != "msvc" and _compiler_accepts(
            self.compiler, "-ffp-contract=off", "int main(void) { return 0; }\n"))
        if self.compiler.compiler_type == "msvc" or not _compiler_accepts(
                self.compiler, "-mavx2", "int main(void) { return 0; }\n"):
            # The package falls back to the baseline modules without them.
            self.extensions = [ext for ext in self.extensions
                               if not ext.name.endswith("_avx2")]
        # The baseline twins of the AVX2 modules run only on x86-64 CPUs
        # without AVX2 (or with SKLEARN_CNN_KERNELS=baseline).  Without gcc's
        # function clones for constant arguments and its loops duplicated per
        # invariant condition, _conv's is 16 KB smaller in the wheel (202 ->
        # 186 KB compressed) and as fast (FM-LeNet and resnet2d predicting
        # 1000 images on 1 thread: 0.057-0.065 and 0.197-0.203 s, against
        # 0.061-0.066 and 0.196-0.214 with them); -O2 would save 74 KB but
        # took 1.5-2.2x as long.  The same operations, so the same bits.
        fallbacks = {ext.name[:-len("_avx2")] for ext in self.extensions
                     if ext.name.endswith("_avx2")}
        compact = [flag for flag in ("-fno-ipa-cp-clone", "-fno-unswitch-loops")
                   if self.compiler.compiler_type != "msvc" and _compiler_accepts(
                       self.compiler, flag, "int main(void) { return 0; }\n")]
        for ext in self.extensions:
            # Cython's shared utility code (memoryview and fused-type
            # plumbing) runs once per kernel call, never per value: optimised
            # for size it is 38 KB smaller in the wheel, with single-image
            # prediction unchanged.
            ext.extra_compile_args = ["-O0" if debug else
                                      "-Os" if ext.name in SIZE_OPTIMISED else "-O3"]
            if debug:
                ext.extra_compile_args.append("-g")
            elif self.compiler.compiler_type != "msvc":
                # Python's own CFLAGS carry -g: debug info would make the wheel
                # four times larger, and users never need it.
                ext.extra_compile_args.append("-g0")
            ext.extra_link_args = []
            if no_contraction:
                ext.extra_compile_args.append("-ffp-contract=off")
            if ext.name in NO_MATH_ERRNO and self.compiler.compiler_type != "msvc":
                ext.extra_compile_args.append("-fno-math-errno")
            if ext.name.endswith("_avx2"):
                ext.extra_compile_args.append("-mavx2")
            if ext.name in fallbacks and not debug:
                ext.extra_compile_args += compact
            if use_openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            if not debug and sys.platform.startswith("linux"):
                # Drop the static symbol table (the exported PyInit_* stay in
                # the dynamic one): part of keeping the wheel under 1 MB.
                ext.extra_link_args.append("-s")
        super().build_extensions()


def _extensions():
    debug = _env_flag("SKLEARN_CNN_DEBUG")
    # The kernels are private (the package's public API is Python): their
    # docstrings stay in the .pyx sources, for whoever reads the code, and
    # out of the compiled modules, which they made 12 KB larger in the wheel.
    Options.docstrings = debug
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": not debug,
    }
    kernel_dir = os.path.join("src", "sklearn_cnn", "_kernels")
    extensions = [
        Extension(
            f"sklearn_cnn._kernels.{name}",
            [os.path.join(kernel_dir, f"{name}.pyx")],
            include_dirs=[kernel_dir],
        )
        for name in KERNELS + ([f"{name}_avx2" for name in AVX2_KERNELS] if X86_64 else [])
    ]
    # Cython's utility code (typed memoryviews, fused-type dispatch) goes into
    # one shared module instead of a copy in each kernel module: a third of
    # the wheel.
    extensions.append(Extension(SHARED_UTILITY, [os.path.join(kernel_dir, "_cyutility.c")]))
    return cythonize(
        extensions,
        compiler_directives=directives,
        shared_utility_qualified_name=SHARED_UTILITY,
        # A debug build must not reuse C files generated without bounds checks.
        force=debug,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
