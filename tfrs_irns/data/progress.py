"""Periodic "still working" lines for stages that can take a while.

Loading a 100M-row log or re-reading a file line by line after pyarrow
objected takes long enough that a silent terminal looks hung. A stage wrapped
in :class:`Progress` prints nothing when it is quick; past ``after`` seconds it
prints one line every ``every`` seconds (to stderr, so piped output stays
clean), and a closing line with the total time.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO


class Progress:
    """``with Progress("loading data.csv"):`` → ``loading data.csv... 10 s`` lines while it runs."""

    def __init__(self, label: str, after: float = 5.0, every: float = 10.0, out: Optional[TextIO] = None) -> None:
        if after < 0 or every <= 0:
            raise ValueError(f"after must be >= 0 and every > 0, got {after} and {every}")
        self.label, self.after, self.every = label, float(after), float(every)
        self.out = out
        self.seconds = 0.0
        self._stop = threading.Event()
        self._printed = False
        self._thread: Optional[threading.Thread] = None

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stderr, flush=True)

    def _run(self) -> None:
        wait = self.after
        while not self._stop.wait(wait):
            self._printed = True
            self._print(f"{self.label}... {time.perf_counter() - self._start:.0f} s")
            wait = self.every

    def __enter__(self) -> "Progress":
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="tfrs_irns-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.seconds = time.perf_counter() - self._start
        if self._printed and exc[0] is None:
            self._print(f"{self.label}: done in {self.seconds:.1f} s")
