"""Sweep statistics and reports: per-trial spread across seeds, the ranking, the verdicts against
the best trial, the CSV/JSON files, the terminal table and the data of the window's plot.

A sweep's runs are records of the shape :func:`engine.jobs.runs.train_run`
returns (``variant`` = the trial's name, ``seed``, ``status``,
``final_val_accuracy``, ``final_val_loss``, ``best_val_accuracy``,
``best_val_loss``, ``test_accuracy``, ``steps``, ``wall_seconds``,
``folder``; ``init_hash``/``data_hash`` when present), so the runner of
comparisons can train a sweep's trials (:func:`engine.spec.sweep.sweep_trials`)
x seeds unchanged.

What counts as a result.  Only a run that finished (or stopped early by its
own early-stopping rule) with a finite final metric has one.  A diverged run
keeps the metrics of its last epoch before the blow-up, which can look good;
here it counts as diverged, never as a good result: its trial's statistics
leave it out, the trial says on how many seeds it diverged, and the ranking
puts every trial with a run lost that way after every trial whose runs all
finished (a learning rate that diverges on one seed of three is not a good
learning rate).

The verdicts use THE rule of comparisons,
:func:`engine.jobs.compare_report.distinguishable`, against the best trial,
paired by seed; with dozens of trials the best mean is partly luck, and the
report says which trials it cannot tell apart from the best at N seeds.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from engine.errors import DescentError, ExperimentError
from engine.fileio import write_text
from engine.formats.runfolder import read_run
from engine.jobs.compare_report import (read_summary, RULE_TEXT, distinguishable, format_stat, json_safe, nan_stats, spread,
                                        verdict_text)
from engine.spec.sweep import CONTINUOUS_SPACES, LOG_SPACES, Trial, space_kind, space_points

COMPLETE = ("finished", "early_stopped")     # statuses whose final metric is a result
METRICS = ("final_val_accuracy", "final_val_loss", "best_val_accuracy", "best_val_loss", "test_accuracy")
RUN_FIELDS = ("seed", "status", "steps", *METRICS, "wall_seconds", "folder")
LOG_RATIO = 100.0   # a "values" list of positive numbers spanning this factor is drawn on a log axis
DIVERGENCE_RULE = ("a run that diverged (or failed, or was stopped) has no result: its trial's statistics leave "
                   "it out and the trial ranks after every trial whose runs all finished")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _metric(choice: str, records: Sequence[Mapping]) -> str:
    if choice != "auto":
        return choice
    return "val_accuracy" if any(_finite(r.get("final_val_accuracy")) for r in records) else "val_loss"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parameter_info(cfg: Mapping) -> dict:
    """Per swept key: its space, whether its values are numbers, whether to draw it on a log axis, and
    its list of values when the space is discrete (None for a continuous one)."""
    out = {}
    for key, space in cfg["parameters"].items():
        kind = space_kind(space)
        points = space_points(space)
        numeric = kind in CONTINUOUS_SPACES or all(_is_number(v) for v in points)
        log = kind in LOG_SPACES or (kind == "values" and numeric and min(points) > 0
                                     and max(points) / min(points) >= LOG_RATIO)
        out[key] = {"space": kind, "numeric": numeric, "log": bool(log), "values": points}
    return out


def summarize_sweep(records: Sequence[Mapping], trials: Sequence[Trial], cfg: Mapping,
                    seeds: Sequence[int] | None = None, experiment: str | None = None) -> dict:
    """Aggregate the runs of a sweep (see the module docstring) into its summary.

    ``cfg`` is the resolved sweep section, ``seeds`` the seeds run (default:
    the section's).  Trials without records (a stopped sweep) are listed with
    no result.
    """
    if [t.index for t in trials] != list(range(len(trials))):
        raise ValueError("trials must be the sweep's trials in order (index 0, 1, ...)")
    metric = _metric(cfg.get("metric", "auto"), records)
    higher = metric == "val_accuracy"
    final_key = f"final_{metric}"
    seeds = list(cfg["seeds"] if seeds is None else seeds)
    order = {s: i for i, s in enumerate(seeds)}
    names = {t.name: t.index for t in trials}
    runs_of: dict[int, dict] = {t.index: {} for t in trials}
    for r in records:
        if r["variant"] not in names:
            raise ValueError(f"record of unknown trial {r['variant']!r}")
        runs_of[names[r["variant"]]][r["seed"]] = r
    first = runs_of[trials[0].index] if trials else {}
    sign = 1.0 if higher else -1.0      # the rule sees "better" as larger: a loss is negated
    values: dict[int, dict] = {}
    entries = []
    for t in trials:
        runs = sorted(runs_of[t.index].values(), key=lambda r: order.get(r["seed"], len(order)))
        done = [r for r in runs if r["status"] in COMPLETE]
        values[t.index] = {r["seed"]: sign * r[final_key] for r in done if _finite(r.get(final_key))}
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        entry = {"index": t.index, "name": t.name, "params": dict(t.params), "statuses": statuses,
                 "runs_done": len(runs), "with_result": len(values[t.index]),
                 "no_result": len(runs) - len(values[t.index]), "diverged": statuses.get("diverged", 0)}
        for m in METRICS:
            entry[m] = spread(r.get(m) for r in done)
        entry["steps"] = spread(r.get("steps") for r in runs)
        entry["wall_seconds"] = spread(r.get("wall_seconds") for r in runs)
        for flag, h in (("same_initial_weights_as_first", "init_hash"), ("same_data_and_batches_as_first", "data_hash")):
            pairs = [r.get(h) == first[r["seed"]].get(h) for r in runs
                     if r["seed"] in first and r.get(h) is not None and first[r["seed"]].get(h) is not None]
            entry[flag] = all(pairs) if pairs else None
        entry["runs"] = [{k: r.get(k) for k in RUN_FIELDS} for r in runs]
        entries.append(entry)

    def rank_key(e: dict):
        mean = e[final_key]["mean"] if e["with_result"] else math.nan
        tier = 2 if not e["with_result"] else (1 if e["no_result"] else 0)
        return tier, e["no_result"], -sign * mean if tier < 2 else 0.0, e["index"]

    ranking = [e["index"] for e in sorted(entries, key=rank_key)]
    best = ranking[0] if ranking and entries[ranking[0]]["with_result"] else None
    tied = []
    for rank, index in enumerate(ranking, 1):
        e = entries[index]
        e["rank"] = rank
        d = distinguishable(values[best] if best is not None else {}, values[index])
        if index == best:
            e["vs_best"] = dict(d, distinguishable=False, verdict="best mean")
        elif not e["with_result"]:
            e["vs_best"] = dict(d, verdict="no result: " + _lost(e))
        else:
            text = verdict_text(d, metric, higher)
            e["vs_best"] = dict(d, verdict=text + ("; " + _lost(e) if e["no_result"] else ""))
        if e["with_result"] and not e["no_result"] and not e["vs_best"]["distinguishable"]:
            tied.append(index)
    return {"kind": "sweep", "experiment": experiment, "method": cfg["method"], "metric": metric,
            "higher_is_better": higher, "seeds": seeds, "n_seeds": len(seeds), "n_trials": len(trials),
            "parameters": parameter_info(cfg), "trials": entries, "ranking": ranking, "best": best,
            "not_distinguishable_from_best": tied, "rule": RULE_TEXT, "divergence_rule": DIVERGENCE_RULE,
            "caveat": _caveat(len(trials), len(seeds))}


def _lost(entry: Mapping) -> str:
    """"diverged on 2 of 3 seeds" for a trial's runs without a result."""
    n = entry["runs_done"]
    lost = {k: c for k, c in entry["statuses"].items() if k not in COMPLETE}
    parts = [f"{k} on {c} of {n} seeds" for k, c in lost.items()]
    missing = entry["no_result"] - sum(lost.values())
    if missing > 0:
        parts.append(f"no finite metric on {missing} of {n} seeds")
    return ", ".join(parts) or "not run"


def _caveat(k: int, n: int) -> str:
    text = f"{k} trials x {n} seeds."
    if n < 2:
        text += " With one seed nothing can be told apart from luck: run more seeds before concluding."
    elif k > 2:
        text += (f" The best of {k} trials is partly the luckiest: trust only the differences marked "
                 f"distinguishable, and re-run the best few settings with new seeds before choosing one.")
    return text


# ----------------------------------------------------------------------------- files


def _num(x: Any) -> str:
    return repr(float(x)) if _finite(x) else ""


def _value_cell(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, allow_nan=False)


def runs_csv(summary: Mapping) -> str:
    """``sweep.csv``: one row per trial and seed, in trial order (the parameters as columns)."""
    keys = list(summary["parameters"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "name", *keys, *RUN_FIELDS])
    for e in summary["trials"]:
        for run in e["runs"]:
            w.writerow([e["index"], e["name"], *(_value_cell(e["params"][k]) for k in keys),
                        run["seed"], run["status"], "" if run["steps"] is None else run["steps"],
                        *(_num(run[m]) for m in METRICS), _num(run["wall_seconds"]), run["folder"] or ""])
    return buf.getvalue()


TRIAL_FIELDS = ("metric", "runs", "with_result", "diverged", "statuses", "final_mean", "final_std", "final_min",
                "final_max", "best_mean", "best_std", "wall_seconds_mean", "distinguishable_from_best",
                "verdict_vs_best")


def trials_csv(summary: Mapping) -> str:
    """``sweep_trials.csv``: one row per trial, in trial order: rank, values, spread across seeds, verdict."""
    keys = list(summary["parameters"])
    metric = summary["metric"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "trial", "name", *keys, *TRIAL_FIELDS])
    for e in summary["trials"]:
        f, b = e[f"final_{metric}"], e[f"best_{metric}"]
        w.writerow([e["rank"], e["index"], e["name"], *(_value_cell(e["params"][k]) for k in keys), metric,
                    e["runs_done"], e["with_result"], e["diverged"],
                    ";".join(f"{k}={c}" for k, c in e["statuses"].items()),
                    _num(f["mean"]), _num(f["std"]), _num(f["min"]), _num(f["max"]), _num(b["mean"]), _num(b["std"]),
                    _num(e["wall_seconds"]["mean"]), str(bool(e["vs_best"]["distinguishable"])).lower(),
                    e["vs_best"]["verdict"]])
    return buf.getvalue()


