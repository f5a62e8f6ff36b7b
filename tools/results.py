"""Rerun the shipped presets headless and write every figure their texts may quote.

Why: a preset's description, its "look at" line and README's preset table
quote measured numbers; a number typed by hand drifts as soon as the engine
changes (issue 12, item 12).  This script is the only source of those numbers:

    python tools/results.py                 # rerun every preset (~20 min on 2 cores), then render the texts
    python tools/results.py --only 04-dying-relus --only 12-transfer-learning
    python tools/results.py --stale         # rerun only presets whose experiment changed since measured
    python tools/results.py --render        # no training: render the texts from presets/results/results.json
    python tools/results.py --check         # exit 1 if a rendered text differs from the committed one

Each preset is run through :func:`engine.jobs.runner.run_job`, the runner behind
``python main.py run`` and the window: comparisons and sweeps on the local
process pool over their declared seeds, staged workflows one seed per process
(the same seeds ``stages.seeds`` declares), single runs over
:data:`SINGLE_SEEDS`.  Run folders go to ``runs/results/<preset>/`` (kept for
inspection; nothing there is committed).

``presets/results/results.json`` holds, per preset, ``meta`` (date, seeds, seconds,
the machine: CPU model, BLAS, load average before and after, versions, git
commit, and a hash of the experiment without its texts so ``--stale`` can
tell what changed) and ``figures``: ``"<variant>/<metric>"`` (variant names
slugged by :func:`slug`) -> ``{"seeds", "values", "mean", "std", "min",
"max", "n"}``.  The file is rewritten after every preset, so an interrupted
full run resumes with ``--stale`` (a preset measured with the current
experiment is skipped).

The texts are rendered by :mod:`tools.results_texts` from the templates in
``presets/texts/`` (placeholders name the figures above); the metrics a run
yields are listed in :func:`run_metrics` and :func:`history_metrics`.
"""
from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "presets" / "results" / "results.json"   # not presets/*.json: that is the preset list
RUNS = ROOT / "runs" / "results"

from engine.events import ComparisonRecord, EpochEnd, RunFinished, SweepRecord  # noqa: E402
from engine.jobs.runner import JobRequest, job_kind, run_job  # noqa: E402
from engine.jobs.stages import build_report  # noqa: E402
from engine.spec.experiment import load_experiment, preset_paths, resolve_experiment  # noqa: E402
from engine.spec.stages import METRICS, StageFinished  # noqa: E402

TEXT_KEYS = ("title", "description", "look_at")   # not part of what an experiment means
SINGLE_SEEDS = (42, 43)   # single-run presets (default.json: 60 epochs on 54,000 images, the longest) run these

# Staged presets whose texts compare stages against another baseline than the report's: the paired gains
# against it are kept too ("<stage>/gain_vs_<baseline>", "<stage>/distinguishable_vs_<baseline>")
EXTRA_BASELINES = {
    "12-transfer-learning": ["b_scratch_long"],   # as many steps as the heads trained to convergence
}

# Measurements a text makes about a setting next to the preset's own: run with the preset as extra
# comparison variants (they appear in results.json only, never in the preset or the window).
EXTRA_VARIANTS = {
    "05-selu": [
        {"name": "extra: SELU + LeCun, Nesterov 0.9",
         "overrides": {"optimizer": {"name": "nesterov", "momentum": 0.9}}},
        {"name": "extra: ReLU + He, Nesterov 0.9",
         "overrides": {"optimizer": {"name": "nesterov", "momentum": 0.9},
                       "model": {"layers": {"activation": "relu", "initializer": "he_normal"}}}},
    ],
    "09-learning-rate-schedules": [
        {"name": "extra: 1cycle, max 0.1", "overrides": {"schedule": {"name": "onecycle", "max_lr": 0.1}}},
    ],
}


# ------------------------------------------------------------------------------------ figures

