"""Reading the UCR/UEA time-series archive's ``.ts`` files.

The format (https://www.timeseriesclassification.com, also aeon's and
sktime's): ``#`` comment lines, ``@key value`` header lines, then after
``@data`` one series per line: each channel's values comma-separated,
channels separated by ``:``, and the label (or regression target) last.
``?`` (or ``NaN``) marks a missing value.  Timestamped series
(``@timeStamps true``) are not supported.
"""

import numpy as np

_TRUE = {"true": True, "false": False}


def parse_ts(lines, source="the file"):
    """Return ``(series, labels, header)``: a list of (channels, length)
    float arrays, a list of label strings (None when the file has none) and
    the header as a dict of lower-cased keys."""
    header, series, labels = {}, [], []
    in_data = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise ValueError(f"{source}, line {number}: expected a @key line or "
                                 f"@data before the data, got {line[:40]!r}.")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                if _TRUE.get(header.get("timestamps", "false").split()[0], False):
                    raise ValueError(f"{source} has @timeStamps true: timestamped series "
                                     "are not supported.")
                has_label = any(_TRUE.get(header.get(k, "false").split()[0], False)
                                for k in ("classlabel", "targetlabel"))
                continue
            header[key] = value.strip()
            continue
        fields = line.split(":")
        if has_label:
            labels.append(fields[-1].strip())
            fields = fields[:-1]
        try:
            channels = [np.array([_value(v) for v in field.split(",")], dtype=np.float64)
                        for field in fields]
        except ValueError as error:
            raise ValueError(f"{source}, line {number}: {error}") from None
        if len({len(channel) for channel in channels}) > 1:
            raise ValueError(f"{source}, line {number}: the channels of one series have "
                             f"different lengths {[len(c) for c in channels]}.")
        series.append(np.stack(channels))
    if not in_data:
        raise ValueError(f"{source} has no @data line: it is not a .ts file.")
    if len({s.shape[0] for s in series}) > 1:
        raise ValueError(f"{source}: series have different numbers of channels.")
    return series, (labels if has_label else None), header


def _value(text):
    text = text.strip()
    if text in ("?", "NaN", "nan"):
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def stack_series(series, pad_unequal, source):
    """(n, channels, length) array; unequal lengths raise or are zero-padded
    at the end.  Returns the array and the lengths."""
    lengths = np.array([s.shape[1] for s in series])
    length = int(lengths.max()) if len(series) else 0
    if len(set(lengths.tolist())) > 1 and not pad_unequal:
        raise ValueError(
            f"{source} holds series of lengths {lengths.min()} to {lengths.max()}. Pass "
            "pad_unequal=True to pad them with zeros at the end (the true lengths "
            "are returned as 'lengths'), or use the archive's equal-length version.")
    X = np.zeros((len(series), series[0].shape[0] if series else 0, length))
    for i, s in enumerate(series):
        X[i, :, :s.shape[1]] = s
    return X, lengths
