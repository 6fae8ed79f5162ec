/* OpenMP when the compiler has it, a serial stand-in otherwise.
 *
 * Cython's prange degrades to a plain loop without -fopenmp, but
 * omp_get_max_threads() would then be an undefined symbol: this header keeps
 * the kernels building either way. */
#ifndef SKLEARN_CNN_OMP_COMPAT_H
#define SKLEARN_CNN_OMP_COMPAT_H

#ifdef _OPENMP
#include <omp.h>
#define SKLEARN_CNN_OPENMP_ENABLED 1
#else
#define SKLEARN_CNN_OPENMP_ENABLED 0
static inline int omp_get_max_threads(void) { return 1; }
#endif

#endif
