#!/usr/bin/env python
"""Engine benchmark: training steps/s of Descent, and of PyTorch when importable.

    python bench/engine.py              # full run (several minutes)
    python bench/engine.py --quick      # short rounds, fewer configurations' rounds
    python bench/engine.py --json out.jsonl --only fmnist-b32
    python bench/engine.py --root /path/to/other/checkout   # measure another engine version

What is measured
----------------
Descent is driven through its real training loop: ``Trainer.run()`` is
consumed event by event, exactly as the CLI does, with the default
diagnostics interval (``training.log_every`` = null, i.e.
``engine.training.trainer.default_log_every``) and the default probe batch (256
rows; every diagnostics record runs a forward pass over it, plus gradient
norms and update ratios).  Its steps/s count the time spent inside the step
loop: the compiled chunks, the Python loop around them, every diagnostics
record and the decision-surface refreshes of 2-D data.  Epoch-end work
(accuracy on up to 10,000 training rows and on the validation split,
confusion matrix, decision surface) is not training-step work and is
reported separately as "end-to-end" steps/s.

PyTorch (CPU, ``torch.set_num_threads(2)``) runs the same network in a plain
``nn.Sequential`` + optimizer loop: shuffled mini-batches by index,
zero_grad, forward, loss, backward, step; no logging.  Adam is measured twice:
the default implementation (the ratio's reference) and ``fused=True``.

Both see random float32 data of the real shapes (the values do not matter
for speed, as long as they are not denormal).  Rounds alternate between the
frameworks (A B C, then C B A, ...), with a pause between them so that idle
BLAS/OpenMP threads of one stop spinning before the other starts; each
configuration reports the median over its rounds.  The machine is shared,
so medians of many short rounds are much more stable than one long run.

Two extra runs check the denormal handling (engine.kernels.fpu): a
5,000-step ReLU run with a learning rate high enough to kill units, timed
per 1,000 steps, and a run whose inputs are ~1e-39 (float32 denormals)
compared with the same run on normal inputs.

torch is never a dependency of Descent: install it in a scratch virtualenv,
e.g.  python3 -m venv /tmp/benchvenv &&
/tmp/benchvenv/bin/pip install -r requirements.txt torch==2.13.0
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    inputs: int
    hidden: tuple
    activation: str
    outputs: int            # 1: logistic output + binary cross-entropy; else softmax + cross-entropy
    batch: int
    optimizer: str          # "sgd", "momentum" (0.9) or "adam"
    lr: float
    n_train: int
    bn: bool = False        # batch normalization before each hidden activation (no dense bias then)
    target: float | None = None   # required ratio Descent / PyTorch default
    initializer: str = "he_normal"
    image_shape: tuple | None = None


def configs() -> list[Config]:
    out = [Config("tiny", "2-8-8-1 tanh, 1,000 points, batch 10, SGD", 2, (8, 8), "tanh", 1, 10, "sgd", 0.03,
                  1000, target=50.0, initializer="glorot_uniform")]
    targets = {1: 4.0, 32: 2.0, 128: 1.3, 1024: 0.9}
    for batch, target in targets.items():
        for opt in ("momentum", "adam"):
            for bn in (False, True):
                name = {"momentum": "momentum", "adam": "Adam"}[opt]
                out.append(Config(f"fmnist-b{batch}-{opt}{'-bn' if bn else ''}",
                                  f"784-300-100-10 ReLU{' BN' if bn else ''}, batch {batch}, {name}",
                                  784, (300, 100), "relu", 10, batch, opt, 0.01 if opt == "momentum" else 0.001,
                                  54_000, bn=bn, target=target, image_shape=(28, 28)))
    out.append(Config("deep", "20x100 ELU (3072 in, 10 out), batch 64, Adam", 3072, (100,) * 20, "elu", 10, 64,
                      "adam", 0.001, 45_000, target=2.0, image_shape=(32, 32, 3)))
    return out


# ---------------------------------------------------------------------------------- data

_DATA: dict = {}


def random_data(cfg: Config, scale: float = 1.0):
    """(x_train, y_train, x_val, y_val): standard-normal float32 inputs, random labels."""
    key = (cfg.inputs, cfg.n_train, cfg.outputs, scale)
    if key not in _DATA:
        _DATA.clear()
        gc.collect()
        rng = np.random.default_rng(0)
        n_val = cfg.n_train // 10
        x = rng.standard_normal((cfg.n_train + n_val, cfg.inputs), dtype=np.float32)
        if scale != 1.0:
            x *= np.float32(scale)
        classes = 2 if cfg.outputs == 1 else cfg.outputs
        if cfg.inputs == 2:   # XOR-like labels so the tiny net has something to learn
            y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
        else:
            y = rng.integers(0, classes, cfg.n_train + n_val).astype(np.int64)
        x.setflags(write=False)
        y.setflags(write=False)
        _DATA[key] = (x[:cfg.n_train], y[:cfg.n_train], x[cfg.n_train:], y[cfg.n_train:])
    return _DATA[key]


# ---------------------------------------------------------------------------------- Descent

def descent_experiment(cfg: Config, seed: int = 0) -> dict:
    from engine.spec.experiment import resolve_experiment

    layer = {"activation": cfg.activation, "initializer": cfg.initializer,
             "batch_norm": "before" if cfg.bn else "none", "use_bias": not cfg.bn}
    opt = {"sgd": {"name": "sgd", "learning_rate": cfg.lr},
           "momentum": {"name": "momentum", "learning_rate": cfg.lr, "momentum": 0.9},
           "adam": {"name": "adam", "learning_rate": cfg.lr}}[cfg.optimizer]
    return resolve_experiment({
        "name": f"bench-{cfg.key}", "seed": seed, "data": {"name": "moons"},
        "model": {"layers": [dict(layer, units=u) for u in cfg.hidden],
                  "output": {"activation": "logistic" if cfg.outputs == 1 else "softmax"}},
        "optimizer": opt, "schedule": {"name": "constant"},
        "training": {"epochs": 1_000_000, "batch_size": cfg.batch, "dtype": "float32"}})


def descent_dataset(cfg: Config, data):
    from engine.data.core import Dataset

    x, y, xv, yv = data
    classes = 2 if cfg.outputs == 1 else cfg.outputs
    empty_x = np.zeros((0, cfg.inputs), np.float32)
    return Dataset(name=f"bench-{cfg.key}", task="classification", x_train=x, y_train=y, x_val=xv, y_val=yv,
                   x_test=empty_x, y_test=np.zeros(0, np.int64), n_classes=classes,
                   class_names=tuple(str(c) for c in range(classes)), image_shape=cfg.image_shape,
                   feature_names=(), mean=np.zeros(cfg.inputs, np.float32), std=np.ones(cfg.inputs, np.float32))


class DescentRun:
    """A live Trainer.run() generator, advanced a number of steps at a time."""

    name = "descent"

    def __init__(self, cfg: Config, data, experiment: dict | None = None):
        from engine.control import RunControl
        from engine.training.trainer import Trainer

        self.trainer = Trainer(experiment or descent_experiment(cfg), dataset=descent_dataset(cfg, data))
        self.events = self.trainer.run(RunControl())
        self.records = 0
        self.last_metrics = None

    def advance(self, steps: int) -> dict:
        from engine.events import DecisionSurface, EpochEnd, RunFinished, StepMetrics

        t = self.trainer
        first = t.step
        loop = epoch_end = 0.0
        after_epoch = False
        prev = time.perf_counter()
        while t.step - first < steps:
            event = next(self.events)
            now = time.perf_counter()
            spent, prev = now - prev, now
            if isinstance(event, StepMetrics):
                loop += spent
                after_epoch = False
                self.records += 1
                self.last_metrics = event
            elif isinstance(event, EpochEnd):
                epoch_end += spent
                after_epoch = True
            elif isinstance(event, DecisionSurface) and not after_epoch:
                loop += spent   # mid-epoch refresh: part of the step loop
            elif isinstance(event, RunFinished):
                raise RuntimeError(f"the run ended: {event.reason}")
            else:
                if after_epoch:
                    epoch_end += spent
                else:
                    loop += spent
        return {"steps": t.step - first, "seconds": loop, "epoch_end_seconds": epoch_end}


# ---------------------------------------------------------------------------------- PyTorch

def torch_available():
    try:
        import torch  # noqa: F401
        return True
    except Exception:
        return False


class TorchRun:
    """The same network in a plain PyTorch loop."""

    def __init__(self, cfg: Config, data, fused: bool = False, threads: int = 2):
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.threads = threads
        self.name = "torch_fused" if fused else ("torch" if threads == 2 else f"torch_{threads}t")
        x, y, _, _ = data
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}[cfg.activation]
        layers, fan_in = [], cfg.inputs
        for units in cfg.hidden:
            lin = nn.Linear(fan_in, units, bias=not cfg.bn)
            if cfg.initializer == "he_normal":
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
            layers.append(lin)
            if cfg.bn:
                layers.append(nn.BatchNorm1d(units, eps=1e-3, momentum=0.01))  # Keras' 0.99 moving average
            layers.append(act())
            fan_in = units
        out = nn.Linear(fan_in, cfg.outputs)
        nn.init.xavier_uniform_(out.weight)
        nn.init.zeros_(out.bias)
        layers.append(out)
        self.model = nn.Sequential(*layers)
        self.model.train()
        params = self.model.parameters()
        if cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(params, lr=cfg.lr)
        elif cfg.optimizer == "momentum":
            self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
        else:
            self.opt = torch.optim.Adam(params, lr=cfg.lr, fused=True) if fused else torch.optim.Adam(params,
                                                                                                       lr=cfg.lr)
        self.X = torch.from_numpy(np.array(x))
        if cfg.outputs == 1:
            self.Y = torch.from_numpy(np.asarray(y, dtype=np.float32).reshape(-1, 1))
            self.loss_fn = nn.BCEWithLogitsLoss()
        else:
            self.Y = torch.from_numpy(np.array(y))
            self.loss_fn = nn.CrossEntropyLoss()
        self.N = self.X.shape[0]
        self.B = cfg.batch
        self.gen = torch.Generator().manual_seed(1)
        self.perm = torch.randperm(self.N, generator=self.gen)
        self.pos = 0

    def advance(self, steps: int) -> dict:
        import torch

        model, opt, loss_fn, X, Y, B = self.model, self.opt, self.loss_fn, self.X, self.Y, self.B
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        for _ in range(steps):
            if self.pos >= self.N:
                self.perm = torch.randperm(self.N, generator=self.gen)
                self.pos = 0
            idx = self.perm[self.pos:self.pos + B]
            self.pos += B
            xb, yb = X[idx], Y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return {"steps": steps, "seconds": time.perf_counter() - t0, "epoch_end_seconds": 0.0}


# ---------------------------------------------------------------------------------- rounds

SETTLE_SECONDS = 0.15   # let the other framework's idle worker threads stop spinning


def measure(runners: list, rounds: int, round_seconds: float, warmup_seconds: float) -> dict:
    """Interleaved rounds; returns per-runner lists of steps/s (loop and end-to-end)."""
    rates = {r.name: [] for r in runners}
    e2e = {r.name: [] for r in runners}
    per_round_steps = {}
    for r in runners:   # warm up (compile or load kernels, fill caches) and estimate the rate
        start = time.perf_counter()
        steps, rate = 1, 1.0
        while True:
            res = r.advance(steps)
            if res["seconds"] > 0:
                rate = res["steps"] / res["seconds"]
            if time.perf_counter() - start >= warmup_seconds and res["seconds"] >= min(0.05, warmup_seconds / 4):
                break
            if res["seconds"] < warmup_seconds / 4:
                steps *= 2
        per_round_steps[r.name] = max(1, int(rate * round_seconds))
        time.sleep(SETTLE_SECONDS)
    for k in range(rounds):
        order = runners if k % 2 == 0 else runners[::-1]
        for r in order:
            res = r.advance(per_round_steps[r.name])
            rates[r.name].append(res["steps"] / res["seconds"])
            e2e[r.name].append(res["steps"] / (res["seconds"] + res["epoch_end_seconds"]))
            time.sleep(SETTLE_SECONDS)
    return {"rates": rates, "e2e": e2e}


def run_config(cfg: Config, args, use_torch: bool) -> dict:
    data = random_data(cfg)
    runners = [DescentRun(cfg, data)]
    torch_note = None
    if use_torch:
        if cfg.bn and cfg.batch == 1:
            torch_note = "BatchNorm1d rejects batch 1 in training"
        else:
            runners.append(TorchRun(cfg, data))
            if cfg.optimizer == "adam":
                runners.append(TorchRun(cfg, data, fused=True))
            if args.torch_1t:
                runners.append(TorchRun(cfg, data, threads=1))
    res = measure(runners, args.rounds, args.round_seconds, args.warmup)
    med = {name: statistics.median(v) for name, v in res["rates"].items()}
    d = runners[0].trainer
    row = {
        "config": cfg.key, "label": cfg.label, "batch": cfg.batch, "optimizer": cfg.optimizer, "bn": cfg.bn,
        "layers": [cfg.inputs, *cfg.hidden, cfg.outputs], "activation": cfg.activation,
        "log_every": d.log_every, "probe_rows": int(d.x_probe.shape[0]), "rounds": args.rounds,
        "descent_steps_per_s": med["descent"], "descent_samples_per_s": med["descent"] * cfg.batch,
        "descent_end_to_end_steps_per_s": statistics.median(res["e2e"]["descent"]),
        "descent_rounds": res["rates"]["descent"],
        "target": cfg.target,
    }
    if "torch" in med:
        row.update({"torch_steps_per_s": med["torch"], "torch_samples_per_s": med["torch"] * cfg.batch,
                    "torch_rounds": res["rates"]["torch"],
                    "ratio": med["descent"] / med["torch"]})
        row["ratios_per_round"] = [a / b for a, b in zip(res["rates"]["descent"], res["rates"]["torch"])]
        if "torch_fused" in med:
            row.update({"torch_fused_steps_per_s": med["torch_fused"], "torch_fused_rounds": res["rates"]["torch_fused"],
                        "ratio_vs_fused": med["descent"] / med["torch_fused"]})
        if "torch_1t" in med:
            row.update({"torch_1t_steps_per_s": med["torch_1t"], "torch_1t_rounds": res["rates"]["torch_1t"],
                        "ratio_vs_1t": med["descent"] / med["torch_1t"]})
        best = max(v for k, v in med.items() if k.startswith("torch"))
        row["ratio_vs_best_torch"] = med["descent"] / best
        row["met"] = None if cfg.target is None else bool(row["ratio"] >= cfg.target)
    if torch_note:
        row["torch_note"] = torch_note
    return row


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


def denormal_input_run(args) -> dict:
    """The same training on inputs ~1e-39 (float32 denormals) and on normal inputs."""
    cfg = Config("denormal-input", "784-300-100-10 ReLU, batch 32, momentum", 784, (300, 100), "relu", 10, 32,
                 "momentum", 0.01, 20_000)
    normal = DescentRun(cfg, random_data(cfg))
    rates = {}
    res = measure([normal], args.rounds, args.round_seconds, args.warmup)
    rates["normal"] = statistics.median(res["rates"]["descent"])
    del normal
    tiny = DescentRun(cfg, random_data(cfg, scale=1e-39))
    res = measure([tiny], args.rounds, args.round_seconds, args.warmup)
    rates["denormal"] = statistics.median(res["rates"]["descent"])
    cost = rates["normal"] / rates["denormal"]
    return {"config": "denormal-input", "label": cfg.label + ", inputs ~1e-39",
            "normal_steps_per_s": rates["normal"], "denormal_steps_per_s": rates["denormal"],
            "cost": cost, "met": bool(cost <= 2.0)}


# ---------------------------------------------------------------------------------- augmentation

def augment_run(args) -> dict:
    """Data augmentation's cost per step on fmnist-b32-momentum (bench/augment_row.py)."""
    from augment_row import augment_row

    cfg = next(c for c in configs() if c.key == "fmnist-b32-momentum")
    return augment_row(cfg, random_data(cfg), descent_experiment(cfg), DescentRun, measure, args)


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


