"""``summary()``'s result: a layer table with text and HTML representations."""

import html


class ModelSummary:
    """The layers of a model with output shapes and trained arrays.

    Shows as a text table when printed or returned in a console, and as an
    HTML table in a notebook.

    Attributes
    ----------
    rows : list of tuple of str
        ``(layer, output shape, arrays, parameter count)`` per layer; nested
        layers are indented.
    total : int
        Number of trained values.
    dtype : str
        Data type of the parameters.
    """

    header = ("Layer", "Output shape", "Trained arrays", "Parameters")

    def __init__(self, rows, total, dtype):
        self.rows = rows
        self.total = total
        self.dtype = dtype

    def footer(self):
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


def summarize(network, parameters, input_shape):
    """Rows for every layer of an unfused ``network`` (children indented)."""
    height, width, channels = input_shape
    rows = [("Input", f"{height} x {width} x {channels}", "", "")]
    total = 0

    def visit(layer, depth):
        nonlocal total
        arrays, count = [], 0
        for name in layer.parameters():
            array = parameters[f"{layer.path}.{name}"]
            arrays.append(f"{name} {'x'.join(map(str, array.shape))}")
            count += array.size
        total += count
        rows.append(("  " * depth + layer.name,
                     " x ".join(str(s) for s in layer.output_shape),
                     ", ".join(arrays), f"{count:,}" if arrays else ""))
        for child in layer.children():
            visit(child, depth + 1)

    for layer in network.layers:
        visit(layer, 0)
    dtype = next(iter(parameters.values())).dtype
    return ModelSummary(rows, total, str(dtype))
