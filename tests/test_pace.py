"""A paced run (RunControl.set_pace: at most so many steps a second) takes its steps in slices
and waits between them, and ends with the same weights, bit for bit, as an unpaced run."""
import threading

import numpy as np
import pytest

from engine.control import PACE_SLICE_SECONDS, RunControl
from engine.spec.experiment import default_experiment, resolve_experiment
from engine.training.trainer import Trainer


class ChunkLog(RunControl):
    """Notes the length of every chunk the trainer reports."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.chunks = []

    def consumed(self, steps, epoch_ended):
        self.chunks.append(steps)
        super().consumed(steps, epoch_ended)


def short_default(epochs=3):
    exp = default_experiment()
    return resolve_experiment(dict(exp, training=dict(exp["training"], epochs=epochs)))


def final_weights(control, epochs=3):
    trainer = Trainer(short_default(epochs))
    for event in trainer.run(control):
        pass
    return trainer, {k: v.copy() for k, v in trainer.net.state_dict().items()}


def test_a_pace_sizes_slices_and_the_wait_between_them():
    control = RunControl()
    control.set_pace(300)
    assert control.pace_slice() == int(300 * PACE_SLICE_SECONDS) == 10
    assert control.allowed_steps(1000) == 10            # the first slice starts at once
    control.consumed(30, False)
    assert control.seconds_to_next_slice() > 0.05      # 30 steps at 300/s: about 0.1 s owed
    assert control.steps_run == 30
    control.set_pace(None)                              # as fast as possible again
    assert control.seconds_to_next_slice() == 0.0 and control.allowed_steps(1000) == 1000
    control.set_pace(0.5)
    assert control.pace_slice() == 1                    # never less than one step
    with pytest.raises(ValueError, match="positive"):
        control.set_pace(-3)


def test_a_command_ends_the_wait_for_the_next_slice():
    control = RunControl()
    control.set_pace(1)
    control.consumed(1000, False)                       # the next slice is ~1000 s away
    got = []
    waiter = threading.Thread(target=lambda: got.append(control.allowed_steps(50)))
    waiter.start()
    control.stop()
    waiter.join(timeout=30)
    assert got == [0]


def test_a_paced_run_keeps_to_its_slices_and_ends_with_the_same_weights():
    free = ChunkLog()
    trainer, unpaced = final_weights(free)
    paced_control = ChunkLog()
    paced_control.set_pace(90)                          # 3 steps a slice (records every few steps): ~2 s
    paced_trainer, paced = final_weights(paced_control)
    assert max(paced_control.chunks) <= paced_control.pace_slice() == 3
    assert len(paced_control.chunks) > len(free.chunks)
    assert paced_control.steps_run == paced_trainer.step == trainer.step == sum(free.chunks)
    assert unpaced.keys() == paced.keys()
    for name in unpaced:
        assert np.array_equal(unpaced[name], paced[name]), name


def test_changing_the_pace_mid_run_changes_nothing_in_the_result():
    class Changing(ChunkLog):
        def consumed(self, steps, epoch_ended):
            super().consumed(steps, epoch_ended)
            if len(self.chunks) % 7 == 3:                # every few chunks: another pace, or none
                self.set_pace((None, 600000, 60)[len(self.chunks) % 3])

    _, unpaced = final_weights(RunControl(), epochs=2)
    control = Changing()
    control.set_pace(30000)
    _, changed = final_weights(control, epochs=2)
    assert all(np.array_equal(unpaced[k], changed[k]) for k in unpaced)
