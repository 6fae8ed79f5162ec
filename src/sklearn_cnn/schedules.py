"""Learning-rate schedules, applied at every step, for every solver.

The ``learning_rate`` parameter of the estimators takes MLPClassifier's
strings ("constant", "invscaling", "adaptive") or one of the specifications
below (the strings "cosine", "linear" and "plateau" stand for them with
their defaults).  They are plain data: they clone, pickle and grid-search,
e.g. ``{"learning_rate__warmup_epochs": [0, 1, 2]}``.

The rate of each step is ``learning_rate_init`` times the schedule's factor.
Decaying schedules run over ``max_iter`` epochs (the training horizon), and
position each step within it, so the rate changes smoothly within an epoch;
with ``partial_fit`` each call counts as one epoch, and calls beyond
``max_iter`` keep the final rate (zero by default: set ``max_iter`` to the
number of calls planned).  With ``solver="adam"``
or ``"adamw"`` the scheduled rate replaces Adam's constant step size.
"""

import math
from dataclasses import dataclass

from ._spec import Spec, check_int, check_real

__all__ = ["CosineDecay", "LinearDecay", "ReduceOnPlateau", "Schedule"]


class Schedule(Spec):
    """Base of the learning-rate schedule specifications."""

    def check_training(self, max_iter, n_iter_no_change):
        """Raise a clear error for settings that cannot work with these."""


@dataclass(frozen=True, repr=False)
class _Decay(Schedule):
    warmup_epochs: float = 0.0
    final_fraction: float = 0.0

    def __post_init__(self):
        name = type(self).__name__
        check_real(self.warmup_epochs, f"{name} warmup_epochs", low=0)
        check_real(self.final_fraction, f"{name} final_fraction", low=0, high=1,
                   high_closed=True)

    def check_training(self, max_iter, n_iter_no_change):
        if self.warmup_epochs >= max_iter:
            raise ValueError(
                f"{self!r} warms up for {self.warmup_epochs} epochs but training "
                f"lasts max_iter={max_iter} epochs: use a shorter warm-up or a larger "
                "max_iter.")

    def factor(self, epochs_done, step_epochs, max_iter):
        """Multiplier of ``learning_rate_init`` for the step that starts after
        ``epochs_done`` epochs (fractional) and lasts ``step_epochs``."""
        if epochs_done < self.warmup_epochs:
            return min(1.0, (epochs_done + step_epochs) / self.warmup_epochs)
        span = max_iter - self.warmup_epochs
        done = min(1.0, (epochs_done - self.warmup_epochs) / span)
        return self.final_fraction + (1 - self.final_fraction) * self._shape(done)


@dataclass(frozen=True, repr=False)
class CosineDecay(_Decay):
    """Linear warm-up, then cosine decay of the learning rate.

    Parameters
    ----------
    warmup_epochs : float, default=0.0
        Epochs (fractions allowed) over which the rate grows linearly from
        nearly zero to ``learning_rate_init``; must be shorter than
        ``max_iter``.
    final_fraction : float, default=0.0
        The rate at the end of ``max_iter`` epochs, as a fraction of
        ``learning_rate_init``.
    """

    @staticmethod
    def _shape(done):
        return 0.5 * (1 + math.cos(math.pi * done))


@dataclass(frozen=True, repr=False)
class LinearDecay(_Decay):
    """Linear warm-up, then linear decay of the learning rate (one-cycle
    style: the rate climbs, then falls to ``final_fraction`` at the end).

    Parameters
    ----------
    warmup_epochs : float, default=0.0
        Epochs (fractions allowed) over which the rate grows linearly from
        nearly zero to ``learning_rate_init``; must be shorter than
        ``max_iter``.
    final_fraction : float, default=0.0
        The rate at the end of ``max_iter`` epochs, as a fraction of
        ``learning_rate_init``.
    """

    @staticmethod
    def _shape(done):
        return 1 - done


