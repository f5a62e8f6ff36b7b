"""Running a staged experiment: phases, reports, run folders and the CLI hook.

The ``stages`` section itself (schema, resolution, and the records a staged
run emits) is in :mod:`engine.spec.stages`; this module trains what it describes.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.training import transfer as T
from engine.errors import ExperimentError
from engine.formats import data_info
from engine.formats.importers.staged import imported_stage   # stages trained elsewhere (issue 16)
from engine.spec.stages import (METRICS, StageData, StageFinished, StageStarted, StagesFinished, phase_experiment,
                     stage_model)


def _restandardize(dataset, source):
    """``dataset`` with its inputs scaled by ``source``'s training statistics."""
    if dataset.n_features != source.n_features:
        raise ExperimentError(f"reuse: the source stage's data have {source.n_features} features, this stage's "
                              f"{dataset.n_features}; set reuse.standardize_like_source to false or use data "
                              f"of the same shape")
    parts = {}
    for part in ("train", "val", "test"):
        x = getattr(dataset, "x_" + part)
        new = source.standardize(dataset.to_original(x)) if len(x) else x
        new.setflags(write=False)
        parts["x_" + part] = new
        if dataset.task == "reconstruction":
            parts["y_" + part] = new
    return dataclasses.replace(dataset, mean=source.mean, std=source.std, **parts)


class _Shift:
    """Rewrites one phase's events onto the stage's time axis."""

    def __init__(self, step: int, epoch: int, elapsed: float, pad: int = 0, net=None):
        self.step, self.epoch, self.elapsed, self.pad, self.net = step, epoch, elapsed, pad, net

    def _padded(self, arr):
        if self.pad <= 0:
            return arr
        from engine.events import frozen_array
        a = np.asarray(arr)
        fill = np.full((self.pad,) + a.shape[1:], np.nan)
        return frozen_array(np.concatenate([fill, a]), a.dtype if a.dtype.kind == "f" else np.float64)

    def __call__(self, ev):
        from engine.events import (ConfusionReport, DecisionSurface, EpochEnd, RunFinished, RunStarted, StepMetrics,
                             frozen_array)
        r = dataclasses.replace
        if isinstance(ev, RunStarted):
            ev = r(ev, total_steps=ev.total_steps + self.step)
            if self.net is not None:
                ev = r(ev, layers=self.net.layer_infos(), n_params=self.net.n_params)
            return ev
        if isinstance(ev, StepMetrics):
            ev = r(ev, step=ev.step + self.step, epoch=ev.epoch + self.epoch, elapsed=ev.elapsed + self.elapsed)
            if self.pad:
                ev = r(ev, **{f: self._padded(getattr(ev, f)) for f in
                              ("grad_norm", "bias_grad_norm", "update_ratio", "dead_fraction", "dead_count",
                               "act_mean", "act_std", "saturated", "histograms")})
            return ev
        if isinstance(ev, EpochEnd):
            return r(ev, epoch=ev.epoch + self.epoch, step=ev.step + self.step)
        if isinstance(ev, DecisionSurface):
            return r(ev, step=ev.step + self.step)
        if isinstance(ev, ConfusionReport):
            return r(ev, epoch=ev.epoch + self.epoch)
        if isinstance(ev, RunFinished):
            ev = r(ev, step=ev.step + self.step, epoch=ev.epoch + self.epoch)
            if self.net is not None:
                ev = r(ev, weights={k: frozen_array(v, v.dtype) for k, v in self.net.state_dict().items()},
                       summary=dict(ev.summary, n_params=self.net.n_params))
            return ev
        return ev


