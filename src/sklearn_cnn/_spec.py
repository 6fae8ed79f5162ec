"""Plain-data specifications: the base of layers, schedules and augmentations.

A specification is a frozen dataclass that a user writes as an estimator
parameter (``Conv2D(32)``, ``CosineDecay(warmup_epochs=1)``,
``RandomTranslation(2)``).  It compares, pickles and clones; its ``repr``
shows only what differs from the defaults; ``get_params`` lists its fields
and ``replace`` makes a changed copy, which is how the estimators'
``set_params`` reach one field (``learning_rate__warmup_epochs``,
``augment__0__max_shift``) and so how grid searches over them work.
"""

import dataclasses
from numbers import Integral, Real


class Spec:
    """Base of the frozen-dataclass specifications."""

    def __repr__(self):
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            required = (field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING)
            if required:
                parts.append(repr(value))
            elif value != field.default:
                parts.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def get_params(self, deep=True):
        """Fields of this specification.

        Parameters
        ----------
        deep : bool, default=True
            Ignored; present for scikit-learn's API.

        Returns
        -------
        params : dict
            Field names mapped to their values.
        """
        return {field.name: getattr(self, field.name)
                for field in dataclasses.fields(self)}

    def replace(self, **changes):
        """A copy with some fields changed (specifications are immutable).

        Parameters
        ----------
        **changes : dict
            Field names and their new values.

        Returns
        -------
        spec : Spec
            The new specification, validated.
        """
        self._check_field_names(changes)
        return dataclasses.replace(self, **changes)

    def _check_field_names(self, changes):
        names = [field.name for field in dataclasses.fields(self)]
        for key in changes:
            name = key.partition("__")[0]
            if name not in names:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; its parameters "
                    f"are {names}.")


def nested_spec_params(prefix, value):
    """``{prefix}__{field}`` for one spec, or ``{prefix}__{i}`` and
    ``{prefix}__{i}__{field}`` for a tuple of specs (anything else: none)."""
    if isinstance(value, Spec):
        return {f"{prefix}__{name}": v for name, v in value.get_params().items()}
    params = {}
    if isinstance(value, (tuple, list)):
        for index, entry in enumerate(value):
            params[f"{prefix}__{index}"] = entry
            if isinstance(entry, Spec):
                params.update(nested_spec_params(f"{prefix}__{index}", entry))
    return params


def replace_nested(value, changes, owner):
    """Apply ``{"field": v}`` to a spec, or ``{"0": spec, "1__field": v}`` to
    a tuple of specs; returns the new value.  ``owner`` names the estimator
    parameter in error messages."""
    if isinstance(value, Spec):
        return value.replace(**changes)
    if not isinstance(value, (tuple, list)):
        raise ValueError(
            f"{owner} is {value!r}: set {owner} to a specification (or a tuple of "
            f"them) before setting {owner}__{next(iter(changes))}.")
    return replace_in_tuple(value, changes, owner, _as_spec, "entries")


def _as_spec(entry, location):
    if not isinstance(entry, Spec):
        raise ValueError(f"{location} is {entry!r}, which has no fields to set.")
    return entry


def replace_in_tuple(entries, changes, owner, as_spec, noun):
    """Apply ``{"0": new entry, "1__field": v, ...}`` to a tuple; an entry
    whose fields change goes through ``as_spec(entry, location)`` first
    (layers turn shorthands such as ``32`` into specs there).  Returns a new
    tuple; ``noun`` names the entries in error messages."""
    entries = list(entries)
    by_index = {}
    for key, new in changes.items():
        index, _, rest = key.partition("__")
        if not (index.isdigit() and int(index) < len(entries)):
            raise ValueError(
                f"{owner}__{key}: {owner} has {len(entries)} {noun}, numbered 0 to "
                f"{len(entries) - 1}; {index!r} is not one of them.")
        by_index.setdefault(int(index), {})[rest] = new
    for index, sub_changes in sorted(by_index.items()):
        if "" in sub_changes:
            entries[index] = sub_changes.pop("")
        if sub_changes:
            spec = as_spec(entries[index], f"{owner}[{index}]")
            entries[index] = spec.replace(**sub_changes)
    return tuple(entries)


def check_real(value, name, low=None, high=None, low_closed=True, high_closed=False):
    """Raise a clear TypeError/ValueError unless ``value`` is a real number in
    the given interval."""
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    too_low = low is not None and (value < low if low_closed else value <= low)
    too_high = high is not None and (value > high if high_closed else value >= high)
    if too_low or too_high or value != value:
        interval = (("[" if low_closed else "(") + f"{low if low is not None else '-inf'}, "
                    f"{high if high is not None else 'inf'}" + ("]" if high_closed else ")"))
        raise ValueError(f"{name} must be in {interval}, got {value!r}.")


def check_int(value, name, minimum=1):
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
