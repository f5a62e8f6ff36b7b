"""Interruption and resource checks on the engine side (the window has its own)."""
import gc
import resource
import threading

import numpy as np

from engine.control import RunControl
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

EXPERIMENT = {"seed": 1, "data": {"name": "spirals", "n_samples": 400},
              "model": {"layers": [{"units": 16, "activation": "relu", "batch_norm": "before"}] * 2},
              "optimizer": {"name": "nesterov", "learning_rate": 0.05}, "training": {"epochs": 1000, "log_every": 1}}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_and_stop(exp, steps_before_stop: int) -> str:
    control = RunControl()
    trainer = Trainer(exp)
    events = []
    worker = threading.Thread(target=lambda: events.extend(trainer.run(control)), daemon=True)
    worker.start()
    while trainer.step < steps_before_stop and worker.is_alive():
        threading.Event().wait(0.0005)
    control.stop()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the training thread did not stop"
    return events[-1].status


def test_start_stop_200_times_leaves_no_thread_and_no_memory_behind():
    exp = resolve_experiment(EXPERIMENT)
    start_and_stop(exp, 3)  # warm up: compile, load caches
    gc.collect()
    threads_before = threading.active_count()
    rss_before = rss_mb()
    statuses = [start_and_stop(exp, i % 7) for i in range(200)]
    gc.collect()
    assert set(statuses) == {"stopped"}
    assert threading.active_count() == threads_before
    growth = rss_mb() - rss_before
    assert growth < 50, f"RSS grew by {growth:.1f} MB over 200 start/stop cycles"


def test_stop_while_paused_and_stop_before_the_first_step():
    exp = resolve_experiment(EXPERIMENT)
    control = RunControl(paused=True)
    control.stop()
    events = list(Trainer(exp).run(control))
    assert events[-1].status == "stopped" and events[-1].step == 0
    assert all(np.all(np.isfinite(w)) for w in events[-1].weights.values())
