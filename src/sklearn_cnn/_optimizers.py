"""Stochastic solvers over parallel lists of parameters and gradients.

The update formulas are those of scikit-learn's MLPClassifier (SGD with
momentum, Adam) plus AdamW; each update is one fused Cython pass per array
(``_kernels/_optim.pyx``).  The learning rate of each step comes from the
schedule (:class:`sklearn_cnn.schedules.LearningRate`), whatever the solver.

Two kinds of weight penalty, per array (biases and BatchNormalization's
scale and shift get neither):

* ``l2``: the L2 penalty's gradient ``l2 * param`` is added to the data
  gradient (``alpha`` for "sgd" and "adam", as in MLPClassifier);
* ``weight_decay``: decoupled decay (Loshchilov & Hutter), the parameter
  shrinks by ``rate * weight_decay`` each step, outside Adam's moments
  ("adamw", where ``alpha`` is that coefficient).
"""

import math

import numpy as np

from ._kernels import _optim
from .schedules import LearningRate


class SGDOptimizer:
    """SGD with momentum (optionally Nesterov's)."""

    def __init__(self, params, learning_rate, momentum, nesterov):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocities = [np.zeros_like(p) for p in params]

    def to_dict(self):
        return {"solver": "sgd", "learning_rate": self.learning_rate.to_dict(),
                "momentum": self.momentum, "nesterov": self.nesterov,
                "velocities": self.velocities}

    def update_params(self, params, grads, rate, l2_scales, weight_decays, n_threads):
        for param, grad, velocity, l2 in zip(params, grads, self.velocities, l2_scales):
            _optim.sgd_update(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1),
                              rate, self.momentum, self.nesterov, l2, n_threads)


class AdamOptimizer:
    """Adam (Kingma & Ba, 2014) with the bias corrections folded into the
    step; with weight decays, AdamW."""

    def __init__(self, params, learning_rate, beta_1, beta_2, epsilon):
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.first_moments = [np.zeros_like(p) for p in params]
        self.second_moments = [np.zeros_like(p) for p in params]

    def to_dict(self):
        return {"solver": "adam", "learning_rate": self.learning_rate.to_dict(),
                "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "t": self.t, "first_moments": self.first_moments,
                "second_moments": self.second_moments}

    def update_params(self, params, grads, rate, l2_scales, weight_decays, n_threads):
        self.t += 1
        step = rate * math.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        for param, grad, m, v, l2, decay in zip(params, grads, self.first_moments,
                                                self.second_moments, l2_scales,
                                                weight_decays):
            _optim.adam_update(param.reshape(-1), grad.reshape(-1), m.reshape(-1),
                               v.reshape(-1), step, self.beta_1, self.beta_2,
                               self.epsilon, l2, rate * decay, n_threads)


def solver_from_dict(state):
    """Rebuild a solver from ``to_dict()``'s plain data (how models are
    pickled: skops then needs to trust no private type)."""
    state = dict(state)
    kind = state.pop("solver")
    rate = LearningRate.from_dict(state.pop("learning_rate"))
    if kind == "sgd":
        solver = SGDOptimizer([], rate, state["momentum"], state["nesterov"])
        solver.velocities = list(state["velocities"])
    else:
        solver = AdamOptimizer([], rate, state["beta_1"], state["beta_2"],
                               state["epsilon"])
        solver.t = state["t"]
        solver.first_moments = list(state["first_moments"])
        solver.second_moments = list(state["second_moments"])
    return solver
