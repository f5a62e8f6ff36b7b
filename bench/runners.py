"""What bench/engine.py times: Descent's training loop, PyTorch's bare loops, a
large BLAS product (the machine's compute bound), and ``main.py run`` end to end.

Every runner has ``name`` and ``advance(steps) -> {"steps", "seconds"}`` so the
interleaved rounds of :func:`measure` treat them alike.  Imported only after
bench/engine.py has cleaned the environment (see its ``unpin_blas``).
"""
from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Config:
    """One benchmark row.  Add rows by appending to bench/engine.py's ``configs()``;
    ``experiment`` is merged into Descent's experiment (e.g. a data section's
    ``augment``) for rows that measure a feature rather than a shape."""
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
    target: float | None = None          # Descent loop / fastest PyTorch variant
    e2e_target: float | None = None      # main.py run / fastest PyTorch variant
    bound_target: float | None = None    # fraction of the compute bound (batch >= 128)
    e2e: bool = True        # measure main.py run too (skipped where one epoch takes too long)
    initializer: str = "he_normal"
    image_shape: tuple | None = None
    experiment: dict = field(default_factory=dict)

    @property
    def layers(self) -> list:
        return [self.inputs, *self.hidden, self.outputs]

    def flops_per_step(self) -> float:
        """Multiply-adds x 2 of the dense products of one training step: forward
        x @ W, kernel gradient x.T @ delta, and delta @ W.T for every layer but
        the first (nothing needs the input's gradient)."""
        dims = self.layers
        prods = [dims[i] * dims[i + 1] for i in range(len(dims) - 1)]
        return 2.0 * self.batch * (3 * sum(prods) - prods[0])


E2E_RATIO = 0.85   # end to end within 15% of the training loop


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

def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def descent_experiment_dict(cfg: Config, data: dict, epochs: int = 1_000_000, seed: int = 0) -> dict:
    layer = {"activation": cfg.activation, "initializer": cfg.initializer,
             "batch_norm": "before" if cfg.bn else "none", "use_bias": not cfg.bn}
    opt = {"sgd": {"name": "sgd", "learning_rate": cfg.lr},
           "momentum": {"name": "momentum", "learning_rate": cfg.lr, "momentum": 0.9},
           "adam": {"name": "adam", "learning_rate": cfg.lr}}[cfg.optimizer]
    return _merge({
        "name": f"bench-{cfg.key}", "seed": seed, "data": data,
        "model": {"layers": [dict(layer, units=u) for u in cfg.hidden],
                  "output": {"activation": "logistic" if cfg.outputs == 1 else "softmax"}},
        "optimizer": opt, "schedule": {"name": "constant"},
        "training": {"epochs": epochs, "batch_size": cfg.batch, "dtype": "float32"}}, cfg.experiment)


def descent_experiment(cfg: Config, seed: int = 0) -> dict:
    from engine.spec.experiment import resolve_experiment

    return resolve_experiment(descent_experiment_dict(cfg, {"name": "moons"}, seed=seed))


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
    """A live Trainer.run() generator, advanced a number of steps at a time, without
    decision surfaces and confusion matrices (as ``main.py run``).  Only the step loop is timed (compiled chunks, the Python between them, every
    diagnostics record and mid-epoch decision surface); epoch-end work is not."""

    name = "descent"

    def __init__(self, cfg: Config, data, experiment: dict | None = None):
        from engine.control import RunControl
        from engine.training.trainer import Trainer

        self.trainer = Trainer(experiment or descent_experiment(cfg), dataset=descent_dataset(cfg, data))
        self.trainer.pictures = False   # as main.py run drives it: nothing headless draws surfaces
        self.events = self.trainer.run(RunControl())
        self.last_metrics = None

    def advance(self, steps: int) -> dict:
        from engine.events import EpochEnd, RunFinished, StepMetrics

        t = self.trainer
        first = t.step
        loop = 0.0
        after_epoch = False
        prev = time.perf_counter()
        while t.step - first < steps:
            event = next(self.events)
            now = time.perf_counter()
            spent, prev = now - prev, now
            if isinstance(event, StepMetrics):
                loop += spent
                after_epoch = False
                self.last_metrics = event
            elif isinstance(event, EpochEnd):
                after_epoch = True
            elif isinstance(event, RunFinished):
                raise RuntimeError(f"the run ended: {event.reason}")
            elif not after_epoch:   # mid-epoch decision surfaces are part of the step loop
                loop += spent
        return {"steps": t.step - first, "seconds": loop}