def run_stages(experiment: dict, control=None, max_steps: int | None = None,
               seeds: list | None = None) -> Iterator:
    """Run a staged experiment end to end; yields the records described in
    the module docstring.  ``max_steps`` caps every phase (smoke tests);
    ``seeds`` overrides ``stages.seeds``."""
    from engine.control import RunControl
    from engine.data import load_dataset
    from engine.events import EpochEnd, RunFinished
    from engine.training.network import Network
    from engine.training.trainer import Trainer

    staged = experiment.get("stages")
    if not staged:
        raise ExperimentError("this experiment has no stages section")
    control = control or RunControl()
    seeds = list(seeds) if seeds is not None else staged["seeds"]
    stages = staged["list"]
    target = staged["report"]["target"]
    results: dict = {s["name"]: [] for s in stages}
    t_start = time.perf_counter()
    for si, seed in enumerate(seeds):
        nets: dict = {}
        datasets: dict = {}
        cache: dict = {}
        for idx, stage in enumerate(stages):
            if control.stopped:
                break
            run_id = si * len(stages) + idx
            model, k = stage_model(stage, staged)
            reuse = stage["reuse"]
            yield StageStarted(run_id, seed, stage["name"], idx, stage["title"],
                               tuple(p["name"] for p in stage["phases"]),
                               None if reuse is None else {"from": reuse["from"], "k": k, "layers": reuse["layers"]})
            key = (json.dumps(stage["data"], sort_keys=True), seed)
            if key not in cache:
                cache[key] = load_dataset(stage["data"], seed)
            data = cache[key]
            if reuse is not None and reuse["standardize_like_source"]:
                data = _restandardize(data, datasets[reuse["from"]])
            datasets[stage["name"]] = data
            yield StageData(run_id, seed, stage["name"], data_info(data))
            exp0 = phase_experiment(experiment, stage, 0, seed)
            n_targets = data.y_train.shape[1] if data.y_train.ndim == 2 else 1
            if stage.get("import"):  # trained elsewhere (issue 16): imported and measured, not trained
                nets[stage["name"]], summary = imported_stage(stage, exp0, data, seed)
                results[stage["name"]].append(summary)
                yield StageFinished(run_id, seed, stage["name"], idx, summary)
                continue
            if reuse is not None:
                net = T.build_reused_network(nets[reuse["from"]].state_dict(), exp0, data.n_features, data.task,
                                             data.n_classes, n_targets, k=k, seed=seed, freeze=False,
                                             source=f"stage {reuse['from']!r}")
            else:
                net = Network(exp0, data.n_features, data.task, data.n_classes, n_targets)
                net.initialize(seed)
            offset_step, offset_epoch, offset_elapsed = 0, 0, 0.0
            summary = {"seed": seed, "stage": stage["name"], "phases": [], "val_curve": [],
                       "steps_to_target": None, "best_val_accuracy": math.nan}
            status = "finished"
            t_stage = time.perf_counter()
            for pi, phase in enumerate(stage["phases"]):
                if control.stopped or status == "diverged":
                    break
                pexp = exp0 if pi == 0 else phase_experiment(experiment, stage, pi, seed)
                net.experiment = pexp
                for layer in range(net.n_layers):
                    net.set_trainable(layer, layer not in phase["freeze"])
                label = stage["name"] if len(stage["phases"]) == 1 else f"{stage['name']}/{phase['name']}"
                psum = {"phase": phase["name"], "frozen": list(phase["freeze"]), "cached": phase["cache"],
                        "learning_rate": phase["optimizer"]["learning_rate"], "first_step": offset_step}
                if phase["measure_caching"]:
                    psum["caching"] = T.measure_caching_speedup(net, pexp, data, max_steps=max_steps)
                if phase["cache"]:
                    cut, upper, up_exp, feats, secs = T.cached_phase(net, pexp, data)
                    psum["cache_seconds"] = secs
                    psum["cut"] = cut
                    trainer = Trainer(up_exp, dataset=feats, run_id=run_id, network=upper, max_steps=max_steps)
                    shift = _Shift(offset_step, offset_epoch, offset_elapsed, pad=cut, net=net)
                    trainer.experiment = up_exp
                else:
                    cut, upper = 0, None
                    trainer = Trainer(pexp, dataset=data, run_id=run_id, network=net, max_steps=max_steps)
                    shift = _Shift(offset_step, offset_epoch, offset_elapsed)
                for ev in trainer.run(control, stage=label):
                    if isinstance(ev, RunFinished) and upper is not None:
                        T.merge_upper(net, upper, cut)
                    if upper is not None and hasattr(ev, "experiment") and ev.experiment is up_exp:
                        ev = dataclasses.replace(ev, experiment=pexp)
                    ev = shift(ev)
                    if isinstance(ev, EpochEnd):
                        acc = ev.val_accuracy
                        summary["val_curve"].append([ev.step, acc])
                        if not math.isnan(acc):
                            if math.isnan(summary["best_val_accuracy"]) or acc > summary["best_val_accuracy"]:
                                summary["best_val_accuracy"] = acc
                            if target is not None and summary["steps_to_target"] is None and acc >= target:
                                summary["steps_to_target"] = ev.step
                    if isinstance(ev, RunFinished):
                        s = ev.summary
                        status = ev.status
                        psum.update({k2: s.get(k2) for k2 in ("status", "steps", "epochs", "final_val_accuracy",
                                                              "final_val_loss", "test_accuracy", "test_loss",
                                                              "train_seconds")})
                        offset_step, offset_epoch = ev.step, ev.epoch
                        offset_elapsed += s.get("train_seconds", 0.0) or 0.0
                        last = s
                    yield ev
                summary["phases"].append(psum)
            nets[stage["name"]] = net
            if summary["phases"] and "steps" in summary["phases"][-1]:
                for key2 in ("final_val_accuracy", "final_val_loss", "test_accuracy", "test_loss"):
                    summary[key2] = last.get(key2)
            summary.update({"status": status, "steps": offset_step, "epochs": offset_epoch,
                            "train_seconds": offset_elapsed, "wall_seconds": time.perf_counter() - t_stage,
                            "reused_layers": k, "reused_from": None if reuse is None else reuse["from"]})
            caching = [p["caching"] for p in summary["phases"] if "caching" in p]
            if caching:
                summary["caching"] = caching[0]
            results[stage["name"]].append(summary)
            yield StageFinished(run_id, seed, stage["name"], idx, summary)
        if control.stopped:
            break
    report = build_report(staged, results)
    report["wall_seconds"] = time.perf_counter() - t_start
    yield StagesFinished(report)


