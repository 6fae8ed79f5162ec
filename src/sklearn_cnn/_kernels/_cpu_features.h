/* Whether this CPU (and its operating system) can run AVX2 code: the test
 * behind the choice between the baseline and the AVX2 builds of the hot
 * kernel modules (_kernels/__init__.py).  GCC's and clang's builtin reads
 * CPUID and checks that the OS saves the AVX registers; other compilers and
 * architectures answer no (their builds have no AVX2 modules anyway). */
#ifndef SKLEARN_CNN_CPU_FEATURES_H
#define SKLEARN_CNN_CPU_FEATURES_H

#if (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
static int sklearn_cnn_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}
#else
static int sklearn_cnn_cpu_has_avx2(void) { return 0; }
#endif

#endif
