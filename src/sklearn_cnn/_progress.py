"""Progress within an epoch, for ``verbose >= 2``.

On a terminal or in a Jupyter notebook, one line redrawn in place (at most
10 times a second: Jupyter's output area honours the carriage return too);
when output goes to a file or a log, a plain line at every tenth of the
epoch, so logs stay readable.
"""

import sys
import time

_BAR_WIDTH = 30
_REDRAW_SECONDS = 0.1


class EpochProgress:
    def __init__(self, epoch, n_batches, stream=None):
        self.epoch = epoch
        self.n_batches = n_batches
        self.stream = stream if stream is not None else sys.stdout
        self.is_tty = _redraws_in_place(self.stream)
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.next_tenth = 1

    def update(self, done, loss):
        """Report that ``done`` batches are finished; ``loss`` is their mean."""
        now = time.perf_counter()
        elapsed = now - self.start
        if self.is_tty:
            if now - self.last_draw < _REDRAW_SECONDS and done < self.n_batches:
                return
            self.last_draw = now
            filled = _BAR_WIDTH * done // self.n_batches
            bar = "=" * filled + (">" if filled < _BAR_WIDTH else "") + " " * (
                _BAR_WIDTH - filled - 1)
            self.stream.write(
                f"\rEpoch {self.epoch} [{bar[:_BAR_WIDTH]}] {done}/{self.n_batches} "
                f"batches, loss {loss:.4f}, {elapsed:.1f} s")
            if done == self.n_batches:
                self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
        elif done * 10 >= self.next_tenth * self.n_batches:
            while done * 10 >= self.next_tenth * self.n_batches:
                self.next_tenth += 1
            self.stream.write(
                f"  epoch {self.epoch}: {100 * done // self.n_batches}% ({done}/"
                f"{self.n_batches} batches), loss {loss:.4f}, {elapsed:.1f} s\n")
            self.stream.flush()


def _redraws_in_place(stream):
    """A terminal, or a Jupyter kernel's output stream (not a TTY, but its
    front end redraws a line on carriage returns)."""
    if bool(getattr(stream, "isatty", lambda: False)()):
        return True
    return type(stream).__module__.split(".")[0] == "ipykernel"