# ====================================================================== reporting

try:  # one statistics rule for every report: the comparisons module's
    from engine.jobs.compare import distinguishable, spread
except ImportError:  # pragma: no cover - engine.jobs.compare not present
    def spread(values) -> dict:
        """mean, sample std (ddof=1), min, max and n of the finite values."""
        v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
        if v.size == 0:
            return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}

    def distinguishable(a, b) -> dict:
        seeds = [k for k in a if k in b and a[k] is not None and b[k] is not None
                 and math.isfinite(a[k]) and math.isfinite(b[k])]
        av = np.array([a[k] for k in seeds], dtype=float)
        bv = np.array([b[k] for k in seeds], dtype=float)
        n = len(seeds)
        diffs = av - bv
        mean_diff = float(diffs.mean()) if n else math.nan
        spread_ = float(max(av.std(ddof=1), bv.std(ddof=1))) if n >= 2 else math.nan
        return {"n": n, "mean_diff": mean_diff, "spread": spread_,
                "distinguishable": bool(n >= 2 and abs(mean_diff) > spread_), "p_value": math.nan,
                "wins_a": int((diffs > 0).sum()), "wins_b": int((diffs < 0).sum())}


AGGREGATED = ("test_accuracy", "best_val_accuracy", "final_val_accuracy", "test_loss", "final_val_loss",
              "steps", "train_seconds", "wall_seconds", "steps_to_target")


