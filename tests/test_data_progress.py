"""Progress lines: quiet when quick, periodic and counted when slow (a fake clock, nothing timed)."""

import io
import itertools

import pytest

from tfrs_irns.data.progress import Progress


def fake_clock(step: float = 1.0):
    """A clock that advances ``step`` seconds each time it is read."""
    ticks = itertools.count()
    return lambda: step * next(ticks)


def test_counted_progress_prints_every_period_with_the_share_done():
    out = io.StringIO()
    # Read at enter (0), then once per update (1, 2, ...), then at exit.
    with Progress("ranking 9 items", after=2, every=3, out=out, total=1000, unit="users", clock=fake_clock()) as p:
        for done in range(100, 1001, 100):
            p.update(done)
    assert out.getvalue().splitlines() == [
        "ranking 9 items... 200 / 1,000 users (20%), 2 s",
        "ranking 9 items... 500 / 1,000 users (50%), 5 s",
        "ranking 9 items... 800 / 1,000 users (80%), 8 s",
        "ranking 9 items: done in 11.0 s",
    ]


def test_counted_progress_is_silent_when_quick():
    out = io.StringIO()
    with Progress("quick", after=100, out=out, total=5, clock=fake_clock()) as p:
        for done in range(6):
            p.update(done)
    assert out.getvalue() == ""


def test_update_needs_a_total_and_total_must_not_be_negative():
    with Progress("x", after=100, out=io.StringIO()) as p, pytest.raises(ValueError, match="total"):
        p.update(1)
    with pytest.raises(ValueError, match="total"):
        Progress("x", total=-1)


def test_every_is_due_first_then_once_per_period():
    from tfrs_irns.data.progress import Every

    every = Every(1.0, clock=fake_clock(0.3))  # reads at 0, 0.3, 0.6, ...
    assert [every.due() for _ in range(10)] == [True, False, False, False, True, False, False, False, True, False]
    every.reset()
    assert every.due()
    with pytest.raises(ValueError, match="seconds"):
        Every(-1)
