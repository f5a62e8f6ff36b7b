"""bench/engine.py's output format, on made-up records (nothing is timed here):
loaded rows keep their rates but their ratios are marked and kept out of README,
the README block is replaced between its marks only, targets are judged against
the fastest PyTorch variant."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.append(str(BENCH))   # appended: bench/engine.py must not hide the engine package
import report  # noqa: E402


def _engine():
    spec = importlib.util.spec_from_file_location("bench_engine", BENCH / "engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INFO = {"config": "machine", "nproc": 2, "cpu": "Test CPU", "cpu_flags": "avx2", "python": "3.11", "numpy": "2",
        "scipy": "1", "numba": "0.6", "torch": "2.13", "torch_threads": 2, "date": "2026-12-03 12:00 UTC",
        "load_start": 0.2, "load_end": 0.3, "command": "python bench/engine.py --rounds 5", "pin_removed": "",
        "pin_kept": {}, "method": "median of 5 interleaved rounds of 1 s per runner",
        "blas": [{"library": "libscipy_openblas-x.so", "internal_api": "openblas", "version": "0.3.30",
                  "architecture": "Zen", "num_threads": 2, "user_api": "blas"}]}


def _row(key, ratio, loaded, **extra):
    row = {"config": key, "label": f"net {key}", "descent_steps_per_s": 1000.0 * ratio, "target": 1.5,
           "torch_steps_per_s": {"torch": 500.0, "torch_1t": 1000.0}, "best_torch": "torch_1t",
           "best_torch_steps_per_s": 1000.0, "ratio": ratio, "ratios_per_round": [ratio],
           "load_before": 2.5 if loaded else 0.2, "load_after": 1.1, "other_cores": 0.1, "loaded": loaded}
    row.update(extra)
    return row


def test_loaded_rows_are_marked_and_not_quoted_in_readme():
    quiet = _row("quiet", 1.73, False, bound_fraction=0.93, bound_target=0.9)
    busy = _row("busy", 4.56, True)
    text = report.results_markdown([INFO, quiet, busy])
    assert "| net quiet | 1,730 | 500 | - | **1,000** | 1.73x | >= 1.5x | 93% (>= 90%) |" in text
    assert f"4.56x {report.LOADED_MARK}" in text and "not a result to quote" in text
    assert "kernel Zen, 2 threads" in text
    block = report.readme_block([INFO, quiet, busy])
    assert block.startswith(report.BEGIN) and block.endswith(report.END)
    assert "| net quiet | 1.73x |" in block
    assert "| net busy | *loaded* |" in block and "4.56" not in block


def test_readme_block_replaced_between_marks_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\nbefore\n{report.BEGIN}\nold figures\n{report.END}\nafter\n")
    report.update_readme(readme, f"{report.BEGIN}\nnew\n{report.END}")
    assert readme.read_text() == f"# T\n\nbefore\n{report.BEGIN}\nnew\n{report.END}\nafter\n"
    (tmp_path / "bare.md").write_text("no marks\n")
    with pytest.raises(SystemExit):
        report.update_readme(tmp_path / "bare.md", "x")


def test_targets_judged_on_every_measured_criterion():
    met = _engine().targets_met
    assert met({"target": 1.5, "ratio": 1.6}) is True
    assert met({"target": 1.5, "ratio": 1.6, "bound_target": 0.9, "bound_fraction": 0.85}) is False
    assert met({"target": 1.5, "ratio": 1.6, "e2e_over_loop": 0.80}) is False
    assert met({"target": 50.0, "ratio": 60.0, "e2e_over_loop": 0.9, "e2e_target": 30.0, "e2e_ratio": 25.0}) is False
    assert met({"label": "no torch"}) is None


def test_flops_per_step_counts_three_products_but_the_first_delta():
    from runners import Config
    cfg = Config("x", "x", 784, (300, 100), "relu", 10, 128, "sgd", 0.1, 100)
    prods = 784 * 300 + 300 * 100 + 100 * 10
    assert cfg.flops_per_step() == 2 * 128 * (3 * prods - 784 * 300)


def test_missed_targets_named_in_readme_with_their_profile():
    """A quiet row below its target is listed under the table with the largest parts of its step (or of
    the profiled configuration with the same network and batch); met and loaded rows are not."""
    missed = _row("fmnist-b32-adam", 1.2, False, met=False)
    met = _row("fmnist-b32-momentum", 1.6, False, met=True)
    busy = _row("fmnist-b1-adam", 0.5, True, met=False)
    profile = {"config": "profile:fmnist-b32-momentum", "label": "b32 momentum", "step_seconds": 1e-3,
               "parts": {"forward GEMMs": 4e-4, "optimizer": 1e-4, "other compiled": 5e-4, "loss": -1e-6}}
    block = report.readme_block([INFO, missed, met, busy, profile])
    lines = [line for line in block.splitlines() if line.startswith("* ")]
    assert lines == ["* net fmnist-b32-adam: training loop 1.20x (target >= 1.5x); a step of b32 momentum takes "
                     "1,000 us: other compiled 500 us (50%), forward GEMMs 400 us (40%), optimizer 100 us (10%)."]
    assert "Targets not met" not in report.readme_block([INFO, met])


def test_settle_waits_for_the_load_average_to_fall(monkeypatch):
    """Each configuration starts once the previous one's own load has decayed (no wall clock: the load
    readings and the sleeps are scripted)."""
    engine = _engine()
    readings = iter([1.9, 1.4, 1.05, 0.98, 0.5])
    slept = []
    monkeypatch.setattr(engine, "loadavg", lambda: next(readings))
    monkeypatch.setattr(engine.time, "sleep", slept.append)
    assert engine.settle(limit=1.0, longest=1e9) == 0.98
    assert len(slept) == 3
    monkeypatch.setattr(engine, "loadavg", lambda: 3.0)
    monkeypatch.setattr(engine.time, "monotonic", iter([0.0, 50.0, 130.0]).__next__)
    assert engine.settle(limit=1.0, longest=120.0) == 3.0   # a busy machine: give up, the row is marked loaded