def build_report(staged: dict, results: dict) -> dict:
    """Aggregate per-seed stage summaries into the report (see module doc)."""
    rep = staged["report"]
    metric = rep["metric"]
    higher = METRICS[metric]
    out = {"metric": metric, "baseline": rep["baseline"], "target": rep["target"], "stages": {},
           "comparisons": []}
    for name, runs in results.items():
        entry = {"seeds": [r["seed"] for r in runs], "runs": [{k: r.get(k) for k in
                 ("seed", "status", "val_curve", *AGGREGATED)} for r in runs]}
        for key in AGGREGATED:
            entry[key] = spread([r.get(key) for r in runs])
        reached = [r.get("steps_to_target") for r in runs]
        entry["reached_target"] = sum(x is not None for x in reached)
        caching = [r["caching"] for r in runs if "caching" in r]
        if caching:
            entry["caching"] = {k: spread([c[k] for c in caching]) for k in
                                ("speedup", "speedup_per_epoch", "uncached_seconds", "cached_seconds",
                                 "cache_seconds", "max_weight_difference")}
        out["stages"][name] = entry
    base = rep["baseline"]
    for name in rep["compare"]:
        if base is None or not results.get(base) or not results.get(name):
            continue
        base_by_seed = {r["seed"]: r.get(metric) for r in results[base]}
        by_seed = {r["seed"]: r.get(metric) for r in results[name]}
        pairs = [(seed, a, base_by_seed[seed]) for seed, a in by_seed.items() if seed in base_by_seed]
        sign = 1.0 if higher else -1.0
        gains = [sign * (a - b) for _, a, b in pairs
                 if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        g = spread(gains)
        rule = distinguishable(by_seed, base_by_seed)
        wins = sum(x > 0 for x in gains)
        losses = sum(x < 0 for x in gains)
        comp = {"stage": name, "baseline": base, "metric": metric, "gain": g, "wins": wins, "losses": losses,
                "ties": len(gains) - wins - losses, "n": len(gains), "seed_spread": rule["spread"],
                "p_value": rule.get("p_value", math.nan), "distinguishable": rule["distinguishable"],
                "per_seed": [{"seed": s_, name: a, base: b} for s_, a, b in pairs]}
        comp["verdict"] = verdict(comp)
        out["comparisons"].append(comp)
    return out


def verdict(comp: dict) -> str:
    g, n = comp["gain"], comp["n"]
    if n == 0:
        return "no seed finished both stages"
    word = "higher" if METRICS[comp["metric"]] else "lower"
    scale = 100.0 if "accuracy" in comp["metric"] else 1.0
    unit = " points" if scale == 100.0 else ""
    std = f" ± {g['std'] * scale:.2f}" if math.isfinite(g["std"]) else ""
    text = (f"{comp['stage']} vs {comp['baseline']}: {comp['metric']} gain {g['mean'] * scale:+.2f}{std}{unit} "
            f"(mean ± std over {n} seed{'s' if n != 1 else ''}; range {g['min'] * scale:+.2f} to "
            f"{g['max'] * scale:+.2f}); {word} on {comp['wins']} of {n} seeds")
    if math.isfinite(comp.get("p_value", math.nan)):
        text += f"; paired t-test p = {comp['p_value']:.2f}"
    if not comp["distinguishable"]:
        text += f"; not distinguishable at {n} seed{'s' if n != 1 else ''} (the gain is within the " \
                f"seed-to-seed spread)"
    return text


def format_report(report: dict) -> str:
    """A plain-text table of the report (printed by the CLI)."""
    lines = []
    metric = report["metric"]
    pct = "accuracy" in metric
    lines.append(f"{'stage':24s} {metric + ' (mean ± std, min..max)':44s} {'steps':>8s} {'seconds':>8s}")
    for name, e in report["stages"].items():
        m = e[metric]
        if m["n"] == 0:
            cell = "-"
        elif pct:
            std = f" ± {m['std'] * 100:.2f}" if math.isfinite(m["std"]) else ""
            cell = f"{m['mean'] * 100:.2f}%{std}  ({m['min'] * 100:.2f}..{m['max'] * 100:.2f})"
        else:
            std = f" ± {m['std']:.4f}" if math.isfinite(m["std"]) else ""
            cell = f"{m['mean']:.4f}{std}  ({m['min']:.4f}..{m['max']:.4f})"
        lines.append(f"{name:24s} {cell:44s} {e['steps']['mean']:8.0f} {e['wall_seconds']['mean']:8.1f}")
        if report.get("target") is not None and e["steps_to_target"]["n"]:
            lines.append(f"{'':24s} reached val accuracy {report['target']:.3f} on {e['reached_target']} of "
                         f"{len(e['seeds'])} seeds, after {e['steps_to_target']['mean']:.0f} steps on average")
        if "caching" in e:
            c = e["caching"]
            lines.append(f"{'':24s} caching the frozen layers: phase {c['uncached_seconds']['mean']:.3f}s -> "
                         f"{c['cached_seconds']['mean']:.3f}s + {c['cache_seconds']['mean']:.3f}s to cache; "
                         f"speedup {c['speedup']['mean']:.1f}x overall, {c['speedup_per_epoch']['mean']:.1f}x per "
                         f"epoch; weights differ by at most {c['max_weight_difference']['max']:.1e}")
    for comp in report["comparisons"]:
        lines.append(comp["verdict"])
    return "\n".join(lines)


# ======================================================================== writing

def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:50] or "stage"