def sweep_json(summary: Mapping) -> str:
    """``sweep.json``: the whole summary, strict JSON (null where a number is missing)."""
    return json.dumps(json_safe(dict(summary)), indent=2, allow_nan=False) + "\n"


def write_sweep(folder: str | os.PathLike, summary: Mapping) -> None:
    """Write ``sweep.json``, ``sweep.csv`` (runs) and ``sweep_trials.csv`` (trials) into ``folder``."""
    folder = Path(folder)
    write_text(folder / "sweep.json", sweep_json(summary))
    write_text(folder / "sweep.csv", runs_csv(summary))
    write_text(folder / "sweep_trials.csv", trials_csv(summary))


def read_sweep(folder: str | os.PathLike) -> dict:
    """A sweep folder's ``sweep.json`` read back, nulls in the statistics turned back into NaN."""
    path = Path(folder) / "sweep.json"
    summary = read_summary(path, "sweep summary", "a sweep folder is what running an experiment with a sweep "
                                                  "section writes")
    if not isinstance(summary, dict) or summary.get("kind") != "sweep":
        raise ExperimentError(f"{path}: not a sweep summary (no \"kind\": \"sweep\")")
    return summary


# ----------------------------------------------------------------------------- terminal


def _short(v: Any) -> str:
    if _is_number(v):
        return f"{v:.3g}"
    return v if isinstance(v, str) else json.dumps(v)