# ---------------------------------------------------------------------------------- PyTorch

def torch_available() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except Exception:
        return False


class TorchRun:
    """The same network in a plain PyTorch loop: shuffled batches by index,
    zero_grad, forward, loss, backward, step; nothing else."""

    def __init__(self, cfg: Config, data, fused: bool = False, threads: int | None = None):
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.threads = threads or DEFAULT_TORCH_THREADS
        self.name = "torch_fused" if fused else ("torch" if threads is None else f"torch_{threads}t")
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
            self.opt = torch.optim.Adam(params, lr=cfg.lr, fused=fused)
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
        return {"steps": steps, "seconds": time.perf_counter() - t0}


DEFAULT_TORCH_THREADS = 0   # set by torch_variants from torch's own default, before any run changes it


def torch_variants(cfg: Config, data) -> tuple[list, str | None]:
    """PyTorch's default loop (its default thread count), fused Adam, and 1 thread."""
    import torch

    global DEFAULT_TORCH_THREADS
    if not DEFAULT_TORCH_THREADS:
        DEFAULT_TORCH_THREADS = torch.get_num_threads()
    if cfg.bn and cfg.batch == 1:
        return [], "BatchNorm1d rejects batch 1 in training"
    runs = [TorchRun(cfg, data)]
    if cfg.optimizer == "adam":
        runs.append(TorchRun(cfg, data, fused=True))
    if DEFAULT_TORCH_THREADS != 1:
        runs.append(TorchRun(cfg, data, threads=1))
    return runs, None


# ---------------------------------------------------------------------------------- compute bound