# ---------------------------------------------------------------------------------- report

def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        have = set(text.split("flags", 1)[1].split("\n", 1)[0].split())
        flags = " ".join(f for f in ("avx2", "fma", "avx512f") if f in have)
    except (OSError, IndexError):
        pass
    info = {"nproc": os.cpu_count(), "cpu": model, "cpu_flags": flags, "python": platform.python_version(),
            "numpy": np.__version__, "date": datetime.date.today().isoformat(),
            "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        import numba
        info["numba"] = numba.__version__
    except Exception:
        pass
    if torch_available():
        import torch
        info["torch"] = torch.__version__
    return info


def fmt_rate(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def table(rows: list) -> str:
    lines = ["| configuration | Descent steps/s | Descent samples/s | PyTorch steps/s | PyTorch fused Adam "
             "| PyTorch 1 thread | ratio | ratio vs best PyTorch | target | met? |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        best = f"{r['ratio_vs_best_torch']:.2f}x" if "ratio_vs_best_torch" in r else "-"
        target = f">= {r['target']:g}x" if r.get("target") else "-"
        met = "-" if r.get("met") is None else ("yes" if r["met"] else "**no**")
        torch_rate = fmt_rate(r.get("torch_steps_per_s")) if "torch_steps_per_s" in r else (
            "n/a" if "torch_note" in r else "-")
        lines.append(f"| {r['label']} | {fmt_rate(r['descent_steps_per_s'])} | {fmt_rate(r['descent_samples_per_s'])} "
                     f"| {torch_rate} | {fmt_rate(r.get('torch_fused_steps_per_s'))} "
                     f"| {fmt_rate(r.get('torch_1t_steps_per_s'))} | {ratio} | {best} | {target} | {met} |")
    return "\n".join(lines)


def markdown(rows: list, extras: list, info: dict, args_desc: str) -> str:
    """The results section for the README."""
    by = {e["config"]: e for e in extras}
    load = info.get("loadavg_start"), info.get("loadavg_end")
    lines = [
        "## Speed", "",
        f"`python bench/engine.py` on {info['date']}: {info['nproc']} CPUs ({info['cpu']}, {info.get('cpu_flags', '')}), "
        f"Python {info['python']}, NumPy {info['numpy']}, Numba {info.get('numba')}, "
        f"PyTorch {info.get('torch', 'not installed')} (CPU build, scratch virtualenv; not a dependency of Descent). "
        + (f"1-minute load average {load[0][0]:.1f} at the start and {load[1][0]:.1f} at the end: the machine was "
           f"shared with other work, as it usually is." if load[0] and load[1] else ""), "",
        f"Steps per second, {args_desc}.  Descent runs through its real training loop "
        "(`Trainer.run()`, default diagnostics interval and probe batch, every record included; epoch-end "
        "evaluation excluded); PyTorch runs a plain `nn.Sequential` + optimizer loop with "
        "`torch.set_num_threads(2)`, default and `fused=True` Adam, plus the same loop on 1 thread.  "
        "Random float32 data of the real shapes.  Ratio = Descent / PyTorch default (the target); "
        "\"vs best\" divides by the fastest PyTorch variant measured.", "",
        table(rows), ""]
    if any("torch_1t_steps_per_s" in r for r in rows):
        lines += ["On two shared cores PyTorch's two threads often wait for each other (a descheduled thread "
                  "stalls every parallel operation), so its 1-thread loop can be the faster one; Descent keeps "
                  "small and medium products on the calling thread for the same reason and splits only large ones."]
        judged = [r for r in rows if r.get("target") and "ratio_vs_best_torch" in r]
        short = [r for r in judged if r["ratio_vs_best_torch"] < r["target"]]
        if judged:
            lines[-1] += (f"  Against the fastest PyTorch variant measured, {len(judged) - len(short)} of "
                          f"{len(judged)} configurations still reach their target ratio"
                          + ("." if not short else "; short: " + "; ".join(
                              f"{r['label']} ({r['ratio_vs_best_torch']:.2f}x for {r['target']:g}x)"
                              for r in short) + "."))
        lines += [""]
    slow_e2e = [r for r in rows if r["descent_end_to_end_steps_per_s"] < 0.8 * r["descent_steps_per_s"]]
    if slow_e2e:
        lines += ["End-to-end steps/s (epoch-end accuracy on up to 10,000 training rows and the validation split, "
                  "decision surface, confusion matrix included) differ most for: " + "; ".join(
                      f"{r['label']} {fmt_rate(r['descent_end_to_end_steps_per_s'])}" for r in slow_e2e) + ".", ""]
    if "dead-relu" in by:
        d = by["dead-relu"]
        lines += [f"Dead ReLUs: {d['label']}, 5,000 steps with {100 * d['dead_fraction'][-1]:.0f}% of the hidden "
                  f"units dead: {', '.join(fmt_rate(v) for v in d['steps_per_s_per_1000'])} steps/s per 1,000 "
                  f"steps (last/first {d['last_over_first']:.2f}; at most a 20% drop allowed: "
                  f"{'met' if d['met'] else '**not met**'}); {d['denormals_in_momentum']:,} denormal values "
                  f"in the momentum buffers at the end."]
    if "denormal-input" in by:
        d = by["denormal-input"]
        lines += [f"Denormal inputs: {d['label']}: {fmt_rate(d['denormal_steps_per_s'])} steps/s against "
                  f"{fmt_rate(d['normal_steps_per_s'])} on normal inputs ({d['cost']:.2f}x the time; at most 2x "
                  f"allowed: {'met' if d['met'] else '**not met**'})."]
    if "augment" in by:
        from augment_row import augment_markdown
        lines += augment_markdown(by["augment"])
    if "startup" in by:
        d = by["startup"]
        cold = (f"First run after install (empty kernel cache): first diagnostics record after "
                f"{d['cold_first_record_seconds']:.0f} s ({d['cold_first_record_cpu_seconds']:.0f} s of CPU), "
                f"a whole 2-epoch run with evaluation after {d['cold_whole_run_seconds']:.0f} s.  "
                if "cold_first_record_seconds" in d else "")
        lines += [cold + f"Later runs (kernels from the cache): first record {d['warm_first_record_seconds']:.2f} s "
                  f"after the interpreter starts (of which {d['warm_import_seconds']:.2f} s importing NumPy, "
                  f"SciPy, Numba and the engine), whole run {d['warm_whole_run_seconds']:.2f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (a few minutes in total)")
    parser.add_argument("--json", metavar="FILE", help="write one JSON object per configuration (JSON lines)")
    parser.add_argument("--markdown", metavar="FILE", help="write the results section for the README")
    parser.add_argument("--report", metavar="JSONL", help="no measuring: print (and --markdown) the results "
                                                        "of an earlier --json run")
    parser.add_argument("--only", action="append", help="configurations whose key starts with this (repeatable)")
    parser.add_argument("--rounds", type=int, help="rounds per configuration (default 9, quick 3)")
    parser.add_argument("--round-seconds", type=float, help="seconds per framework per round (default 1.0)")
    parser.add_argument("--no-torch", action="store_true", help="measure Descent only")
    parser.add_argument("--no-torch-1t", dest="torch_1t", action="store_false",
                        help="skip the extra PyTorch run with 1 thread (its best case on a busy machine)")
    parser.add_argument("--no-extra", action="store_true", help="skip the denormal and startup checks")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="checkout whose engine/ is measured")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 9)
    args.round_seconds = args.round_seconds or (0.3 if args.quick else 1.0)
    args.warmup = 0.5 if args.quick else 1.5

    if args.report:
        records = [json.loads(line) for line in Path(args.report).read_text().splitlines() if line.strip()]
        info = next(r for r in records if r.get("config") == "machine")
        rows = [r for r in records if "descent_steps_per_s" in r]
        extras = [r for r in records if r.get("config") in ("dead-relu", "denormal-input", "augment", "startup")]
        text = markdown(rows, extras, info, info.get("method", ""))
        print(text)
        if args.markdown:
            Path(args.markdown).write_text(text)
        return 0

    sys.path.insert(0, str(args.root.resolve()))
    use_torch = not args.no_torch and torch_available()
    if use_torch:
        import torch
        torch.set_num_threads(2)
    info = machine()
    info["method"] = (f"median of {args.rounds} interleaved rounds of {args.round_seconds:g} s per framework "
                      f"and configuration")
    print(f"# Descent engine benchmark ({info['date']}): {info['nproc']} CPUs, {info['cpu']}; numpy {info['numpy']}, "
          f"numba {info.get('numba')}, torch {info.get('torch', 'not installed')}", flush=True)
    print(f"# engine from {args.root.resolve()}; {info['method']}", flush=True)
    out = open(args.json, "w") if args.json else None
    rows = []
    for cfg in configs():
        if args.only and not any(cfg.key.startswith(o) for o in args.only):
            continue
        row = run_config(cfg, args, use_torch)
        rows.append(row)
        extra = (f" torch {row['torch_steps_per_s']:,.1f}/s ratio {row['ratio']:.2f} "
                 f"(per round {min(row['ratios_per_round']):.2f}..{max(row['ratios_per_round']):.2f})"
                 if "ratio" in row else "")
        print(f"{cfg.key:28s} descent {row['descent_steps_per_s']:,.1f}/s (end-to-end "
              f"{row['descent_end_to_end_steps_per_s']:,.1f}/s, log_every {row['log_every']}){extra}", flush=True)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
    extras = []
    if args.only and any("augment".startswith(o) for o in args.only):   # --only augment: that row alone
        extras.append(augment_run(args))
        print(json.dumps(extras[-1]), flush=True)
        if out:
            out.write(json.dumps(extras[-1]) + "\n")
    if not args.no_extra and not args.only:
        for fn in (dead_relu_run, denormal_input_run, augment_run):
            r = fn(args)
            extras.append(r)
            print(json.dumps(r), flush=True)
            if out:
                out.write(json.dumps(r) + "\n")
        s = startup_times(args.root.resolve(), cold=not args.quick)
        s["config"] = "startup"
        extras.append(s)
        print(json.dumps(s), flush=True)
        if out:
            out.write(json.dumps(s) + "\n")
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if out:
        out.write(json.dumps(dict(info, config="machine")) + "\n")
        out.close()
    print()
    text = markdown(rows, extras, info, info["method"])
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