def format_sweep_table(summary: Mapping, limit: int | None = 30) -> str:
    """The readable report: trials by rank (the first ``limit``), a value grid for a two-key grid
    search, the best trial and those the rule cannot tell apart from it."""
    summary = nan_stats(dict(summary))
    metric = summary["metric"]
    pct = metric == "val_accuracy"
    entries = summary["trials"]
    lines = [f"sweep of {summary['n_trials']} trials ({summary['method']}) x {summary['n_seeds']} seeds "
             f"{summary['seeds']}; metric: final {metric} (mean ± std across seeds, [min, max])"]
    w = min(40, max([8, *(len(e["name"]) for e in entries)]))
    lines.append(f"{'rank':>4s} {'trial':{w}s} {'final':>16s} {'min .. max':>17s} {'wall s':>7s}  verdict vs best")
    shown = summary["ranking"] if limit is None else summary["ranking"][:limit]
    for index in shown:
        e = entries[index]
        f = e[f"final_{metric}"]
        span = "-" if f["n"] == 0 else (f"{f['min'] * 100:.2f} .. {f['max'] * 100:.2f}" if pct
                                        else f"{f['min']:.4f} .. {f['max']:.4f}")
        wall = e["wall_seconds"]["mean"]
        wall = f"{wall:7.1f}" if math.isfinite(wall) else f"{'-':>7s}"
        lines.append(f"{e['rank']:4d} {e['name'][:w]:{w}s} {format_stat(f, pct):>16s} {span:>17s} {wall}  "
                     f"{e['vs_best']['verdict']}")
    if len(shown) < len(entries):
        lines.append(f"     ... {len(entries) - len(shown)} more trials in sweep_trials.csv")
    keys = list(summary["parameters"])
    if summary["method"] == "grid" and len(keys) == 2:
        lines += [""] + _value_grid(summary, keys[0], keys[1], pct)
    best = summary["best"]
    if best is None:
        lines.append("no trial has a result")
    else:
        b = entries[best]
        tied = [entries[i]["name"] for i in summary["not_distinguishable_from_best"] if i != best]
        lines.append(f"best mean: {b['name']} ({', '.join(f'{k}={_short(v)}' for k, v in b['params'].items())}); "
                     f"not distinguishable from it at {summary['n_seeds']} seeds: "
                     + (f"{len(tied)} trial{'s' if len(tied) > 1 else ''} ({', '.join(tied[:12])}"
                        f"{', ...' if len(tied) > 12 else ''})"
                        if tied else "none"))
    diverged = [e["name"] for e in entries if e["diverged"]]
    if diverged:
        lines.append(f"diverged on at least one seed: {len(diverged)} trial{'s' if len(diverged) > 1 else ''} "
                     f"({', '.join(diverged[:12])}"
                     f"{', ...' if len(diverged) > 12 else ''})")
    lines.append("rule: " + summary["rule"])
    lines.append("diverged runs: " + summary["divergence_rule"])
    lines.append(summary["caveat"])
    return "\n".join(lines)


