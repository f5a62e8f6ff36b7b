"""Checks beside the speed table: dead ReLUs and denormal inputs keep their speed
(FTZ/DAZ on every computing thread), and the time from a fresh interpreter to
the first record (kernels compiled, or loaded from the cache)."""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from runners import Config, DescentRun, descent_experiment, measure, random_data


# ---------------------------------------------------------------------------------- denormals

def dead_relu_run(args) -> dict:
    """5,000 steps of a deep ReLU net at a learning rate that kills units; steps/s per 1,000 steps."""
    from engine.spec.experiment import resolve_experiment

    cfg = Config("dead-relu", "784-(300x4)-10 ReLU, batch 32, momentum, lr 0.3", 784, (300,) * 4, "relu", 10,
                 32, "momentum", 0.3, 54_000)
    exp = descent_experiment(cfg)
    exp = resolve_experiment(dict(exp, training=dict(exp["training"], epochs=1_000_000)))
    data = random_data(cfg)
    run = DescentRun(cfg, data, exp)
    run.advance(50)    # compile / load the cache before timing
    windows, cpu_windows, dead = [], [], []
    for _ in range(5):   # each 1,000 steps: the median rate of ten 100-step pieces (robust to a busy machine)
        rates, cpu_rates = [], []
        for _ in range(10):
            c0 = time.thread_time()
            res = run.advance(100)
            rates.append(res["steps"] / res["seconds"])
            cpu_rates.append(res["steps"] / max(time.thread_time() - c0, 1e-9))
        windows.append(statistics.median(rates))
        cpu_windows.append(statistics.median(cpu_rates))
        m = run.last_metrics
        dead.append(float(np.nansum(m.dead_count) / sum(cfg.hidden)) if m is not None else math.nan)
    slots = run.trainer.opt_state.slots
    tiny = np.finfo(np.float32).tiny
    denormal = int(np.count_nonzero((slots != 0) & (np.abs(slots) < tiny)))
    return {"config": "dead-relu", "label": cfg.label, "steps_per_s_per_1000": windows,
            "cpu_steps_per_s_per_1000": cpu_windows, "dead_fraction": dead,
            "last_over_first": windows[-1] / windows[0], "cpu_last_over_first": cpu_windows[-1] / cpu_windows[0],
            "denormals_in_momentum": denormal, "met": bool(windows[-1] / windows[0] >= 0.8)}


def augment_run(args, configs: list) -> dict:
    """Data augmentation's cost per step on fmnist-b32-momentum (bench/augment_row.py);
    ``configs`` is bench/engine.py's list (this module cannot import that file: its name
    would shadow the engine package)."""
    from augment_row import augment_row

    cfg = next(c for c in configs if c.key == "fmnist-b32-momentum")
    return augment_row(cfg, random_data(cfg), descent_experiment(cfg), DescentRun, measure, args)


def denormal_input_run(args) -> dict:
    """The same training on inputs ~1e-39 (float32 denormals) and on normal inputs."""
    cfg = Config("denormal-input", "784-300-100-10 ReLU, batch 32, momentum", 784, (300, 100), "relu", 10, 32,
                 "momentum", 0.01, 20_000)
    normal = DescentRun(cfg, random_data(cfg))
    rates = {}
    res = measure([normal], args.rounds, args.round_seconds, args.warmup)
    rates["normal"] = statistics.median(res["descent"])
    del normal
    tiny = DescentRun(cfg, random_data(cfg, scale=1e-39))
    res = measure([tiny], args.rounds, args.round_seconds, args.warmup)
    rates["denormal"] = statistics.median(res["descent"])
    cost = rates["normal"] / rates["denormal"]
    return {"config": "denormal-input", "label": cfg.label + ", inputs ~1e-39",
            "normal_steps_per_s": rates["normal"], "denormal_steps_per_s": rates["denormal"],
            "cost": cost, "met": bool(cost <= 2.0)}


# ---------------------------------------------------------------------------------- startup

STARTUP_SCRIPT = """
import sys, time
c0, w0 = time.process_time(), time.perf_counter()
sys.path.insert(0, {root!r})
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer
from engine.events import StepMetrics
exp = resolve_experiment({{"data": {{"name": "moons", "n_samples": 500}},
                          "model": {{"layers": [{{"units": 16, "activation": "relu"}}]}},
                          "training": {{"epochs": 2}}}})
c1, w1 = time.process_time(), time.perf_counter()
first = None
for e in Trainer(exp).run():
    if isinstance(e, StepMetrics) and first is None:
        first = (time.process_time() - c0, time.perf_counter() - w0)
print(w1 - w0, first[1], time.perf_counter() - w0, first[0], time.process_time() - c0)
"""


def startup_times(root: Path, cold: bool) -> dict:
    """Seconds from a fresh interpreter to the first diagnostics record of a small run
    (import, kernels loaded or compiled, first steps) and to the end of a 2-epoch run
    (which also loads evaluate/predict).  Uses its own Numba cache directory, so the
    cold measurement compiles everything without touching the project's cache."""
    import tempfile

    script = STARTUP_SCRIPT.format(root=str(root))
    with tempfile.TemporaryDirectory(prefix="descent-bench-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)

        def once():
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
            return [float(v) for v in out.stdout.split()]

        result = {}
        if cold:
            imp, first, whole, first_cpu, whole_cpu = once()
            result.update({"cold_first_record_seconds": first, "cold_whole_run_seconds": whole,
                           "cold_first_record_cpu_seconds": first_cpu, "cold_whole_run_cpu_seconds": whole_cpu})
        else:
            once()   # fill the temporary cache
        warm = [once() for _ in range(3)]
        result.update({"warm_import_seconds": statistics.median(w[0] for w in warm),
                       "warm_first_record_seconds": statistics.median(w[1] for w in warm),
                       "warm_whole_run_seconds": statistics.median(w[2] for w in warm)})
    return result
