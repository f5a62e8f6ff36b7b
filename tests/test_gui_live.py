"""The window as a student meets it (issue 14, items 1-3): a launch window that explains the
one-time compile, a speed control that paces without changing results, and a large network that
shows progress from its first step, stops at once and asks before filling runs/."""
import copy
import io

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from engine.formats.weights import load_any
from tests.test_gui_window import FIRST_RUN_TIMEOUT, SMALL, make_window

pytestmark = pytest.mark.gui


# ------------------------------------------------------------------------------- launch window

def fake_steps(cold: bool):
    """The loader's steps with the compile mocked: each group reports a kernel inside it, then itself."""
    from engine.jobs.warmup import Compiled
    from gui.launch import GROUPS

    def compile_kernels(report):
        for key, *_ in GROUPS:
            report(Compiled(f"kernels.x.inner_of_{key}", 0.5, None))
            report(Compiled(f"kernels.x.{key}", 2.0, key))
        return {}

    return (("loading the engine", lambda report: {}), ("checking the compiled kernels", lambda report: {"cold": cold}),
            ("compiling the kernels", compile_kernels))


def test_a_cold_cache_shows_every_kernel_group_compiling_in_the_window_and_the_terminal(qtbot):
    from gui.launch import GROUPS, LaunchWindow, start_loading

    stream = io.StringIO()
    window = LaunchWindow(stream)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.loaded, timeout=30_000) as loaded:
        start_loading(window, fake_steps(cold=True))
    assert loaded.args == [True]
    assert set(window.done_groups) == {g[0] for g in GROUPS}
    assert all(label.isVisible() and label.text().startswith("✔") for label in window.group_labels.values())
    assert window.note.isVisible() and "once" in window.note.text() and "minute" in window.note.text()
    assert window.bar.value() == 1000
    out = stream.getvalue()
    assert "first launch" in out and "minute" in out
    assert all(f"compiled {title}" in out for _, title, _, _ in GROUPS)
    assert "inner_of_" in window.current.text()             # the kernel being compiled inside a group


def test_a_warm_cache_skips_the_compile_and_says_nothing(qtbot):
    from gui.launch import LaunchWindow, start_loading

    stream = io.StringIO()
    window = LaunchWindow(stream)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=30_000):
        start_loading(window, fake_steps(cold=False))
    assert not window.done_groups and not window.note.isVisible() and stream.getvalue() == ""


def test_the_launch_window_lists_the_engine_groups():
    from engine.jobs.warmup import DISPATCHERS, GROUPS as ENGINE_GROUPS
    from gui.launch import GROUPS

    assert [(g.key, g.title, g.what, g.share) for g in ENGINE_GROUPS] == list(GROUPS)
    assert set(DISPATCHERS) == {g[0] for g in GROUPS} and sum(g[3] for g in GROUPS) == pytest.approx(1.0)


# ------------------------------------------------------------------------------- speed control

def final_weights(record):
    return load_any(record.folder / "weights.safetensors")[0]


def test_the_speed_control_paces_the_run_and_the_weights_stay_the_same(qtbot, tmp_path):
    from gui.speed import LEVELS

    w = make_window(qtbot, tmp_path, SMALL)
    w.speed.set_level(1)                                    # slow: 120 steps a second
    record = w.start_run()
    assert w.active.control.pace == LEVELS[1][1] == 120
    qtbot.waitUntil(lambda: record.finished, timeout=FIRST_RUN_TIMEOUT)
    w.speed.fastest.click()                                 # one click: as fast as possible
    assert w.speed.pace() is None and "as fast as possible" in w.speed.label.text()
    fast = w.start_run()
    assert w.active.control.pace is None
    qtbot.waitUntil(lambda: fast.finished, timeout=30_000)
    slow_w, fast_w = final_weights(record), final_weights(fast)
    assert slow_w.keys() == fast_w.keys() and all(np.array_equal(slow_w[k], fast_w[k]) for k in slow_w)
    w.speed.fastest.click()                                 # and back to where it was
    assert w.speed.level() == 1


def test_the_speed_acts_on_the_running_job_and_is_remembered(qtbot, tmp_path):
    long = dict(copy.deepcopy(SMALL), training={"epochs": 5000, "batch_size": 20})
    w = make_window(qtbot, tmp_path, long)
    w.speed.set_level(0)
    record = w.start_run()
    qtbot.waitUntil(lambda: record.step > 0, timeout=FIRST_RUN_TIMEOUT)
    w.speed.set_level(3)
    assert w.active.control.pace == 2500
    w.stop()
    qtbot.waitUntil(lambda: record.finished, timeout=30_000)
    again = make_window(qtbot, tmp_path, SMALL)             # the same settings file
    assert again.speed.level() == 3


