"""Plain-text progress lines for long work (friendly to logs, SLURM files and terminals)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Prints ``[name] done/total (pct) elapsed ETA extra`` at most every ``interval`` seconds."""

    def __init__(
        self,
        name: str,
        total: int,
        interval: float = 5.0,
        stream: TextIO | None = None,
        done: int = 0,
    ) -> None:
        self.name = name
        self.total = total
        self.interval = interval
        self.stream = stream or sys.stderr
        self.done = done
        self._start_done = done
        self._start = time.monotonic()
        self._last = float("-inf")

    def update(
        self, step: int = 1, extra: str = "", force: bool = False, eta_s: float | None = None
    ) -> None:
        """Advance by ``step`` and print a line if ``interval`` has passed (or ``force``).

        ``eta_s`` replaces the ETA estimated from the count (e.g. for work bounded by time).
        """
        self.done += step
        now = time.monotonic()
        if force or self.done >= self.total or now - self._last >= self.interval:
            self._last = now
            self.stream.write(self.line(extra, eta_s) + "\n")
            self.stream.flush()

    def line(self, extra: str = "", eta_s: float | None = None) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self._start
        rate_done = self.done - self._start_done
        if eta_s is not None:
            eta = _fmt_seconds(max(eta_s, 0.0))
        elif rate_done > 0 and self.total > self.done:
            eta = _fmt_seconds(elapsed / rate_done * (self.total - self.done))
        else:
            eta = "-"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = (
            f"[{self.name}] {self.done}/{self.total} ({pct:.0f}%) "
            f"elapsed {_fmt_seconds(elapsed)} ETA {eta}"
        )
        return f"{text} {extra}".rstrip()
