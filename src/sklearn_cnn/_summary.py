"""``summary()``'s result: a layer table with text and HTML representations."""

import html
import math

from ._network import OUTPUT_PATH


class ModelSummary:
    """The layers of a model with output shapes and trained arrays.

    Shows as a text table when printed or returned in a console, and as an
    HTML table in a notebook.

    Attributes
    ----------
    rows : list of tuple of str
        ``(layer, output shape, arrays, parameter count)`` per layer; nested
        layers are indented.  Arrays that are not trained (running
        statistics, in ``state_``) are listed but not counted.
    total : int
        Number of trained values.
    dtype : str
        Data type of the parameters.
    """

    header = ("Layer", "Output shape", "Trained arrays", "Parameters")

    def __init__(self, rows, total, dtype, per_output=0):
        self.rows = rows
        self.total = total
        self.dtype = dtype
        self.per_output = per_output

    def footer(self):
        if self.per_output:  # before fit: the output width comes from y
            return (f"Total parameters: {self.total:,} + {self.per_output:,} per "
                    "output (the number of outputs and the dtype are set in fit)")
        return f"Total parameters: {self.total:,} ({self.dtype})"

    def __str__(self):
        table = [self.header, *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        rule = "  ".join("-" * w for w in widths)

        def line(row):
            cells = [cell.ljust(w) for cell, w in zip(row[:3], widths)]
            return "  ".join([*cells, row[3].rjust(widths[3])]).rstrip()

        return "\n".join([line(self.header), rule, *map(line, self.rows), rule,
                          self.footer()])

    __repr__ = __str__

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self.rows)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{html.escape(self.footer())}</p>")


def summarize(network, parameters=None):
    """Rows for every layer of an unfused ``network`` (children indented).

    With ``parameters`` (a fitted model) the arrays are the fitted ones;
    without, the network was built for one output and the output layer is
    shown per output.
    """
    height, width, channels = network.input_shape
    rows = [("Input", f"{height} x {width} x {channels}", "", "")]
    total = per_output = 0

    def visit(layer, depth):
        nonlocal total, per_output
        arrays, count = [], 0
        for name, info in layer.parameters().items():
            shape = (parameters[f"{layer.path}.{name}"].shape if parameters
                     else info.shape)
            arrays.append(f"{name} {'x'.join(map(str, shape))}")
            count += math.prod(shape)
        # Non-trained arrays (running statistics) are listed, not counted.
        arrays += [f"{name} {'x'.join(map(str, info.shape))} (not trained)"
                   for name, info in layer.state().items()]
        output_shape = " x ".join(str(s) for s in layer.output_shape)
        if parameters is None and layer.path == OUTPUT_PATH:
            per_output = count
            arrays = [f"weights {layer.input_shape[0]}xn_outputs", "bias n_outputs"]
            output_shape, counted = "n_outputs", f"{count:,} per output"
        else:
            total += count
            counted = f"{count:,}" if arrays else ""
        name = ("Dense(n_outputs)" if parameters is None and layer.path == OUTPUT_PATH
                else layer.name)
        rows.append(("  " * depth + name, output_shape, ", ".join(arrays),
                     counted))
        for child in layer.children():
            visit(child, depth + 1)

    for layer in network.layers:
        visit(layer, 0)
    dtype = str(next(iter(parameters.values())).dtype) if parameters else ""
    return ModelSummary(rows, total, dtype, per_output)