class PeakRun:
    """A large GEMM through the BLAS Descent's kernels call (SciPy's), in
    Descent's dtype, with the library's default threads (Descent splits its
    large products between all of them too): one "step" = one product."""

    name = "blas_peak"

    def __init__(self, dtype=np.float32, n: int = 2048):
        from scipy.linalg import blas

        self.gemm = blas.sgemm if np.dtype(dtype) == np.float32 else blas.dgemm
        rng = np.random.default_rng(0)
        self.a = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
        self.b = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
        self.c = np.zeros((n, n), dtype=dtype, order="F")
        self.flops = 2.0 * n ** 3

    def advance(self, steps: int) -> dict:
        t0 = time.perf_counter()
        for _ in range(steps):
            self.gemm(1.0, self.a, self.b, c=self.c, overwrite_c=True)
        return {"steps": steps, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------- rounds

SETTLE_SECONDS = 0.15   # let the other framework's idle worker threads stop spinning


def measure(runners: list, rounds: int, round_seconds: float, warmup_seconds: float) -> dict:
    """Interleaved rounds (A B C, then C B A, ...); per-runner lists of steps/s."""
    rates = {r.name: [] for r in runners}
    per_round_steps = {}
    for r in runners:   # warm up (load kernels, fill caches) and estimate the rate from a long enough call
        start = time.perf_counter()
        steps, rate, calls = 1, 1.0, 0
        while True:
            res = r.advance(steps)
            calls += 1
            if res["seconds"] > 0:
                rate = res["steps"] / res["seconds"]
            if calls >= 3 and time.perf_counter() - start >= warmup_seconds and res["seconds"] >= warmup_seconds / 4:
                break   # (a slow first call, loading kernels, must not set the rate)
            if res["seconds"] < warmup_seconds / 4:
                steps *= 2
        per_round_steps[r.name] = max(1, int(rate * round_seconds))
        time.sleep(SETTLE_SECONDS)
    for k in range(rounds):
        for r in (runners if k % 2 == 0 else runners[::-1]):
            res = r.advance(per_round_steps[r.name])
            rates[r.name].append(res["steps"] / res["seconds"])
            time.sleep(SETTLE_SECONDS)
    return rates


# ---------------------------------------------------------------------------------- end to end

def _write_npz(cfg: Config, data, folder: Path) -> Path:
    """The benchmark's data as a .npz a user could have saved (images keep their shape,
    so the confusion-matrix work is included as for real images)."""
    x, y, xv, yv = data
    xs = np.concatenate([x, xv])
    if cfg.image_shape is not None and len(cfg.image_shape) == 2:   # the .npz reader takes (n, h, w) images only
        xs = xs.reshape((len(xs), *cfg.image_shape))
    path = folder / f"{cfg.key}.npz"
    np.savez(path, x=xs, y=np.concatenate([y, yv]))
    return path


def e2e_experiment(cfg: Config, data, folder: Path) -> Path:
    """The experiment file ``main.py run`` trains in the end-to-end rows (written into ``folder``
    with its .npz data): the benchmark's data with a tenth held out for validation, no test split."""
    n = cfg.n_train + cfg.n_train // 10
    data_cfg = {"name": "npz", "path": str(_write_npz(cfg, data, folder)), "task": "classification",
                "validation_split": (cfg.n_train // 10) / n, "test_split": 0.0, "standardize": False}
    exp_path = folder / "experiment.json"
    exp_path.write_text(json.dumps(descent_experiment_dict(cfg, data_cfg, epochs=1)))
    return exp_path


def end_to_end(cfg: Config, data, loop_rate: float, seconds: float) -> dict:
    """``main.py run`` of the same experiment (the CLI's code, called in this process so the
    interpreter's start and imports are left out: the startup row measures those), with
    every epoch's evaluation, records, run-folder writes and the final checkpoint.

    Two runs of E1 < E2 epochs; the per-step rate is (steps2 - steps1) / (wall2 - wall1), which
    leaves out the fixed cost of a run (reading the data, building the network, the test split,
    the final files), reported separately as ``fixed_seconds``."""
    from engine.cli import main as cli_main

    steps_per_epoch = -(-cfg.n_train // cfg.batch)
    epoch_seconds = steps_per_epoch / loop_rate
    e1 = max(1, round(seconds / 2 / epoch_seconds))
    e2 = 2 * e1 + (1 if e1 == 1 else 0)
    out = {}
    with tempfile.TemporaryDirectory(prefix="descent-bench-e2e-") as tmp:
        folder = Path(tmp)
        exp_path = e2e_experiment(cfg, data, folder)
        walls = {}
        for k, epochs in enumerate((1, e1, e2)):   # the first run loads any kernel not used yet
            run_dir = folder / f"run{k}"
            t0 = time.perf_counter()
            said = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
                code = cli_main(["run", str(exp_path), "--epochs", str(epochs), "--out", str(run_dir), "--quiet"])
            walls[k] = time.perf_counter() - t0
            if code != 0:
                raise RuntimeError(f"main.py run exited with {code} for {cfg.key}: {said.getvalue().strip()}")
            summary = json.loads((run_dir / "summary.json").read_text())
            if summary.get("steps") != epochs * steps_per_epoch:
                raise RuntimeError(f"{cfg.key}: expected {epochs * steps_per_epoch} steps, summary says "
                                   f"{summary.get('steps')}")
    rate = (e2 - e1) * steps_per_epoch / (walls[2] - walls[1])
    out.update({"e2e_steps_per_s": rate, "e2e_epochs": [e1, e2], "e2e_seconds": [walls[1], walls[2]],
                "e2e_fixed_seconds": walls[1] - e1 * steps_per_epoch / rate,
                "e2e_over_loop": rate / loop_rate})
    return out


# ---------------------------------------------------------------------------------- load and BLAS

def loadavg() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


class CpuWatch:
    """CPU time other processes used while a configuration ran, in cores: the
    machine's busy time (/proc/stat) minus this process's own.  The 1-minute
    load average after a configuration includes the benchmark's own threads,
    so this is the direct measure of interference."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system

    def other_cores(self) -> float | None:
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        return max(0.0, (busy - self.busy0) - (self._own() - self.own0)) / wall if wall > 0 else None


def blas_info() -> list:
    """The BLAS and OpenMP libraries loaded in this process and what they run with
    (threadpoolctl: internal_api, version, architecture = the kernel OpenBLAS picked, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed (pip install -r requirements-dev.txt)"}]
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [dict({k: i.get(k) for k in keep}, library=Path(i.get("filepath", "")).name)
            for i in threadpool_info()]


def descent_blas(info: list) -> dict:
    """The entry of the library Descent's kernels call (SciPy's OpenBLAS)."""
    for i in info:
        if i.get("library", "").startswith("libscipy_openblas-"):   # numpy's is libscipy_openblas64_
            return i
    return next((i for i in info if i.get("user_api") == "blas"), {})


def median(values):
    return statistics.median(values) if values else None
