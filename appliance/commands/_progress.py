"""A dependency-free progress bar for long commands, drawn on stderr.

On a terminal it redraws one line in place (at most ten times a second); otherwise (a pipe, a
log file) it prints a plain line every few seconds, and always a final one.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from appliance.knowledge import IngestProgress


class IngestBar:
    def __init__(self, stream: TextIO | None = None, *, width: int = 28) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._width = width
        self._last_draw = 0.0
        self._last: IngestProgress | None = None
        self._drawn = ""

    def line(self, p: IngestProgress) -> str:
        total = max(p.files_total, 1)
        filled = int(self._width * min(p.files_done, total) / total)
        bar = "#" * filled + "-" * (self._width - filled)
        rate = p.chunks / p.elapsed_s if p.elapsed_s > 0 else 0.0
        current = p.current.rsplit("/", 1)[-1]
        if len(current) > 32:
            current = "…" + current[-31:]
        return (f"[{bar}] {p.files_done}/{p.files_total} files  {p.chunks} chunks ({p.embedded} embedded)  "
                f"{rate:.1f} chunks/s  {current}")

    def update(self, p: IngestProgress) -> None:
        self._last = p
        now = time.monotonic()
        interval = 0.1 if self._tty else 2.0
        if now - self._last_draw < interval and p.files_done < p.files_total:
            return
        self._last_draw = now
        self._draw(p)

    def _draw(self, p: IngestProgress) -> None:
        self._drawn = self.line(p)
        if self._tty:
            self._stream.write("\r\x1b[K" + self.line(p))
        else:
            self._stream.write(self.line(p) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._last is not None:
            if self.line(self._last) != self._drawn:
                self._draw(self._last)
            if self._tty:
                self._stream.write("\n")
            self._stream.flush()
