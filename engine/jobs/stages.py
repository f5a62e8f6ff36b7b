"""Running a staged experiment: phases, reports and run folders.

The ``stages`` section itself (schema, resolution, and the records a staged
run emits) is in :mod:`engine.spec.stages`; this module trains what it
describes.  A staged run is one kind of job of :func:`engine.jobs.runner.run_job`,
which writes its folder with :class:`StagesWriter`.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.control import RunControl
from engine.data import load_dataset
from engine.errors import ExperimentError
from engine.events import (ConfusionReport, DecisionSurface, EpochEnd, RunFinished, RunStarted, StepMetrics,
                           frozen_array)
from engine.fileio import ensure_dir, write_json, write_text
from engine.formats import data_info
from engine.formats.runlayout import DEFAULT_WEIGHTS_FILES, PER_LAYER_FIELDS
from engine.formats.runstore import RunWriter
from engine.jobs.compare_report import distinguishable, spread
from engine.spec.experiment import dumps_experiment, resolve_experiment
from engine.formats.importers.staged import imported_stage   # stages trained elsewhere (issue 16)
from engine.spec.stages import (METRICS, StageData, StageFinished, StageStarted, StagesFinished, phase_experiment,
                                stage_model)
from engine.training import transfer as T
from engine.training.network import Network
from engine.training.trainer import Trainer


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
        a = np.asarray(arr)
        fill = np.full((self.pad,) + a.shape[1:], np.nan)
        return frozen_array(np.concatenate([fill, a]), a.dtype if a.dtype.kind == "f" else np.float64)

    def __call__(self, ev):
        r = dataclasses.replace
        if isinstance(ev, RunStarted):
            ev = r(ev, total_steps=ev.total_steps + self.step)
            if self.net is not None:
                ev = r(ev, layers=self.net.layer_infos(), n_params=self.net.n_params)
            return ev
        if isinstance(ev, StepMetrics):
            ev = r(ev, step=ev.step + self.step, epoch=ev.epoch + self.epoch, elapsed=ev.elapsed + self.elapsed)
            if self.pad:
                ev = r(ev, **{f: self._padded(getattr(ev, f)) for f in (*PER_LAYER_FIELDS, "histograms")})
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
                no_cache = T.augmentation_cache_note(pexp) if phase["cache"] or phase["measure_caching"] else None
                psum = {"phase": phase["name"], "frozen": list(phase["freeze"]),
                        "cached": phase["cache"] and no_cache is None,
                        "learning_rate": phase["optimizer"]["learning_rate"], "first_step": offset_step}
                if no_cache is not None:
                    psum["cache_note"] = no_cache
                if phase["measure_caching"] and no_cache is None:
                    psum["caching"] = T.measure_caching_speedup(net, pexp, data, max_steps=max_steps)
                if psum["cached"]:
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
            notes = [f"phase {p['phase']}: {p['cache_note']}" for p in summary["phases"] if "cache_note" in p]
            if notes:
                summary["notes"] = notes
            results[stage["name"]].append(summary)
            yield StageFinished(run_id, seed, stage["name"], idx, summary)
        if control.stopped:
            break
    report = build_report(staged, results)
    report["wall_seconds"] = time.perf_counter() - t_start
    yield StagesFinished(report)


# ====================================================================== reporting

# one statistics rule for every report: the comparisons' (engine.jobs.compare_report)
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
        notes = sorted({note for r in runs for note in r.get("notes", ())})
        if notes:
            entry["notes"] = notes
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
        lines += [f"{'':24s} {note}" for note in e.get("notes", ())]
    for comp in report["comparisons"]:
        lines.append(comp["verdict"])
    return "\n".join(lines)


# ======================================================================== writing

def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:50] or "stage"


class StagesWriter:
    """Writes a staged run's folder (layout in the module docstring)."""

    def __init__(self, folder, experiment: dict, app_version: str = "", weights_files: tuple = DEFAULT_WEIGHTS_FILES):
        self.folder = ensure_dir(Path(folder))
        self.app_version = app_version
        self.weights_files = weights_files   # each phase folder's copies of its final weights
        self.experiment = experiment
        write_text(self.folder / "experiment.json", dumps_experiment(experiment))
        write_json(self.folder / "summary.json", {"status": "running", "pid": os.getpid(),
                                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._writer = None
        self._stage = None
        self._phase = 0
        self.rows: list = []

    def handle(self, event) -> None:
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
            self._writer = RunWriter(path, self.app_version, weights_files=self.weights_files)
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
        keys = ["seed", "stage", "status", "reused_from", "reused_layers", "steps", "epochs", "test_accuracy",
                "test_loss", "final_val_accuracy", "best_val_accuracy", "steps_to_target", "train_seconds",
                "wall_seconds", "caching_speedup", "caching_speedup_per_epoch"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(keys)
        for r in self.rows:
            c = r.get("caching") or {}
            row = dict(r, caching_speedup=c.get("speedup"), caching_speedup_per_epoch=c.get("speedup_per_epoch"))
            w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
        write_text(self.folder / "stages.csv", buf.getvalue())

    def _finish(self, report: dict) -> None:
        status = "finished" if all(r.get("status") == "finished" for r in self.rows) else "incomplete"
        write_json(self.folder / "summary.json", {"status": status, "report": report, "runs": self.rows})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def with_epochs(experiment: dict, epochs: int) -> dict:
    """A copy whose every stage phase trains for ``epochs`` epochs."""
    exp = copy.deepcopy(experiment)
    for stage in exp["stages"]["list"]:
        for phase in stage["phases"]:
            phase["training"]["epochs"] = epochs
    return resolve_experiment(exp)
