"""Comparison statistics and reports: spread across seeds, the one rule that
decides whether two variants are distinguishable, the table, the CSV/JSON
files and the mean/min-max curves the window draws.

:mod:`engine.jobs.compare` turns the ``compare`` section into runs and runs them;
this module only reads their results.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from engine.errors import DescentError, ExperimentError
from engine.fileio import write_text
from engine.formats.runfolder import read_run
from engine.limits import parse_json


def spread(values: Iterable) -> dict:
    """mean, sample std (ddof=1; NaN for one value), min, max, n of the finite values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
            "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def paired_t_pvalue(diffs: Sequence[float]) -> float:
    """Two-sided p-value of a paired t-test on per-seed differences (NaN if n < 2)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    if n < 2:
        return math.nan
    sd = d.std(ddof=1)
    if sd == 0.0:
        return 1.0 if d.mean() == 0.0 else 0.0
    from scipy import stats  # lazy: SciPy takes ~0.3 s to import and only this t-test needs it

    t = d.mean() / (sd / math.sqrt(n))
    return float(2.0 * stats.t.sf(abs(t), n - 1))


def distinguishable(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
    """THE rule of every comparison report (see the module docstring).

    ``a`` and ``b`` map seed -> final metric of two variants.  Returns
    ``{"n", "mean_diff", "spread", "distinguishable", "p_value", "wins_a", "wins_b"}``:
    the mean of the per-seed differences a - b over the seeds both have
    (finite values only), the seed-to-seed spread (larger sample std of a and
    b over those seeds), and whether |mean_diff| > spread with n >= 2.
    """
    seeds = [s for s in a if s in b and a[s] is not None and b[s] is not None
             and math.isfinite(a[s]) and math.isfinite(b[s])]
    av = np.array([a[s] for s in seeds], dtype=np.float64)
    bv = np.array([b[s] for s in seeds], dtype=np.float64)
    n = len(seeds)
    diffs = av - bv
    mean_diff = float(diffs.mean()) if n else math.nan
    spread_ = float(max(av.std(ddof=1), bv.std(ddof=1))) if n >= 2 else math.nan
    return {"n": n, "mean_diff": mean_diff, "spread": spread_,
            "distinguishable": bool(n >= 2 and abs(mean_diff) > spread_),
            "p_value": paired_t_pvalue(diffs), "wins_a": int((diffs > 0).sum()), "wins_b": int((diffs < 0).sum())}


def _verdict_metric(cfg: dict, records: list[dict]) -> str:
    if cfg.get("metric", "auto") != "auto":
        return cfg["metric"]
    if cfg.get("target"):
        return cfg["target"]["metric"]
    has_acc = any(math.isfinite(r["final_val_accuracy"]) for r in records)
    return "val_accuracy" if has_acc else "val_loss"


def summarize(records: list[dict], cfg: dict, experiment: dict | None = None,
              seeds: Sequence[int] | None = None) -> dict:
    """Aggregate run records (see :func:`engine.jobs.runs.train_run`) into the comparison summary."""
    metric = _verdict_metric(cfg, records)
    higher = metric == "val_accuracy"
    names = [v["name"] for v in cfg["variants"]]
    seeds = list(seeds) if seeds is not None else sorted({r["seed"] for r in records})
    by = {(r["variant"], r["seed"]): r for r in records}
    first = names[0]
    variants = {}
    for name in names:
        runs = [by[(name, s)] for s in seeds if (name, s) in by]
        started = [s for s in seeds if (name, s) in by and (first, s) in by    # a failed run has no hashes
                   and by[(name, s)]["init_hash"] is not None and by[(first, s)]["init_hash"] is not None]
        same_init = [by[(name, s)]["init_hash"] == by[(first, s)]["init_hash"] for s in started]
        same_data = [by[(name, s)]["data_hash"] == by[(first, s)]["data_hash"] for s in started]
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        reached = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
        variants[name] = {
            "seeds": [r["seed"] for r in runs], "statuses": statuses,
            "final_val_accuracy": spread(r["final_val_accuracy"] for r in runs),
            "best_val_accuracy": spread(r["best_val_accuracy"] for r in runs),
            "final_val_loss": spread(r["final_val_loss"] for r in runs),
            "best_val_loss": spread(r["best_val_loss"] for r in runs),
            "test_accuracy": spread(r["test_accuracy"] for r in runs),
            "sparsity": spread(r.get("sparsity") for r in runs),
            "steps": spread(r["steps"] for r in runs),
            "steps_to_target": dict(spread(reached), reached=len(reached), of=len(runs)),
            "wall_seconds": spread(r["wall_seconds"] for r in runs),
            "train_seconds": spread(r["train_seconds"] for r in runs),
            "same_initial_weights_as_first": bool(same_init) and all(same_init),
            "same_data_and_batches_as_first": bool(same_data) and all(same_data),
            "lr_found": [r["lr_found"] for r in runs] if any(r["lr_found"] is not None for r in runs) else None,
            "zeroed": None if not any(r.get("zeroed") for r in runs) else {
                "threshold": next(r["zeroed"]["threshold"] for r in runs if r.get("zeroed")),
                "sparsity_before": spread(r["zeroed"]["sparsity_before"] for r in runs if r.get("zeroed")),
                "sparsity_after": spread(r["zeroed"]["sparsity_after"] for r in runs if r.get("zeroed")),
                "val_accuracy_change": spread(r["zeroed"]["val_accuracy_after"] - r["zeroed"]["val_accuracy_before"]
                                              for r in runs if r.get("zeroed"))},
            "runs": [{k: r[k] for k in ("seed", "folder", "status", "steps", f"final_{metric}", f"best_{metric}",
                                        "steps_to_target", "wall_seconds", "lr_found")} for r in runs],
        }
    final_key = f"final_{metric}"
    sign = 1.0 if higher else -1.0      # the rule sees "better" as larger: a loss is negated
    values = {n: {r["seed"]: sign * r[final_key] for r in records if r["variant"] == n} for n in names}
    means = {n: variants[n][final_key]["mean"] for n in names}
    ranked = sorted([n for n in names if math.isfinite(means[n])], key=lambda n: -means[n] if higher else means[n])
    ranked += [n for n in names if n not in ranked]
    best = ranked[0] if ranked else None
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs.append({"a": a, "b": b, **distinguishable(values[a], values[b])})
    for n in names:
        if n == best:
            variants[n]["vs_best"] = {"verdict": "best mean"}
            continue
        d = distinguishable(values[best], values[n]) if best is not None else distinguishable({}, {})
        text = verdict_text(d, metric, higher)
        bad = {k: c for k, c in variants[n]["statuses"].items() if k in ("diverged", "stopped", "failed")}
        if variants[n][final_key]["n"] == 0 and bad:
            text = "no result: " + ", ".join(f"{k} on {c} of {len(variants[n]['seeds'])} seeds"
                                             for k, c in bad.items())
        variants[n]["vs_best"] = dict(d, verdict=text)
    return {"metric": metric, "higher_is_better": higher, "seeds": seeds, "n_seeds": len(seeds),
            "variants_order": names, "ranking": ranked, "best": best, "target": cfg.get("target"),
            "rule": RULE_TEXT, "variants": variants, "pairs": pairs,
            "pairs_note": "mean_diff > 0 and wins_a count where a is better (a loss is compared as -loss)",
            "experiment": None if experiment is None else experiment.get("name"),
            "caveat": _caveat(len(names), len(seeds))}


RULE_TEXT = ("a difference counts only when the mean per-seed (paired) difference is larger than the "
             "seed-to-seed spread (the larger of the two standard deviations across seeds), with at least "
             "2 seeds; otherwise: not distinguishable at N seeds. The verdict uses the final validation metric.")


def _caveat(k: int, n: int) -> str:
    text = f"{k} variants x {n} seeds."
    if n < 2:
        text += " With one seed nothing can be told apart from luck: run more seeds before concluding."
    elif k > 2:
        text += (" Picking the best of several variants favours a lucky one: trust only the differences "
                 "marked as distinguishable, and re-check a winner with new seeds.")
    return text


def verdict_kind(summary: dict, name: str) -> str:
    """How a report colours variant ``name``'s verdict: "best" (the best mean), "worse" (THE rule
    says the gap to the best is larger than the seed-to-seed spread), "same" (not distinguishable:
    the rule, whatever a p-value says) or "none" (no result to compare)."""
    if name == summary["best"]:
        return "best"
    vs = summary["variants"][name]["vs_best"]
    if vs.get("n", 0) < 2 or not math.isfinite(vs.get("mean_diff", math.nan)):
        return "none"
    return "worse" if vs["distinguishable"] else "same"


def gap_figures(summary: dict, name: str) -> tuple[str, str, str]:
    """(gap to the best, seed-to-seed spread, paired-t p) as the table prints them: the two figures
    the rule compares, and the p-value shown beside them for reference (it decides nothing)."""
    vs = summary["variants"][name]["vs_best"]
    if name == summary["best"] or not math.isfinite(vs.get("mean_diff", math.nan)):
        return "-", "-", "-"
    scale, unit = (100.0, " pts") if summary["metric"] == "val_accuracy" else (1.0, "")
    gap, spread_ = abs(vs["mean_diff"]) * scale, vs["spread"] * scale
    digits = 2
    while digits < 6 and f"{gap:.{digits}f}" == f"{spread_:.{digits}f}":
        digits += 1
    p = f"{vs['p_value']:.2g}" if math.isfinite(vs.get("p_value", math.nan)) else "-"
    spread_text = f"{spread_:.{digits}f}{unit}" if math.isfinite(spread_) else "-"
    return f"{gap:.{digits}f}{unit}", spread_text, p


def verdict_text(d: dict, metric: str, higher: bool) -> str:
    n = d["n"]
    if n < 2:
        return f"cannot tell: only {n} seed{'s' if n != 1 else ''} with a result for both"

    scale, unit = (100.0, " points") if metric == "val_accuracy" else (1.0, "")
    digits = 2
    while digits < 6 and f"{abs(d['mean_diff']) * scale:.{digits}f}" == f"{d['spread'] * scale:.{digits}f}":
        digits += 1           # never print "gap 1.18 > spread 1.18"
    gap = f"{abs(d['mean_diff']) * scale:.{digits}f}{unit}"
    spread_ = f"{d['spread'] * scale:.{digits}f}{unit}"
    p = f", paired t-test p={d['p_value']:.2g}" if math.isfinite(d["p_value"]) else ""
    if not d["distinguishable"]:
        return f"not distinguishable at {n} seeds (gap {gap} <= spread {spread_}{p})"
    worse = "worse"
    return f"{worse} by {gap} (> spread {spread_}; best won {d['wins_a']} of {n} seeds{p})"


# ----------------------------------------------------------------------------- output


CSV_FIELDS = ("variant", "n_seeds", "statuses", "final_mean", "final_std", "best_mean", "best_std",
              "steps_to_target_mean", "steps_to_target_std", "reached_target", "wall_seconds_mean",
              "wall_seconds_std", "test_accuracy_mean", "test_accuracy_std", "sparsity_mean",
              "same_initial_weights", "verdict_vs_best")


def _num(x) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else repr(float(x))


def comparison_csv(summary: dict) -> str:
    metric = summary["metric"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", metric] + [""] * (len(CSV_FIELDS) - 2))
    w.writerow(CSV_FIELDS)
    for name in summary["variants_order"]:
        v = summary["variants"][name]
        f, b, t, wall = v[f"final_{metric}"], v[f"best_{metric}"], v["steps_to_target"], v["wall_seconds"]
        w.writerow([name, len(v["seeds"]), ";".join(f"{k}={c}" for k, c in v["statuses"].items()),
                    _num(f["mean"]), _num(f["std"]), _num(b["mean"]), _num(b["std"]),
                    _num(t["mean"]) if t["n"] else "", _num(t["std"]) if t["n"] else "",
                    f"{t['reached']}/{t['of']}" if summary.get("target") else "",
                    _num(wall["mean"]), _num(wall["std"]), _num(v["test_accuracy"]["mean"]),
                    _num(v["test_accuracy"]["std"]), _num(v["sparsity"]["mean"]),
                    str(v["same_initial_weights_as_first"]).lower(),
                    v["vs_best"]["verdict"]])
    return buf.getvalue()


def json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def write_comparison(folder: str | os.PathLike, summary: dict) -> None:
    folder = Path(folder)
    write_text(folder / "comparison.json", json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")
    write_text(folder / "comparison.csv", comparison_csv(summary))


def format_stat(s: dict, pct: bool) -> str:
    """"mean ± std" of a :func:`spread` result (percent for accuracies); "-" without values."""
    if s["n"] == 0:
        return "-"
    if pct:
        std = f" ± {s['std'] * 100:.2f}" if math.isfinite(s["std"]) else ""
        return f"{s['mean'] * 100:.2f}%{std}"
    std = f" ± {s['std']:.4f}" if math.isfinite(s["std"]) else ""
    return f"{s['mean']:.4f}{std}"


def format_steps_to_target(t: dict) -> str:
    """"1234 ± 56 (3/3)" for a variant's ``steps_to_target``; "never (0/3)" when no run reached it."""
    cell = "never" if t["reached"] == 0 else f"{t['mean']:.0f}" + (
        f" ± {t['std']:.0f}" if math.isfinite(t["std"]) else "")
    return cell + f" ({t['reached']}/{t['of']})"