class StagesWriter:
    """Writes a staged run's folder (layout in the module docstring)."""

    def __init__(self, folder, experiment: dict, app_version: str = ""):
        from engine.spec.experiment import dumps_experiment
        from engine.fileio import ensure_dir, write_json, write_text

        self.folder = ensure_dir(Path(folder))
        self.app_version = app_version
        self.experiment = experiment
        write_text(self.folder / "experiment.json", dumps_experiment(experiment))
        write_json(self.folder / "summary.json", {"status": "running", "pid": os.getpid(),
                                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._writer = None
        self._stage = None
        self._phase = 0
        self.rows: list = []

    def handle(self, event) -> None:
        from engine.events import RunFinished, RunStarted
        from engine.formats.runstore import RunWriter

        if isinstance(event, StageStarted):
            self._stage = event
            self._phase = 0
            self._data = None
        elif isinstance(event, StageData):
            self._data = event.data
        elif isinstance(event, RunStarted) and self._stage is not None:
            st = self._stage
            path = self.folder / f"seed-{st.seed}" / f"{st.index + 1:02d}-{_safe(st.stage)}"
            if len(st.phases) > 1:
                path = path / f"{self._phase + 1:02d}-{_safe(st.phases[self._phase])}"
            self._phase += 1
            self._writer = RunWriter(path, self.app_version)
            self._writer.data = self._data     # data statistics with the weights (predict, export)
            self._writer.handle(event)
        elif isinstance(event, StageFinished):
            self.rows.append(event.summary)
            self._write_csv()
        elif isinstance(event, StagesFinished):
            self._finish(event.report)
        elif self._writer is not None:
            self._writer.handle(event)
            if isinstance(event, RunFinished):
                self._writer = None

    def _write_csv(self) -> None:
        from engine.fileio import write_text
        keys = ["seed", "stage", "status", "reused_from", "reused_layers", "steps", "epochs", "test_accuracy",
                "test_loss", "final_val_accuracy", "best_val_accuracy", "steps_to_target", "train_seconds",
                "wall_seconds", "caching_speedup", "caching_speedup_per_epoch"]
        import io
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(keys)
        for r in self.rows:
            c = r.get("caching") or {}
            row = dict(r, caching_speedup=c.get("speedup"), caching_speedup_per_epoch=c.get("speedup_per_epoch"))
            w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
        write_text(self.folder / "stages.csv", buf.getvalue())

    def _finish(self, report: dict) -> None:
        from engine.fileio import write_json
        status = "finished" if all(r.get("status") == "finished" for r in self.rows) else "incomplete"
        write_json(self.folder / "summary.json", {"status": status, "report": report, "runs": self.rows})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def staged_cli_run(experiment: dict, folder, control, progress=None, max_steps=None, seeds=None,
                   app_version: str = "") -> dict | None:
    """What ``python main.py run`` does for a staged experiment; returns the report."""
    writer = StagesWriter(folder, experiment, app_version)
    report = None
    try:
        for event in run_stages(experiment, control, max_steps=max_steps, seeds=seeds):
            writer.handle(event)
            if progress is not None:
                if isinstance(event, StageStarted):
                    reuse = "" if event.reuse is None else \
                        f" (reusing {event.reuse['k']} layer(s) of {event.reuse['from']})"
                    print(f"== stage {event.index + 1}: {event.stage}{reuse}, seed {event.seed}"
                          + (f" -- {event.title}" if event.title else ""), file=progress.stream)
                elif isinstance(event, StagesFinished):
                    report = event.report
                else:
                    progress.handle(event)
            elif isinstance(event, StagesFinished):
                report = event.report
    finally:
        writer.close()
    return report


def with_epochs(experiment: dict, epochs: int) -> dict:
    """A copy whose every stage phase trains for ``epochs`` epochs."""
    from engine.spec.experiment import resolve_experiment

    exp = copy.deepcopy(experiment)
    for stage in exp["stages"]["list"]:
        for phase in stage["phases"]:
            phase["training"]["epochs"] = epochs
    return resolve_experiment(exp)


def cli_run_stages(args, experiment: dict, progress, control, app_version: str = "") -> int:
    """``python main.py run`` on a staged experiment (called by engine.cli)."""
    import signal
    import sys

    from engine.formats.runstore import default_run_dir

    for flag in ("init_weights", "resume"):
        if getattr(args, flag, None):
            print(f"error: --{flag.replace('_', '-')} does not apply to a staged experiment (each stage builds "
                  f"its network from the stages section)", file=sys.stderr)
            return 2
    if args.epochs is not None:
        experiment = with_epochs(experiment, args.epochs)
    seeds = [args.seed] if args.seed is not None else None
    folder = Path(args.out) if args.out else default_run_dir(experiment["name"])

    def on_sigint(signum, frame):
        if control.stopped:
            raise KeyboardInterrupt
        print("\nstopping at the next step (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = staged_cli_run(experiment, folder, control, None if args.quiet else progress,
                                max_steps=args.steps, seeds=seeds, app_version=app_version)
    finally:
        signal.signal(signal.SIGINT, previous)
    if report is not None and not args.quiet:
        print(format_report(report), file=sys.stdout)
    print(f"run written to {folder}", file=sys.stderr if args.quiet else sys.stdout)
    return 0
