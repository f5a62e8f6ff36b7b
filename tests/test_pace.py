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


def test_a_pace_sizes_slices():
    control = RunControl()
    control.set_pace(300)
    assert control.pace_slice() == int(300 * PACE_SLICE_SECONDS) == 10
    assert control.allowed_steps(1000) == 10 and control.allowed_steps(4) == 4
    control.set_pace(None)                              # as fast as possible again
    assert control.seconds_to_next_slice() == 0.0 and control.allowed_steps(1000) == 1000
    control.set_pace(0.5)
    assert control.pace_slice() == 1                    # never less than one step
    with pytest.raises(ValueError, match="positive"):
        control.set_pace(-3)


def owing(control, steps):
    """``control.consumed(steps)`` on a thread (it waits out the steps' share of time)."""
    waiter = threading.Thread(target=control.consumed, args=(steps, False))
    waiter.start()
    return waiter


@pytest.mark.parametrize("command", ["pause", "stop", "faster"])
def test_the_wait_after_a_slice_lasts_until_a_command(command):
    control = RunControl()
    control.set_pace(1)
    waiter = owing(control, 1000)                       # 1000 steps at 1 a second: a long wait owed
    waiter.join(timeout=0.5)
    assert waiter.is_alive() and control.seconds_to_next_slice() > 100 and control.steps_run == 1000
    {"pause": control.pause, "stop": control.stop, "faster": lambda: control.set_pace(None)}[command]()
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    if command == "pause":                              # paused: the next look blocks in allowed_steps
        assert control.allowed_steps(5, timeout=0.01) == -1


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