def nan_stats(value):
    """Undo json_safe for the statistics (null -> NaN), so a summary read back from
    comparison.json formats like a fresh one."""
    if isinstance(value, dict):
        out = {k: nan_stats(v) for k, v in value.items()}
        if "mean" in out and "n" in out:
            for k in ("mean", "std", "min", "max"):
                if out.get(k) is None:
                    out[k] = math.nan
        return out
    if isinstance(value, list):
        return [nan_stats(v) for v in value]
    return value


def format_table(summary: dict) -> str:
    """The readable report printed by the CLI (also from a summary read back from comparison.json)."""
    summary = nan_stats(summary)
    metric = summary["metric"]
    pct = metric == "val_accuracy"
    target = summary.get("target")
    lines = [f"comparison of {len(summary['variants_order'])} variants over {summary['n_seeds']} seeds "
             f"{summary['seeds']}; metric: {metric} (mean ± std across seeds)"]
    w = min(32, max(8, *(len(n) for n in summary["variants_order"])))
    head = f"{'variant':{w}s} {'final':>18s} {'best':>18s}"
    if target:
        head += f" {'steps to ' + format(target['value'], 'g'):>18s}"
    show_sparsity = any(summary["variants"][n].get("sparsity", {}).get("mean", 0) > 0.1
                        for n in summary["variants_order"])
    if show_sparsity:
        head += f" {'sparsity':>8s}"
    head += f" {'wall s':>7s}  verdict vs best"
    lines.append(head)
    for name in summary["ranking"]:
        v = summary["variants"][name]
        row = (f"{name[:w]:{w}s} {format_stat(v[f'final_{metric}'], pct):>18s} "
               f"{format_stat(v[f'best_{metric}'], pct):>18s}")
        if target:
            row += f" {format_steps_to_target(v['steps_to_target']):>18s}"
        if show_sparsity:
            sp = v.get("sparsity", {}).get("mean", math.nan)
            row += f" {sp * 100:7.1f}%" if math.isfinite(sp) else f" {'-':>8s}"
        row += f" {v['wall_seconds']['mean']:7.1f}  {v['vs_best']['verdict']}"
        if len(v["statuses"]) > 1 or v["statuses"] and "finished" not in v["statuses"] and \
                "early_stopped" not in v["statuses"]:
            row += "  [" + ", ".join(f"{k}: {c}" for k, c in v["statuses"].items()) + "]"
        lines.append(row)
    first = summary["variants_order"][0]
    started = [n for n in summary["variants_order"]      # runs that started (a failed one has no start to compare)
               if any(r["status"] != "failed" for r in summary["variants"][n]["runs"])]
    started = started if first in started else []
    diff_init = [n for n in started if not summary["variants"][n]["same_initial_weights_as_first"]]
    if diff_init:
        lines.append(f"note: {', '.join(diff_init)} did not start from the same initial kernels as {first} "
                     f"(other layer sizes or initializers), so the comparison includes that difference.")
    diff_data = [n for n in started if not summary["variants"][n]["same_data_and_batches_as_first"]]
    if diff_data:
        lines.append(f"note: {', '.join(diff_data)} saw other data or batches than {first} "
                     f"(data or batch-size overrides).")
    for n in summary["variants_order"]:
        z = summary["variants"][n].get("zeroed")
        if z:
            ch = z["val_accuracy_change"]
            lines.append(f"{n}: zeroing |w| < {z['threshold']:g} after training took the sparsity from "
                         f"{z['sparsity_before']['mean'] * 100:.1f}% to {z['sparsity_after']['mean'] * 100:.1f}% "
                         f"and changed the validation accuracy by {ch['mean'] * 100:+.2f} points (mean over "
                         f"{ch['n']} seeds)")
    found = {n: v["lr_found"] for n, v in summary["variants"].items() if v.get("lr_found")}
    for n, lrs in found.items():
        lines.append(f"learning-rate finder for {n}: " + ", ".join(f"{x:.3g}" for x in lrs if x is not None))
    lines.append("rule: " + summary["rule"])
    lines.append(summary["caveat"])
    return "\n".join(lines)


