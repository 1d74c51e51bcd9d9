"""Optional: sample the server with py-spy during a measured run and name its hottest functions.

Every thread that is not idle is sampled (the event loop, the SQLite writer, the worker threads
running llama.cpp embeddings, whose C code releases the GIL), so the shares say which step keeps
the process busy; where a request waits, the traces and ``/metrics`` say.

``py-spy record --format raw`` writes collapsed stacks ("frame;frame;... count"); the summary
counts, per function, the samples where it is the innermost frame (self) and those where it is
anywhere on the stack (inclusive). Install with ``.venv/bin/pip install py-spy``; without it, or
without permission to attach, the run goes on and says why.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

_OURS = re.compile(r"[(/]appliance/")


@contextlib.contextmanager
def profile(pid: int, enabled: bool, duration_s: float, workdir: Path, top: int = 15) -> Iterator[dict[str, object]]:
    summary: dict[str, object] = {}
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not enabled:
        yield summary
        return
    if not Path(spy).exists():
        summary["error"] = "py-spy is not installed (.venv/bin/pip install py-spy)"
        yield summary
        return
    out = workdir / "profile.txt"
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(duration_s)), "--rate", "200",
                             "--format", "raw", "--output", str(out), "--threads", "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield summary
    finally:
        _, err = proc.communicate(timeout=duration_s + 60)
        if proc.returncode != 0 or not out.exists():
            summary["error"] = f"py-spy failed ({proc.returncode}): {err.strip()[-500:]}"
        else:
            summary.update(summarise(out.read_text(), top))


def summarise(raw: str, top: int) -> dict[str, object]:
    """Self and inclusive shares of samples per function; ``top_appliance`` lists only the
    appliance's own functions, inclusive, which says which of its steps the CPU is spent under."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if frames:
            own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += n
        for frame in {_short(f) for f in frames if _OURS.search(f) and "site-packages" not in f}:
            ours[frame] += n

    def share(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / max(total, 1), 1)) for frame, n in counts.most_common(top)]

    return {"samples": total, "top_self": share(own), "top_inclusive": share(inclusive),
            "top_appliance": share(ours)}


def _short(frame: str) -> str:
    """``func (path/to/pkg/module.py:12)`` -> ``func (pkg/module.py)``: lines differ, functions count."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    module = "/".join(path.split("/")[-2:])
    return f"{name} ({module})" if module else name
