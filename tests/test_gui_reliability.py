"""The window under stress: start/stop cycles, and the same weights as the headless runner."""
import gc
import threading

import numpy as np
import pytest

from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer
from engine.formats.weights import load_any

from test_gui_window import FIRST_RUN_TIMEOUT, LONG, SMALL, current, make_window
from test_reliability import rss_mb

pytestmark = pytest.mark.gui


def test_the_window_trains_the_same_weights_as_the_headless_runner(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.status == "finished" and (record.folder / "weights.safetensors").is_file(),
                    timeout=FIRST_RUN_TIMEOUT)
    qtbot.waitUntil(lambda: w.active is None, timeout=30_000)
    in_window, _ = load_any(record.folder / "weights.safetensors")
    headless = list(Trainer(resolve_experiment(SMALL)).run())[-1].weights
    assert set(in_window) == set(headless)
    for name in headless:
        assert np.array_equal(in_window[name], headless[name]), name


def test_start_stop_200_times_in_the_window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, LONG)
    threads_before = {t.ident for t in threading.enumerate()}

    def cycle(wait_for_steps: int):
        w.train_or_pause()
        record = current(w)
        qtbot.waitUntil(lambda: record.step >= wait_for_steps or record.status not in ("starting", "running"),
                        timeout=FIRST_RUN_TIMEOUT)
        w.stop()
        qtbot.waitUntil(lambda: w.active is None, timeout=30_000)
        return record.status

    cycle(1)  # warm-up: kernels loaded, first plots built
    gc.collect()
    rss_before = rss_mb()
    statuses = [cycle(i % 3) for i in range(200)]
    gc.collect()
    assert set(statuses) <= {"stopped", "finished"} and statuses.count("stopped") > 150
    assert not w.worker.thread.isRunning() or w.active is None
    leftover = [t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert not leftover, leftover
    growth = rss_mb() - rss_before
    # every run stays in the run list on purpose (its curves, last decision surface, weights);
    # what counts as left behind is the growth beyond the arrays those records hold
    kept = retained_megabytes(list(w.records.values()))
    assert growth - kept < 50, (f"RSS grew by {growth:.1f} MB over 200 start/stop cycles in the window, "
                                f"of which the kept runs account for {kept:.1f} MB")
    assert kept / len(w.records) < 1.0  # and a kept run stays small (MB)
    print(f"window start/stop: RSS +{growth:.1f} MB, kept runs {kept:.1f} MB in {len(w.records)} records")


def retained_megabytes(roots) -> float:
    """Bytes of the distinct NumPy arrays reachable from ``roots`` (objects, dicts, lists, tuples)."""
    seen_objects, seen_arrays, total = set(), set(), 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen_objects or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen_objects.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj if obj.base is None else obj.base
            if isinstance(base, np.ndarray) and id(base) not in seen_arrays:
                seen_arrays.add(id(base))
                total += base.nbytes
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] in ("gui", "engine", "test_gui_window"):
            stack.extend(vars(obj).values())
        elif hasattr(obj, "__dataclass_fields__"):
            stack.extend(getattr(obj, f) for f in obj.__dataclass_fields__)
    return total / 2**20


def test_garbage_with_qt_objects_is_collected_on_the_gui_thread_only(qtbot, tmp_path):
    """A cycle collected on the training (or comparison) thread would destroy Qt objects off the
    GUI thread, which hangs or crashes the process: the window collects on the GUI thread."""
    import gc

    make_window(qtbot, tmp_path, SMALL)
    assert not gc.isenabled()
    collected_on = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            collected_on.append(threading.current_thread().name)

    for _ in range(20):
        Cycle()

    kept = []

    def allocate():   # far past the threshold of generation 0, many times over (kept alive)
        for _ in range(200_000):
            kept.append([None])
        for _ in range(20):
            Cycle()

    worker = threading.Thread(target=allocate, name="allocating-worker")
    worker.start()
    worker.join()
    assert collected_on == []          # nothing was collected on the worker thread
    qtbot.waitUntil(lambda: len(collected_on) == 40, timeout=10_000)
    assert set(collected_on) == {threading.main_thread().name}