def _value_grid(summary: Mapping, row_key: str, col_key: str, pct: bool) -> list[str]:
    """Mean final metric per (row value, column value): the sensitivity picture in text ("div" where
    every seed diverged, a * where some did)."""
    metric = summary["metric"]
    rows = summary["parameters"][row_key]["values"]
    cols = summary["parameters"][col_key]["values"]
    cell = {(json.dumps(e["params"][row_key]), json.dumps(e["params"][col_key])): e for e in summary["trials"]}
    rw = min(24, max([len(row_key.split(".")[-1]), *(len(_short(v)) for v in rows)]))
    cw = max([7, *(len(_short(v)) for v in cols)])
    out = [f"{metric}{' (%)' if pct else ''}: {row_key} by {col_key}",
           f"{'':{rw}s} " + " ".join(f"{_short(v):>{cw}s}" for v in cols)]
    for r in rows:
        texts = []
        for c in cols:
            e = cell.get((json.dumps(r), json.dumps(c)))
            if e is None or e["runs_done"] == 0:
                texts.append("-")
                continue
            f = e[f"final_{metric}"]
            if f["n"] == 0:
                texts.append("div" if e["diverged"] else "n/a")
                continue
            text = f"{f['mean'] * 100:.1f}" if pct else f"{f['mean']:.3g}"
            texts.append(text + ("*" if e["no_result"] else ""))
        out.append(f"{_short(r)[:rw]:{rw}s} " + " ".join(f"{t:>{cw}s}" for t in texts))
    if any(e["no_result"] and e[f"final_{metric}"]["n"] for e in summary["trials"]):
        out.append("* some seeds diverged or failed: the mean is over the others")
    return out


# ----------------------------------------------------------------------------- the window's plot


PLOT_METRICS = METRICS


