"""Periodic "still working" lines for stages that can take a while.

Loading a 100M-row log, re-reading a file line by line after pyarrow
objected, or ranking a million-item catalogue for every test user takes long
enough that a silent terminal looks hung. A stage wrapped in
:class:`Progress` prints nothing when it is quick; past ``after`` seconds it
prints one line every ``every`` seconds (to stderr, so piped output stays
clean), and a closing line with the total time.

Two ways to feed it: a stage that cannot report how far it is (one pyarrow
call) gets a background thread that prints the elapsed time; a loop that
knows its ``total`` calls :meth:`Progress.update` with the work done so far,
and the lines say how far it is (``12,288 / 195,737 users (6%)``) — no
thread, and the clock is a parameter, so tests drive it with a fake one.

:class:`Every` is the same "at most once per period" rule on its own, for
callers that must not even *look* at a value more often (a training loop's
loss lives on the accelerator: reading it is a device→host sync).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Optional, TextIO


class Every:
    """``every.due()`` is true at its first call, then once ``seconds`` have
    passed since it last was: "at most once per period", with an injectable clock."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self.seconds, self.clock = float(seconds), clock
        self._next: Optional[float] = None

    def reset(self) -> None:
        """The next :meth:`due` is true again (a new epoch shows its first batch)."""
        self._next = None

    def due(self) -> bool:
        now = self.clock()
        if self._next is not None and now < self._next:
            return False
        self._next = now + self.seconds
        return True


class Progress:
    """``with Progress("loading data.csv"):`` → ``loading data.csv... 10 s`` lines while it runs.

    With ``total`` (and ``unit``), the caller reports with :meth:`update`:
    ``with Progress("ranking", total=n, unit="users") as p: ... p.update(done)``.
    """

    def __init__(
        self,
        label: str,
        after: float = 5.0,
        every: float = 10.0,
        out: Optional[TextIO] = None,
        total: Optional[int] = None,
        unit: str = "",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if after < 0 or every <= 0:
            raise ValueError(f"after must be >= 0 and every > 0, got {after} and {every}")
        if total is not None and total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        self.label, self.after, self.every = label, float(after), float(every)
        self.out, self.total, self.unit, self.clock = out, total, unit, clock
        self.seconds = 0.0
        self._stop = threading.Event()
        self._printed = False
        self._thread: Optional[threading.Thread] = None

    def _print(self, text: str) -> None:
        self._printed = True
        print(text, file=self.out or sys.stderr, flush=True)

    def _elapsed(self) -> float:
        return self.clock() - self._start

    def _run(self) -> None:
        wait = self.after
        while not self._stop.wait(wait):
            self._print(f"{self.label}... {self._elapsed():.0f} s")
            wait = self.every

    def update(self, done: int) -> None:
        """Report ``done`` of ``total`` (counted mode); prints when a line is due."""
        if self.total is None:
            raise ValueError("update() needs Progress(total=...)")
        elapsed = self._elapsed()
        if elapsed < self._due:
            return
        self._due = elapsed + self.every
        share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        unit = f" {self.unit}" if self.unit else ""
        self._print(f"{self.label}... {done:,} / {self.total:,}{unit}{share}, {elapsed:.0f} s")

    def __enter__(self) -> "Progress":
        self._start = self.clock()
        self._due = self.after
        if self.total is None:
            self._thread = threading.Thread(target=self._run, name="tfrs_irns-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.seconds = self._elapsed()
        if self._printed and exc[0] is None:
            print(f"{self.label}: done in {self.seconds:.1f} s", file=self.out or sys.stderr, flush=True)
