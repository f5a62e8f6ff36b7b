"""The window's frame pacing (gui/frames.py): frames as often as the eye needs, within a share of
the GUI thread's time.  Fake clocks: the wall clock and the GUI thread's CPU time move only when
the test moves them."""
import pytest

from gui.frames import DRAW_SHARE, LONGEST_SECONDS, SHORTEST_SECONDS, FramePacer


class Clocks:
    def __init__(self):
        self.wall, self.cpu = 100.0, 5.0

    def pacer(self) -> FramePacer:
        return FramePacer(clock=lambda: self.wall, cpu=lambda: self.cpu)


def cycles(clocks: Clocks, pacer: FramePacer, frame_cpu: float, n: int) -> list[float]:
    """n frames, each costing ``frame_cpu`` seconds of the GUI thread's CPU and drawn as soon as
    the pacer allows; the intervals it chose."""
    out = []
    for _ in range(n):
        pacer.frame()
        clocks.cpu += frame_cpu
        clocks.wall += pacer.interval
        out.append(pacer.interval)
    return out


def test_cheap_frames_come_every_33_ms():
    clocks = Clocks()
    pacer = clocks.pacer()
    assert pacer.age() == float("inf")   # the first frame is never held back
    assert cycles(clocks, pacer, 0.001, 50)[-1] == pytest.approx(SHORTEST_SECONDS)


def test_dear_frames_are_spaced_to_keep_the_gui_thread_within_its_share():
    """A tiny net at full speed: a frame of 20 ms would take 60% of the GUI thread at 30 frames a
    second (and the training thread waits for the lock); the interval grows until frames use
    about DRAW_SHARE of the time."""
    clocks = Clocks()
    pacer = clocks.pacer()
    intervals = cycles(clocks, pacer, 0.020, 60)
    settled = intervals[-10:]
    assert all(0.020 / i <= DRAW_SHARE * 1.3 for i in settled)
    assert all(0.020 / i >= 0.7 * DRAW_SHARE / 1.3 for i in settled)   # and not much slower than needed


def test_frames_never_wait_longer_than_the_longest_interval_and_recover_when_cheap():
    clocks = Clocks()
    pacer = clocks.pacer()
    assert max(cycles(clocks, pacer, 1.0, 40)) == pytest.approx(LONGEST_SECONDS)   # 4 frames a second at least
    assert cycles(clocks, pacer, 0.0, 40)[-1] == pytest.approx(SHORTEST_SECONDS)   # paused: back to 30