def slug(name: str) -> str:
    """A variant or stage name as a figure key: lower case, every run of other characters one '_'
    ("leaky ReLU 0.01" -> "leaky_relu_0_01", "ReLU + Glorot (mismatch)" -> "relu_glorot_mismatch")."""
    out, gap = [], False
    for ch in name.lower().replace("×", "x").replace("±", "pm").replace("√", "sqrt"):
        if ch.isascii() and ch.isalnum():
            if gap and out:
                out.append("_")
            out.append(ch)
            gap = False
        else:
            gap = True
    return "".join(out) or "_"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def figure(seeds: list, values: list) -> dict:
    """One figure over seeds: the per-seed values (None where a seed has none, e.g. a target not
    reached) and the mean, sample std (ddof 1), min, max and count of the finite ones."""
    v = [float(x) for x in values if _finite(x)]
    n = len(v)
    mean = sum(v) / n if n else None
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else None
    return {"seeds": list(seeds), "values": [float(x) if _finite(x) else None for x in values],
            "mean": mean, "std": std, "min": min(v) if v else None, "max": max(v) if v else None, "n": n}


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: _float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def history_metrics(folder: Path) -> dict:
    """Per-layer diagnostics of a run folder's history.csv at its first and last record
    ("<metric>@first", "<metric>@last"); layers as in the weight names, the output layer last:

    * grad_ratio: first layer's kernel gradient norm / output layer's (vanishing: tiny);
    * grad_gain: grad_ratio ** (1 / layers above the first): the mean factor per layer;
    * grad_spread: largest / smallest gradient norm over the layers;
    * saturated: mean saturated fraction of the hidden layers (logistic, tanh);
    * dead_first, dead_min_upper, dead_max: dead fraction of the first hidden layer, the smallest
      and largest over the hidden layers above it, the largest over all hidden layers;
    * coma_min_upper, coma_max: comatose fraction (input <= 0 on every probe example), the smallest
      over the hidden layers above the first and the largest over all hidden layers;
    * act_std_first, act_std_last: activation std of the first and last hidden layer;
    * act_std_dev, act_mean_dev: largest |std - 1| and |mean| over the hidden layers."""
    rows = _rows(folder / "history.csv")
    if not rows:
        return {}
    n_layers = 1 + max(int(k.rsplit("_", 1)[1]) for k in rows[0] if k.startswith("grad_norm_"))
    hidden = range(n_layers - 1)
    out = {}
    for when, row in (("first", rows[0]), ("last", rows[-1])):
        def col(field, i):
            return row.get(f"{field}_{i}", math.nan)
        grads = [col("grad_norm", i) for i in range(n_layers)]
        good = [g for g in grads if math.isfinite(g) and g > 0]
        ratio = grads[0] / grads[-1] if grads[-1] and math.isfinite(grads[-1]) else math.nan
        m = {"grad_ratio": ratio,
             "grad_gain": ratio ** (1.0 / (n_layers - 1)) if ratio > 0 and n_layers > 1 else math.nan,
             "grad_spread": max(good) / min(good) if good else math.nan,
             "act_std_first": col("act_std", 0), "act_std_last": col("act_std", n_layers - 2)}
        sat = [col("saturated", i) for i in hidden if math.isfinite(col("saturated", i))]
        m["saturated"] = sum(sat) / len(sat) if sat else math.nan
        dead = [col("dead_fraction", i) for i in hidden]
        if all(math.isfinite(d) for d in dead):
            m.update(dead_first=dead[0], dead_max=max(dead),
                     dead_min_upper=min(dead[1:]) if len(dead) > 1 else math.nan)
        coma = [col("comatose_fraction", i) for i in hidden]
        if all(math.isfinite(c) for c in coma):
            m.update(coma_max=max(coma), coma_min_upper=min(coma[1:]) if len(coma) > 1 else math.nan)
        stds = [col("act_std", i) for i in hidden if math.isfinite(col("act_std", i))]
        means = [col("act_mean", i) for i in hidden if math.isfinite(col("act_mean", i))]
        if stds:
            m["act_std_dev"] = max(abs(s - 1.0) for s in stds)
            m["act_mean_dev"] = max(abs(x) for x in means)
        out.update({f"{k}@{when}": v for k, v in m.items()})
    return out