# ------------------------------------------------------------------------------- a large network

# 4,000 points at batch 10: 360 steps an epoch; two 400-unit layers: the engine's cadence logs its first
# diagnostics record at step ~100 or later, and slow motion (30 steps/s) keeps it seconds away
LARGE = dict(copy.deepcopy(SMALL), name="large", data={"name": "moons", "n_samples": 4000, "noise": 0.1},
             model={"layers": [{"units": 400, "activation": "relu"}, {"units": 400, "activation": "relu"}]},
             optimizer={"name": "adam", "learning_rate": 0.001}, training={"epochs": 50, "batch_size": 10})


def answer(monkeypatch, button_text):
    """Make the size question answer itself with the button of this text (no modal loop in tests)."""
    asked = []

    def exec_(box):
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == button_text).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return asked


def test_a_large_net_shows_progress_before_its_first_record_and_stops_at_once(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENT_WEIGHTS_LIMIT_MB", "0.5")     # the net writes ~6 MB: over the limit
    asked = answer(monkeypatch, "Write one weights file")
    w = make_window(qtbot, tmp_path, LARGE)
    w.speed.set_level(0)
    record = w.start_run()
    assert asked and "more than the limit" in asked[0] and "one weights file" in asked[0]
    qtbot.waitUntil(lambda: w.active.control.steps_run >= 3, timeout=FIRST_RUN_TIMEOUT)
    w.redraw()
    assert not record.log_step                              # no diagnostics record yet, progress all the same
    assert record.steps_run >= 3 and f"step {record.steps_run:,}" in w.progress_label.text()
    w.stop()
    assert "stopped at step" in w.state_label.text()
    qtbot.waitUntil(lambda: record.finished, timeout=60_000)
    assert record.status == "stopped"
    files = {p.name for p in record.folder.iterdir()}
    assert "weights.safetensors" in files and "weights.npz" not in files and "checkpoint.npz" not in files


@pytest.mark.parametrize("choice", ["Write nothing", "Cancel"])
def test_the_size_question_can_write_nothing_or_cancel(qtbot, tmp_path, monkeypatch, choice):
    monkeypatch.setenv("DESCENT_WEIGHTS_LIMIT_MB", "0.5")
    answer(monkeypatch, choice)
    w = make_window(qtbot, tmp_path, LARGE)
    record = w.start_run()
    if choice == "Cancel":
        assert record is None and w.active is None
        return
    assert record.folder is None
    w.stop()
    qtbot.waitUntil(lambda: record.finished, timeout=FIRST_RUN_TIMEOUT)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_small_net_is_not_asked_about(qtbot, tmp_path, monkeypatch):
    asked = answer(monkeypatch, "Write everything")
    w = make_window(qtbot, tmp_path, SMALL)
    record = w.start_run()
    qtbot.waitUntil(lambda: record.finished, timeout=FIRST_RUN_TIMEOUT)
    files = {p.name for p in record.folder.iterdir()}
    assert not asked and {"weights.safetensors", "checkpoint.npz"} <= files and "weights.npz" not in files


def test_the_window_shows_the_stop_at_once_and_the_files_as_they_are_written(qtbot, tmp_path, monkeypatch):
    """A huge net writes hundreds of megabytes after Stop: the window says the run stopped, and which
    file is being written, before the files are on disk (the writer is held here until it does)."""
    import threading

    import engine.formats.runstore as runstore

    release, real = threading.Event(), runstore.save_weights
    monkeypatch.setattr(runstore, "save_weights", lambda *args: release.wait(120) and real(*args))
    long = dict(copy.deepcopy(SMALL), training={"epochs": 5000, "batch_size": 20})
    w = make_window(qtbot, tmp_path, long)
    record = w.start_run()
    try:
        qtbot.waitUntil(lambda: record.step > 0, timeout=FIRST_RUN_TIMEOUT)
        w.stop()
        qtbot.waitUntil(lambda: "writing weights.safetensors" in w.state_label.text(), timeout=60_000)
        text = w.state_label.text()
        assert text.startswith("stopped at step") and "file 1 of 2" in text and not record.finished
        assert not (record.folder / "weights.safetensors").exists()
    finally:
        release.set()
    qtbot.waitUntil(lambda: record.finished, timeout=60_000)
    assert record.status == "stopped" and (record.folder / "weights.safetensors").is_file()
    qtbot.waitUntil(lambda: w.active is None and "writing" not in w.state_label.text(), timeout=30_000)
