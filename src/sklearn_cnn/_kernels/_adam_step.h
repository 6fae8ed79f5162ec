/* Adam's update of a block of values, in C so that gcc vectorises it.
 *
 * The Cython loop stayed scalar: its arrays might alias (Python builds with
 * -fno-strict-aliasing), and sqrt() may set errno, so gcc kept one sqrtsd
 * (with a call to sqrt as fallback) and one divsd per value: 2.9 ns per
 * value.  With `restrict`, and the module built with -fno-math-errno (setup.py;
 * gcc 12 ignores it as a function attribute), it runs two values per
 * instruction.  The operations and their order are those of the scalar loop,
 * in float64, and vector sqrt and division are correctly rounded like the
 * scalar ones: the results are bitwise the same. */
#ifndef SKLEARN_CNN_ADAM_STEP_H
#define SKLEARN_CNN_ADAM_STEP_H

#include <math.h>
#include <stddef.h>

#define SKLEARN_CNN_DEFINE_ADAM_STEP(NAME, TYPE)                                \
    static inline void NAME(                                                    \
            TYPE *restrict param, const TYPE *restrict grad,                    \
            TYPE *restrict first_moment, TYPE *restrict second_moment,          \
            ptrdiff_t start, ptrdiff_t stop, double step, double beta_1,        \
            double beta_2, double epsilon, double l2, double shrink) {          \
        for (ptrdiff_t i = start; i < stop; ++i) {                              \
            double p = param[i];                                                \
            double g = grad[i] + l2 * p;                                        \
            double m = beta_1 * first_moment[i] + (1.0 - beta_1) * g;           \
            double v = beta_2 * second_moment[i] + (1.0 - beta_2) * g * g;      \
            first_moment[i] = (TYPE)m;                                          \
            second_moment[i] = (TYPE)v;                                         \
            param[i] = (TYPE)((p - shrink * p) - step * m / (sqrt(v) + epsilon)); \
        }                                                                       \
    }

SKLEARN_CNN_DEFINE_ADAM_STEP(adam_step_float, float)
SKLEARN_CNN_DEFINE_ADAM_STEP(adam_step_double, double)

#endif