def run_metrics(record: dict) -> dict:
    """The figures of one comparison, sweep or single run, from its record
    (:func:`engine.jobs.runs.train_run`)."""
    curve = record.get("curve") or []
    m = {"val_accuracy": record["final_val_accuracy"], "best_val_accuracy": record["best_val_accuracy"],
         "val_loss": record["final_val_loss"], "best_val_loss": record["best_val_loss"],
         "train_loss": record["final_train_loss"], "test_accuracy": record["test_accuracy"],
         "steps": record["steps"], "epochs": record["epochs"], "steps_to_target": record["steps_to_target"],
         "sparsity": record.get("sparsity"), "lr_found": record.get("lr_found"),
         "train_seconds": record.get("train_seconds"),
         "diverged": float(record["status"] == "diverged"),
         "diverged_step": record["steps"] if record["status"] == "diverged" else None,
         "early_stopped_epoch": record["epochs"] if record["status"] == "early_stopped" else None,
         "val_accuracy_epoch1": curve[0]["val_accuracy"] if curve else None,
         "val_accuracy_epoch3": curve[2]["val_accuracy"] if len(curve) > 2 else None,
         "min_val_loss_epoch": min(curve, key=lambda e: _nan_high(e["val_loss"]))["epoch"] if curve else None,
         "train_accuracy": curve[-1].get("train_accuracy") if curve else None}
    if m["train_accuracy"] is not None and m["val_accuracy"] is not None:   # overfitting, in accuracy points
        m["train_val_gap"] = m["train_accuracy"] - m["val_accuracy"]
    zeroed = record.get("zeroed")
    if zeroed:
        m.update({f"zeroed_{k}": zeroed[k] for k in ("sparsity_before", "sparsity_after", "val_accuracy_before",
                                                   "val_accuracy_after")})
    return m


def _nan_high(x):
    return x if _finite(x) else math.inf


def stage_metrics(summary: dict) -> dict:
    """The figures of one stage of one seed (a StageFinished summary)."""
    m = {k: summary.get(k) for k in ("test_accuracy", "test_loss", "final_val_accuracy", "best_val_accuracy",
                                     "final_val_loss", "steps", "steps_to_target", "wall_seconds")}
    c = summary.get("caching")
    if c:
        m.update({f"caching_{k}": c.get(k) for k in ("speedup", "speedup_per_epoch", "uncached_seconds",
                                                     "cached_seconds", "cache_seconds", "max_weight_difference")})
    return m


# ------------------------------------------------------------------------------------ running