def sweep_plot_data(summary: Mapping, x: str | None = None, y: str | None = None,
                    metric: str | None = None) -> dict:
    """What the window draws for a sweep: the metric against swept values.

    ``x`` (default: the first numeric key that varies) is the horizontal
    axis.  Without ``y``, the result is ``{"kind": "lines", ...}``: one line
    per combination of the other varying keys (e.g. per optimizer), each
    point a trial with the mean, std, min and max across seeds (the band)
    and its count of seeds with a result and of diverged seeds.  With ``y``
    (default when exactly two numeric keys vary and no other key does) it is
    ``{"kind": "heatmap", ...}``: per group a 2-D table (rows = y values,
    columns = x values) for discrete spaces, or ``"scatter"`` points when an
    axis was drawn from a continuous range.  ``log_x``/``log_y`` say when an
    axis should be logarithmic (a log-spaced space).  ``metric``: one of
    :data:`PLOT_METRICS` (default: the final value of the sweep's metric).
    Every point carries its trial index, to open that trial's curves.
    """
    summary = nan_stats(dict(summary))
    params = summary["parameters"]
    entries = summary["trials"]
    metric = metric or f"final_{summary['metric']}"
    if metric not in PLOT_METRICS:
        raise ValueError(f"metric must be one of {', '.join(PLOT_METRICS)}, got {metric!r}")
    varying = [k for k in params if len({json.dumps(e["params"][k]) for e in entries}) > 1]
    numeric = [k for k in varying if params[k]["numeric"]]
    for name, key in (("x", x), ("y", y)):
        if key is not None and key not in params:
            raise ValueError(f"{name} must be a swept key ({', '.join(params)}), got {key!r}")
        if key is not None and not params[key]["numeric"]:
            raise ValueError(f"{name}: {key} takes values that are not numbers; it can only group the lines")
    if x is None:
        if not numeric:
            raise ValueError("no swept key takes numbers: nothing to draw along an axis")
        x = numeric[0]
        if y is None and len(numeric) == 2 and len(varying) == 2:
            y = numeric[1]
    axes = [x] if y is None else [x, y]
    groups = [k for k in varying if k not in axes]
    by_group: dict[str, list] = {}
    for e in entries:
        by_group.setdefault(json.dumps([e["params"][k] for k in groups]), []).append(e)
    base = {"metric": metric, "higher_is_better": summary["higher_is_better"], "x": x,
            "log_x": params[x]["log"], "groups": groups}
    if y is None:
        lines = []
        for members in by_group.values():
            members = sorted(members, key=lambda e: e["params"][x])
            lines.append({"label": _group_label(groups, members[0]["params"]),
                          "group": {k: members[0]["params"][k] for k in groups},
                          "x": [e["params"][x] for e in members], **_point_stats(members, metric)})
        return dict(base, kind="lines", scatter=summary["method"] == "random", lines=lines)
    base.update(y=y, log_y=params[y]["log"])
    if params[x]["values"] is None or params[y]["values"] is None:
        panels = [{"label": _group_label(groups, m[0]["params"]), "group": {k: m[0]["params"][k] for k in groups},
                   "x": [e["params"][x] for e in m], "y": [e["params"][y] for e in m], **_point_stats(m, metric)}
                  for m in by_group.values()]
        return dict(base, kind="scatter", panels=panels)
    panels = []
    for members in by_group.values():
        xs = sorted({e["params"][x] for e in members})
        ys = sorted({e["params"][y] for e in members})
        at = {(e["params"][x], e["params"][y]): e for e in members}
        table = {k: [[None] * len(xs) for _ in ys] for k in ("mean", "std", "min", "max", "n", "diverged", "trials")}
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                if (xv, yv) in at:
                    stats = _point_stats([at[(xv, yv)]], metric)
                    for k in table:
                        table[k][i][j] = stats[k][0]
        panels.append({"label": _group_label(groups, members[0]["params"]),
                       "group": {k: members[0]["params"][k] for k in groups}, "x_values": xs, "y_values": ys,
                       **table})
    return dict(base, kind="heatmap", panels=panels)


def _point_stats(members: Sequence[Mapping], metric: str) -> dict:
    return {"mean": [e[metric]["mean"] for e in members], "std": [e[metric]["std"] for e in members],
            "min": [e[metric]["min"] for e in members], "max": [e[metric]["max"] for e in members],
            "n": [e[metric]["n"] for e in members], "diverged": [e["diverged"] for e in members],
            "trials": [e["index"] for e in members]}


def _group_label(keys: Sequence[str], params: Mapping) -> str:
    """"adam" for a name key, "drop=0.2" otherwise; "all" when nothing else varies."""
    parts = [_short(params[k]) if k.endswith(".name") else f"{k.split('.')[-1]}={_short(params[k])}" for k in keys]
    return ", ".join(parts) or "all"


def trial_curves(folder: str | os.PathLike, summary: Mapping, trial: int,
                 metrics: Sequence[str] = ("val_accuracy", "val_loss", "loss")) -> dict:
    """One trial's runs as curves, read from their run folders under ``folder``: ``{metric: {seed:
    (steps, values)}}`` (columns of epochs.csv, or history.csv for ``loss``).  A run whose folder or
    column is missing (a stopped sweep, a folder moved) is left out.  What the window shows when a
    point of the sweep's plot is clicked: the runs behind one mean."""
    out: dict = {m: {} for m in metrics}
    for run in summary["trials"][trial]["runs"]:
        if not run.get("folder"):
            continue
        try:
            found = read_run(Path(folder) / str(run["folder"]))
        except DescentError:
            continue
        for metric in metrics:
            curve = found.curve(metric)
            if curve is not None:
                out[metric][run["seed"]] = curve
    return out
