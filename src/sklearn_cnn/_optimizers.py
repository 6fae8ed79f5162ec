"""Stochastic solvers over parallel lists of parameters and gradients.

The schedules and stopping rules are scikit-learn's MLPClassifier's; each
update is one fused Cython pass per array (``_kernels/_optim.pyx``).
"""

import math

import numpy as np

from ._kernels import _optim


class SGDOptimizer:
    """SGD with momentum (optionally Nesterov's) and a learning-rate schedule."""

    def __init__(self, params, learning_rate_init, schedule, momentum, nesterov,
                 power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.schedule = schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocities = [np.zeros_like(p) for p in params]

    def update_params(self, params, grads, l2_scales, n_threads):
        for param, grad, velocity, l2 in zip(params, grads, self.velocities, l2_scales):
            _optim.sgd_update(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1),
                              self.learning_rate, self.momentum, self.nesterov, l2,
                              n_threads)

    def iteration_ends(self, time_step):
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, message, verbose):
        """Return True to stop; with 'adaptive' first divide the rate by 5."""
        if self.schedule != "adaptive":
            if verbose:
                print(message + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(message + f" Setting learning rate to {self.learning_rate:f}")
        return False


class AdamOptimizer:
    """Adam (Kingma & Ba, 2014) with the bias corrections folded into the step."""

    def __init__(self, params, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.first_moments = [np.zeros_like(p) for p in params]
        self.second_moments = [np.zeros_like(p) for p in params]

    @property
    def learning_rate(self):
        return self.learning_rate_init

    def update_params(self, params, grads, l2_scales, n_threads):
        self.t += 1
        step = (self.learning_rate_init * math.sqrt(1 - self.beta_2**self.t)
                / (1 - self.beta_1**self.t))
        for param, grad, m, v, l2 in zip(params, grads, self.first_moments,
                                         self.second_moments, l2_scales):
            _optim.adam_update(param.reshape(-1), grad.reshape(-1), m.reshape(-1),
                               v.reshape(-1), step, self.beta_1, self.beta_2,
                               self.epsilon, l2, n_threads)

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, message, verbose):
        if verbose:
            print(message + " Stopping.")
        return True
