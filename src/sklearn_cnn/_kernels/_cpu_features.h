/* Whether this CPU (and its operating system) can run AVX2 code: the test
 * behind the choice between the baseline and the AVX2 builds of the hot
 * kernel modules (_kernels/__init__.py).  GCC's and clang's builtin reads
 * CPUID and checks that the OS saves the AVX registers; other compilers and
 * architectures answer no (their builds have no AVX2 modules anyway). */
#ifndef SKLEARN_CNN_CPU_FEATURES_H
#define SKLEARN_CNN_CPU_FEATURES_H

#if (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
static inline int sklearn_cnn_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}
#include <cpuid.h>
/* AVX-512 Foundation with the OS saving its registers, for the few loops of
 * the AVX2 build that have a 512-bit version (_winograd.h).  Asked of
 * CPUID and XGETBV directly: __builtin_cpu_supports links libgcc's CPU
 * model code (4.5 KB) into each module that uses it. */
static inline int sklearn_cnn_cpu_has_avx512f(void) {
    unsigned int eax, ebx, ecx, edx, xcr0_low, xcr0_high;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27)))
        return 0;  /* no OSXSAVE: XGETBV would fault */
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    /* XMM, YMM, opmask and both halves of the ZMM state enabled */
    if ((xcr0_low & 0xE6u) != 0xE6u)
        return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return 0;
    return (ebx & (1u << 16)) != 0;
}
#else
static inline int sklearn_cnn_cpu_has_avx2(void) { return 0; }
static inline int sklearn_cnn_cpu_has_avx512f(void) { return 0; }
#endif

#endif
