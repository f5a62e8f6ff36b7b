"""The run's cadence: where chunks end and records fall (step counts, never timings)."""
import pytest

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
    # after each epoch's evaluation, its decision surface
    kinds = [type(e) for e in events]
    assert all(kinds[i + 1] is DecisionSurface for i, k in enumerate(kinds) if k is EpochEnd)