def _raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def experiment_hash(path: Path) -> str:
    """SHA-256 of the preset file without its texts: what --stale compares."""
    raw = {k: v for k, v in _raw(path).items() if k not in TEXT_KEYS}
    extra = [EXTRA_VARIANTS.get(path.stem), EXTRA_BASELINES.get(path.stem)]
    text = json.dumps([raw, extra], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def experiment_for(stem: str, path: Path) -> dict:
    """The resolved preset, with the results-only extra variants added to its comparison."""
    experiment = load_experiment(str(path))
    if stem in EXTRA_VARIANTS:
        raw = _raw(path)
        raw["compare"]["variants"] = raw["compare"]["variants"] + copy.deepcopy(EXTRA_VARIANTS[stem])
        experiment = resolve_experiment(raw)
    return experiment


def _one_seed(stem: str, path: str, seed: int, out: str) -> list:
    """A staged or single preset at one seed, in a worker process: [(name, metrics), ...]."""
    experiment = load_experiment(path)
    found, curve = [], []
    for event in run_job(JobRequest(experiment, out=out, seed=seed, overwrite=True)):
        if isinstance(event, StageFinished):
            found.append((event.stage, stage_metrics(event.summary), event.summary))
        elif isinstance(event, EpochEnd):
            curve.append({"epoch": event.epoch, "val_accuracy": event.val_accuracy, "val_loss": event.val_loss})
        elif isinstance(event, RunFinished) and job_kind(JobRequest(experiment)) == "single":
            s = event.summary
            record = {"final_val_accuracy": s["final_val_accuracy"], "best_val_accuracy": s["best_val_accuracy"],
                      "final_val_loss": s["final_val_loss"],
                      "best_val_loss": min((e["val_loss"] for e in curve), key=_nan_high, default=math.nan),
                      "final_train_loss": s["final_train_loss"], "test_accuracy": s["test_accuracy"],
                      "steps": event.step, "epochs": event.epoch, "steps_to_target": None,
                      "train_seconds": s["train_seconds"], "status": event.status, "curve": curve}
            metrics = run_metrics(record)
            metrics.update(history_metrics(Path(out)))
            metrics["steps_per_second"] = event.step / s["train_seconds"] if s["train_seconds"] else None
            found.append((experiment["name"], metrics, None))
    return found


def _collect(per_run: list) -> dict:
    """[(name, seed, metrics), ...] -> {"<slug>/<metric>": figure} over the seeds."""
    names: dict = {}
    for name, seed, metrics in per_run:
        names.setdefault(name, {})[seed] = metrics
    figures = {}
    for name, by_seed in names.items():
        seeds = sorted(by_seed)
        for metric in sorted({k for m in by_seed.values() for k in m}):
            figures[f"{slug(name)}/{metric}"] = figure(seeds, [by_seed[s].get(metric) for s in seeds])
    return figures


def measure(stem: str, path: Path, workers: int) -> tuple[dict, list]:
    """Run one preset; returns (figures, seeds)."""
    experiment = experiment_for(stem, path)
    kind = job_kind(JobRequest(experiment))
    out = RUNS / stem
    per_run: list = []
    if kind in ("compared", "sweep"):
        request = JobRequest(experiment, out=out, workers=workers, executor="pool" if workers > 1 else "inprocess",
                             overwrite=True)
        for event in run_job(request):
            if isinstance(event, (ComparisonRecord, SweepRecord)):
                r = event.record
                metrics = run_metrics(r)
                metrics.update(history_metrics(out / r["folder"]))
                per_run.append((r["variant"], r["seed"], metrics))
        seeds = sorted({s for _, s, _ in per_run})
        return _collect(per_run), seeds
    seeds = list(experiment["stages"]["seeds"]) if kind == "staged" else list(SINGLE_SEEDS)
    summaries: dict = {}
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(seeds)))) as pool:
        jobs = {seed: pool.submit(_one_seed, stem, str(path), seed, str(out / f"seed-{seed}")) for seed in seeds}
        for seed, job in jobs.items():
            for name, metrics, summary in job.result():
                per_run.append((name, seed, metrics))
                if summary is not None:
                    summaries.setdefault(name, []).append(summary)
    if kind == "staged":   # one seed's whole workflow, every stage
        per_run += [("_workflow", seed, {"wall_seconds": sum(m.get("wall_seconds") or 0.0 for n, s, m in per_run
                                                             if s == seed)}) for seed in seeds]
    figures = _collect(per_run)
    if kind == "staged":
        figures.update(_stage_comparisons(experiment["stages"], summaries, seeds))
        for base in EXTRA_BASELINES.get(stem, []):
            report = dict(experiment["stages"]["report"], baseline=base,
                          compare=[n for n in experiment["stages"]["report"]["compare"] if n != base])
            figures.update(_stage_comparisons(dict(experiment["stages"], report=report), summaries, seeds,
                                              suffix=f"_vs_{slug(base)}"))
    return figures, seeds


def _stage_comparisons(staged: dict, summaries: dict, seeds: list, suffix: str = "") -> dict:
    """Per compared stage: the gain over the baseline seed by seed ("<stage>/gain", in the report's
    metric, sign so that positive is better) and the report's verdict ("<stage>/distinguishable",
    1 or 0), by the one rule of every report (engine.jobs.stages.build_report)."""
    report = build_report(staged, {name: summaries.get(name, []) for name in (s["name"] for s in staged["list"])})
    figures = {}
    sign = 1.0 if METRICS[report["metric"]] else -1.0
    for comp in report["comparisons"]:
        by_seed = {row["seed"]: row for row in comp["per_seed"]}
        gains = [sign * (by_seed[s][comp["stage"]] - by_seed[s][comp["baseline"]])
                 if s in by_seed and _finite(by_seed[s][comp["stage"]]) and _finite(by_seed[s][comp["baseline"]])
                 else None for s in seeds]
        figures[f"{slug(comp['stage'])}/gain{suffix}"] = figure(seeds, gains)
        figures[f"{slug(comp['stage'])}/distinguishable{suffix}"] = figure([], [float(comp["distinguishable"])])
    return figures


