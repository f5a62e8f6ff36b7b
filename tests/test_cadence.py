"""The run's cadence: where chunks end and records fall (step counts, never timings), and when
decision surfaces are made (a fake clock: no test here reads the time)."""
import dataclasses

import numpy as np
import pytest

from engine.control import RunControl

from engine.events import DecisionSurface, EpochEnd, StepMetrics
from engine.spec.experiment import resolve_experiment
from engine.training.cadence import Cadence, default_log_every
from engine.training.trainer import Trainer


def test_a_chunk_ends_at_the_next_record_step():
    cadence = Cadence(log_every=10)
    assert cadence.steps_to_record(0) == 10 and cadence.steps_to_record(7) == 3 and cadence.steps_to_record(10) == 10
    assert cadence.chunk_steps(7, allowed=100, steps_per_second=1e6) == 3
    assert cadence.chunk_steps(7, allowed=2, steps_per_second=1e6) == 2     # the control's or the epoch's limit


def test_a_chunk_lasts_about_chunk_seconds_and_one_step_before_any_measurement():
    cadence = Cadence(log_every=10**9, chunk_seconds=0.1)
    assert cadence.chunk_steps(0, allowed=10**6, steps_per_second=0.0) == 1
    assert cadence.chunk_steps(0, allowed=10**6, steps_per_second=5000.0) == 500
    assert cadence.chunk_steps(0, allowed=10**6, steps_per_second=3.0) == 1


def test_records_fall_on_log_steps_epoch_ends_and_pauses():
    cadence = Cadence(log_every=4)
    assert cadence.record_due(8, epoch_ended=False, paused=False)
    assert not cadence.record_due(9, epoch_ended=False, paused=False)
    assert cadence.record_due(9, epoch_ended=True, paused=False)
    assert cadence.record_due(9, epoch_ended=False, paused=True)


def test_surfaces_wait_for_surface_seconds():
    cadence = Cadence(log_every=1, surface_seconds=0.25)
    assert cadence.surface_due(10.3, 10.0) and not cadence.surface_due(10.2, 10.0)


def test_a_slow_surface_waits_longer_and_a_final_one_never_waits():
    cadence = Cadence(log_every=1, surface_seconds=0.1)
    assert not cadence.surface_due(10.5, 10.0, cost=0.05)      # 50 ms each: at most one a second (5%)
    assert cadence.surface_due(11.1, 10.0, cost=0.05)
    assert cadence.surface_due(10.0, 10.0, cost=0.05, final=True)


def test_log_every_must_be_positive():
    with pytest.raises(ValueError, match="log_every"):
        Cadence(log_every=0)


def test_default_log_every_keeps_records_near_five_percent_of_small_networks_time():
    assert default_log_every(1688) == 85                                   # ~20 records per epoch
    assert default_log_every(1688, 32, 784 * 300 + 300 * 100 + 100 * 10) == 85
    # 2-8-8-1 at batch 10: a record (256 * 88 + 1e6 multiply-adds) costs as much as ~45 steps
    # (3 * 10 * 88 + 20,000), so 5% of the time allows one every ~900 steps, not every 5
    assert default_log_every(100, 10, 2 * 8 + 8 * 8 + 8) == 904


def test_a_run_records_at_every_log_step_and_at_every_epoch_end():
    exp = resolve_experiment({"seed": 3, "data": {"name": "moons", "n_samples": 300},
                              "model": {"layers": [{"units": 8, "activation": "tanh"}]},
                              "training": {"epochs": 3, "batch_size": 16, "log_every": 5}})
    trainer = Trainer(exp)
    events = list(trainer.run())
    spe = trainer.steps_per_epoch
    assert spe % 5 != 0   # epoch ends between log steps
    records = [e.step for e in events if isinstance(e, StepMetrics)]
    assert records == sorted(set(range(5, 3 * spe + 1, 5)) | {spe, 2 * spe, 3 * spe})


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spiral_trainer(epochs: int, log_every: int, surface_seconds: float) -> tuple[Trainer, FakeClock]:
    exp = resolve_experiment({"seed": 3, "data": {"name": "spirals", "n_samples": 300},
                              "model": {"layers": [{"units": 8, "activation": "tanh"}]},
                              "training": {"epochs": epochs, "batch_size": 16, "log_every": log_every}})
    trainer, clock = Trainer(exp), FakeClock()
    trainer.cadence = dataclasses.replace(trainer.cadence, surface_seconds=surface_seconds, clock=clock)
    return trainer, clock


def test_epoch_end_surfaces_are_throttled_by_the_clock_and_the_last_epoch_always_has_one():
    """A tiny net ends hundreds of epochs a second: a surface per epoch cost it as much as its steps
    while the window draws ten a second.  Epochs of 40 ms, surfaces every 100 ms: epochs 1, 4, 7
    and the last one."""
    trainer, clock = spiral_trainer(epochs=10, log_every=10**6, surface_seconds=0.1)
    surfaces = []
    for event in trainer.run():
        if isinstance(event, EpochEnd):
            clock.now += 0.04
        elif isinstance(event, DecisionSurface):
            surfaces.append(event.step // trainer.steps_per_epoch)
    assert surfaces == [1, 4, 7, 10]


def test_surfaces_change_nothing_in_the_weights():
    """Every surface or almost none: the same history and the same weights (surfaces only read the net)."""
    weights, records = [], []
    for seconds in (0.0, float("inf")):
        trainer, clock = spiral_trainer(epochs=4, log_every=5, surface_seconds=seconds)
        events = []
        for event in trainer.run():
            events.append(event)
            clock.now += 1.0
        n = sum(isinstance(e, DecisionSurface) for e in events)
        # one per record (an epoch's last record: after its evaluation), or only the run's last one
        assert n == (sum(isinstance(e, StepMetrics) for e in events) if seconds == 0.0 else 1)
        weights.append(trainer.net.state_dict())
        records.append([(e.step, e.loss, tuple(e.grad_norm)) for e in events if isinstance(e, StepMetrics)])
    assert records[0] == records[1]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_paused_run_shows_the_surface_of_the_step_it_paused_at():
    trainer, clock = spiral_trainer(epochs=4, log_every=10**6, surface_seconds=float("inf"))
    control = RunControl(paused=True)
    control.step(7)
    events = trainer.run(control)
    for event in events:
        if isinstance(event, DecisionSurface) and event.step == 7:
            break
    else:
        raise AssertionError("no surface at the paused step")
    control.stop()
    rest = list(events)
    assert not any(isinstance(e, DecisionSurface) for e in rest)   # stopped mid-epoch: the paused one stays