@dataclass(frozen=True, repr=False)
class ReduceOnPlateau(Schedule):
    """Multiply the learning rate by ``factor`` when the watched value stalls.

    The watched value is the one early stopping watches: the training loss,
    or the validation score with ``early_stopping=True``; an epoch that
    does not improve it by at least ``tol`` counts towards ``patience``.
    This is Keras' and PyTorch's ``ReduceLROnPlateau``, for every solver.
    Training still stops after ``n_iter_no_change`` epochs without
    improvement, which must therefore exceed ``patience`` (use
    ``n_iter_no_change=np.inf`` to stop only at ``max_iter``).

    Parameters
    ----------
    factor : float, default=0.5
        Multiplier of the rate at each reduction, in (0, 1).
    patience : int, default=10
        Epochs without improvement before a reduction.
    min_learning_rate : float, default=0.0
        The rate is never reduced below this.
    """

    factor: float = 0.5
    patience: int = 10
    min_learning_rate: float = 0.0

    def __post_init__(self):
        check_real(self.factor, "ReduceOnPlateau factor", low=0, high=1,
                   low_closed=False)
        check_int(self.patience, "ReduceOnPlateau patience", 1)
        check_real(self.min_learning_rate, "ReduceOnPlateau min_learning_rate", low=0)

    def check_training(self, max_iter, n_iter_no_change):
        if n_iter_no_change <= self.patience:
            raise ValueError(
                f"{self!r} waits {self.patience} epochs before reducing the rate, but "
                f"training stops after n_iter_no_change={n_iter_no_change} epochs "
                "without improvement: set n_iter_no_change above patience (or to "
                "np.inf).")


# The strings that stand for a specification with its defaults.
SHORTHANDS = {"cosine": CosineDecay(), "linear": LinearDecay(),
              "plateau": ReduceOnPlateau()}
MLP_SCHEDULES = ("constant", "invscaling", "adaptive")


def as_schedule(value):
    """The specification (or MLP string) that ``learning_rate`` stands for."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str) and value in SHORTHANDS:
        return SHORTHANDS[value]
    if isinstance(value, str) and value in MLP_SCHEDULES:
        return value
    raise ValueError(
        f"learning_rate must be one of {MLP_SCHEDULES + tuple(SHORTHANDS)} or a "
        f"schedule (CosineDecay, LinearDecay, ReduceOnPlateau), got {value!r}.")


class LearningRate:
    """The rate of each step of one training run (the runtime schedule).

    Kept with the solver's state between ``partial_fit`` calls.
    """

    def __init__(self, schedule, learning_rate_init, max_iter, power_t):
        self.schedule = schedule
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.power_t = power_t
        self.current = float(learning_rate_init)  # the last step's rate
        self._plateau_rate = float(learning_rate_init)
        self._stalled_epochs = 0

    def to_dict(self):
        """Plain data for pickling (see ``_optimizers.solver_from_dict``)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, state):
        rate = cls.__new__(cls)
        rate.__dict__.update(state)
        return rate

    def step_rate(self, epochs_done, step_epochs, samples_seen):
        """The rate of the next step, which starts ``epochs_done`` epochs
        (fractional) and ``samples_seen`` samples into training."""
        schedule = self.schedule
        if schedule == "invscaling":
            rate = self.learning_rate_init / (samples_seen + 1) ** self.power_t
        elif isinstance(schedule, _Decay):
            rate = self.learning_rate_init * schedule.factor(epochs_done, step_epochs,
                                                             self.max_iter)
        elif isinstance(schedule, ReduceOnPlateau) or schedule == "adaptive":
            rate = self._plateau_rate
        else:
            rate = self.learning_rate_init
        self.current = rate
        return rate

    def epoch_ends(self, improved, verbose):
        """Count a stalled epoch for ReduceOnPlateau, reducing when due."""
        if not isinstance(self.schedule, ReduceOnPlateau):
            return
        self._stalled_epochs = 0 if improved else self._stalled_epochs + 1
        if self._stalled_epochs >= self.schedule.patience:
            reduced = max(self._plateau_rate * self.schedule.factor,
                          self.schedule.min_learning_rate)
            if verbose and reduced < self._plateau_rate:
                print(f"Reducing the learning rate to {reduced:g}.")
            self._plateau_rate = reduced
            self._stalled_epochs = 0

    def stop_or_adapt(self, message, verbose):
        """After ``n_iter_no_change`` stalled epochs: return True to stop;
        with "adaptive" (MLPClassifier's rule) first divide the rate by 5."""
        if self.schedule != "adaptive":
            if verbose:
                print(message + " Stopping.")
            return True
        if self._plateau_rate <= 1e-6:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self._plateau_rate /= 5.0
        if verbose:
            print(message + f" Setting learning rate to {self._plateau_rate:f}")
        return False