# ------------------------------------------------------------------------------------ machine

def machine() -> dict:
    """What the figures were measured on: they are this machine's, not universal."""
    try:   # Linux; elsewhere the platform's own (often vaguer) name
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        cpu = {k.strip(): v.strip() for k, v in fields.items()}.get("model name", "unknown")
    except OSError:
        cpu = platform.processor() or "unknown"
    import numba
    import numpy as np
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name')} {deps.get('version', '')}".strip()
    except Exception:   # numpy < 1.25 has no dict mode: the BLAS stays 'unknown' rather than guessed
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "blas": blas, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "platform": platform.platform()}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_results(path: Path = RESULTS) -> dict:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"format": 1, "presets": {}}


def save_results(results: dict, path: Path = RESULTS) -> None:
    results["presets"] = dict(sorted(results["presets"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def run_presets(stems: list, workers: int, results_path: Path = RESULTS) -> None:
    paths = preset_paths()
    for stem in stems:
        path = paths[stem]
        load_before = os.getloadavg()
        start = time.time()
        print(f"== {stem}", flush=True)
        figures, seeds = measure(stem, path, workers)
        seconds = time.time() - start
        results = load_results(results_path)   # read again: another run may have saved other presets meanwhile
        results["presets"][stem] = {
            "meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)), "seconds": round(seconds, 1),
                     "seeds": seeds, "workers": workers, "experiment_hash": experiment_hash(path),
                     "commit": git_commit(), "machine": machine(),
                     "load_average_before": [round(x, 2) for x in load_before],
                     "load_average_after": [round(x, 2) for x in os.getloadavg()]},
            "figures": figures}
        save_results(results, results_path)   # after every preset: an interrupted run keeps what it measured
        print(f"   {len(figures)} figures in {seconds:.0f} s", flush=True)


def stale(results: dict) -> list:
    """Presets never measured, or measured with another experiment than the file holds now."""
    have = results["presets"]
    return [stem for stem, path in preset_paths().items()
            if stem not in have or have[stem]["meta"]["experiment_hash"] != experiment_hash(path)]


def main(argv=None) -> int:
    from tools import results_texts   # lazy: the renderer imports this module
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="PRESET", help="rerun this preset (repeatable)")
    parser.add_argument("--stale", action="store_true", help="rerun only presets not measured with their "
                                                             "current experiment")
    parser.add_argument("--render", action="store_true", help="no training: render the texts from the results")
    parser.add_argument("--check", action="store_true", help="exit 1 if a rendered text differs from the file")
    parser.add_argument("--workers", type=int, default=2, help="processes training at once (default 2)")
    args = parser.parse_args(argv)
    if args.check:
        diffs = results_texts.check()
        for d in diffs:
            print(d)
        return 1 if diffs else 0
    if not args.render:
        presets = preset_paths()
        if args.only:
            unknown = [s for s in args.only if s not in presets]
            if unknown:
                print(f"no preset named {', '.join(unknown)}; presets: {', '.join(presets)}", file=sys.stderr)
                return 2
            stems = args.only
        else:
            stems = stale(load_results()) if args.stale else list(presets)
        RUNS.mkdir(parents=True, exist_ok=True)
        start = time.time()
        run_presets(stems, args.workers)
        print(f"measured {len(stems)} presets in {time.time() - start:.0f} s")
    missing: list = []
    for written in results_texts.render_all(missing):
        print(f"rendered {written}")
    for problem in missing:   # the file keeps its old text until its preset is measured
        print(f"not rendered: {problem}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