# ----------------------------------------------------------------------------- curves


def aggregate_curves(curves: Mapping[str, Sequence[tuple]], n_points: int | None = None) -> dict:
    """Mean line and min-max band per variant on a common step axis.

    ``curves`` maps a variant name to its per-seed curves, each a pair
    ``(steps, values)`` of equal-length sequences (steps increasing).  For
    each variant the common axis is the sorted union of the seeds' steps
    (or ``n_points`` evenly spaced steps over their range); each seed is
    linearly interpolated onto it inside its own step range and left out
    beyond it (a run that stopped early does not drag the band), and NaN
    values (a diverged run) are left out too.  Returns ``{name: {"steps",
    "mean", "min", "max", "count"}}`` of NumPy arrays; ``count`` says how many
    seeds contribute at each step.
    """
    out = {}
    for name, seeds in curves.items():
        pairs = []
        for steps, values in seeds:
            s = np.asarray(steps, dtype=np.float64)
            v = np.asarray(values, dtype=np.float64)
            if s.shape != v.shape or s.ndim != 1:
                raise ValueError(f"{name}: steps and values must be 1-D of the same length")
            if s.size:
                pairs.append((s, v))
        if not pairs:
            empty = np.zeros(0)
            out[name] = {"steps": empty, "mean": empty, "min": empty, "max": empty, "count": np.zeros(0, int)}
            continue
        if n_points:
            lo = min(s[0] for s, _ in pairs)
            hi = max(s[-1] for s, _ in pairs)
            axis = np.linspace(lo, hi, int(n_points))
        else:
            axis = np.unique(np.concatenate([s for s, _ in pairs]))
        grid = np.full((len(pairs), axis.size), np.nan)
        for i, (s, v) in enumerate(pairs):
            ok = np.isfinite(v)
            if not ok.any():
                continue
            inside = (axis >= s[0]) & (axis <= s[-1])
            grid[i, inside] = np.interp(axis[inside], s[ok], v[ok])
            # a run that ended in NaN stops contributing where its values stop being finite
            last_ok = s[ok][-1]
            grid[i, axis > last_ok] = np.nan
        count = np.isfinite(grid).sum(axis=0)
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(grid, axis=0)
                lo_band = np.nanmin(grid, axis=0)
                hi_band = np.nanmax(grid, axis=0)
        out[name] = {"steps": axis, "mean": mean, "min": lo_band, "max": hi_band, "count": count}
    return out


