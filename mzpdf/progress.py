"""A one-line progress bar on stderr for long runs.

Shown only when the stream is a terminal and the task has run longer than
``delay`` seconds (short runs print nothing); redrawn at most ten times a
second; ``mzpdf run --quiet`` and ``mzpdf sweep --quiet`` turn it off.
Callable as ``bar(done, total)`` -- the progress callbacks of the solvers --
with :meth:`note` for a detail such as the cross-approximation sweep.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``label: [#####-----] 3/8 layers  1.2 s, ~2.0 s left  (detail)``.

    Parameters
    ----------
    label : str
    unit : str
        What is counted ("layers", "points").
    stream : file, default sys.stderr
    delay : float, optional
        Seconds before the bar first appears (default ``Progress.DELAY``, 2 s).
    enabled : bool
        False makes every method a no-op (also when ``stream`` is not a terminal).
    """

    width = 24
    DELAY = 2.0  # default seconds before the bar first appears

    def __init__(self, label: str, unit: str = "layers", stream=None, delay: float | None = None,
                 enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = enabled and isatty()
        self.label, self.unit = label, unit
        self.delay = self.DELAY if delay is None else delay
        self.start = time.perf_counter()
        self.done, self.total, self.detail = 0, 0, ""
        self._last_draw = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.detail = ""
        self._draw(force=done >= total)

    def note(self, detail: str) -> None:
        self.detail = detail
        self._draw()

    def line(self) -> str:
        """The bar's text (also when disabled; for tests)."""
        elapsed = time.perf_counter() - self.start
        frac = self.done / self.total if self.total else 0.0
        fill = int(round(frac * self.width))
        left = f", ~{elapsed * (1 - frac) / frac:.1f} s left" if 0 < frac < 1 else ""
        detail = f"  ({self.detail})" if self.detail else ""
        return (f"{self.label}: [{'#' * fill}{'-' * (self.width - fill)}] {self.done}/{self.total} {self.unit}  "
                f"{elapsed:.1f} s{left}{detail}")

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay or (not force and now - self._last_draw < 0.1):
            return
        self._last_draw = now
        self._shown = True
        self.stream.write("\r" + self.line() + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (only if it was drawn)."""
        if self.enabled and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
