"""The ingest progress bar of long commands, drawn on stderr by ``rich.progress``.

On a terminal rich redraws one line in place. Elsewhere (a pipe, a log file) rich draws only the
final state, so the bar also prints a plain line every few seconds: whoever tails a log of a long
ingest sees it move.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from appliance.knowledge import IngestProgress

LOG_INTERVAL_S = 5.0


class IngestBar:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self._progress = Progress(
            BarColumn(bar_width=28), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[chunks]} chunks ({task.fields[embedded]} embedded)"),
            TextColumn("{task.fields[rate]:.1f} chunks/s"), TimeElapsedColumn(), TextColumn("{task.fields[current]}"),
            console=self._console, refresh_per_second=10,
        )
        self._task: TaskID | None = None
        self._last_log = time.monotonic()

    def update(self, p: IngestProgress) -> None:
        current = p.current.rsplit("/", 1)[-1]
        if len(current) > 32:
            current = "…" + current[-31:]
        fields = {"chunks": p.chunks, "embedded": p.embedded, "current": current,
                  "rate": p.chunks / p.elapsed_s if p.elapsed_s > 0 else 0.0}
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("ingest", total=max(p.files_total, 1), **fields)
        self._progress.update(self._task, completed=p.files_done, total=max(p.files_total, 1), **fields)
        now = time.monotonic()
        if not self._console.is_terminal and now - self._last_log >= LOG_INTERVAL_S:
            self._last_log = now
            self._console.print(f"{p.files_done}/{p.files_total} files, {p.chunks} chunks ({p.embedded} embedded)",
                                markup=False)

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