def comparison_curves(folder: str | os.PathLike, metric: str = "val_accuracy",
                      n_points: int | None = None) -> dict:
    """Read a comparison folder's run folders and aggregate one curve per variant.

    ``metric``: a column of ``epochs.csv`` (val_accuracy, val_loss,
    train_loss, train_accuracy, sparsity...) or of ``history.csv`` (loss,
    learning_rate, grad_norm_0...).  A run folder without that column is an error.
    """
    folder = Path(folder)
    summary = _comparison_summary(folder)
    return aggregate_curves(_run_curves(folder, summary, (metric,), strict=True)[metric], n_points)


def read_summary(path: Path, what: str, missing: str) -> dict:
    """A job folder's summary JSON (comparison.json, sweep.json) read back with the bounded parser,
    nulls in the statistics turned back into NaN; one clear error when it is missing or damaged."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ExperimentError(f"{path.parent}: no {path.name} here; {missing}") from None
    except OSError as exc:
        raise ExperimentError(f"{path}: not a {what} ({type(exc).__name__}: {exc})") from None
    try:   # older files hold NaN literals, so constants are allowed here
        return nan_stats(parse_json(text, str(path), ExperimentError, allow_constants=True))
    except ExperimentError as exc:
        raise ExperimentError(f"{path}: not a {what} ({exc})") from None


def _comparison_summary(folder: Path) -> dict:
    """comparison.json with its nulls turned back into NaN; a clear error when it is not there."""
    path = folder / "comparison.json"
    summary = read_summary(path, "comparison summary", "a comparison folder is what 'python main.py run' "
                                                       "writes for an experiment with a compare section")
    _run_folders(summary, path)   # checked here, so a damaged summary is named before any run is read
    return summary


def _run_folders(summary, path: Path) -> dict[str, list[str]]:
    """{variant: [run folder name per seed]} of a comparison summary (``path`` names it in errors)."""
    try:
        return {name: [str(run["folder"]) for run in summary["variants"][name]["runs"]]
                for name in summary["variants_order"]}
    except (KeyError, TypeError) as exc:
        raise ExperimentError(f"{path}: not a comparison summary ({type(exc).__name__}: {exc})") from None


def _run_curves(folder: Path, summary: Mapping, metrics: Sequence[str], strict: bool) -> dict:
    """{metric: {variant: [(steps, values) per run]}}, each run folder read once by
    :func:`engine.formats.runfolder.read_run`.  ``strict=False`` leaves out runs that miss a
    column (or the folder, or whose files cannot be read)."""
    runs = _run_folders(summary, folder / "comparison.json")
    out: dict = {m: {n: [] for n in runs} for m in metrics}
    for name, run_names in runs.items():
        for run_name in run_names:
            try:
                run = read_run(folder / run_name)
            except DescentError:
                if strict:
                    raise
                continue
            for metric in metrics:
                curve = run.curve(metric)
                if curve is not None:
                    out[metric][name].append(curve)
                elif strict:
                    raise ExperimentError(f"{run.folder}: no column {metric!r} in epochs.csv or history.csv")
    return out


CURVE_METRICS = ("val_accuracy", "val_loss", "loss", "train_loss", "train_accuracy")
# "loss" is the training loss at every diagnostics record (history.csv); the others are per epoch


def record_curves(records: Sequence[Mapping], metric: str, n_points: int | None = None) -> dict:
    """Mean line and min-max band per variant from run records (:func:`engine.jobs.runs.train_run`
    results: their per-epoch ``curve`` and per-record ``history``): what the window draws while a
    comparison is still running, before any file is read back."""
    curves: dict[str, list] = {}
    for r in records:
        if metric == "loss":
            history = r.get("history") or {"step": [], "loss": []}
            points = list(zip(history["step"], history["loss"]))
        else:
            points = [(e["step"], e[metric]) for e in r.get("curve") or () if e.get(metric) is not None]
        steps = [p[0] for p in points]
        values = [p[1] if math.isfinite(p[1]) else math.nan for p in points]
        curves.setdefault(r["variant"], []).append((steps, values))
    return aggregate_curves(curves, n_points)


def read_comparison(folder: str | os.PathLike, metrics: Sequence[str] = CURVE_METRICS) -> tuple[dict, dict]:
    """A finished comparison folder read back: (summary, {metric: curves}).

    The summary is ``comparison.json`` with its nulls turned back into NaN;
    the curves are :func:`aggregate_curves` of each run folder's CSVs (a run
    folder that is missing, cannot be read or lacks a column is left out of that curve)."""
    folder = Path(folder)
    summary = _comparison_summary(folder)
    per_metric = _run_curves(folder, summary, metrics, strict=False)
    return summary, {m: aggregate_curves(c) for m, c in per_metric.items()}
